"""Changes made by other processes reach IMAP clients: mail delivered over
SMTP by mailkeep-smtpin and flag changes / deletions made on the FUSE mount
by mailkeep-fs show up in an IDLE session within a second, and a phone-like
QRESYNC resync afterwards gets exactly what changed."""
import os
import re
import smtplib
import subprocess
import time
from pathlib import Path

import pytest

from mkhelpers import BIN, free_port, wait_port
from imapdutil import message
from rawimap import Raw


def read_until(r, pred, timeout=5.0):
    """Lines from an IDLE session until pred(line) is true."""
    r.sock.settimeout(timeout)
    lines = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ln = r.line()
        lines.append(ln)
        if pred(ln):
            return lines
    raise AssertionError(f"not seen in {timeout}s: {lines}")


@pytest.fixture
def smtp_and_mount(imapd):
    inst = imapd.inst
    port = free_port()
    inst.write_conf(smtpd_listen=f"127.0.0.1:{port}", smtpd_tls_wrappermode_listen="",
                    lmtp_listen=f"127.0.0.1:{free_port()}", greylist_policy_listen=f"127.0.0.1:{free_port()}",
                    mynetworks="127.0.0.1/32", fs_allow_other="no")
    smtp = inst.spawn(BIN / "mailkeep-smtpin", "-c", inst.conf, "-f")
    wait_port(port, proc=smtp)
    mnt = inst.root / "mail"
    mnt.mkdir(exist_ok=True)
    fs = inst.spawn(BIN / "mailkeep-fs", "-c", inst.conf, "-f")
    deadline = time.monotonic() + 10
    while not os.path.ismount(mnt):
        if fs.poll() is not None:
            pytest.fail("mailkeep-fs exited: " + Path(fs.logfile).read_text())
        assert time.monotonic() < deadline, "the mount did not appear"
        time.sleep(0.05)
    yield port, mnt
    subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)


def test_smtp_and_mount_changes_reach_idle_and_qresync(imapd, smtp_and_mount):
    smtp_port, mnt = smtp_and_mount
    m = imapd.login()
    for i in range(1, 4):
        assert m.append("INBOX", None, None, message(i))[0] == "OK"
    # the phone syncs, remembers UIDVALIDITY and HIGHESTMODSEQ, and goes away
    phone = Raw(imapd.port)
    phone.cmd("LOGIN alice secret-alice")
    phone.cmd("ENABLE QRESYNC")
    lines, _ = phone.cmd("SELECT INBOX")
    text = b"".join(lines)
    uv = int(re.search(rb"UIDVALIDITY (\d+)", text).group(1))
    hms = int(re.search(rb"HIGHESTMODSEQ (\d+)", text).group(1))
    phone.cmd("LOGOUT")
    phone.close()
    # a desktop client idles
    idle = Raw(imapd.port)
    idle.cmd("LOGIN alice secret-alice")
    idle.cmd("SELECT INBOX")
    idle.send(b"i IDLE\r\n")
    assert idle.line().startswith(b"+")
    # new mail over SMTP (another process) wakes it within a second
    t0 = time.monotonic()
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as s:
        s.sendmail("carol@example.net", ["alice@example.org"], message(4, subject="via smtp"))
    read_until(idle, lambda ln: ln == b"* 4 EXISTS\r\n")
    print(f"SMTP delivery to EXISTS: {time.monotonic() - t0:.2f}s")
    # a flag change on the mount: mark message 1 read by renaming it
    inbox = mnt / "alice"
    deadline = time.monotonic() + 5
    while True:
        files = sorted(p for p in list((inbox / "new").iterdir()) + list((inbox / "cur").iterdir()))
        first = [p for p in files if b"Subject: test message 1\r\n" in p.read_bytes()]
        if first or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert first, files
    src = first[0]
    base = src.name.split(":2,")[0]
    src.rename(inbox / "cur" / (base + ":2,S"))
    t0 = time.monotonic()
    lines = read_until(idle, lambda ln: b"FETCH" in ln and b"\\Seen" in ln)
    print(f"rename on the mount to FETCH FLAGS: {1000 * (time.monotonic() - t0):.0f} ms")
    # a deletion on the mount is an expunge
    victim = [p for p in sorted((inbox / "new").iterdir()) + sorted((inbox / "cur").iterdir())
              if b"Subject: test message 2\r\n" in p.read_bytes()][0]
    victim.unlink()
    read_until(idle, lambda ln: ln == b"* 2 EXPUNGE\r\n")
    idle.send(b"DONE\r\n")
    read_until(idle, lambda ln: ln.startswith(b"i OK"))
    idle.close()
    # the phone comes back: QRESYNC gives exactly the changes
    phone = Raw(imapd.port)
    phone.cmd("LOGIN alice secret-alice")
    phone.cmd("ENABLE QRESYNC")
    lines, t = phone.cmd(f"SELECT INBOX (QRESYNC ({uv} {hms} 1:3))")
    assert b"OK" in t
    assert b"* VANISHED (EARLIER) 2\r\n" in lines
    assert b"* 3 EXISTS\r\n" in lines
    fetches = [ln for ln in lines if b" FETCH " in ln]
    assert len(fetches) == 1 and b"UID 1 " in fetches[0] and b"\\Seen" in fetches[0]
    lines, t = phone.cmd(f"UID FETCH 1:* (FLAGS ENVELOPE) (CHANGEDSINCE {hms})")
    uids = sorted(int(re.search(rb"UID (\d+)", ln).group(1)) for ln in lines)
    assert uids[0] == 1 and uids[-1] >= 4 and b'"via smtp"' in b"".join(lines)
    phone.close()
