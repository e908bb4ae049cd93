"""mailkeep-smtpout through a relayhost: Postfix's smtp-sink as the far end
(delivery, pipelining, connection reuse, 4xx then success, 5xx -> a bounce
that Python's email module reads, a relay that hangs or talks garbage), and
the queue command. Bounces are read by Python's email module and by mblaze's
mshow, a real MUA's tool."""
import re
import subprocess
import time

from sendhelp import parse_dsn, parse_sink_file, wait_until


def relay_to(mk, sink, **settings):
    mk.configure(relayhost=f"[127.0.0.1]:{sink.port}", smtp_tls_security_level="none", **settings)


def test_submitted_mail_reaches_the_relay_with_postfix_logs(mk, sink_factory):
    sink = sink_factory().start()
    relay_to(mk, sink)
    mk.start_smtpin().start_smtpout()
    assert mk.submit("alice@example.org", ["carol@example.com", "dave@remote.test"]) == {}
    assert mk.submit("alice@example.org", ["erin@example.com"]) == {}
    wait_until(lambda: len(sink.files()) == 2, what="two messages at the sink")
    envs = [parse_sink_file(m) for m in sink.messages()]
    rcpts = sorted(r for e in envs for r in e["rcpt"])
    assert rcpts == ["<carol@example.com>", "<dave@remote.test>", "<erin@example.com>"]
    assert all(re.fullmatch(r"<alice@example\.org>( SIZE=\d+)?", e["from"]) for e in envs), envs
    wait_until(lambda: mk.queue_ids() == [], what="an empty queue")
    log = mk.smtpout_log()
    lines = re.findall(r"[0-9A-F]+: to=<[^>]+>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, delay=[\d.e+-]+, "
                       r"delays=[\d.e+-]+/[\d.e+-]+/[\d.e+-]+/[\d.e+-]+, dsn=2\.0\.0, status=sent \(250 ", log)
    assert len(lines) == 3, log
    assert re.search(r"[0-9A-F]+: removed", log)
    assert mk.fsck().returncode == 0
    assert "Mail queue is empty" in mk.mk("queue", "list").stdout


def test_dots_and_bytes_arrive_unchanged(mk, sink_factory):
    sink = sink_factory().start()
    relay_to(mk, sink)
    mk.start_smtpin().start_smtpout()
    body = ("From: alice@example.org\r\nTo: carol@example.com\r\nSubject: dots\r\n\r\n"
            ".leading dot\r\n..two\r\n.\r\nend\r\n")
    mk.submit("alice@example.org", ["carol@example.com"], body=body)
    wait_until(lambda: len(sink.files()) == 1)
    msg = parse_sink_file(sink.messages()[0])["msg"]
    # smtp-sink stores the data as received (dots doubled on the wire are undone)
    assert b".leading dot" in msg and b"\n..two" not in msg.replace(b"\r", b"") or b"..two" in msg
    assert b"Subject: dots" in msg


def test_soft_failure_then_success(mk, sink_factory):
    # smtp-sink answers RCPT with 450 while -r is given: first try deferred
    sink = sink_factory(args=["-r", "rcpt"]).start()
    relay_to(mk, sink)
    mk.start_smtpin().start_smtpout()
    mk.submit("alice@example.org", ["carol@example.com"])
    wait_until(lambda: re.search(r"status=deferred \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 4\d\d",
                                 mk.smtpout_log()), what="a deferral")
    qid = mk.queue_ids()[0]
    show = mk.mk("queue", "show", qid).stdout
    assert "tries: 1" in show
    sink.stop()
    sink.args = []
    sink.start()
    wait_until(lambda: len(sink.files()) == 1, timeout=30, what="delivery on retry")
    wait_until(lambda: mk.queue_ids() == [], what="an empty queue")
    assert mk.fsck().returncode == 0


def test_hard_failure_bounces_to_the_local_sender(mk, sink_factory):
    sink = sink_factory(args=["-f", "rcpt"]).start()  # 5xx to every RCPT
    relay_to(mk, sink)
    mk.start_smtpin().start_smtpout()
    mk.submit("alice@example.org", ["carol@example.com"], headers={"Subject": "will bounce"})
    wait_until(lambda: len(mk.messages("alice")) == 1, what="the bounce in alice's INBOX")
    uid = mk.messages("alice")[0][0]
    msg, rcpts = parse_dsn(mk.body("alice", uid))
    assert msg["From"].startswith("MAILER-DAEMON@mx.example.org")
    assert msg["Auto-Submitted"] == "auto-replied"
    assert rcpts[0]["final-recipient"] == "rfc822; carol@example.com"
    assert rcpts[0]["action"] == "failed"
    assert rcpts[0]["status"].startswith("5.")
    assert rcpts[0]["diagnostic-code"].startswith("smtp; 5")
    parts = list(msg.iter_parts())
    assert parts[2].get_content_type() == "message/rfc822"
    assert "will bounce" in str(parts[2].get_payload()[0]["Subject"])
    # and a real MUA's tools read it: mblaze's mshow lists the parts and shows the report
    dsn_file = mk.root / "bounce.eml"
    dsn_file.write_bytes(mk.body("alice", uid))
    parts = subprocess.run(["mshow", "-t", str(dsn_file)], capture_output=True, text=True).stdout
    assert "multipart/report" in parts and "message/delivery-status" in parts and "message/rfc822" in parts, parts
    shown = subprocess.run(["mshow", str(dsn_file)], capture_output=True, text=True).stdout
    assert "could not" in shown and "carol@example.com" in shown, shown
    log = mk.smtpout_log()
    assert re.search(r"status=bounced \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 5\d\d .*in reply to RCPT TO", log)
    assert re.search(r"sender non-delivery notification: [0-9A-F]+", log)
    wait_until(lambda: mk.queue_ids() == [], what="an empty queue")
    assert mk.fsck().returncode == 0
    assert len(sink.files()) == 0


def test_null_sender_bounce_is_never_returned(mk, sink_factory):
    sink = sink_factory(args=["-f", "rcpt"]).start()
    relay_to(mk, sink)
    mk.start_smtpin().start_smtpout()
    mk.submit("", ["carol@example.com"])
    wait_until(lambda: mk.queue_ids() == [], what="the message dropped")
    time.sleep(0.5)
    assert mk.messages("alice") == [] and mk.messages("bob") == []
    assert "notification" not in mk.smtpout_log()


def test_queue_hold_release_delete_flush(mk, sink_factory):
    sink = sink_factory().start()
    relay_to(mk, sink)
    mk.start_smtpin()
    mk.submit("alice@example.org", ["carol@example.com"])
    mk.submit("alice@example.org", ["dave@example.com"])
    ids = mk.queue_ids()
    assert len(ids) == 2
    assert "queue hold: 2 messages" in mk.mk("queue", "hold", "ALL").stdout
    assert re.search(r"^[0-9A-F]+! ", mk.mk("queue", "list").stdout, re.M)
    mk.start_smtpout()
    time.sleep(1.5)
    assert sink.files() == []  # held: not delivered
    mk.mk("queue", "delete", ids[0])
    mk.mk("queue", "release", ids[1])
    wait_until(lambda: len(sink.files()) == 1, what="the released message")
    assert "dave@example.com" in sink.messages()[0].decode()
    wait_until(lambda: mk.queue_ids() == [])
    cp = mk.mk("queue", "delete", "NOSUCHID", check=False)
    assert cp.returncode == 1 and "no such message" in cp.stderr
    assert mk.fsck().returncode == 0
