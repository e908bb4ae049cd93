"""`mailkeep sendmail`, the interface cron and scripts use: arguments or -t,
-f, -i/-oi, the headers it adds, Bcc taken out, a link named sendmail, and
the way out through smtpout."""
import os
import re
import subprocess

from mkhelpers import BIN
from sendhelp import parse_sink_file, wait_until


def sendmail(mk, *args, input, argv0=None, check=True):
    cmd = [str(argv0 or BIN / "mailkeep"), *([] if argv0 else ["-c", str(mk.inst.conf), "sendmail"]), *args]
    env = dict(os.environ, MAILKEEP_CONF=str(mk.inst.conf))
    cp = subprocess.run(cmd, input=input, capture_output=True, env=env, timeout=60)
    if check:
        assert cp.returncode == 0, cp.stderr
    return cp


def test_local_recipient_gets_it_with_the_headers_added(mk):
    sendmail(mk, "-f", "root@example.org", "bob@example.org", input=b"Subject: cron\n\nbackup ok\n")
    msgs = mk.messages("bob")
    assert len(msgs) == 1
    data = mk.body("bob", msgs[0][0])
    assert data.startswith(b"Received: by mx.example.org (mailkeep, from userid 0)")
    assert re.search(rb"\r\nDate: ", data) and re.search(rb"\r\nMessage-Id: <[0-9A-F]+@mx\.example\.org>\r\n", data)
    assert b"\r\nFrom: root@example.org\r\n" in data
    assert data.endswith(b"\r\n\r\nbackup ok\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF throughout
    assert "from=<root@example.org>" in msgs[0][3]


def test_dot_ends_input_unless_oi(mk):
    sendmail(mk, "bob@example.org", input=b"Subject: a\n\nline\n.\nafter\n")
    sendmail(mk, "-oi", "bob@example.org", input=b"Subject: b\n\nline\n.\nafter\n")
    a, b = (mk.body("bob", m[0]) for m in mk.messages("bob"))
    assert a.endswith(b"line\r\n") and b"after" not in a
    assert b.endswith(b"line\r\n.\r\nafter\r\n")


def test_t_takes_to_cc_bcc_and_drops_bcc(mk, sink_factory):
    sink = sink_factory().start()
    mk.configure(relayhost=f"[127.0.0.1]:{sink.port}", smtp_tls_security_level="none")
    msg = (b"From: Alice <alice@example.org>\nTo: Bob <bob@example.org>, carol@example.com\n"
           b"Cc: team: dave@example.com, erin@example.com;\nBcc: secret@example.com\nSubject: t\n\nhi\n")
    sendmail(mk, "-t", "-i", "-f", "alice@example.org", input=msg)
    assert len(mk.messages("bob")) == 1
    assert b"Bcc:" not in mk.body("bob", mk.messages("bob")[0][0])
    mk.start_smtpout()
    wait_until(lambda: mk.queue_ids() == [], what="the queue sent")
    env = parse_sink_file(sink.messages()[0])
    assert sorted(r.split()[0] for r in env["rcpt"]) == [
        "<carol@example.com>", "<dave@example.com>", "<erin@example.com>", "<secret@example.com>"]
    assert b"Bcc:" not in env["msg"] and b"secret@" not in env["msg"]


def test_link_named_sendmail_as_cron_calls_it(mk, tmp_path):
    link = tmp_path / "sendmail"
    link.symlink_to(BIN / "mailkeep")
    # cron's own flags: -FCronDaemon -i -B8BITMIME -oem
    sendmail(mk, "-FCronDaemon", "-i", "-B8BITMIME", "-oem", "bob@example.org",
             input=b"Subject: Cron <root@host> job\n\noutput\n", argv0=link)
    data = mk.body("bob", mk.messages("bob")[0][0])
    assert b"Subject: Cron <root@host> job" in data
    assert b"From: CronDaemon <root@mx.example.org>" in data


def test_unknown_local_user_and_bad_usage(mk):
    cp = sendmail(mk, "nobody-here@example.org", "bob@example.org", input=b"Subject: x\n\nx\n", check=False)
    assert cp.returncode == 67 and b"user unknown" in cp.stderr
    assert mk.messages("bob") == []  # all or nothing
    cp = sendmail(mk, input=b"Subject: x\n\nx\n", check=False)
    assert cp.returncode == 64 and b"no recipients" in cp.stderr
    cp = sendmail(mk, "a b@example.com", input=b"x\n", check=False)
    assert cp.returncode == 64
    assert mk.fsck().returncode == 0
