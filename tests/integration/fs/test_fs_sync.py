"""Mail synchronisers writing into a folder on the mount: mbsync (isync) and
offlineimap pull a "remote" IMAP account (a second mailkeep instance with its
own store and imapd) into bob's folder, keep their state files there (plain
files, not mail), push flag changes made on the mount back, and a second run
adds nothing twice."""
import imaplib
import os
import subprocess

import pytest

from mkhelpers import BIN, Instance, free_port, wait_port
from mountlib import files, imap_bodies, stack


def remote_account(tmp_path):
    """A second mailkeep with user carol and five messages in her INBOX."""
    (tmp_path / "remote").mkdir()
    r = Instance(tmp_path / "remote")
    port = free_port()
    r.write_conf(imapd_listen=f"127.0.0.1:{port}", imapd_tls_listen=f"127.0.0.1:{free_port()}")
    r.data.mkdir(parents=True, exist_ok=True)
    r.mk("user", "add", "carol", "--password-file", "-", input="secret-carol\n")
    p = r.spawn(BIN / "mailkeep-imapd", "-c", r.conf, "-f")
    wait_port(port, proc=p)
    m = imaplib.IMAP4("127.0.0.1", port)
    m.login("carol", "secret-carol")
    msgs = []
    for i, flags in enumerate(["", "(\\Seen)", "(\\Flagged \\Seen)", "", "(\\Answered \\Seen)"]):
        body = (f"From: far{i}@example.net\r\nTo: carol@example.net\r\nSubject: far {i}\r\n"
                f"Message-ID: <far{i}@example.net>\r\n\r\nremote body {i}\r\n").encode()
        assert m.append("INBOX", flags or None, None, body)[0] == "OK"
        msgs.append(norm(body))
    m.logout()
    return r, port, msgs


def norm(body):
    """What a synchroniser writes into a Maildir: LF line ends (mbsync), without
    mbsync's X-TUID header."""
    lines = body.replace(b"\r\n", b"\n").split(b"\n")
    return b"\n".join(line for line in lines if not line.startswith(b"X-TUID:"))


def normed(got):
    out = {norm(b): f for b, f in got.items()}
    assert len(out) == len(got)
    return out


def remote_flags(port):
    m = imaplib.IMAP4("127.0.0.1", port)
    m.login("carol", "secret-carol")
    got = normed(imap_bodies(m))
    m.logout()
    return got


def test_mbsync_into_a_folder_on_the_mount(instance, tmp_path):
    remote, port, msgs = remote_account(tmp_path)
    try:
        with stack(instance) as s:
            bob = s.mnt / "bob"
            cfg = instance.root / "mbsyncrc"
            cfg.write_text(f"""IMAPAccount far
Host 127.0.0.1
Port {port}
User carol
Pass secret-carol
SSLType None
AuthMechs LOGIN

IMAPStore far
Account far

MaildirStore near
Inbox {bob}/
SubFolders Maildir++

Channel sync
Far :far:
Near :near:Remote
Create Near
Expunge Both
SyncState *
Sync All
""")

            def mbsync():
                cp = subprocess.run(["mbsync", "-c", str(cfg), "sync"], capture_output=True, text=True, timeout=120)
                assert cp.returncode == 0, cp.stdout + cp.stderr
                m = s.imap()
                try:
                    return normed(imap_bodies(m, "Remote"))
                finally:
                    m.logout()

            got = mbsync()
            far = remote_flags(port)
            assert sorted(got) == sorted(msgs)
            for body in msgs:
                assert set(got[body].split()) - {"\\Recent"} == set(far[body].split()) - {"\\Recent"}
            # its state files are plain files in the folder, and no mailbox
            assert (bob / ".Remote" / ".mbsyncstate").is_file()
            assert (instance.data / "files" / "bob" / ".Remote" / ".mbsyncstate").is_file()
            m = s.imap()
            typ, data = m.list()
            assert not any(b"mbsync" in line or b"uidvalidity" in line for line in data)
            m.logout()
            # a flag set on the mount (a rename) goes to the far side; a new far message comes
            (name,) = [n for n in files(bob / ".Remote" / "cur") + files(bob / ".Remote" / "new")
                       if (bob / ".Remote" / ("cur" if n in files(bob / ".Remote" / "cur") else "new") / n)
                       .read_bytes().startswith(b"From: far0@")]
            sub = "cur" if name in files(bob / ".Remote" / "cur") else "new"
            stem = name.split(":2,")[0]
            os.rename(bob / ".Remote" / sub / name, bob / ".Remote" / "cur" / f"{stem}:2,FS")
            rm = imaplib.IMAP4("127.0.0.1", port)
            rm.login("carol", "secret-carol")
            new = b"From: far9@example.net\r\nSubject: far late\r\n\r\nlate\r\n"
            rm.append("INBOX", None, None, new)
            rm.logout()
            got = mbsync()
            assert sorted(got) == sorted(msgs + [norm(new)])
            far = remote_flags(port)
            assert "\\Flagged" in far[msgs[0]] and "\\Seen" in far[msgs[0]]
            # nothing changes on a third run, and nothing is there twice
            assert mbsync() == got
            s.restart_mount()
            assert mbsync() == got
    finally:
        remote.close()


def test_offlineimap_into_a_folder_on_the_mount(instance, tmp_path):
    remote, port, msgs = remote_account(tmp_path)
    try:
        with stack(instance) as s:
            bob = s.mnt / "bob"
            cfg = instance.root / "offlineimaprc"
            cfg.write_text(f"""[general]
accounts = far
metadata = {instance.root}/offlineimap-meta
ui = quiet

[Account far]
localrepository = near
remoterepository = far

[Repository near]
type = Maildir
localfolders = {bob}
sep = .
nametrans = lambda f: 'Offline' if f == '.Offline' else f
fsync = true

[Repository far]
type = IMAP
remotehost = 127.0.0.1
remoteport = {port}
remoteuser = carol
remotepass = secret-carol
ssl = no
starttls = no
folderfilter = lambda f: f == 'INBOX'
nametrans = lambda f: '.Offline' if f == 'INBOX' else f
""")

            def offlineimap():
                cp = subprocess.run(["offlineimap", "-c", str(cfg), "-o", "-u", "quiet"], capture_output=True,
                                    text=True, timeout=180)
                assert cp.returncode == 0, cp.stdout + cp.stderr
                m = s.imap()
                try:
                    return normed(imap_bodies(m, "Offline"))
                finally:
                    m.logout()

            got = offlineimap()
            assert sorted(got) == sorted(msgs)
            far = remote_flags(port)
            for body in msgs:
                assert set(got[body].split()) - {"\\Recent"} == set(far[body].split()) - {"\\Recent"}
            assert offlineimap() == got
            s.restart_mount()
            assert offlineimap() == got
    finally:
        remote.close()
