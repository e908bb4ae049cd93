"""mailkeep phone USER (issue 20): the Apple profile read by Python's plistlib
and libplist's plistutil, a signed one verified with openssl cms, the
autoconfig XML against the fields of Mozilla's clientConfig 1.1, and the QR
code printed on the terminal decoded by zbarimg (zbar-tools)."""
import plistlib
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from moveinlib import make_ca

SETTINGS = {"phone_imap_host": "mail.example.org", "phone_submission_host": "smtp.example.org",
            "phone_mail_domain": "example.org", "phone_profile_url": "https://autoconfig.example.org/mail"}

# what iOS's com.apple.mail.managed payload needs (Apple's Configuration Profile Reference)
MAIL_KEYS = {"EmailAccountType", "EmailAddress", "IncomingMailServerAuthentication",
             "IncomingMailServerHostName", "IncomingMailServerPortNumber", "IncomingMailServerUseSSL",
             "IncomingMailServerUsername", "OutgoingMailServerAuthentication", "OutgoingMailServerHostName",
             "OutgoingMailServerPortNumber", "OutgoingMailServerUseSSL", "OutgoingMailServerUsername",
             "PayloadType", "PayloadVersion", "PayloadIdentifier", "PayloadUUID"}
TOP_KEYS = {"PayloadContent", "PayloadDisplayName", "PayloadIdentifier", "PayloadType", "PayloadUUID",
            "PayloadVersion"}


def check_profile(p, user="bob", address="bob@example.org"):
    assert TOP_KEYS <= set(p), set(p)
    assert p["PayloadType"] == "Configuration" and p["PayloadVersion"] == 1
    (mail,) = p["PayloadContent"]
    assert MAIL_KEYS <= set(mail), MAIL_KEYS - set(mail)
    assert mail["PayloadType"] == "com.apple.mail.managed"
    assert mail["EmailAccountType"] == "EmailTypeIMAP"
    assert mail["EmailAddress"] == address
    assert (mail["IncomingMailServerHostName"], mail["IncomingMailServerPortNumber"]) == ("mail.example.org", 993)
    assert (mail["OutgoingMailServerHostName"], mail["OutgoingMailServerPortNumber"]) == ("smtp.example.org", 587)
    assert mail["IncomingMailServerUseSSL"] is True and mail["OutgoingMailServerUseSSL"] is True
    assert mail["IncomingMailServerUsername"] == user == mail["OutgoingMailServerUsername"]
    assert "IncomingPassword" not in mail          # the device asks
    assert len(mail["PayloadUUID"]) == 36 and mail["PayloadUUID"] != p["PayloadUUID"]


def qr_to_pgm(lines, path, scale=6):
    """The terminal's half blocks back to pixels: a block is a light module."""
    rows = []
    for line in lines:
        top, bottom = [], []
        for ch in line:
            t, b = {" ": (0, 0), "\u2580": (1, 0), "\u2584": (0, 1), "\u2588": (1, 1)}[ch]
            top.append(t)
            bottom.append(b)
        rows += [top, bottom]
    w = len(rows[0])
    data = bytearray()
    for r in rows:
        line = bytearray()
        for v in r:
            line += bytes([255 if v else 0]) * scale
        data += bytes(line) * scale
    path.write_bytes(b"P5\n%d %d\n255\n" % (w * scale, len(rows) * scale) + bytes(data))


def test_profile_autoconfig_and_qr(local, tmp_path):
    local.inst.write_conf(**SETTINGS)
    out = tmp_path / "pub"
    out.mkdir()
    cp = local.inst.mk("phone", "--out", out, "bob")
    assert "(unsigned)" in cp.stdout
    data = (out / "bob.mobileconfig").read_bytes()
    check_profile(plistlib.loads(data))
    if shutil.which("plistutil"):
        conv = subprocess.run(["plistutil", "-i", str(out / "bob.mobileconfig"), "-o", "-", "-f", "bin"],
                              capture_output=True, check=True).stdout
        check_profile(plistlib.loads(conv))
    # autoconfig: Mozilla's clientConfig 1.1 fields
    root = ET.parse(out / "config-v1.1.xml").getroot()
    assert root.tag == "clientConfig" and root.get("version") == "1.1"
    prov = root.find("emailProvider")
    assert prov.get("id") == "example.org" and prov.findtext("domain") == "example.org"
    allowed = {"hostname", "port", "socketType", "authentication", "username"}
    inc, outg = prov.find("incomingServer"), prov.find("outgoingServer")
    assert inc.get("type") == "imap" and outg.get("type") == "smtp"
    for server, host, port, sock in ((inc, "mail.example.org", "993", "SSL"),
                                     (outg, "smtp.example.org", "587", "STARTTLS")):
        assert {c.tag for c in server} <= allowed, [c.tag for c in server]
        assert server.findtext("hostname") == host and server.findtext("port") == port
        assert server.findtext("socketType") == sock
        assert server.findtext("authentication") == "password-cleartext"
        assert server.findtext("username") == "%EMAILLOCALPART%"
    # the QR code on the terminal decodes to the profile's URL
    url = "https://autoconfig.example.org/mail/bob.mobileconfig"
    qr = [l for l in cp.stdout.split("\n") if l and set(l) <= {" ", "\u2580", "\u2584", "\u2588"}]
    assert len(qr) > 10, cp.stdout
    if shutil.which("zbarimg") is None:
        pytest.fail("zbarimg is missing (tools/install-deps.sh installs zbar-tools)")
    qr_to_pgm(qr, tmp_path / "qr.pgm")
    dec = subprocess.run(["zbarimg", "--raw", "-q", str(tmp_path / "qr.pgm")], capture_output=True, text=True)
    assert dec.stdout.strip() == url, (dec.stdout, dec.stderr)


def test_signed_profile_verifies(local, tmp_path):
    ca, cert, key = make_ca(tmp_path / "sign")
    local.inst.write_conf(phone_profile_sign_cert_file=cert, phone_profile_sign_key_file=key, **SETTINGS)
    out = tmp_path / "pub"
    out.mkdir()
    cp = local.inst.mk("phone", "--out", out, "--no-qr", "--address", "Bob.Smith@example.org", "bob")
    assert "(signed)" in cp.stdout and "\u2588" not in cp.stdout
    content = tmp_path / "content.plist"
    v = subprocess.run(["openssl", "cms", "-verify", "-inform", "DER", "-in", str(out / "bob.mobileconfig"),
                        "-CAfile", str(ca), "-out", str(content)], capture_output=True, text=True)
    assert v.returncode == 0 and "Verification successful" in v.stderr, v.stderr
    check_profile(plistlib.loads(content.read_bytes()), address="Bob.Smith@example.org")
    # a login that is not the address's local part is written as it is
    root = ET.parse(out / "config-v1.1.xml").getroot()
    assert root.find("emailProvider/incomingServer").findtext("username") == "bob"
    # a key of another certificate is refused, and nothing is written
    _, other, _ = make_ca(tmp_path / "other")
    local.inst.write_conf(phone_profile_sign_cert_file=other)
    (out / "bob.mobileconfig").unlink()
    cp = local.inst.mk("phone", "--out", out, "--no-qr", "bob", check=False)
    assert cp.returncode == 1 and "does not belong" in cp.stderr, cp.stderr
    assert not (out / "bob.mobileconfig").exists()


def test_unknown_user(local, tmp_path):
    cp = local.inst.mk("phone", "--out", tmp_path, "nobody", check=False)
    assert cp.returncode == 1 and "no user 'nobody'" in cp.stderr
