"""Sieve's vacation replies and redirects leave through the outbound queue:
mail to bob arrives over SMTP (swaks), bob's script answers or redirects it,
mailkeep-smtpout sends what was queued to Postfix's smtp-sink (the relayhost)
and the test reads what the sink received: the envelope (MAIL FROM, RCPT TO)
and the message, parsed by Python's email module."""
import email
import email.policy
import re
import subprocess

from sendhelp import parse_sink_file, wait_until


def relay_to(mk, sink):
    mk.configure(relayhost=f"[127.0.0.1]:{sink.port}", smtp_tls_security_level="none")


def put_script(mk, user, text):
    p = mk.root / f"{user}.sieve"
    p.write_text(text)
    mk.mk("sieve", "put", user, "main", str(p), "--activate")


def swaks(mk, to, data, sender):
    cp = subprocess.run(["swaks", "--server", f"127.0.0.1:{mk.smtp_port}", "--timeout", "20",
                         "--to", to, "--from", sender or "<>", "--data", "-"],
                        input=data, capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    return cp


def message(frm, subject, msgid, to="bob@example.org", headers=""):
    return (f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {msgid}\r\n{headers}"
            f"\r\nHello Bob,\r\n.a line with a leading dot\r\nbye\r\n")


def received(sink):
    out = []
    for raw in sink.messages():
        env = parse_sink_file(raw)
        env["parsed"] = email.message_from_bytes(env["msg"], policy=email.policy.default)
        out.append(env)
    return out


def test_vacation_reply_is_sent_from_null_sender_once_per_sender(mk, sink_factory):
    sink = sink_factory().start()
    relay_to(mk, sink)
    put_script(mk, "bob", 'require "vacation";\n'
               'vacation :days 7 :subject "Away until Monday" :addresses ["bob@example.org"]\n'
               '  "I am away; I will answer when I am back.";\n')
    mk.start_smtpin().start_smtpout()
    swaks(mk, "bob@example.org", message("carol@example.com", "first", "<m1@example.com>"),
          "carol@example.com")
    swaks(mk, "bob@example.org", message("carol@example.com", "second", "<m2@example.com>"),
          "carol@example.com")
    # never to lists, robots or the null sender
    swaks(mk, "bob@example.org", message("frank@example.com", "list", "<m3@example.com>",
                                         headers="List-Id: <x.lists.example.com>\r\n"),
          "frank@example.com")
    swaks(mk, "bob@example.org", message("MAILER-DAEMON@example.com", "bot", "<m4@example.com>"),
          "MAILER-DAEMON@example.com")
    swaks(mk, "bob@example.org", message("x@example.com", "null", "<m5@example.com>"), "")
    swaks(mk, "bob@example.org", message("erin@example.com", "third", "<m6@example.com>"),
          "erin@example.com")
    wait_until(lambda: len(sink.files()) >= 2, what="two replies at the sink")
    wait_until(lambda: mk.queue_ids() == [], what="an empty queue")
    got = received(sink)
    assert len(got) == 2, [g["rcpt"] for g in got]
    by_rcpt = {tuple(g["rcpt"]): g for g in got}
    assert set(by_rcpt) == {("<carol@example.com>",), ("<erin@example.com>",)}
    for who, msgid in (("carol", "<m1@example.com>"), ("erin", "<m6@example.com>")):
        g = by_rcpt[(f"<{who}@example.com>",)]
        assert re.fullmatch(r"<>( SIZE=\d+)?", g["from"]), g["from"]
        m = g["parsed"]
        assert re.search(rf"^To: <{who}@example\.com>\r?$", g["msg"].decode(), re.M), g["msg"]
        assert m["Subject"] == "Away until Monday"
        assert m["In-Reply-To"] == msgid
        assert msgid in m["References"]
        assert m["Auto-Submitted"].startswith("auto-replied")
        assert m.get_content().strip() == "I am away; I will answer when I am back."
    log = mk.smtpin_log()
    assert len(re.findall(r"vacation reply to <[^>]+>, \d+ bytes, queued as [0-9A-F]+", log)) == 2
    assert "answered within the period" in log
    assert "not sent: no outbound queue" not in log
    # every message was kept, the replies are not in any mailbox of bob's
    assert len(mk.messages("bob")) == 6
    assert mk.fsck().returncode == 0


def test_redirect_sends_the_original_bytes_with_the_envelope_sender(mk, sink_factory):
    sink = sink_factory().start()
    relay_to(mk, sink)
    put_script(mk, "bob", 'redirect "dave@remote.test";\n')
    mk.start_smtpin().start_smtpout()
    m1 = message("carol@example.com", "fwd me", "<r1@example.com>")
    m2 = message("x@example.com", "from nobody", "<r2@example.com>")
    swaks(mk, "bob@example.org", m1, "carol@example.com")
    swaks(mk, "bob@example.org", m2, "")
    wait_until(lambda: len(sink.files()) >= 2, what="two redirects at the sink")
    wait_until(lambda: mk.queue_ids() == [], what="an empty queue")
    got = received(sink)
    assert len(got) == 2
    by_from = {re.sub(r" SIZE=\d+", "", g["from"]): g for g in got}
    assert set(by_from) == {"<carol@example.com>", "<>"}, list(by_from)
    for frm, orig in (("<carol@example.com>", m1), ("<>", m2)):
        g = by_from[frm]
        assert g["rcpt"] == ["<dave@remote.test>"]
        # the message as bob's store got it: the original bytes after our trace headers
        assert orig.replace("\r\n", "\n").encode() in g["msg"].replace(b"\r\n", b"\n"), g["msg"]
        # smtp-sink's Received, then ours (the copy bob's store took), then the original
        hdrs = g["parsed"].get_all("Received")
        assert len(hdrs) >= 2 and "smtp-sink" in hdrs[0], hdrs
    # a redirect cancels the implicit keep
    assert mk.messages("bob") == []
    # the same message again (a loop brings it back): kept, not redirected again
    swaks(mk, "bob@example.org", m1, "carol@example.com")
    wait_until(lambda: len(mk.messages("bob")) == 1, what="the looping copy kept")
    assert "redirected there before (a loop?), kept" in mk.smtpin_log()
    log = mk.smtpin_log()
    assert len(re.findall(r"redirect to <dave@remote\.test> from <[^>]*>, \d+ bytes, queued as", log)) == 2
    assert mk.queue_ids() == [] and len(sink.files()) == 2
    assert mk.fsck().returncode == 0
