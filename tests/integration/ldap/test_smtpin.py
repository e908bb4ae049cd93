"""smtpin with users from LDAP: RCPT to known, alias and unknown addresses,
SMTP AUTH with good, bad and empty passwords, and slapd stopped in the middle
(4xx, no bounce, nothing lost) and started again (normal service).

The daemon is started with the smtpin area's Smtpin helper
(tests/integration/smtpin/conftest.py), so its settings stay theirs."""
import base64
import re
import importlib.util
import smtplib
import ssl
import subprocess
import time

import pytest

from ldaptest import BIN, BUILD, HERE, REPO, cf_text

if not (BIN / "mailkeep-smtpin").exists():
    pytest.skip("mailkeep-smtpin is not built", allow_module_level=True)

_spec = importlib.util.spec_from_file_location("mk_smtpin_conftest", HERE.parent / "smtpin" / "conftest.py")
_smtpin = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_smtpin)


@pytest.fixture(scope="session")
def storetool(tmp_path_factory):
    out = tmp_path_factory.mktemp("storetool") / "storetool"
    libs = subprocess.run(["pkg-config", "--libs", "lmdb", "libzstd", "libcrypto", "libssl", "libcrypt"],
                          capture_output=True, text=True, check=True).stdout.split()
    subprocess.run(["cc", "-std=gnu11", "-I", str(REPO), "-o", str(out), str(HERE.parent / "smtpin" / "storetool.c"),
                    str(BUILD / "index" / "libindex.a"), str(BUILD / "lib" / "libmk.a"), *libs, "-lpthread"],
                   check=True)
    return out


@pytest.fixture
def mx(instance, storetool, slapd):
    cf = instance.root / "ldap-users.cf"
    cf.write_text(cf_text(slapd, cache_ttl="1s", negative_cache_ttl="1s"))
    s = _smtpin.Smtpin(instance, storetool, {"user_directory": f"ldap:{cf}"})
    s.slapd = slapd
    s.start()
    yield s
    s.stop()


def send(mx, to, sender="someone@example.com"):
    return mx.swaks("--to", to, "--from", sender, "--header", f"Subject: to {to}")


def test_rcpt_known_alias_unknown(mx):
    cp = send(mx, "bob@example.org")
    assert cp.returncode == 0, cp.stdout
    cp = send(mx, "robert@example.org")  # mailAlternateAddress
    assert cp.returncode == 0, cp.stdout
    assert len(mx.messages("bob")) == 2
    cp = send(mx, "alice@example.org")
    assert cp.returncode == 0, cp.stdout
    assert len(mx.messages("alice")) == 1
    cp = send(mx, "ghost@example.org")
    assert cp.returncode != 0
    assert "550 5.1.1 <ghost@example.org>" in cp.stdout
    # filter injection is an unknown address, not a match
    cp = send(mx, "*@example.org")
    assert "550 5.1.1" in cp.stdout or "501" in cp.stdout, cp.stdout
    assert len(mx.messages("bob")) == 2


def test_ldap_down_gives_4xx_then_normal_service(mx):
    assert send(mx, "bob@example.org").returncode == 0
    mx.slapd.stop()
    time.sleep(1.3)  # past the cache TTLs
    for to in ("bob@example.org", "dave@example.org", "ghost@example.org"):
        cp = send(mx, to)
        assert cp.returncode != 0
        assert "451 4.3.0" in cp.stdout, cp.stdout
        assert not re.search(r"^<\S*\s+5\d\d ", cp.stdout, re.M), cp.stdout  # no permanent reply
    assert "Temporary lookup failure" in mx.log() or "451" in mx.log()
    mx.slapd.start()
    # the sender retries: delivered now, nothing lost, no bounce
    for to in ("bob@example.org", "dave@example.org"):
        cp = send(mx, to)
        assert cp.returncode == 0, cp.stdout
    assert len(mx.messages("bob")) == 2
    assert len(mx.messages("dave")) == 1
    assert "550 5.1.1" in send(mx, "ghost@example.org").stdout


def smtp_auth(mx, login, password):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", mx.port, timeout=20) as c:
        c.ehlo("client.example.com")
        c.starttls(context=ctx)
        c.ehlo("client.example.com")
        token = base64.b64encode(b"\0" + login.encode() + b"\0" + password.encode()).decode()
        return c.docmd("AUTH", "PLAIN " + token)


def test_smtp_auth(mx):
    assert smtp_auth(mx, "bob", "bobs-secret")[0] == 235
    assert smtp_auth(mx, "bob@example.org", "bobs-secret")[0] == 235
    assert smtp_auth(mx, "alice", "wonder land!")[0] == 235
    assert smtp_auth(mx, "bob", "wrong")[0] == 535
    assert smtp_auth(mx, "bob", "")[0] == 535  # empty: refused by mailkeep, never an unauthenticated bind
    assert smtp_auth(mx, "ghost", "x")[0] == 535
    assert smtp_auth(mx, "*", "bobs-secret")[0] == 535
    mx.slapd.stop()
    time.sleep(1.3)
    assert smtp_auth(mx, "bob", "bobs-secret")[0] == 454
    mx.slapd.start()
    assert smtp_auth(mx, "bob", "bobs-secret")[0] == 235


def test_ldap_stops_inside_a_session(mx):
    # RCPT bob accepted, slapd goes away, RCPT dave deferred: bob's copy is
    # delivered, dave's stays with the sender for its retry, which then succeeds
    with smtplib.SMTP("127.0.0.1", mx.port, timeout=30) as c:
        c.ehlo("client.example.com")
        assert c.mail("someone@example.com")[0] == 250
        assert c.rcpt("bob@example.org")[0] == 250
        mx.slapd.stop()
        time.sleep(1.3)
        code, text = c.rcpt("dave@example.org")
        assert code == 451, text
        code, text = c.data(b"Subject: split\r\n\r\nhello\r\n")
        assert code == 250, text
    assert len(mx.messages("bob")) == 1
    assert mx.tool_run("list", "dave", "INBOX", check=False).stdout == b""
    mx.slapd.start()
    assert send(mx, "dave@example.org").returncode == 0
    assert len(mx.messages("dave")) == 1


def test_hung_server_does_not_hold_up_cached_lookups(instance, storetool, slapd):
    # slapd frozen (SIGSTOP): a lookup that must ask it waits out the timeout,
    # while another session's recipient, answered from the cache, is not held
    # up behind it (the directory is called from many threads at once)
    import os
    import signal
    import threading
    cf = instance.root / "ldap-users.cf"
    cf.write_text(cf_text(slapd, timeout="4s", cache_ttl="60s", negative_cache_ttl="60s"))
    mx = _smtpin.Smtpin(instance, storetool, {"user_directory": f"ldap:{cf}"})
    mx.start()
    try:
        assert send(mx, "bob@example.org").returncode == 0  # bob is now in the cache
        os.kill(slapd.proc.pid, signal.SIGSTOP)
        replies = []

        def rcpt(to, delay):
            time.sleep(delay)
            with smtplib.SMTP("127.0.0.1", mx.port, timeout=30) as c:
                c.ehlo("client.example.com")
                c.mail("someone@example.com")
                code, _ = c.rcpt(to)
                replies.append((to, code))

        slow = threading.Thread(target=rcpt, args=("dave@example.org", 0))
        fast = threading.Thread(target=rcpt, args=("bob@example.org", 0.5))
        slow.start()
        fast.start()
        fast.join(30)
        slow.join(30)
    finally:
        os.kill(slapd.proc.pid, signal.SIGCONT)
        mx.stop()
    # the cached answer came first, and both answers are right
    assert replies == [("bob@example.org", 250), ("dave@example.org", 451)], replies
