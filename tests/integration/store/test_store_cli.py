"""The `mailkeep` command itself: --help everywhere, init, users, aliases,
backup, check --list/--man, and `run` supervising services."""
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from mkhelpers import BIN, REPO
from storehelp import stats, store_instance, user_mailboxes  # noqa: F401

COMMANDS = ["init", "check", "user", "alias", "import", "export", "fsck", "backup", "stats",
            "smtpin", "smtpout", "imapd", "mount", "run", "status", "phone", "queue", "sendmail", "dkim"]


def mk(*args, **kw):
    return subprocess.run([str(BIN / "mailkeep"), *map(str, args)], capture_output=True, text=True, **kw)


def test_help_for_every_command():
    top = mk("--help")
    assert top.returncode == 0
    for c in COMMANDS:
        assert f"  {c} " in top.stdout, c
        cp = mk(c, "--help")
        assert cp.returncode == 0, c
        assert cp.stdout.startswith(f"usage: mailkeep {c}"), cp.stdout
    bad = mk("frobnicate")
    assert bad.returncode == 2 and "unknown command" in bad.stderr


def test_missing_config_says_what_to_do(tmp_path):
    cp = mk("-c", tmp_path / "nope.conf", "stats")
    assert cp.returncode == 1
    assert "nope.conf" in cp.stderr
    env = dict(os.environ, MAILKEEP_CONF=str(tmp_path / "env.conf"))
    cp = mk("stats", env=env)
    assert "env.conf" in cp.stderr


def test_init_makes_a_working_instance(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("correct horse\n")
    d = tmp_path / "inst"
    cp = mk("init", "--user", "carol", "--password-file", pw, "--hostname", "mx.example.org", d)
    assert cp.returncode == 0, cp.stderr
    conf = d / "mailkeep.conf"
    text = conf.read_text()
    assert f"config_directory = {d}" in text
    assert (d / "tls" / "cert.pem").exists() and (d / "tls" / "key.pem").exists()
    assert oct((d / "tls" / "key.pem").stat().st_mode & 0o777) == "0o600"
    x = subprocess.run(["openssl", "x509", "-noout", "-subject", "-in", str(d / "tls" / "cert.pem")],
                       capture_output=True, text=True)
    assert "mx.example.org" in x.stdout
    assert mk("-c", conf, "check").returncode == 0
    show = mk("-c", conf, "user", "show", "carol").stdout
    assert "password set" in show
    assert "INBOX" in show and "messages 1 " in show
    out = tmp_path / "md"
    assert mk("-c", conf, "export", "carol", out).returncode == 0
    (welcome,) = [p for p in (out / "cur").iterdir()] + [p for p in (out / "new").iterdir()]
    assert b"Subject: Welcome to mailkeep" in welcome.read_bytes()
    # a second init refuses to write over the instance
    again = mk("init", d)
    assert again.returncode == 1 and "exists already" in again.stderr


def test_users_and_aliases(instance, tmp_path):
    inst = instance
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    inst.mk("user", "add", "dave", "--password-file", pw, "--uid", "1234", "--gid", "100")
    inst.mk("user", "add", "erin", "--no-password")
    assert inst.mk("user", "list").stdout.split() == ["dave", "erin"]
    show = inst.mk("user", "show", "dave").stdout
    assert "uid 1234" in show and "gid 100" in show and "password set" in show
    assert set(user_mailboxes(inst, "dave")) >= {"INBOX", "Sent", "Drafts", "Junk", "Trash", "Archive"}
    dup = inst.mk("user", "add", "dave", "--no-password", check=False)
    assert dup.returncode == 1 and "exists already" in dup.stderr
    # the password comes from stdin with --password-file -
    cp = inst.mk("user", "passwd", "erin", "--password-file", "-", input="another one\n")
    assert "changed" in cp.stdout
    assert "correct" in inst.mk("user", "test-password", "erin", "--password-file", "-", input="another one\n").stdout
    bad = inst.mk("user", "test-password", "erin", "--password-file", "-", input="s3cret\n", check=False)
    assert bad.returncode == 1 and "wrong password" in bad.stderr
    assert "correct" in inst.mk("user", "test-password", "dave", "--password-file", pw).stdout
    assert "password set" in inst.mk("user", "show", "erin").stdout
    typo = inst.mk("alias", "add", "abuse@example.org", "daev", check=False)
    assert typo.returncode == 1 and "no user 'daev'" in typo.stderr
    inst.mk("alias", "add", "Postmaster@Example.org", "dave")
    inst.mk("alias", "add", "e@example.org", "erin")
    assert inst.mk("alias", "list").stdout.splitlines() == ["e@example.org erin", "postmaster@example.org dave"]
    inst.mk("alias", "del", "e@example.org")
    assert inst.mk("alias", "list").stdout.splitlines() == ["postmaster@example.org dave"]
    nodel = inst.mk("user", "del", "erin", check=False)
    assert nodel.returncode == 1 and "--yes" in nodel.stderr
    inst.mk("user", "del", "erin", "--yes")
    assert inst.mk("user", "list").stdout.split() == ["dave"]
    gone = inst.mk("user", "show", "erin", check=False)
    assert gone.returncode == 1 and "no user" in gone.stderr


def test_backup_is_a_consistent_store(store_instance, tmp_path):
    inst = store_instance
    from mkhelpers import CORPUS
    inst.mk("import", "--format", "files", "bob", CORPUS)
    before = stats(inst)
    dst = tmp_path / "backup"
    cp = inst.mk("backup", dst)
    assert "written" in cp.stdout
    # the copy opens as a store of its own and passes fsck
    conf = tmp_path / "b.conf"
    conf.write_text(f"config_directory = {tmp_path}\nstore_directory = {dst}\nlog_target = stderr\n")
    cp = mk("-c", conf, "fsck")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    cp = mk("-c", conf, "stats")
    assert f"messages {before['messages']}" in cp.stdout
    again = inst.mk("backup", dst, check=False)
    assert again.returncode == 1


def test_check_list_and_man_cover_every_setting():
    lst = mk("check", "--list").stdout
    names = [l.split(" = ")[0] for l in lst.splitlines() if " = " in l and not l.startswith(("#", " "))]
    assert "store_map_max" in names and "data_directory" in names
    man = mk("check", "--man").stdout
    for n in names:
        assert n.replace("-", "\\-") in man, n
    # the pages in doc/man render without warnings
    for page in sorted((REPO / "doc" / "man").glob("mailkeep*.[158]")):
        r = subprocess.run(["groff", "-man", "-ww", "-z", str(page)], capture_output=True, text=True)
        assert r.returncode == 0 and not r.stderr.strip(), (page, r.stderr)


def test_run_restarts_a_crashed_service(instance, tmp_path):
    """`run` with a stand-in service next to a copy of the binary."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shutil.copy(BIN / "mailkeep", bindir / "mailkeep")
    pidlog = tmp_path / "starts"
    fake = bindir / "mailkeep-imapd"
    fake.write_text(f"#!/bin/sh\necho \"$$ $*\" >> {pidlog}\nexec sleep 300\n")
    fake.chmod(0o755)
    p = instance.spawn(bindir / "mailkeep", "-c", instance.conf, "run")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (not pidlog.exists() or not pidlog.read_text().strip()):
        time.sleep(0.05)
    first = pidlog.read_text().split()
    assert first[1:] == ["-c", str(instance.conf), "-f"]
    os.kill(int(first[0]), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(pidlog.read_text().splitlines()) < 2:
        time.sleep(0.05)
    lines = pidlog.read_text().splitlines()
    assert len(lines) == 2, lines
    second = int(lines[1].split()[0])
    assert (instance.data / "run" / "mailkeep.pid").read_text().strip() == str(p.pid)
    instance.stop(p)
    assert p.returncode == 0
    with pytest.raises(ProcessLookupError):
        os.kill(second, 0)
    log = Path(p.logfile).read_text()
    assert "killed by signal 9" in log


def test_run_without_services(instance, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shutil.copy(BIN / "mailkeep", bindir / "mailkeep")
    cp = subprocess.run([str(bindir / "mailkeep"), "-c", str(instance.conf), "run"], capture_output=True, text=True)
    assert cp.returncode == 1 and "no service is installed" in cp.stderr
    cp = subprocess.run([str(bindir / "mailkeep"), "-c", str(instance.conf), "imapd"], capture_output=True, text=True)
    assert cp.returncode == 1 and "mailkeep-imapd is not installed" in cp.stderr


def test_demo_script_makes_an_instance(tmp_path):
    """tools/demo.sh (the README's first command), without installing packages or running."""
    d = tmp_path / "demo"
    env = dict(os.environ, MAILKEEP_DEMO=str(d), MAILKEEP_DEMO_SKIP_DEPS="1", MAILKEEP_DEMO_NO_RUN="1")
    cp = subprocess.run([str(REPO / "tools" / "demo.sh")], capture_output=True, text=True, env=env, timeout=900)
    assert cp.returncode == 0, cp.stdout[-2000:] + cp.stderr[-2000:]
    assert "Welcome" not in cp.stderr
    assert (d / "password").read_text().strip()
    assert oct((d / "password").stat().st_mode & 0o777) == "0o600"
    show = mk("-c", d / "mailkeep.conf", "user", "show", "demo").stdout
    assert "password set" in show and "messages 1 " in show
    assert mk("-c", d / "mailkeep.conf", "check").returncode == 0


def test_run_supervises_the_real_smtpin(instance, tmp_path):
    """`mailkeep run` with the real mailkeep-smtpin: mail goes in over SMTP
    (swaks), the service is SIGKILLed, run starts it again, mail goes in again."""
    from mkhelpers import free_port, wait_port
    if not (BIN / "mailkeep-smtpin").exists():
        pytest.skip("mailkeep-smtpin is not built")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for b in ("mailkeep", "mailkeep-smtpin"):
        shutil.copy(BIN / b, bindir / b)
    port = free_port()
    instance.write_conf(smtpd_listen=f"127.0.0.1:{port}", lmtp_listen=f"unix:{instance.data}/run/lmtp")
    instance.mk("user", "add", "bob", "--no-password")
    p = instance.spawn(bindir / "mailkeep", "-c", instance.conf, "run")
    wait_port(port, proc=p, timeout=20)

    def send(n):
        cp = subprocess.run(["swaks", "--server", f"127.0.0.1:{port}", "--to", "bob@example.org",
                             "--from", "alice@example.net", "--helo", "client.example.net",
                             "--header", f"Subject: run test {n}", "--body", "hello"],
                            capture_output=True, text=True, timeout=60)
        assert cp.returncode == 0, cp.stdout[-1500:]

    send(1)
    assert user_mailboxes(instance, "bob")["INBOX"] == 1
    children = Path(f"/proc/{p.pid}/task/{p.pid}/children").read_text().split()
    assert len(children) == 1
    os.kill(int(children[0]), signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = Path(f"/proc/{p.pid}/task/{p.pid}/children").read_text().split()
        if now and now != children:
            break
        time.sleep(0.1)
    assert now and now != children, "smtpin was not started again"
    wait_port(port, proc=p, timeout=20)
    send(2)
    assert user_mailboxes(instance, "bob")["INBOX"] == 2
    instance.stop(p)
    assert "killed by signal 9" in Path(p.logfile).read_text()
