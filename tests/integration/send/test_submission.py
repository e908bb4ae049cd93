"""Submission (587 with STARTTLS, 465 with implicit TLS) into the queue, with
swaks and smtplib as the clients: AUTH only under TLS, the sender must be the
user's, no relay without AUTH, local copies and the queue in one write."""
import re
import smtplib
import socket
import subprocess

import pytest

from sendhelp import client_ctx


def swaks(*args, timeout=60):
    return subprocess.run(["swaks", "--timeout", "20", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_swaks_587_starttls_auth_queues_remote_mail(mk):
    mk.start_smtpin()
    cp = swaks("--server", f"127.0.0.1:{mk.sub_port}", "-tls", "--auth", "PLAIN", "--auth-user", "alice",
               "--auth-password", "secret", "--from", "alice@example.org", "--to", "carol@example.com")
    assert cp.returncode == 0, cp.stdout
    m = re.search(r"<~  250 2\.0\.0 Ok: queued as ([0-9A-F]+)", cp.stdout)
    assert m, cp.stdout
    assert mk.queue_ids() == [m.group(1)]
    show = mk.mk("queue", "show", m.group(1)).stdout
    assert "sender: alice@example.org" in show
    assert "recipient: carol@example.com" in show
    assert "sasl_username: alice" in show
    assert mk.fsck().returncode == 0


def test_swaks_465_implicit_tls(mk):
    mk.start_smtpin()
    cp = swaks("--server", f"127.0.0.1:{mk.subs_port}", "--tlsc", "--auth", "LOGIN", "--auth-user", "alice",
               "--auth-password", "secret", "--from", "al@example.org", "--to", "carol@example.com")
    assert cp.returncode == 0, cp.stdout
    assert "250 2.0.0 Ok: queued as" in cp.stdout
    assert len(mk.queue_ids()) == 1


def test_auth_before_tls_refused(mk):
    mk.start_smtpin()
    s = socket.create_connection(("127.0.0.1", mk.sub_port), timeout=10)
    f = s.makefile("rwb")
    assert f.readline().startswith(b"220 ")
    f.write(b"EHLO client.example\r\n")
    f.flush()
    ehlo = []
    while True:
        line = f.readline()
        ehlo.append(line)
        if line[3:4] == b" ":
            break
    assert not any(b"AUTH" in ln for ln in ehlo), ehlo  # not offered before TLS
    assert any(b"STARTTLS" in ln for ln in ehlo)
    f.write(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n")
    f.flush()
    assert f.readline().startswith(b"538 5.7.11"), "AUTH before TLS must be refused"
    f.write(b"MAIL FROM:<alice@example.org>\r\n")
    f.flush()
    assert f.readline().startswith(b"530 5.7.0")
    s.close()


def test_mail_before_auth_refused_under_tls(mk):
    mk.start_smtpin()
    c = smtplib.SMTP("127.0.0.1", mk.sub_port, timeout=10)
    c.starttls(context=client_ctx())
    c.ehlo()
    assert "auth" in c.esmtp_features
    code, msg = c.mail("alice@example.org")
    assert code == 530, msg
    c.quit()


def test_wrong_sender_refused_alias_accepted(mk):
    mk.start_smtpin()
    with pytest.raises(smtplib.SMTPSenderRefused) as e:
        mk.submit("bob@example.org", ["carol@example.com"])
    assert e.value.smtp_code == 553
    assert b"not owned by user alice" in e.value.smtp_error
    with pytest.raises(smtplib.SMTPSenderRefused):
        mk.submit("alice@elsewhere.example", ["carol@example.com"])
    assert mk.submit("al@example.org", ["carol@example.com"]) == {}
    assert mk.submit("alice@example.org", ["carol@example.com"]) == {}
    assert len(mk.queue_ids()) == 2
    assert re.search(r"reject: MAIL from .*553 5\.7\.1 <bob@example\.org>", mk.smtpin_log())


def test_no_relay_without_auth(mk):
    mk.start_smtpin()
    # port 25 from 127.0.0.2 (outside mynetworks), and from 127.0.0.1 (inside): never a relay
    for src in ("127.0.0.2", "127.0.0.1"):
        cp = swaks("--server", f"127.0.0.1:{mk.smtp_port}", "--local-interface", src, "--from",
                   "x@example.com", "--to", "carol@example.com")
        assert "554 5.7.1 <carol@example.com>: Relay access denied" in cp.stdout, cp.stdout
    # submission port without AUTH: 530 at MAIL
    cp = swaks("--server", f"127.0.0.1:{mk.sub_port}", "-tls", "--from", "alice@example.org", "--to",
               "carol@example.com")
    assert "530 5.7.0 Authentication required" in cp.stdout, cp.stdout
    assert mk.queue_ids() == []


def test_local_and_remote_in_one_write_without_private_address(mk):
    mk.start_smtpin()
    assert mk.submit("alice@example.org", ["bob@example.org", "carol@example.com", "dave@remote.test"]) == {}
    inbox = mk.messages("bob")
    assert len(inbox) == 1
    assert "sasl_username=alice" in inbox[0][3]
    ids = mk.queue_ids()
    assert len(ids) == 1
    show = mk.mk("queue", "show", ids[0]).stdout
    assert "recipient: carol@example.com" in show and "recipient: dave@remote.test" in show
    stored = mk.body("bob", inbox[0][0])
    first = stored.split(b"\r\n")[0]
    assert first.startswith(b"Received: by mx.example.org (mailkeep) with ESMTPSA id"), stored[:300]
    hdr = stored.split(b"\r\n\r\n")[0]
    assert b"127.0.0.1" not in hdr and b"localhost" not in hdr
    # the bytes are one blob: bob's message and the queue entry share it
    assert mk.fsck().returncode == 0
    # no copy in Sent unless asked
    assert mk.messages("alice", "Sent") == []


def test_received_client_when_configured_and_sent_copy(mk):
    mk.configure(submission_received_client="yes", submission_copy_to_sent="yes")
    mk.start_smtpin()
    assert mk.submit("alice@example.org", ["bob@example.org"]) == {}
    stored = mk.body("bob", mk.messages("bob")[0][0])
    assert re.match(rb"Received: from \S+ \(\S+ \[127\.0\.0\.1\]\)", stored), stored[:200]
    sent = mk.messages("alice", "Sent")
    assert len(sent) == 1
    assert sent[0][2] == mk.messages("bob")[0][2]  # the same blob


def test_user_rate_limits(mk):
    mk.configure(smtpd_user_message_rate_limit="2", smtpd_user_recipient_rate_limit="3")
    mk.start_smtpin()
    assert mk.submit("alice@example.org", ["a@example.com"]) == {}
    assert mk.submit("alice@example.org", ["b@example.com", "c@example.com"]) == {}
    with pytest.raises(smtplib.SMTPSenderRefused) as e:
        mk.submit("alice@example.org", ["d@example.com"])
    assert e.value.smtp_code == 450
    assert "message rate limit 2 per 3600s reached for sasl_username=alice" in mk.smtpin_log()
    # bob has his own window; his fourth recipient is refused
    refused = mk.submit("bob@example.org", ["w@example.com", "x@example.com", "y@example.com", "z@example.com"],
                        user="bob")
    assert list(refused) == ["z@example.com"] and refused["z@example.com"][0] == 450, refused



def test_local_recipient_over_quota_refuses_the_whole_submission(mk):
    # bob's quota is smaller than the message, which comes without SIZE= (so
    # RCPT cannot tell): the one write (bob's copy and the queue entry) does
    # not happen; the client gets quota's reply, not a store error, and keeps
    # the message
    mk.mk("user", "quota", "bob", "--storage", "200")
    mk.start_smtpin()
    body = ("From: alice@example.org\r\nTo: bob@example.org, carol@example.com\r\nSubject: big\r\n"
            "X-Pad: " + "x" * 400 + "\r\n\r\nhello\r\n")
    c = smtplib.SMTP("127.0.0.1", mk.sub_port, timeout=30)
    c.starttls(context=client_ctx())
    c.login("alice", "secret")
    assert c.mail("alice@example.org")[0] == 250  # no SIZE=
    assert c.rcpt("bob@example.org")[0] == 250
    assert c.rcpt("carol@example.com")[0] == 250
    code, msg = c.data(body.encode())
    c.quit()
    assert code == 452 and msg.startswith(b"4.2.2 Mailbox full"), (code, msg)
    assert mk.messages("bob") == []
    assert mk.queue_ids() == []
    # with SIZE= announced, RCPT refuses bob alone and carol's copy is queued
    refused = mk.submit("alice@example.org", ["bob@example.org", "carol@example.com"],
                        headers={"X-Pad": "x" * 400})
    assert list(refused) == ["bob@example.org"] and refused["bob@example.org"][0] == 452
    assert mk.messages("bob") == [] and len(mk.queue_ids()) == 1
    assert mk.fsck().returncode == 0
