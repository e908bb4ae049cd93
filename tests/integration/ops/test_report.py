"""`mailkeep report` (issue 19): one self-contained HTML page, checked in
Debian's headless Chromium driven by playwright-core (tests/integration/ops/
report_check.js): it loads with no console error and no request beyond the
file (the charting library is inside it), every chart is drawn, and its
numbers are those of `mailkeep stats --smtp` over the same log. The log holds
real lines of the services from this test (today) after older lines written
here in the same format (the services cannot log in the past), with a
sender that tries to break out of the page."""
import datetime
import json
import os
import shutil
import signal
import smtplib
import subprocess
from pathlib import Path

import pytest

from mkhelpers import BIN, BUILD, REPO, free_port, wait_for

NODE_MODULES = BUILD / "node" / "node_modules"
if not (NODE_MODULES / "playwright-core").is_dir():
    NODE_MODULES = REPO / "build" / "node" / "node_modules"
CHECK = Path(__file__).with_name("report_check.js")


def need_browser():
    missing = [what for what, ok in (("/usr/bin/chromium", os.access("/usr/bin/chromium", os.X_OK)),
                                     ("node", shutil.which("node") is not None),
                                     (f"playwright-core in {NODE_MODULES}", (NODE_MODULES / "playwright-core").is_dir()))
               if not ok]
    if missing:
        pytest.fail(f"missing for the browser test: {', '.join(missing)} (tools/install-deps.sh installs them)")


def browse(page, shot=None):
    env = dict(os.environ, NODE_PATH=str(NODE_MODULES))
    cp = subprocess.run(["node", str(CHECK), str(page), *([str(shot)] if shot else [])], capture_output=True,
                        text=True, env=env, timeout=120)
    assert cp.returncode == 0, cp.stderr
    return json.loads(cp.stdout)


def old_lines(days_back):
    """Older days, in the services' format: a delivery, a greylisting, a
    postscreen failure and a retrain a day."""
    out = []
    now = datetime.datetime.now()
    for back in range(days_back, 0, -1):
        t = (now - datetime.timedelta(days=back)).replace(hour=12, minute=0, second=0)
        ts = t.strftime("%b %e %H:%M:%S")
        ip = f"192.0.2.{back}"
        out += [f"{ts} mx mailkeep/smtpd[7]: connect from unknown[{ip}]",
                f"{ts} mx mailkeep/qmgr[7]: 1A{back}: from=<list@lists.example.org>, size=900, nrcpt=1 (queue active)",
                f"{ts} mx mailkeep/local[7]: 1A{back}: to=<bob@example.org>, relay=local, delay=0.1, dsn=2.0.0, "
                "status=sent (delivered to INBOX mailbox of bob)",
                f"{ts} mx mailkeep/smtpd[7]: connect from unknown[{ip}]",
                f"{ts} mx mailkeep/smtpd[7]: NOQUEUE: reject: RCPT from unknown[{ip}]: 450 4.7.1 <bob@example.org>: "
                "Recipient address rejected: Greylisted, try again later (60 seconds left); from=<x@y.example> "
                "to=<bob@example.org> proto=ESMTP helo=<y.example>",
                f"{ts} mx mailkeep/postscreen[7]: PREGREET 11 after 0.20 from [{ip}]:4711: EHLO x",
                f"{ts} mx mailkeep/spam[8]: retrain: user=<#1>, class=spam, mailbox=2, uid={back}"]
    return out


def test_report_page_in_chromium_matches_stats(instance, tmp_path):
    need_browser()
    smtp, imap, imaps = free_port(), free_port(), free_port()
    instance.write_conf(smtpd_listen=f"127.0.0.1:{smtp}", lmtp_listen=f"unix:{instance.data}/run/lmtp",
                        imapd_listen=f"127.0.0.1:{imap}", imapd_tls_listen=f"127.0.0.1:{imaps}",
                        mynetworks="10.255.255.0/24",
                        smtpd_recipient_restrictions="reject_unauth_destination")
    (instance.root / "mail").mkdir(exist_ok=True)
    instance.mk("user", "add", "bob", "--no-password")
    run = instance.spawn(BIN / "mailkeep", "-c", instance.conf, "run")
    wait_for(lambda: "mailkeep: run: ready:" in Path(run.logfile).read_text(errors="replace"), timeout=30,
             what="run")
    evil = '"</script><script>document.title=\'owned\'</script>"@evil.example'
    for sender, rcpt in (("a@example.net", "bob@example.org"), (evil, "bob@example.org"),
                         ("b@example.net", "nobody@example.org"), ("c@example.net", "x@elsewhere.example")):
        with smtplib.SMTP("127.0.0.1", smtp, timeout=10) as s:
            s.ehlo("client.example.net")
            s.mail(sender)
            if s.rcpt(rcpt)[0] == 250:
                s.data("Subject: hi\r\n\r\nhello\r\n")
    os.kill(run.pid, signal.SIGTERM)
    assert run.wait(30) == 0
    log = tmp_path / "mail.log"
    log.write_text("\n".join(old_lines(12)) + "\n" + Path(run.logfile).read_text(errors="replace"))
    # the store's size, sampled on some of those days
    hist = instance.data / "stats" / "store-size"
    hist.parent.mkdir(parents=True, exist_ok=True)
    day = 86400
    now = int(datetime.datetime.now().timestamp())
    hist.write_text(f"{now - 10 * day} 1048576\n{now - 5 * day} 3145728\n" + hist.read_text()
                    if hist.exists() else f"{now - 10 * day} 1048576\n{now - 5 * day} 3145728\n")

    page = tmp_path / "report.html"
    cp = instance.mk("report", "-o", page, log)
    assert f"report: {page} (30 days" in cp.stdout
    head = instance.mk("stats", "--smtp", log).stdout.split("\n\n")[0]  # the "name value" lines
    stats = dict(line.split(" ", 1) for line in head.splitlines())
    html = page.read_text()
    assert "<script src" not in html and "http://" not in html.split("<script>")[0]
    got = browse(page, tmp_path / "report.png")

    assert got["errors"] == [], got["errors"]
    assert got["requests"] == [], got["requests"]  # nothing fetched: the page holds everything
    assert got["title"].startswith("mailkeep report ") and got["title"] != "owned"
    assert got["charts"] == 6
    for c in got["canvases"]:
        assert c["chart"] and c["painted"] > 500, c
    t = got["totals"]
    assert t["t-connections"] == int(stats["connections"])
    assert t["t-delivered"] == int(stats["delivered"]) == 12 + 2
    assert t["t-rejected"] == int(stats["rejected"])
    for cls in ("postscreen", "dnsbl", "greylist", "unknown_user", "relay", "other"):
        assert t[f"t-rejected-{cls}"] == int(stats[f"rejected_{cls}"]), cls
    assert t["t-rejected-greylist"] == 12 and t["t-rejected-unknown_user"] == 1 and t["t-rejected-relay"] == 1
    assert t["t-junk"] == int(stats["delivered_to_junk"])
    assert t["t-retrained-spam"] == int(stats["retrained_spam"]) == 12
    ps_failed = int(stats["postscreen"].split("failed ")[1].split()[0])
    assert t["t-postscreen"] == ps_failed == 12
    # the charts' data says the same, day by day
    d = got["data"]
    assert len(d["days"]) == 30 and d["days"][-1] == datetime.date.today().isoformat()
    assert sum(d["inbox"]) + sum(d["junk"]) == t["t-delivered"]
    assert sum(d["rejected"]["greylist"]) == 12 and d["rejected"]["greylist"][-1] == 0
    assert d["inbox"][-1] == 2 and d["inbox"][-13] == 1
    assert d["top_senders"][0] == ["list@lists.example.org", 12]
    # the hostile sender is shown as text, and broke nothing (title, errors: above)
    assert any("</script><script>" in s for s in got["senders"]), got["senders"]
    assert d["store_bytes"][-11] is None or d["store_bytes"][-11] in (1048576,)
    assert 3145728 in d["store_bytes"]


def test_report_refuses_what_it_cannot_do(instance, tmp_path):
    cp = instance.mk("report", "-o", tmp_path / "r.html", "--chart-js", tmp_path / "none.js", "-", check=False,
                     input="")
    assert cp.returncode == 1 and "cannot read the charting library" in cp.stderr and "libjs-chart.js" in cp.stderr
    bad = tmp_path / "bad.js"
    bad.write_text("var x='</script>';")
    cp = instance.mk("report", "-o", tmp_path / "r.html", "--chart-js", bad, "-", check=False, input="")
    assert cp.returncode == 1 and "cannot be put into a page" in cp.stderr
    cp = instance.mk("report", "--days", "0", "-", check=False, input="")
    assert cp.returncode == 2 and "--days wants 1 to 366" in cp.stderr
    assert not (tmp_path / "r.html").exists()
