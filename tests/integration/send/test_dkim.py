"""DKIM signing of what leaves: keys made by `mailkeep dkim keygen` (RSA and
Ed25519), mail submitted on 587 and sent by `mailkeep sendmail` arrives at
the sink signed, and dkimpy (Debian's python3-dkim, written by others)
verifies both signatures against the TXT records keygen printed."""
import re
import subprocess

import dkim

from mkhelpers import BIN
from sendhelp import parse_sink_file, wait_until


def txt_records(*outputs):
    recs = {}
    for out in outputs:
        name = out.split()[0]
        recs[name.encode()] = "".join(re.findall(r'"([^"]*)"', out)).encode()
    return recs


def verify_all(msg, recs):
    n = len(re.findall(rb"^DKIM-Signature:", msg, re.M))
    out = []
    for i in range(n):
        try:
            out.append(dkim.DKIM(msg).verify(idx=i, dnsfunc=lambda name, timeout=5: recs.get(name)))
        except dkim.ValidationError:
            out.append(False)
    return out


def keys(mk):
    rsa = mk.mk("dkim", "keygen", "example.org", "r2026").stdout
    ed = mk.mk("dkim", "keygen", "example.org", "e2026", "--ed25519").stdout
    assert 'k=rsa; ' in rsa and 'k=ed25519; ' in ed
    assert (mk.inst.root / "dkim" / "example.org" / "r2026.key").stat().st_mode & 0o777 == 0o600
    return txt_records(rsa, ed)


def test_submitted_mail_is_signed_rsa_and_ed25519(mk, sink_factory):
    recs = keys(mk)
    sink = sink_factory().start()
    mk.configure(relayhost=f"[127.0.0.1]:{sink.port}", smtp_tls_security_level="none")
    mk.start_smtpin().start_smtpout()
    mk.submit("alice@example.org", ["carol@example.com"],
              headers={"From": "Alice <alice@example.org>", "Subject": "signed"})
    wait_until(lambda: mk.queue_ids() == [] and len(sink.files()) == 1, what="delivery")
    msg = parse_sink_file(sink.messages()[0])["msg"]
    # smtp-sink's dump has LF line ends and its own Received: on top; DKIM is
    # computed over CRLF, which the relaxed canonicalisation gets back
    msg = msg.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert b"a=ed25519-sha256; c=relaxed/relaxed; d=example.org" in msg.replace(b"\r\n\t", b" ")
    assert b"a=rsa-sha256; c=relaxed/relaxed; d=example.org" in msg.replace(b"\r\n\t", b" ")
    assert verify_all(msg, recs) == [True, True]
    # a changed body fails: the verifier really checks
    assert verify_all(msg.replace(b"hello", b"hullo"), recs) == [False, False]
    assert "DKIM-Signature field added (d=example.org)" in mk.smtpin_log()


def test_sendmail_signs_and_other_domains_are_not_signed(mk, sink_factory):
    recs = keys(mk)
    env = {"MAILKEEP_CONF": str(mk.inst.conf)}
    cp = subprocess.run([str(BIN / "mailkeep"), "sendmail", "-f", "alice@example.org", "bob@example.org"],
                        input=b"From: alice@example.org\nSubject: cron\n\nok\n", capture_output=True,
                        env=env, timeout=30)
    assert cp.returncode == 0, cp.stderr
    stored = mk.body("bob", mk.messages("bob")[0][0])
    assert verify_all(stored, recs) == [True, True]
    cp = subprocess.run([str(BIN / "mailkeep"), "sendmail", "-f", "x@other.example", "bob@example.org"],
                        input=b"From: x@other.example\nSubject: other\n\nok\n", capture_output=True,
                        env=env, timeout=30)
    assert cp.returncode == 0
    assert b"DKIM-Signature" not in mk.body("bob", mk.messages("bob")[1][0])


def test_keygen_refuses_to_overwrite_and_txt_prints_again(mk):
    first = mk.mk("dkim", "keygen", "example.org", "s1").stdout
    cp = mk.mk("dkim", "keygen", "example.org", "s1", check=False)
    assert cp.returncode == 1 and "exists already" in cp.stderr
    assert mk.mk("dkim", "txt", "example.org", "s1").stdout == first
    cp = mk.mk("dkim", "keygen", "../etc", "s1", check=False)
    assert cp.returncode == 1
