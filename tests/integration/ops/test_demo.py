"""tools/demo.sh, the README's first command, run as a new user would but
without a terminal: it skips apt when every package is there, builds only the
programs and quietly, prints real paths, the settings a mail program needs and
one line per service; the services answer (SMTP, IMAP with the printed
password, the mount); Ctrl-C (SIGTERM here) stops everything and unmounts;
a second run reuses the instance and sends no second "mailkeep is running".
Also install-deps.sh waiting for apt's lock."""
import fcntl
import imaplib
import os
import re
import signal
import smtplib
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mkhelpers import BUILD, REPO, client_ctx, wait_for

DEMO = REPO / "tools" / "demo.sh"
DEPS = REPO / "tools" / "install-deps.sh"


def mounted(path):
    return any(line.split()[1] == str(path) for line in Path("/proc/mounts").read_text().splitlines())


class Demo:
    def __init__(self, tmp, env):
        self.out = tmp / f"demo.{time.monotonic_ns()}.out"
        self.f = open(self.out, "wb")
        self.p = subprocess.Popen(["sh", str(DEMO)], stdout=self.f, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, env=env, start_new_session=True)

    def text(self):
        return self.out.read_text(errors="replace")

    def wait_running(self, timeout=300):
        def ready():
            if self.p.poll() is not None:
                raise AssertionError(f"demo.sh exited {self.p.returncode}:\n{self.text()}")
            t = self.text()
            return "Read it now:" in t and t
        return wait_for(ready, timeout=timeout, what="the demo to say it runs")

    def stop(self, timeout=30):
        if self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGTERM)
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait()
            raise


def imap_subjects(port, user, pw):
    with imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=client_ctx()) as im:
        im.login(user, pw)
        im.select("INBOX", readonly=True)
        typ, data = im.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK"
        return [part[1].decode().strip() for part in data if isinstance(part, tuple)]


def test_demo_runs_answers_stops_and_reruns_without_a_second_message(tmp_path):
    env = dict(os.environ, MAILKEEP_DEMO=str(tmp_path / "demo"), MAILKEEP_BUILD=str(BUILD))
    env.pop("MAILKEEP_CONF", None)
    complete = subprocess.run([str(DEPS), "--missing", "--build"], capture_output=True, text=True).returncode == 0
    if not complete:
        env["MAILKEEP_DEMO_SKIP_DEPS"] = "1"  # never apt-get from a test
    demo = Demo(tmp_path, env)
    try:
        out = demo.wait_running()
        if complete:
            assert "every package is there; apt not needed" in out
        # quiet: no compiler lines, the unit tests not built, real paths only
        assert "  CC " not in out and "  LD " not in out and "tests/test-" not in out
        assert "$config_directory" not in out and "$run_directory" not in out
        assert str(tmp_path / "demo") in out
        assert re.search(r"^  smtpin   running, pid \d+; .*answers", out, re.M), out
        assert re.search(r"^  imapd    running, pid \d+; .*answers", out, re.M), out
        assert re.search(r"^  mount    running, pid \d+; mounted on " + re.escape(str(tmp_path / "demo" / "mail")), out, re.M)
        pw = re.search(r"user       demo, password (\S+)", out).group(1)
        assert pw == (tmp_path / "demo" / "password").read_text().strip()
        imaps = int(re.search(r"incoming   IMAP, server 127\.0\.0\.1, port (\d+), security SSL/TLS", out).group(1))
        smtp = int(re.search(r"outgoing   SMTP, server 127\.0\.0\.1, port (\d+), STARTTLS", out).group(1))
        assert re.search(r"SHA-256 fingerprint reads\n +([0-9A-F]{2}:){31}[0-9A-F]{2}", out)
        if "neomutt" in out:
            assert subprocess.run(["sh", "-c", "command -v neomutt"], capture_output=True).returncode == 0
        assert "mutt -f /tmp" not in out.replace("neomutt -f", "")
        # the services answer, as a mail program would use them
        with smtplib.SMTP("127.0.0.1", smtp, timeout=10) as s:
            assert s.ehlo()[0] == 250
        subjects = wait_for(lambda: [x for x in [imap_subjects(imaps, "demo", pw)] if any("mailkeep is running" in y for y in x)],
                            timeout=10, what="the first message")[0]
        assert sum("Welcome to mailkeep" in x for x in subjects) == 1
        assert sum("mailkeep is running" in x for x in subjects) == 1
        new = tmp_path / "demo" / "mail" / "demo" / "new"
        assert len(list(new.iterdir())) == 2
    finally:
        rc = demo.stop()
    assert rc == 0, demo.text()
    assert "stopped;" in demo.text()
    assert not mounted(tmp_path / "demo" / "mail")
    assert not (tmp_path / "demo" / "data" / "run" / "mailkeep.pid").exists()

    # again: the same instance, no second first message
    demo2 = Demo(tmp_path, env)
    try:
        out2 = demo2.wait_running()
        assert "made before; kept as it is" in out2
        assert "sent:" not in out2
        assert pw in out2
        subjects = imap_subjects(imaps, "demo", pw)
        assert sum("mailkeep is running" in x for x in subjects) == 1
        assert sum("Welcome to mailkeep" in x for x in subjects) == 1
    finally:
        assert demo2.stop() == 0
    assert not mounted(tmp_path / "demo" / "mail")


def test_install_deps_waits_for_apts_lock_and_says_so(tmp_path):
    lock = tmp_path / "lock-frontend"
    lock.write_text("")
    fd = os.open(lock, os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX)  # what apt and dpkg take (fcntl locks)
    release = threading.Timer(2.0, lambda: os.close(fd))
    release.start()
    env = dict(os.environ, MAILKEEP_APT_LOCKS=str(lock), MAILKEEP_APT_WAIT="60")
    t0 = time.monotonic()
    cp = subprocess.run([str(DEPS), "--wait-for-apt"], capture_output=True, text=True, env=env, timeout=60)
    release.join()
    assert cp.returncode == 0, cp.stderr
    assert f"apt is busy: pid {os.getpid()} (" in cp.stdout and "waiting for it to finish" in cp.stdout
    assert "apt is free again" in cp.stdout
    assert time.monotonic() - t0 >= 1.5


def test_install_deps_gives_up_clearly(tmp_path):
    lock = tmp_path / "lock"
    lock.write_text("")
    holder = subprocess.Popen([sys.executable, "-c",
                               "import fcntl,os,sys,time; fd=os.open(sys.argv[1], os.O_RDWR); "
                               "fcntl.lockf(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(30)", str(lock)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        env = dict(os.environ, MAILKEEP_APT_LOCKS=str(lock), MAILKEEP_APT_WAIT="2")
        cp = subprocess.run([str(DEPS), "--wait-for-apt"], capture_output=True, text=True, env=env, timeout=60)
        assert cp.returncode == 1
        assert f"apt is busy: pid {holder.pid} (python" in cp.stdout
        assert f"apt is still busy (pid {holder.pid}) after 2s: run this again when it has finished" in cp.stderr
    finally:
        holder.kill()
        holder.wait()


def test_install_deps_needs_no_apt_when_everything_is_there():
    cp = subprocess.run([str(DEPS), "--missing", "--build"], capture_output=True, text=True)
    if cp.returncode != 0:
        pytest.fail(f"packages to build and run are missing here: {cp.stdout} (run tools/install-deps.sh)")
    # nothing to install: no sudo, no apt, done in a moment
    env = dict(os.environ, PATH="/usr/bin:/bin")
    cp = subprocess.run([str(DEPS), "--build"], capture_output=True, text=True, env=env, timeout=60)
    assert cp.returncode == 0 and "every package is there; apt not needed" in cp.stdout
    assert "apt-get" not in cp.stdout + cp.stderr
