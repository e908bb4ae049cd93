"""`mailkeep run` as an operator meets it (issue 19): a mount whose service
was killed is cleared (at once, and again when run stops), `run --without
mount` leaves the mount to its own unit, SIGHUP through run reloads smtpin's
settings, the Prometheus endpoint and `mailkeep status` show the counters, and
they agree with `mailkeep stats --smtp` reading the same log."""
import os
import re
import signal
import smtplib
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from mkhelpers import BIN, free_port, wait_for, wait_port

SERVICES = ("mailkeep-smtpin", "mailkeep-smtpout", "mailkeep-imapd", "mailkeep-fs")


def children(pid):
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return {}
    out = {}
    for k in kids:
        try:
            out[Path(f"/proc/{k}/comm").read_text().strip()] = int(k)
        except OSError:
            pass
    return out


def mountinfo(path):
    real = os.path.realpath(path)
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if line.split()[4] == real:
            return line
    return None


@pytest.fixture
def inst(instance):
    smtp, imap, imaps, metrics = free_port(), free_port(), free_port(), free_port()
    instance.write_conf(smtpd_listen=f"127.0.0.1:{smtp}", lmtp_listen=f"unix:{instance.data}/run/lmtp",
                        imapd_listen=f"127.0.0.1:{imap}", imapd_tls_listen=f"127.0.0.1:{imaps}",
                        metrics_listen=f"127.0.0.1:{metrics}", mynetworks="10.255.255.0/24",
                        smtpd_recipient_restrictions="reject_unauth_destination")
    (instance.root / "mail").mkdir(exist_ok=True)
    instance.mk("user", "add", "bob", "--no-password")
    instance.ports = (smtp, imap, imaps)
    instance.metrics = metrics
    return instance


def start_run(inst, *args, services=SERVICES):
    p = inst.spawn(BIN / "mailkeep", "-c", inst.conf, "run", *args)
    wait_for(lambda: "mailkeep: run: ready:" in Path(p.logfile).read_text(errors="replace"), timeout=30,
             what="run to say it is ready")
    wait_for(lambda: set(children(p.pid)) == {s[:15] for s in services}, timeout=10, what="the services")
    return p


def test_a_killed_mount_is_cleared_and_mounted_again_and_gone_after_stop(inst):
    p = start_run(inst)
    mnt = inst.root / "mail"
    assert mountinfo(mnt) and "fuse" in mountinfo(mnt)
    fs = children(p.pid)["mailkeep-fs"]
    os.kill(fs, signal.SIGKILL)
    # the supervisor starts it again; it detaches the dead mount first
    wait_for(lambda: children(p.pid).get("mailkeep-fs") not in (None, fs), timeout=15, what="a new mount")
    def serves():
        try:
            return (mnt / "bob").is_dir()
        except OSError:  # the dead mount, until the new service has detached it
            return False
    wait_for(serves, timeout=15, what="the mount to serve again")
    assert sum(1 for ln in Path("/proc/self/mountinfo").read_text().splitlines()
               if ln.split()[4] == os.path.realpath(mnt)) == 1
    # a mount killed just before run stops: run's stop clears it
    os.kill(children(p.pid)["mailkeep-fs"], signal.SIGKILL)
    os.kill(p.pid, signal.SIGTERM)
    assert p.wait(30) == 0
    assert mountinfo(mnt) is None
    # and no "Transport endpoint is not connected" for the next user of the path
    assert os.listdir(mnt) == []


def test_run_without_mount_leaves_the_mount_of_another_unit_alone(inst):
    mnt = inst.root / "mail"
    fs = inst.spawn(BIN / "mailkeep", "-c", inst.conf, "mount", "-f")
    wait_for(lambda: (mnt / "bob").is_dir(), timeout=15, what="the mount")
    p = start_run(inst, "--without", "mount", services=SERVICES[:3])
    log = Path(p.logfile).read_text()
    assert "mount: not started (--without)" in log and "stopping" not in log
    assert fs.poll() is None and (mnt / "bob").is_dir()
    # status finds the mount of the other unit by its -c (no pid file of run's)
    st = inst.mk("status").stdout
    fs_pid = next(int(k) for k in Path(f"/proc/{fs.pid}/task/{fs.pid}/children").read_text().split()) \
        if Path(f"/proc/{fs.pid}/exe").resolve().name != "mailkeep-fs" else fs.pid
    assert f"mount    running, pid {fs_pid}; mounted on {mnt}" in st, st
    os.kill(p.pid, signal.SIGTERM)
    assert p.wait(30) == 0
    assert fs.poll() is None and (mnt / "bob").is_dir()  # still there: not run's
    cp = subprocess.run([str(BIN / "mailkeep"), "-c", str(inst.conf), "run", "--without", "nothing"],
                        capture_output=True, text=True)
    assert cp.returncode == 2 and "want --without smtpin|smtpout|imapd|mount" in cp.stderr


def smtp_session(port, rcpts):
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.ehlo("client.example.net")
        s.mail("sender@example.net")
        codes = [s.rcpt(r)[0] for r in rcpts]
        if 250 in codes:
            s.data("Subject: hello\r\n\r\nhi\r\n")
        return codes


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, v = line.rsplit(" ", 1)
            values[name] = float(v)
    return text, values


def test_sighup_through_run_metrics_status_and_stats_agree(inst):
    p = start_run(inst)
    smtp = inst.ports[0]
    assert smtp_session(smtp, ["bob@example.org"]) == [250]
    assert smtp_session(smtp, ["nobody@example.org"]) == [550]
    assert smtp_session(smtp, ["someone@elsewhere.example"]) == [554]
    # greylisting switched on through run's SIGHUP
    inst.write_conf(smtpd_recipient_restrictions="reject_unauth_destination, check_greylist")
    os.kill(p.pid, signal.SIGHUP)
    wait_for(lambda: "SIGHUP: configuration reloaded" in Path(p.logfile).read_text(errors="replace"),
             timeout=10, what="smtpin to reload")
    assert smtp_session(smtp, ["bob@example.org"]) == [450]
    # the endpoint
    text, v = scrape(inst.metrics)
    assert "# TYPE mailkeep_smtp_rejections_total counter" in text
    assert v['mailkeep_up{service="smtpin"}'] == 1 and v['mailkeep_up{service="mount"}'] == 1
    assert v["mailkeep_smtp_connections_total"] >= 4
    assert v['mailkeep_smtp_rejections_total{reason="greylist"}'] == 1
    assert v['mailkeep_smtp_rejections_total{reason="unknown_user"}'] == 1
    assert v['mailkeep_smtp_rejections_total{reason="relay"}'] == 1
    assert v['mailkeep_deliveries_total{mailbox="inbox"}'] == 1
    assert v['mailkeep_spam_verdicts_total{verdict="innocent"}'] == 1
    assert v["mailkeep_store_bytes"] > 0
    with urllib.request.urlopen(f"http://127.0.0.1:{inst.metrics}/metrics", timeout=10):
        pass
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{inst.metrics}/nothing", timeout=10)
        raise AssertionError("a 404 was expected")
    except urllib.error.HTTPError as e:
        assert e.code == 404
    # status: one line per service that answers, counters, store
    st = inst.mk("status").stdout
    assert re.search(rf"smtpin   running, pid \d+; 127\.0\.0\.1:{smtp} answers", st), st
    assert "mount    running, pid" in st and "mounted on" in st
    assert f"http://127.0.0.1:{inst.metrics}/metrics answers" in st
    assert "rejected (postscreen 0, dnsbl 0, greylist 1, unknown user 1, relay 1, other 0)" in st, st
    assert "1 stored (0 into Junk)" in st
    assert "size " in st and "KiB" in st or "MiB" in st
    # stats --smtp over the same log says the same (status connected to each
    # listener to see that it answers: those connections are in both)
    _, v = scrape(inst.metrics)
    stats = inst.mk("stats", "--smtp", p.logfile).stdout
    got = dict(line.split(" ", 1) for line in stats.splitlines()[:12] if line and " " in line)
    assert int(got["connections"]) == v["mailkeep_smtp_connections_total"]
    assert int(got["rejected_greylist"]) == 1 and int(got["rejected_unknown_user"]) == 1
    assert int(got["rejected_relay"]) == 1 and int(got["delivered"]) == 1
    os.kill(p.pid, signal.SIGTERM)
    assert p.wait(30) == 0
