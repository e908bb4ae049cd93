"""Inbound SPF, DKIM and DMARC: messages signed by dkimpy (not by us), sent
from an allowed and from a forged address, against records served by
dnsmasq. Each stored Authentication-Results header is compared with what the
independent tools say about the same message: pyspf (python3-spf) for SPF,
dkimpy for DKIM, and DMARC worked out from those two and the published
policy. The scenarios run in a network namespace of their own (authprobe.py,
unshare -n) so that clients have non-loopback addresses. The results are also
metadata and xattrs on the mount (user.auth.*), and a DMARC reject or
quarantine is enforced only when asked."""
import json
import os
import re
import shutil
import smtplib
import subprocess
from pathlib import Path

import pytest

from mkhelpers import BIN
from sendhelp import wait_until

HERE = Path(__file__).resolve().parent


def probe(name, tmp_path):
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.fail("unshare -n does not work here (needs root or user namespaces)", pytrace=False)
    cp = subprocess.run(["unshare", "-n", "/usr/bin/python3", str(HERE / "authprobe.py"), name,
                         str(tmp_path / "probe")], capture_output=True, text=True, timeout=300,
                        env=dict(os.environ))
    assert cp.returncode == 0, cp.stdout[-3000:] + cp.stderr[-3000:]
    return json.loads(cp.stdout.strip().splitlines()[-1])


def test_results_agree_with_pyspf_and_dkimpy(tmp_path):
    out = probe("results", tmp_path)
    assert out["codes"] == [250] * len(out["want"])
    got = out["got"]
    assert len(got) == len(out["want"])
    for i, (g, exp) in enumerate(zip(got, out["want"])):
        assert g["starts"], g
        assert g["res"] == exp, f"case {i}: stored {g['res']}, independent tools {exp}\n{g['hdr']}"
        for k in ("spf", "dkim", "dmarc"):
            assert f"auth.{k}={g['res'][k]}" in g["meta"]
    # every kind of result came up at least once
    seen = {(k, g["res"][k]) for g in got for k in ("spf", "dkim", "dmarc")}
    for pair in [("spf", "pass"), ("spf", "fail"), ("spf", "softfail"), ("spf", "neutral"), ("spf", "none"),
                 ("dkim", "pass"), ("dkim", "fail"), ("dkim", "none"),
                 ("dmarc", "pass"), ("dmarc", "fail"), ("dmarc", "none")]:
        assert pair in seen, pair
    assert "dmarc=fail (p=reject dis=none) header.from=good.example.com" in got[2]["hdr"]
    assert "dkim=pass header.d=good.example.com header.s=sel header.b=" in got[0]["hdr"]
    assert "spf=fail smtp.mailfrom=good.example.com" in got[1]["hdr"]


def test_forged_authentication_results_are_removed(tmp_path):
    out = probe("forged_header", tmp_path)
    assert out["codes"] == [250]
    g = out["got"][0]
    assert g["ours"] == 1 and g["other"]  # only ours claims our id; another's stays
    assert g["res"]["dmarc"] == "fail"


def test_enforced_reject_and_quarantine(tmp_path):
    out = probe("enforce", tmp_path)
    assert out["codes"] == [550, 250, 250]
    assert re.search(r"reject: END-OF-MESSAGE .*550 5\.7\.1 Message rejected: DMARC policy of good\.example\.com",
                     out["log"])
    assert len(out["junk"]) == 1 and "dis=quarantine" in out["junk"][0]["hdr"]
    assert len(out["inbox"]) == 1 and out["inbox"][0]["res"]["dmarc"] == "pass"


def test_end_of_data_restrictions(tmp_path):
    out = probe("restrictions", tmp_path)
    # SPF fail refused; DKIM fail refused; SPF fail with a good signature is refused too
    # (reject_spf_fail looks at SPF alone); all pass: delivered
    assert out["codes"] == [550, 550, 550, 250], out["codes"]
    assert "550 5.7.23 <END-OF-MESSAGE>: End-of-data rejected: SPF validation failed" in out["log"]
    assert "550 5.7.20 <END-OF-MESSAGE>: End-of-data rejected: No passing DKIM signature found" in out["log"]
    assert len(out["inbox"]) == 1 and out["inbox"][0]["res"] == {"spf": "pass", "dkim": "none", "dmarc": "pass"}


def test_xattrs_on_the_mount(mk_factory, dns_factory):
    # a loopback client: libspf2 says pass ("localhost is always allowed")
    dns_srv = dns_factory(["--txt-record=_dmarc.example.com,v=DMARC1; p=none"])
    mk = mk_factory(dns_resolver=f"127.0.0.1:{dns_srv.port}")
    mk.useradd("bob")
    mk.start_smtpin()
    c = smtplib.SMTP("127.0.0.1", mk.smtp_port, timeout=20)
    c.sendmail("a@example.com", ["bob@example.org"], b"From: a@example.com\r\nSubject: x\r\n\r\nhi\r\n")
    c.quit()
    mnt = mk.inst.root / "mail"
    mnt.mkdir(exist_ok=True)
    fs = mk.inst.spawn(BIN / "mailkeep-fs", "-c", mk.inst.conf, "-f")
    try:
        wait_until(lambda: os.path.ismount(mnt), timeout=10, what="the mount")
        f = next((mnt / "bob" / "new").iterdir())
        out = subprocess.run(["getfattr", "-d", "-m", "user.auth", str(f)], capture_output=True, text=True).stdout
        assert 'user.auth.spf="pass"' in out and 'user.auth.dkim="none"' in out, out
        assert 'user.auth.dmarc="pass"' in out, out
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
        mk.inst.stop(fs)
