"""A real Postfix, started here with its own configuration directory, relays
into smtpin over LMTP and asks smtpin's greylist through
check_policy_service; smtp-source drives many sessions at once."""
import re
import shutil
import tempfile
import subprocess
import time
from pathlib import Path

import pytest

from mkhelpers import free_port, wait_port  # noqa


class Postfix:
    def __init__(self, root: Path, lmtp: str, policy: str = "", restrictions: str = ""):
        # Postfix's daemons run as "postfix": they need a path they can walk, so
        # not pytest's 0700 tree
        root = Path(tempfile.mkdtemp(prefix="mk-postfix-"))
        root.chmod(0o755)
        self.root = root
        self.dir = root / "postfix"
        self.dir.mkdir()
        self.port = free_port()
        q = root / "pfqueue"
        q.mkdir()
        (root / "pfdata").mkdir()
        shutil.chown(root / "pfdata", "postfix")
        master = Path("/etc/postfix/master.cf").read_text().splitlines()
        out = []
        for line in master:
            f = line.split()
            if line.startswith("#") or not f:
                continue
            if line.startswith(" ") or line.startswith("\t"):
                out.append(line)
                continue
            if f[0] == "smtp" and f[1] == "inet":
                f[0] = f"127.0.0.1:{self.port}"
            if len(f) >= 8 and f[4] == "y":
                f[4] = "n"  # no chroot: the queue is a test directory
            out.append("  ".join(f[:8]) + ("  " + " ".join(f[8:]) if len(f) > 8 else ""))
        (self.dir / "master.cf").write_text("\n".join(out) + "\n")
        restr = restrictions or "reject_unauth_destination" + (f", check_policy_service {policy}" if policy else "")
        (self.dir / "main.cf").write_text(f"""
compatibility_level = 3.6
queue_directory = {q}
data_directory = {root}/pfdata
mail_owner = postfix
setgid_group = postdrop
myhostname = relay.example.com
mydomain = example.com
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
relay_domains = example.org
transport_maps = inline:{{ example.org=lmtp:inet:{lmtp} }}
smtpd_recipient_restrictions = {restr}
smtpd_relay_restrictions =
alias_maps =
alias_database =
maillog_file = {root}/postfix.log
maillog_file_prefixes = /tmp, /var, /dev/stdout, {root}
smtputf8_enable = no
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
smtpd_client_connection_count_limit = 100
default_process_limit = 100
lmtp_destination_concurrency_limit = 20
""")
        self.log = root / "postfix.log"
        self.run("start")

    def run(self, *args):
        # postfix writes its errors to stderr only when it is a terminal: give it one
        cmd = " ".join(["postfix", "-c", str(self.dir), *args])
        cp = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, timeout=60)
        assert cp.returncode == 0, cp.stdout + cp.stderr
        return cp

    def stop(self):
        subprocess.run(["postfix", "-c", str(self.dir), "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def postfix_factory(tmp_path):
    made = []

    def make(**kw):
        p = Postfix(tmp_path, **kw)
        made.append(p)
        wait_port(p.port, timeout=20)
        return p

    yield make
    for p in made:
        p.stop()


def wait_for(cond, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.2)
    return cond()


def test_postfix_relays_over_lmtp_with_greylisting(smtpin_factory, postfix_factory):
    s = smtpin_factory(greylist_delay="2s")
    s.useradd("bob")
    s.useradd("alice")
    s.start()
    pf = postfix_factory(lmtp=f"127.0.0.1:{s.lmtp_port}", policy=f"inet:127.0.0.1:{s.policy_port}")
    args = ["swaks", "--server", f"127.0.0.1:{pf.port}", "--local-interface", "127.0.0.3", "--from",
            "sender@good.example", "--to", "bob@example.org,alice@example.org"]
    cp = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert re.search(r"450 4\.7\.1 <bob@example\.org>: Recipient address rejected: Greylisted", cp.stdout), cp.stdout
    time.sleep(2.2)
    cp = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stdout
    assert wait_for(lambda: len(s.messages("bob")) == 1 and len(s.messages("alice")) == 1), pf.log.read_text()
    body = s.body("bob", s.messages("bob")[0][0])
    assert b"with LMTP id" in body and b"by relay.example.com (Postfix)" in body
    # Postfix saw smtpin's per-recipient LMTP replies
    assert wait_for(lambda: len(re.findall(r"relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+.*status=sent \(250 2\.0\.0 <",
                                           pf.log.read_text())) == 2), pf.log.read_text()
    assert "policy: greylisted client=127.0.0.3" in s.log()


def test_postfix_lmtp_unknown_recipient_bounces_back(smtpin_factory, postfix_factory):
    s = smtpin_factory()
    s.useradd("bob")
    s.start()
    pf = postfix_factory(lmtp=f"127.0.0.1:{s.lmtp_port}", restrictions="permit_mynetworks, reject")
    cp = subprocess.run(["swaks", "--server", f"127.0.0.1:{pf.port}", "--to", "bob@example.org,ghost@example.org",
                         "--from", "<>"], capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stdout
    assert wait_for(lambda: len(s.messages("bob")) == 1)
    assert wait_for(lambda: re.search(r"to=<ghost@example\.org>.*status=bounced \(host 127\.0\.0\.1\[127\.0\.0\.1\] "
                                      r"said: 550 5\.1\.1", pf.log.read_text())), pf.log.read_text()


def test_smtp_source_concurrency(smtpin):
    # 40 sessions at once, 400 messages of 6 KB: every one stored once, intact
    cp = subprocess.run(["smtp-source", "-s", "40", "-m", "400", "-l", "6144", "-f", "load@example.com",
                         "-t", "bob@example.org", f"127.0.0.1:{smtpin.port}"], capture_output=True, text=True,
                        timeout=300)
    assert cp.returncode == 0, cp.stderr
    msgs = smtpin.messages("bob")
    assert len(msgs) == 400
    assert len({m[2] for m in msgs}) == 400  # each has its own Received: id
    assert smtpin.log().count("status=sent") == 400
    sizes = {len(smtpin.body("bob", m[0]).split(b"\r\n\r\n", 1)[1]) for m in msgs[:5]}
    assert all(n >= 6144 for n in sizes)
    assert smtpin.fsck().returncode == 0


def test_smtp_source_lmtp(smtpin):
    cp = subprocess.run(["smtp-source", "-L", "-s", "10", "-m", "100", "-f", "load@example.com",
                         "-t", "bob@example.org", f"127.0.0.1:{smtpin.lmtp_port}"], capture_output=True, text=True,
                        timeout=300)
    assert cp.returncode == 0, cp.stderr
    assert len(smtpin.messages("bob")) == 100
