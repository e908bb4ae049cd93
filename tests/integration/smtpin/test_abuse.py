"""smtpin under attack (issue 13): the BDAT hang, connection exhaustion from
many addresses and from one IPv6 /64, password guessing over SMTP AUTH, and
duplicates after a crash. Every test is bounded in time and in connections."""
import re
import socket
import time

import pytest


def _transaction(r):
    assert r.reply().startswith("220")
    r.cmd("EHLO c.example.com")
    assert r.cmd("MAIL FROM:<a@example.com>").startswith("250")
    assert r.cmd("RCPT TO:<bob@example.org>").startswith("250")


def test_bdat_0_last_alone_is_answered_at_once(smtpin, raw):
    """`BDAT 0 LAST` with nothing after it used to get no reply until the
    client sent more bytes (a NOOP 8 s later delivered the message)."""
    r = raw(smtpin.port, timeout=5)
    _transaction(r)
    r.send(b"BDAT 12\r\nSubject: x\r\n")
    assert r.reply().startswith("250 2.0.0 Ok: 12 bytes")
    t0 = time.monotonic()
    r.send(b"BDAT 0 LAST\r\n")
    reply = r.reply()  # socket timeout 5 s: a hang fails here
    assert reply.startswith("250 2.0.0 Ok: queued as"), reply
    assert time.monotonic() - t0 < 5
    (m,) = smtpin.messages("bob")
    assert smtpin.body("bob", m[0]).endswith(b"Subject: x\r\n")


def test_bdat_chunk_and_last_in_one_write(smtpin, raw):
    """`BDAT 5\\r\\nabcdeBDAT 0 LAST\\r\\n` in one write: both replies come without
    more input."""
    r = raw(smtpin.port, timeout=5)
    _transaction(r)
    r.send(b"BDAT 5\r\nabcdeBDAT 0 LAST\r\n")
    assert r.reply().startswith("250 2.0.0 Ok: 5 bytes")
    assert r.reply().startswith("250 2.0.0 Ok: queued as")
    # and a whole pipelined transaction after it, in one write, too
    r.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<bob@example.org>\r\nBDAT 3 LAST\r\nxyz")
    assert r.reply().startswith("250 2.1.0")
    assert r.reply().startswith("250 2.1.5")
    assert r.reply().startswith("250 2.0.0 Ok: queued as")
    bodies = sorted(smtpin.body("bob", m[0]) for m in smtpin.messages("bob"))
    assert [b[-5:] for b in bodies] in (
        [b"abcde", b"\r\nxyz"], [b"\r\nxyz", b"abcde"]), bodies
