"""authprobe — the inbound SPF/DKIM/DMARC scenarios of test_inbound_auth.py,
run inside a network namespace of their own (unshare -n) where the clients
have real, non-loopback addresses on lo: 192.0.2.1 (allowed by the SPF
records) and 198.51.100.1 (not). libspf2 gives any loopback client a pass
("localhost is always allowed"), so 127.0.0.x clients cannot test SPF.

    unshare -n python3 authprobe.py SCENARIO WORKDIR

prints one JSON object: what was stored and what the independent tools say."""
import base64
import json
import os
import re
import smtplib
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import dkim  # noqa: E402
import dns.resolver  # noqa: E402
import spf  # noqa: E402

from sendhelp import Dns, Mk, build_storetool  # noqa: E402

GOOD, BAD = "192.0.2.1", "198.51.100.1"


def rsa_key(d):
    key = d / "dkimpy.key"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    pub = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True,
                         capture_output=True).stdout
    return key.read_bytes(), base64.b64encode(pub).decode()


def txt_arg(name, value):
    # no shell: dnsmasq gets the strings bare, one per comma
    parts = [value[i:i + 250] for i in range(0, len(value), 250)]
    return f"--txt-record={name}," + ",".join(parts)


def make_msg(frm, subject, priv=None, domain=None, tamper=False):
    body = (f"From: {frm}\r\nTo: bob@example.org\r\nSubject: {subject}\r\n"
            f"Date: Thu, 03 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{subject}@x>\r\n\r\nhello\r\n").encode()
    if priv is not None:
        sig = dkim.sign(body, b"sel", domain.encode(), priv, include_headers=[b"from", b"to", b"subject"])
        body = sig + body
    if tamper:
        body = body.replace(b"hello", b"HELLO")
    return body


def send(mk, src, mail_from, data):
    c = smtplib.SMTP("127.0.0.1", mk.smtp_port, source_address=(src, 0), timeout=20)
    c.ehlo("client.example.com")
    try:
        c.sendmail(mail_from, ["bob@example.org"], data)
        return 250
    except smtplib.SMTPDataError as e:
        return e.smtp_code
    finally:
        c.quit()


def stored_results(mk, mailbox="INBOX"):
    out = []
    for uid, _, _, meta in mk.messages("bob", mailbox):
        data = mk.body("bob", uid, mailbox)
        m = re.search(rb"Authentication-Results: mx[^\r]*\r\n((?:\t[^\r]*\r\n)*)", data)
        hdr = m.group(0).decode() if m else ""
        res = {k: (re.search(rf"\b{k}=(\w+)", hdr) or [None, None])[1] for k in ("spf", "dkim", "dmarc")}
        ours = data.count(b"Authentication-Results: mx.example.org;")
        other = b"Authentication-Results: other.example; spf=pass" in data
        out.append({"res": res, "hdr": hdr, "meta": meta, "ours": ours, "other": other,
                    "starts": re.match(rb"Received: from [^\r]*\r\n(\t[^\r]*\r\n)*Authentication-Results: "
                                       rb"mx\.example\.org;", data) is not None})
    return out


def expected(src, mail_from, data):
    spf_res = spf.check2(i=src, s=mail_from, h="client.example.com")[0]
    try:
        dkim_ok = dkim.verify(data)
    except Exception:
        dkim_ok = False
    has_sig = b"DKIM-Signature:" in data
    dkim_res = "pass" if dkim_ok else ("fail" if has_sig else "none")
    frm = re.search(rb"^From: .*?@([\w.-]+)", data, re.M).group(1).decode()
    try:
        rec = [b"".join(r.strings).decode() for r in dns.resolver.resolve(f"_dmarc.{frm}", "TXT")]
    except Exception:
        rec = []
    if not rec:
        dmarc_res = "none"
    else:
        spf_aligned = spf_res == "pass" and mail_from.split("@")[1] == frm
        dkim_aligned = dkim_ok and f"d={frm};".encode() in data.replace(b" ", b"").replace(b"\r\n\t", b"")
        dmarc_res = "pass" if spf_aligned or dkim_aligned else "fail"
    return {"spf": spf_res, "dkim": dkim_res, "dmarc": dmarc_res}


CASES = [
    # (client address, MAIL FROM, From: domain, signed, tampered)
    (GOOD, "alice@good.example.com", "good.example.com", True, False),   # all pass
    (BAD, "alice@good.example.com", "good.example.com", True, False),    # spf fail, dkim keeps dmarc
    (BAD, "alice@good.example.com", "good.example.com", False, False),   # forged: dmarc fail
    (GOOD, "alice@good.example.com", "good.example.com", True, True),    # body changed: dkim fail
    (BAD, "x@soft.example.com", "soft.example.com", False, False),       # softfail, no dmarc record
    (BAD, "x@open.example.com", "open.example.com", False, False),       # neutral
    (BAD, "x@nodns.example.com", "nodns.example.com", False, False),     # none at all
]


def world(work):
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for a in (GOOD, BAD):
        subprocess.run(["ip", "addr", "add", f"{a}/24", "dev", "lo"], check=True)
    priv, pub = rsa_key(work)
    records = [
        txt_arg("good.example.com", f"v=spf1 ip4:{GOOD} -all"),
        txt_arg("_dmarc.good.example.com", "v=DMARC1; p=reject"),
        txt_arg("sel._domainkey.good.example.com", f"v=DKIM1; k=rsa; p={pub}"),
        txt_arg("quar.example.com", f"v=spf1 ip4:{GOOD} -all"),
        txt_arg("_dmarc.quar.example.com", "v=DMARC1; p=quarantine"),
        txt_arg("soft.example.com", f"v=spf1 ip4:{GOOD} ~all"),
        txt_arg("open.example.com", "v=spf1 ?all"),
    ]
    dns_srv = Dns(work, records).start()
    mk = Mk(work / "mk", build_storetool(work / "storetool"), dns_resolver=f"127.0.0.1:{dns_srv.port}",
            mynetworks="")
    mk.useradd("bob")
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = ["127.0.0.1"]
    r.port = dns_srv.port
    dns.resolver.default_resolver = r
    return mk, priv, dns_srv


def scenario_results(mk, priv):
    mk.start_smtpin()
    want, codes = [], []
    for i, (src, mfrom, dom, signed, tamper) in enumerate(CASES):
        data = make_msg(f"Alice <alice@{dom}>", f"case{i}", priv if signed else None, dom, tamper)
        codes.append(send(mk, src, mfrom, data))
        want.append(expected(src, mfrom, data))
    return {"codes": codes, "want": want, "got": stored_results(mk)}


def scenario_forged_header(mk, priv):
    mk.start_smtpin()
    data = (b"Authentication-Results: mx.example.org; dmarc=pass header.from=good.example.com\r\n"
            b"Authentication-Results: other.example; spf=pass\r\n") + make_msg("a@good.example.com", "forged")
    return {"codes": [send(mk, BAD, "a@good.example.com", data)], "got": stored_results(mk)}


def scenario_enforce(mk, priv):
    mk.configure(smtpd_dmarc_enforce="yes")
    mk.start_smtpin()
    codes = [send(mk, BAD, "a@good.example.com", make_msg("a@good.example.com", "rej")),
             send(mk, BAD, "a@quar.example.com", make_msg("a@quar.example.com", "quar")),
             send(mk, GOOD, "a@good.example.com", make_msg("a@good.example.com", "ok"))]
    return {"codes": codes, "inbox": stored_results(mk), "junk": stored_results(mk, "Junk"),
            "log": mk.smtpin_log()}


def scenario_restrictions(mk, priv):
    mk.configure(smtpd_end_of_data_restrictions="reject_spf_fail, reject_dkim_fail")
    mk.start_smtpin()
    codes = [send(mk, BAD, "a@good.example.com", make_msg("a@good.example.com", "spf")),
             send(mk, GOOD, "a@good.example.com", make_msg("a@good.example.com", "dkim", priv,
                                                            "good.example.com", tamper=True)),
             send(mk, BAD, "a@good.example.com", make_msg("a@good.example.com", "saved", priv,
                                                           "good.example.com")),
             send(mk, GOOD, "a@good.example.com", make_msg("a@good.example.com", "ok"))]
    return {"codes": codes, "inbox": stored_results(mk), "log": mk.smtpin_log()}


def main():
    name, work = sys.argv[1], Path(sys.argv[2])
    work.mkdir(parents=True, exist_ok=True)
    mk, priv, dns_srv = world(work)
    try:
        out = globals()["scenario_" + name](mk, priv)
    finally:
        mk.close()
        dns_srv.stop()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
