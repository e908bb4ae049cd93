"""A full disk under the store: an 8 MB tmpfs holding a `mailkeep init`
instance, filled by `mailkeep import` and by the real smtpin until no room is
left. Nothing that got 250 may be lost, nothing refused may be half-stored,
the store must pass fsck, the full-disk answer must be the one for a full
disk (452 4.3.1, "the store is full"), and once there is room again
(remount bigger) mail goes in again without a restart."""
import base64
import os
import re
import smtplib
import subprocess
from pathlib import Path

import pytest

from mkhelpers import BIN, CORPUS, free_port, wait_port

SMALL, ROOMY = "8m", "64m"


class FullDisk:
    """A `mailkeep init` instance on a tmpfs of its own; daemon logs outside it."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.mnt = tmp_path / "small"
        self.mnt.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SMALL},mode=0755", "tmpfs", str(self.mnt)],
                       check=True, capture_output=True)
        self.dir = self.mnt / "inst"
        self.conf = self.dir / "mailkeep.conf"
        self.procs = []
        pw = tmp_path / "pw"
        pw.write_text("secret\n")
        self.mk("init", "--local", "--user", "bob", "--password-file", pw, "--hostname", "mx.example.org",
                self.dir, conf=False)

    def mk(self, *args, check=True, conf=True):
        argv = [str(BIN / "mailkeep"), *(["-c", str(self.conf)] if conf else []), *map(str, args)]
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        if check and cp.returncode != 0:
            raise AssertionError(f"mailkeep {args} exited {cp.returncode}:\n{cp.stdout}\n{cp.stderr}")
        return cp

    def set(self, **settings):
        with open(self.conf, "a") as f:
            f.write("".join(f"{k} = {v}\n" for k, v in settings.items()))

    def remount(self, size):
        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.mnt)], check=True, capture_output=True)

    def free_bytes(self):
        st = os.statvfs(self.mnt)
        return st.f_bfree * st.f_frsize

    def messages(self):
        out = self.mk("stats").stdout
        return int(re.search(r"^messages (\d+)$", out, re.M).group(1))

    def exported(self, name):
        """{file name: bytes} of bob's INBOX, exported read-only while daemons run."""
        out = self.tmp / name
        self.mk("export", "bob", out)
        return {p.name: p.read_bytes() for d in ("cur", "new") for p in (out / d).iterdir()}

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, 15)
                p.wait(10)
        r = subprocess.run(["umount", str(self.mnt)], capture_output=True)
        if r.returncode != 0:
            subprocess.run(["umount", "-l", str(self.mnt)], capture_output=True)


@pytest.fixture
def full_disk(tmp_path):
    fd = FullDisk(tmp_path)
    yield fd
    fd.close()


def fsck_clean(fd):
    cp = fd.mk("fsck", check=False)
    assert cp.returncode == 0 and "is consistent" in cp.stdout, cp.stdout + cp.stderr


def test_import_fills_the_disk_then_finishes(full_disk):
    fd = full_disk
    assert fd.messages() == 1  # the welcome message
    cp = fd.mk("import", "--format", "files", "--batch", "50", "bob", CORPUS, check=False)
    assert cp.returncode == 1, cp.stdout + cp.stderr
    # the error for a full disk, not an I/O error
    assert "the store is full" in cp.stderr and "free disk space" in cp.stderr, cp.stderr
    assert "input/output" not in cp.stderr and "I/O error" not in cp.stderr, cp.stderr
    assert "import stopped" in cp.stderr
    assert fd.free_bytes() < 1 << 20, "the tmpfs did not fill"
    got = int(re.search(r"imported (\d+) messages", cp.stdout).group(1))
    assert got > 0
    # exactly what import said it stored is there, and the store is consistent
    assert fd.messages() == 1 + got
    fsck_clean(fd)
    # room again: the same import adds only what is missing
    fd.remount(ROOMY)
    cp = fd.mk("import", "--format", "files", "--batch", "50", "bob", CORPUS)
    assert f"{got} already there" in cp.stdout, cp.stdout
    total = sum(1 for p in CORPUS.rglob("*") if p.is_file() and p.name != "README.md")
    assert fd.messages() == 1 + total
    fsck_clean(fd)


def message(tag, kbytes):
    """A message whose body is random (so it is stored, never deduplicated)."""
    body = base64.encodebytes(os.urandom(kbytes * 768)).replace(b"\n", b"\r\n")
    return (f"From: alice@example.net\r\nTo: bob@example.org\r\nSubject: {tag}\r\n"
            f"Message-ID: <{tag}@example.net>\r\n\r\n").encode() + body


def smtp_send(port, msg, lmtp=False):
    """(code, text) of the reply after DATA (LMTP: the one recipient's reply)."""
    c = smtplib.LMTP("127.0.0.1", port) if lmtp else smtplib.SMTP("127.0.0.1", port, timeout=60)
    try:
        c.ehlo("client.example.net")  # LHLO for LMTP
        assert c.mail("alice@example.net")[0] == 250
        assert c.rcpt("bob@example.org")[0] == 250
        code, text = c.data(msg)
        return code, text.decode()
    finally:
        c.close()


def test_smtpin_fills_the_disk_says_452_and_recovers(full_disk):
    fd = full_disk
    port, lmtp_port = free_port(), free_port()
    fd.set(smtpd_listen=f"127.0.0.1:{port}", lmtp_listen=f"127.0.0.1:{lmtp_port}",
           mynetworks="127.0.0.1/32", smtpd_timeout="60s")
    log = open(fd.tmp / "smtpin.log", "wb")
    p = subprocess.Popen([str(BIN / "mailkeep-smtpin"), "-c", str(fd.conf), "-f"], stdout=log,
                         stderr=subprocess.STDOUT, start_new_session=True)
    fd.procs.append(p)
    wait_port(port, proc=p)

    accepted, refused = {}, {}
    i = 0
    # 64 KB messages until the disk is full, then a few more (a small one may
    # still fit into room a failed commit left behind: it must then be stored)
    while len(refused) < 4:
        i += 1
        assert i < 400, "an 8 MB disk never filled"
        tag = f"fill-{i:04d}"
        msg = message(tag, 64)
        code, text = smtp_send(port, msg)
        if code == 250:
            accepted[tag] = msg
        else:
            assert (code, text[:5]) == (452, "4.3.1"), (code, text)
            assert "insufficient system storage" in text and "full" in text, text
            refused[tag] = msg
    # the disk held a fair amount before it filled (not a failure at the first
    # message); smtpin's words index shares the disk and indexes these random
    # text bodies word by word as its thread gets to them, so how many fit
    # varies from run to run (12 in one CI run, over 20 before the index)
    assert len(accepted) >= 8
    # bigger than anything that failed before: no leftover room can take it
    big = message("big-smtp", 512)
    assert smtp_send(port, big)[0] == 452
    code, text = smtp_send(lmtp_port, message("big-lmtp", 512), lmtp=True)
    assert (code, text[:5]) == (452, "4.3.1") and "<bob@example.org>" in text, (code, text)
    refused["big-smtp"] = refused["big-lmtp"] = None
    logtext = (fd.tmp / "smtpin.log").read_text(errors="replace")
    assert re.search(r"dsn=4\.3\.1, status=deferred \(store: the store is full", logtext), logtext[-2000:]
    assert "input/output error" not in logtext

    # while smtpin holds the store: read-only fsck, stats and export work
    fsck_clean(fd)
    assert fd.messages() == 1 + len(accepted)
    files = fd.exported("export1")
    for tag, msg in accepted.items():
        (hit,) = [b for b in files.values() if f"Subject: {tag}\r\n".encode() in b]
        assert hit.endswith(msg), tag  # our Received: line, then exactly what was sent
    for tag in refused:
        assert not any(f"Subject: {tag}\r\n".encode() in b for b in files.values()), tag

    # room again, same smtpin: delivery works
    fd.remount(ROOMY)
    after = message("after-remount", 512)
    code, text = smtp_send(port, after)
    assert code == 250, text
    code, text = smtp_send(lmtp_port, message("after-lmtp", 64), lmtp=True)
    assert code == 250, text
    assert fd.messages() == 1 + len(accepted) + 2
    files = fd.exported("export2")
    assert any(b.endswith(after) for b in files.values())
    fsck_clean(fd)
    assert p.poll() is None, "smtpin died"
