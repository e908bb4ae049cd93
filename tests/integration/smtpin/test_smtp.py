"""smtpin's SMTP and LMTP commands, extensions and limits, driven by swaks
(and a raw socket where swaks cannot say it)."""
import re
import socket
import time

import pytest


def test_delivery_with_swaks(smtpin):
    cp = smtpin.swaks("--to", "bob@example.org", "--from", "carol@example.com",
                      "--header", "Subject: hello", "--body", "line one\nline two")
    assert cp.returncode == 0, cp.stdout
    assert re.search(r"<-  250 2\.0\.0 Ok: queued as [0-9A-F]+", cp.stdout)
    msgs = smtpin.messages("bob")
    assert len(msgs) == 1
    uid, size, sha, meta = msgs[0]
    body = smtpin.body("bob", uid)
    assert body.startswith(b"Received: from ")
    assert b"by mx.example.org (mailkeep) with ESMTP id " in body
    assert b"for <bob@example.org>" in body
    assert b"Subject: hello\r\n" in body
    assert b"line one\r\nline two\r\n" in body
    assert size == len(body)
    # the envelope is metadata, never in the bytes beyond Received:
    assert "from=<carol@example.com>" in meta and "to=<bob@example.org>" in meta
    assert "client=unknown[127.0.0.1]" in meta and "queue_id=" in meta
    received = re.match(rb"Received: [^\r]*\r\n(?:\t[^\r]*\r\n)*", body).group(0)
    assert b"carol@example.com" not in received and b"Return-Path" not in body and b"Delivered-To" not in body
    log = smtpin.log()
    assert re.search(r"[0-9A-F]+: to=<bob@example.org>, relay=local, delay=[0-9.]+, dsn=2\.0\.0, status=sent", log)
    assert "connect from unknown[127.0.0.1]" in log


def test_one_blob_for_all_recipients(smtpin):
    cp = smtpin.swaks("--to", "bob@example.org,alice@example.org", "--from", "x@example.com")
    assert cp.returncode == 0, cp.stdout
    (b,) = smtpin.messages("bob")
    (a,) = smtpin.messages("alice")
    assert a[2] == b[2]  # same blob hash: stored once
    assert "to=<alice@example.org>" in a[3] and "to=<bob@example.org>" in b[3]


def test_ehlo_extensions_and_no_auth_before_tls(smtpin, raw):
    r = raw(smtpin.port)
    assert r.reply().startswith("220 mx.example.org ESMTP")
    ehlo = r.cmd("EHLO client.example.com")
    for ext in ["PIPELINING", "SIZE 10240000", "STARTTLS", "ENHANCEDSTATUSCODES", "8BITMIME", "CHUNKING",
                "SMTPUTF8"]:
        assert re.search(rf"^250[- ]{ext}$", ehlo, re.M), (ext, ehlo)
    assert "AUTH" not in ehlo
    assert r.cmd("AUTH PLAIN AGJvYgBzZWNyZXQ=").startswith("538 5.7.11")


def test_simple_commands(smtpin, raw):
    r = raw(smtpin.port)
    r.reply()
    assert r.cmd("HELO client.example.com").startswith("250 mx.example.org")
    assert r.cmd("NOOP").startswith("250 2.0.0")
    assert r.cmd("HELP").startswith("214 ")
    assert r.cmd("VRFY bob").startswith("502 5.5.1")
    assert r.cmd("EXPN staff").startswith("502 5.5.1")
    assert r.cmd("ETRN example.org").startswith("502")
    assert r.cmd("FOO bar").startswith("502 5.5.2")
    assert r.cmd("RCPT TO:<bob@example.org>").startswith("503 5.5.1")
    assert r.cmd("DATA").startswith("503 5.5.1")
    assert r.cmd("MAIL FROM:<a@example.com>").startswith("250 2.1.0")
    assert r.cmd("MAIL FROM:<a@example.com>").startswith("503 5.5.1")
    assert r.cmd("DATA").startswith("554 5.5.1")
    assert r.cmd("RSET").startswith("250 2.0.0")
    assert r.cmd("RCPT TO:<bob@example.org>").startswith("503 5.5.1")
    assert r.cmd("MAIL FROM:<>").startswith("250")
    assert r.cmd("RCPT TO:<bob@example.org>").startswith("250 2.1.5")
    assert r.cmd("RCPT TO:<nobody@example.org>").startswith("550 5.1.1")
    assert r.cmd("RCPT TO:<postmaster>").startswith(("250", "550"))
    assert r.cmd("DATA").startswith("354")
    assert r.cmd("Subject: raw\r\n\r\n..dot stuffed\r\n.").startswith("250 2.0.0 Ok: queued as")
    assert r.cmd("QUIT").startswith("221 2.0.0")
    assert r.closed()
    r.close()
    (m,) = smtpin.messages("bob")
    assert smtpin.body("bob", m[0]).endswith(b"Subject: raw\r\n\r\n.dot stuffed\r\n")
    smtpin.wait_log(r"disconnect from unknown\[127\.0\.0\.1\] helo=1")
    log = smtpin.log()
    assert re.search(r"disconnect from unknown\[127\.0\.0\.1\] helo=1 mail=2/3 rcpt=1/5 data=1/3 rset=1 noop=1 "
                     r"vrfy=0/1 expn=0/1 help=1 etrn=0/1 quit=1 unknown=0/1 commands=\d+/\d+", log), log[-2000:]
    assert re.search(r"[0-9A-F]+: reject: RCPT from unknown\[127\.0\.0\.1\]: 550 5\.1\.1 <nobody@example\.org>: "
                     r"Recipient address rejected: User unknown in local recipient table; from=<> "
                     r"to=<nobody@example\.org> proto=SMTP helo=<client\.example\.com>", log)


def test_bdat_chunking(smtpin, raw):
    r = raw(smtpin.port)
    r.reply()
    r.cmd("EHLO c.example.com")
    assert r.cmd("MAIL FROM:<a@example.com> BODY=8BITMIME").startswith("250")
    assert r.cmd("RCPT TO:<bob@example.org>").startswith("250")
    part1 = b"Subject: chunks\r\n\r\nfirst part\r\n"
    part2 = b"second part \xc3\xa9\r\n.\r\nnot the end\r\n"
    r.send(b"BDAT %d\r\n" % len(part1) + part1)
    assert r.reply().startswith("250 2.0.0")
    r.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
    assert r.reply().startswith("250 2.0.0 Ok: queued as")
    # BDAT without a transaction: the chunk is read and refused, the session stays in step
    r.send(b"BDAT 5 LAST\r\nhello")
    assert r.reply().startswith("503")
    assert r.cmd("NOOP").startswith("250")
    (m,) = smtpin.messages("bob")
    assert smtpin.body("bob", m[0]).endswith(part1 + part2)


def test_bdat_bare_lf_refused(smtpin, raw):
    r = raw(smtpin.port)
    r.reply()
    r.cmd("EHLO c.example.com")
    r.cmd("MAIL FROM:<a@example.com>")
    r.cmd("RCPT TO:<bob@example.org>")
    data = b"Subject: x\r\n\r\nbare\nline\r\n"
    r.send(b"BDAT %d LAST\r\n" % len(data) + data)
    assert r.reply().startswith("550 5.5.2")
    assert smtpin.messages("bob") == []


def test_pipelining_with_swaks(smtpin):
    cp = smtpin.swaks("--to", "bob@example.org", "--from", "a@example.com", "--pipeline")
    assert cp.returncode == 0, cp.stdout
    assert len(smtpin.messages("bob")) == 1


def test_8bitmime_and_smtputf8(smtpin, raw):
    r = raw(smtpin.port)
    r.reply()
    r.cmd("EHLO c.example.com")
    assert r.cmd("MAIL FROM:<jos\u00e9@example.com>").startswith("553 5.6.7")
    assert r.cmd("MAIL FROM:<jos\u00e9@example.com> SMTPUTF8 BODY=8BITMIME").startswith("250")
    assert r.cmd("RCPT TO:<bob@example.org>").startswith("250")
    assert r.cmd("DATA").startswith("354")
    assert r.cmd("Subject: caf\u00e9\r\n\r\n8bit \u00e9\r\n.").startswith("250")
    assert r.cmd("MAIL FROM:<a@example.com> FOO=BAR").startswith("555 5.5.4")
    (m,) = smtpin.messages("bob")
    assert "from=<jos\u00e9@example.com>" in m[3]


def test_alias_and_unknown(smtpin):
    smtpin.alias("info@example.org", "alice")
    cp = smtpin.swaks("--to", "info@example.org", "--from", "a@example.com")
    assert cp.returncode == 0, cp.stdout
    assert len(smtpin.messages("alice")) == 1
    cp = smtpin.swaks("--to", "ghost@example.org", "--from", "a@example.com")
    assert cp.returncode != 0
    assert "550 5.1.1 <ghost@example.org>: Recipient address rejected: User unknown" in cp.stdout


def test_size_limit(smtpin_factory):
    s = smtpin_factory(message_size_limit="20k")
    s.useradd("bob")
    s.start()
    cp = s.swaks("--to", "bob@example.org", "--from", "a@example.com", "--body", "x" * 30000)
    assert "552 5.3.4" in cp.stdout and cp.returncode != 0
    cp = s.swaks("--to", "bob@example.org", "--from", "a@example.com", "--body", "small")
    assert cp.returncode == 0
    assert len(s.messages("bob")) == 1
    r_sock = socket.create_connection(("127.0.0.1", s.port))
    f = r_sock.makefile("rwb")
    f.readline()
    f.write(b"EHLO c.example.com\r\n"); f.flush()
    while not f.readline().startswith(b"250 "):
        pass
    f.write(b"MAIL FROM:<a@example.com> SIZE=999999\r\n"); f.flush()
    assert f.readline().startswith(b"552 5.3.4")
    # a large body after a small SIZE: read and dropped, 552 at the end, the session goes on
    f.write(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n"); f.flush()
    assert f.readline().startswith(b"250")
    assert f.readline().startswith(b"250")
    assert f.readline().startswith(b"354")
    for _ in range(200):
        f.write(b"y" * 998 + b"\r\n")
    f.write(b".\r\nNOOP\r\n"); f.flush()
    assert f.readline().startswith(b"552 5.3.4")
    assert f.readline().startswith(b"250")
    r_sock.close()
    assert len(s.messages("bob")) == 1


def test_recipient_limit_and_error_limit(smtpin_factory, raw):
    s = smtpin_factory(smtpd_recipient_limit="2", smtpd_hard_error_limit="5")
    s.useradd("bob")
    s.useradd("alice")
    s.useradd("carol")
    s.start()
    r = raw(s.port)
    r.reply()
    r.cmd("EHLO c.example.com")
    r.cmd("MAIL FROM:<a@example.com>")
    assert r.cmd("RCPT TO:<bob@example.org>").startswith("250")
    assert r.cmd("RCPT TO:<alice@example.org>").startswith("250")
    assert r.cmd("RCPT TO:<carol@example.org>").startswith("452 4.5.3")
    r2 = raw(s.port)
    r2.reply()
    replies = [r2.cmd("BOGUS") for _ in range(4)]
    assert all(x.startswith("502") for x in replies)
    r2.send("BOGUS\r\n")
    got = r2.reply()
    while got.startswith("502"):
        got = r2.reply()
    assert got.startswith("421 4.7.0")
    assert r2.closed()


def test_line_length_limit(smtpin, raw):
    r = raw(smtpin.port)
    r.reply()
    assert r.cmd("NOOP " + "x" * 3000).startswith("500 5.5.0")
    assert r.cmd("NOOP").startswith("250")


def test_helo_required_and_strict_envelopes(smtpin_factory, raw):
    s = smtpin_factory(smtpd_helo_required="yes", strict_rfc821_envelopes="yes")
    s.useradd("bob")
    s.start()
    r = raw(s.port)
    r.reply()
    assert r.cmd("MAIL FROM:<a@example.com>").startswith("503 5.5.1")
    r.cmd("HELO c.example.com")
    assert r.cmd("MAIL FROM: <a@example.com>").startswith("501")
    assert r.cmd("MAIL FROM:a@example.com").startswith("501")
    assert r.cmd("MAIL FROM:<a@example.com>").startswith("250")
    s.restart(smtpd_helo_required="no", strict_rfc821_envelopes="no")
    r = raw(s.port)
    r.reply()
    assert r.cmd("MAIL FROM: a@example.com").startswith("250")
    assert r.cmd("RCPT TO: <bob@example.org>").startswith("250")


def test_idle_timeout(smtpin_factory, raw):
    s = smtpin_factory(smtpd_timeout="2s")
    s.start()
    r = raw(s.port)
    r.reply()
    t = time.monotonic()
    assert r.reply().startswith("421 4.4.2")
    assert r.closed()
    assert time.monotonic() - t < 10


def test_lmtp_per_recipient_replies(smtpin, raw):
    r = raw(smtpin.lmtp_port)
    assert r.reply().startswith("220 ")
    assert r.cmd("HELO x").startswith("500")
    assert r.cmd("LHLO postfix.example.com").startswith("250")
    r.cmd("MAIL FROM:<a@example.com>")
    assert r.cmd("RCPT TO:<bob@example.org>").startswith("250")
    assert r.cmd("RCPT TO:<nobody@example.org>").startswith("550")
    assert r.cmd("RCPT TO:<alice@example.org>").startswith("250")
    assert r.cmd("DATA").startswith("354")
    r.send("Subject: lmtp\r\n\r\nhi\r\n.\r\n")
    first, second = r.reply(), r.reply()
    assert first.startswith("250 2.0.0 <bob@example.org>")
    assert second.startswith("250 2.0.0 <alice@example.org>")
    assert r.cmd("QUIT").startswith("221")
    assert len(smtpin.messages("bob")) == 1 and len(smtpin.messages("alice")) == 1
    assert b"with LMTP id" in smtpin.body("bob", 1)


def test_lmtp_unix_socket_with_swaks(smtpin):
    sock = smtpin.inst.data / "run" / "lmtp"
    cp = __import__("subprocess").run(["swaks", "--socket", str(sock), "--protocol", "LMTP", "--to",
                                       "bob@example.org", "--from", "a@example.com"],
                                      capture_output=True, text=True, timeout=30)
    assert cp.returncode == 0, cp.stdout
    assert len(smtpin.messages("bob")) == 1


def test_never_relay_even_for_mynetworks(smtpin):
    cp = smtpin.swaks("--to", "someone@elsewhere.example", "--from", "a@example.com")
    assert "554 5.7.1 <someone@elsewhere.example>: Relay access denied" in cp.stdout


def test_alias_and_user_in_one_message_give_one_copy(smtpin):
    smtpin.alias("robert@example.org", "bob")
    cp = smtpin.swaks("--to", "bob@example.org,robert@example.org", "--from", "a@example.com")
    assert cp.returncode == 0, cp.stdout
    assert len(smtpin.messages("bob")) == 1


def test_soft_error_limit_keeps_the_session_usable(smtpin_factory, raw):
    s = smtpin_factory(smtpd_soft_error_limit="2", smtpd_hard_error_limit="6")
    s.useradd("bob")
    s.start()
    r = raw(s.port)
    r.reply()
    for _ in range(4):
        assert r.cmd("BOGUS").startswith("502")
    assert r.cmd("NOOP").startswith("250")  # read after the pause, still in step
    assert r.cmd("EHLO c.example.com").startswith("250")


def test_bad_restriction_is_refused_at_start(smtpin_factory):
    s = smtpin_factory(smtpd_recipient_restrictions="permit_mynetworks, reject_everything_bad")
    with pytest.raises(RuntimeError):
        s.start()
    assert 'unknown restriction "reject_everything_bad"' in s.log()
