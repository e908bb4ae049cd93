"""STARTTLS, AUTH, SMTP smuggling, open-relay probes, STARTTLS injection,
pregreet and bare newline: smtpin against the attacks the issue lists.
127.0.0.2 plays a client outside mynetworks (mynetworks = 127.0.0.1/32)."""
import re
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

FAIL2BAN = Path(__file__).resolve().parents[3] / "doc" / "fail2ban" / "mailkeep-smtpin.conf"


def test_starttls_delivery(smtpin):
    cp = smtpin.swaks("--to", "bob@example.org", "--from", "a@example.com", "--tls")
    assert cp.returncode == 0, cp.stdout
    assert "TLS started" in cp.stdout
    (m,) = smtpin.messages("bob")
    body = smtpin.body("bob", m[0])
    assert b"with ESMTPS id" in body
    assert re.search(rb"\(using TLSv1\.[23] with cipher", body)


def test_implicit_tls(smtpin):
    cp = smtpin.swaks("--to", "bob@example.org", "--from", "a@example.com", "--tls-on-connect",
                      port=smtpin.smtps_port)
    assert cp.returncode == 0, cp.stdout
    assert len(smtpin.messages("bob")) == 1


def test_tls_1_1_refused(smtpin):
    cp = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{smtpin.port}", "-starttls", "smtp",
                         "-tls1_1"], input="", capture_output=True, text=True, timeout=30)
    assert "Cipher is (NONE)" in cp.stdout or cp.returncode != 0
    cp = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{smtpin.port}", "-starttls", "smtp",
                         "-tls1_2"], input="", capture_output=True, text=True, timeout=30)
    assert "Protocol  : TLSv1.2" in cp.stdout or "TLSv1.2" in cp.stdout


def test_auth_refused_before_tls_from_non_local(smtpin):
    cp = smtpin.swaks("--to", "bob@example.org", "--from", "bob@example.org", "--auth", "PLAIN",
                      "--auth-user", "bob", "--auth-password", "secret", "--local-interface", "127.0.0.2")
    assert cp.returncode != 0
    assert "AUTH" not in "".join(l for l in cp.stdout.splitlines() if l.startswith("<-  250"))
    assert smtpin.messages("bob") == []


def test_auth_under_tls(smtpin):
    for mech in ("PLAIN", "LOGIN"):
        cp = smtpin.swaks("--to", "bob@example.org", "--from", "bob@example.org", "--tls", "--auth", mech,
                          "--auth-user", "bob", "--auth-password", "secret", "--local-interface", "127.0.0.2")
        assert cp.returncode == 0, cp.stdout
        assert "235 2.7.0 Authentication successful" in cp.stdout
    msgs = smtpin.messages("bob")
    assert len(msgs) == 2
    assert b"with ESMTPSA id" in smtpin.body("bob", msgs[0][0])
    assert "sasl_username=bob" in msgs[0][3]
    # authenticated: mail for another domain goes into the outbound queue
    # (doc/sending.md); without AUTH it is refused (tests/integration/send)
    cp = smtpin.swaks("--to", "x@elsewhere.example", "--from", "bob@example.org", "--tls", "--auth", "PLAIN",
                      "--auth-user", "bob", "--auth-password", "secret", "--local-interface", "127.0.0.2")
    m = re.search(r"250 2\.0\.0 Ok: queued as ([0-9A-F]+)", cp.stdout)
    assert m, cp.stdout
    assert re.search(rf"{m.group(1)}: from=<bob@example\.org>, size=\d+, nrcpt=1 \(queued as {m.group(1)}\)",
                     smtpin.log())
    assert re.search(r"client=unknown\[127\.0\.0\.2\], sasl_method=(PLAIN|LOGIN), sasl_username=bob", smtpin.log())


def test_auth_failure_logged_for_fail2ban(smtpin):
    cp = smtpin.swaks("--to", "bob@example.org", "--from", "bob@example.org", "--tls", "--auth", "PLAIN",
                      "--auth-user", "bob", "--auth-password", "wrong", "--local-interface", "127.0.0.2")
    assert "535 5.7.8" in cp.stdout
    log = smtpin.log()
    line = next(l for l in log.splitlines() if "authentication failed" in l)
    assert re.search(r"warning: unknown\[127\.0\.0\.2\]: SASL PLAIN authentication failed: authentication failure$",
                     line)
    # the fail2ban filter shipped in doc/ matches it, <HOST> = 127.0.0.2
    text = FAIL2BAN.read_text()
    failregex = re.search(r"^failregex\s*=\s*(.+)$", text, re.M).group(1).strip()
    prefix = r"^\w{3} +\d+ [\d:]+ \S+?(?:\[\d+\])?: "
    rx = failregex.replace("<HOST>", r"(?P<host>[\d.a-fA-F:]+)").replace("%(_daemon)s", r"mailkeep/smtpd")
    m = re.search(rx, line)
    assert m and m.group("host") == "127.0.0.2", (rx, line)
    assert prefix  # the date prefix is fail2ban's own; it is not part of failregex


def _tls_wrap(r):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    r.sock = ctx.wrap_socket(r.sock, server_hostname="mx.example.org")
    r.buf = b""


def test_starttls_injection(smtpin, raw):
    r = raw(smtpin.port)
    r.reply()
    r.cmd("EHLO c.example.com")
    # a command in the same packet as STARTTLS must not be executed after the handshake
    r.send("STARTTLS\r\nRSET\r\n")
    assert r.reply().startswith("220 2.0.0")
    r.sock.settimeout(10)
    try:
        _tls_wrap(r)
    except (ssl.SSLError, OSError):
        return  # the server saw garbage before the handshake and hung up: not executed either
    first = r.cmd("EHLO c.example.com")
    assert first.startswith("250-mx.example.org"), first  # not the "250 2.0.0 Ok" of an injected RSET
    assert "STARTTLS" not in first


def _smuggle(smtpin, raw, end):
    r = raw(smtpin.port)
    r.reply()
    r.cmd("EHLO c.example.com")
    r.cmd("MAIL FROM:<a@example.com>")
    r.cmd("RCPT TO:<bob@example.org>")
    assert r.cmd("DATA").startswith("354")
    payload = (b"Subject: first\r\n\r\nbody" + end +
               b"MAIL FROM:<evil@example.com>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n"
               b"Subject: smuggled\r\n\r\nsmuggled\r\n.\r\n")
    r.send(payload)
    reply = r.reply()
    assert r.cmd("QUIT").startswith("221")  # the next reply is QUIT's: nothing else ran
    return reply


SMUGGLING = [b"\n.\n", b"\n.\r\n", b"\r.\r", b"\r.\n", b"\n.\r", b"\r.\r\n", b"\r\n.\r", b"\r\n.\n",
             b"\r\n\x00.\r\n", b"\r\n.\r\r\n", b"\r\r\n.\r\r\n"]


@pytest.mark.parametrize("end", SMUGGLING, ids=[repr(e) for e in SMUGGLING])
def test_smtp_smuggling(smtpin, raw, end):
    reply = _smuggle(smtpin, raw, end)
    # no second transaction: alice got nothing, and no MAIL from evil@ was ever a command
    assert smtpin.messages("alice") == []
    assert "evil@example.com" not in smtpin.log()
    if end == b"\r\n\x00.\r\n":
        # no bare CR/LF: one message, the would-be commands inside it
        assert reply.startswith("250"), reply
        (m,) = smtpin.messages("bob")
        assert b"MAIL FROM:<evil@example.com>" in smtpin.body("bob", m[0])
    else:
        assert reply.startswith("550 5.5.2"), reply
        assert smtpin.messages("bob") == []


RELAY_PROBES = ["bob%elsewhere.example@example.org", "elsewhere.example!bob@example.org",
                "@example.org:bob@elsewhere.example", "\"bob@elsewhere.example\"@example.org",
                "\"bob%elsewhere.example\"@example.org", "bob@[127.0.0.1]", "bob@example.org.",
                "bob@elsewhere.example", "bob@example.org@elsewhere.example"]


def test_open_relay_probes(smtpin, raw):
    r = raw(smtpin.port, source="127.0.0.2")
    r.reply()
    r.cmd("EHLO probe.example.com")
    assert r.cmd("MAIL FROM:<spammer@example.com>").startswith("250")
    for rcpt in RELAY_PROBES:
        reply = r.cmd(f"RCPT TO:<{rcpt}>")
        assert reply.startswith("5"), (rcpt, reply)
    assert r.cmd("DATA").startswith("554")  # no recipient was accepted
    assert "Relay access denied" in smtpin.log()


def test_pregreet_drop(smtpin_factory, raw):
    s = smtpin_factory(postscreen_greet_action="drop", postscreen_greet_wait="2s")
    s.useradd("bob")
    s.start()
    r = raw(s.port, source="127.0.0.2")
    r.send("EHLO bot.example.com\r\n")  # talks before the final 220
    reply = r.reply()
    assert reply.startswith("220-") and reply.splitlines()[-1].startswith("521 5.5.1"), reply
    assert r.closed()
    assert re.search(r"PREGREET \d+ after [\d.]+ from \[127\.0\.0\.2\]:\d+: EHLO bot\.example\.com", s.log())
    # a patient client passes, and is remembered
    r = raw(s.port, source="127.0.0.2")
    banner = r.reply()
    assert banner.startswith("220-") and banner.splitlines()[-1] == "220 mx.example.org ESMTP mailkeep"
    assert r.cmd("EHLO good.example.com").startswith("250")
    r.cmd("QUIT")
    r.closed()
    s.wait_log(r"PASS NEW \[127\.0\.0\.2\]")
    time.sleep(0.5)  # the pass is written to the store off the event loop
    r = raw(s.port, source="127.0.0.2")
    assert r.reply().startswith("220 ")  # cached: no greet wait
    assert "PASS OLD [127.0.0.2]" in s.log()
    # mynetworks clients are never tested
    r = raw(s.port)
    assert r.reply().startswith("220 ")


def test_pregreet_enforce(smtpin_factory, raw):
    s = smtpin_factory(postscreen_greet_action="enforce", postscreen_greet_wait="1s")
    s.useradd("bob")
    s.start()
    r = raw(s.port, source="127.0.0.2")
    r.send("EHLO bot.example.com\r\n")
    banner = r.reply()
    assert banner.startswith("220-") and banner.splitlines()[-1].startswith("220 ")
    assert r.reply().startswith("250")
    r.cmd("MAIL FROM:<a@example.com>")
    assert r.cmd("RCPT TO:<bob@example.org>").startswith("550 5.5.1")


def test_bare_newline_in_commands(smtpin_factory, raw):
    s = smtpin_factory(postscreen_bare_newline_enable="yes", postscreen_bare_newline_action="drop")
    s.start()
    r = raw(s.port, source="127.0.0.2")
    assert r.reply().startswith("220 ")
    r.send("EHLO bare.example.com\n")
    assert r.reply().startswith("521 5.5.1")
    assert r.closed()
    assert re.search(r"BARE NEWLINE from \[127\.0\.0\.2\]:\d+", s.log())


def test_non_smtp_command(smtpin_factory, raw):
    s = smtpin_factory(postscreen_non_smtp_command_enable="yes")
    s.start()
    r = raw(s.port, source="127.0.0.2")
    r.reply()
    r.send("GET / HTTP/1.0\r\n")
    assert r.reply().startswith("521")
    assert r.closed()
    assert re.search(r"NON-SMTP COMMAND from \[127\.0\.0\.2\]:\d+ after CONNECT: GET / HTTP/1\.0", s.log())


def test_postscreen_pipelining(smtpin_factory, raw):
    s = smtpin_factory(postscreen_pipelining_enable="yes", postscreen_pipelining_action="enforce")
    s.useradd("bob")
    s.start()
    r = raw(s.port, source="127.0.0.2")
    r.reply()
    r.send("HELO bot.example.com\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<bob@example.org>\r\n")
    assert r.reply().startswith("250")
    assert r.reply().startswith("250")
    assert r.reply().startswith("550 5.5.1")
    assert "COMMAND PIPELINING from [127.0.0.2]" in s.log()


def test_postscreen_access_list(smtpin_factory, raw, tmp_path):
    table = tmp_path / "ps_access"
    table.write_text("127.0.0.3 permit\n127.0.0.4/32 reject\n")
    s = smtpin_factory(postscreen_greet_action="enforce", postscreen_greet_wait="1s",
                       postscreen_access_list=f"permit_mynetworks, cidr:{table}",
                       postscreen_denylist_action="drop")
    s.start()
    r = raw(s.port, source="127.0.0.3")
    assert r.reply().startswith("220 ")  # allowlisted: no greet wait
    r = raw(s.port, source="127.0.0.4")
    assert r.reply().startswith("521 5.3.2")
    assert r.closed()
    assert "ALLOWLISTED [127.0.0.3]" in s.log() and "DENYLISTED [127.0.0.4]" in s.log()


def test_mailkeep_check_knows_every_smtpin_setting(smtpin_factory):
    s = smtpin_factory(postscreen_dnsbl_sites="zen.example*3", greylist_delay="5m",
                       smtpd_recipient_restrictions="permit_mynetworks, check_greylist")
    cp = s.inst.mk("check", check=False)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    s.configure(smtpd_bogus_setting="1")
    cp = s.inst.mk("check", check=False)
    assert cp.returncode != 0 and "smtpd_bogus_setting" in cp.stdout + cp.stderr


def test_tls_required(smtpin_factory):
    s = smtpin_factory(smtpd_tls_security_level="encrypt")
    s.useradd("bob")
    s.start()
    cp = s.swaks("--to", "bob@example.org")
    assert "530 5.7.0 Must issue a STARTTLS command first" in cp.stdout
    assert s.swaks("--to", "bob@example.org", "--tls").returncode == 0
    assert len(s.messages("bob")) == 1
