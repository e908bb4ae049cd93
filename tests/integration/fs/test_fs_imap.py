"""One mailbox seen from IMAP and from the mount: a change on either side
shows on the other (flags, UIDs, moves, expunges) within a second."""
import contextlib
import imaplib
import os
import re
import subprocess
import time

from mkhelpers import BIN, free_port, wait_port  # noqa: F401
from mkhelpers import wait_for


def files(d):
    return sorted(p for p in os.listdir(d) if not p.startswith("."))


@contextlib.contextmanager
def imap_and_mount(instance, smtp=False):
    """imapd (and smtpin when smtp) and the mount over one store with user bob
    (uid 2001); yields (imap port, smtp port or None, bob's Maildir on the mount)."""
    port, tls_port = free_port(), free_port()
    tls = instance.root / "tls"
    tls.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(tls / "key.pem"), "-out", str(tls / "cert.pem"), "-days", "30",
                    "-subj", "/CN=localhost"], check=True, capture_output=True)
    settings = dict(imapd_listen=f"127.0.0.1:{port}", imapd_tls_listen=f"127.0.0.1:{tls_port}")
    smtp_port = free_port() if smtp else None
    if smtp:
        settings.update(smtpd_listen=f"127.0.0.1:{smtp_port}", lmtp_listen=f"unix:{instance.data}/run/lmtp",
                        mynetworks="127.0.0.1/32")
    instance.write_conf(**settings)
    instance.data.mkdir(parents=True, exist_ok=True)
    instance.mk("user", "add", "bob", "--password-file", "-", "--uid", "2001", "--gid", "2001",
                input="secret-bob\n")
    daemons = []
    if smtp:
        daemons.append(instance.spawn(BIN / "mailkeep-smtpin", "-c", instance.conf, "-f"))
        wait_port(smtp_port, proc=daemons[-1])
    daemons.append(instance.spawn(BIN / "mailkeep-imapd", "-c", instance.conf, "-f"))
    wait_port(port, proc=daemons[-1])
    daemons.append(instance.spawn(BIN / "mailkeep-fs", "-c", instance.conf, "-f"))
    mnt = instance.root / "mail"
    try:
        wait_for(lambda: os.path.ismount(mnt), 10, "the mount")
        yield port, smtp_port, mnt / "bob"
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
        for d in reversed(daemons):
            instance.stop(d)


def test_imap_and_mount_agree(instance):
    with imap_and_mount(instance) as (port, _, bob):
        m = imaplib.IMAP4("127.0.0.1", port)
        m.login("bob", "secret-bob")
        msg = b"From: a@example.org\r\nSubject: over imap\r\n\r\nappended\r\n"
        typ, data = m.append("INBOX", None, None, msg)
        assert typ == "OK"
        uid = int(re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1))
        # IMAP -> mount: the new message, then \Seen
        name = wait_for(lambda: (files(bob / "cur") + files(bob / "new") or [None])[0], 10, "appended mail")
        path = bob / ("cur" if name in files(bob / "cur") else "new") / name
        assert path.read_bytes() == msg
        assert int(os.getxattr(path, "user.mail.uid")) == uid
        m.select("INBOX")
        assert m.uid("STORE", str(uid), "+FLAGS", "(\\Seen \\Answered)")[0] == "OK"
        seen = wait_for(lambda: [n for n in files(bob / "cur") if n.endswith(":2,RS")], 10, "\\Seen on the mount")
        # mount -> IMAP: flags by rename
        os.rename(bob / "cur" / seen[0], bob / "cur" / seen[0].replace(":2,RS", ":2,FRS"))
        typ, data = m.uid("FETCH", str(uid), "(FLAGS)")
        assert b"\\Flagged" in data[0] and b"\\Seen" in data[0] and b"\\Answered" in data[0]
        # mount -> IMAP: a move into Archive, the same bytes under a new UID there
        os.rename(bob / "cur" / seen[0].replace(":2,RS", ":2,FRS"),
                  bob / ".Archive" / "cur" / seen[0].replace(":2,RS", ":2,FRS"))
        m.noop()
        typ, data = m.uid("SEARCH", "ALL")
        assert data[0].split() == []
        m.select("Archive")
        typ, data = m.uid("SEARCH", "ALL")
        (auid,) = data[0].split()
        typ, data = m.uid("FETCH", auid.decode(), "(BODY.PEEK[])")
        assert data[0][1] == msg
        archived = bob / ".Archive" / "cur" / files(bob / ".Archive" / "cur")[0]
        assert int(os.getxattr(archived, "user.mail.uid")) == int(auid)
        # IMAP -> mount: expunge
        m.uid("STORE", auid.decode(), "+FLAGS", "(\\Deleted)")
        m.expunge()
        wait_for(lambda: files(bob / ".Archive" / "cur") == [], 10, "the expunge on the mount")
        m.logout()


def test_smtp_mail_is_new_until_an_imap_select(instance):
    """Mail delivered by smtpin is \\Recent: new/ on the mount and RECENT to
    the first SELECT, which claims it; then it is in cur/ (Maildir's new/ =
    no client has seen it yet). STATUS and EXAMINE look without claiming."""
    import smtplib
    with imap_and_mount(instance, smtp=True) as (port, smtp_port, bob):
        msg = b"From: alice@example.net\r\nTo: bob@example.org\r\nSubject: fresh\r\n\r\nnew mail\r\n"
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as c:
            c.ehlo("client.example.net")
            c.mail("alice@example.net")
            c.rcpt("bob@example.org")
            code, _ = c.data(msg)
        assert code == 250
        (name,) = wait_for(lambda: files(bob / "new"), 10, "the delivered mail in new/")
        assert ":2," not in name  # Maildir: a file in new/ has no info yet
        assert files(bob / "cur") == []
        assert (bob / "new" / name).read_bytes().endswith(msg)

        m = imaplib.IMAP4("127.0.0.1", port)
        m.login("bob", "secret-bob")
        typ, data = m.status("INBOX", "(MESSAGES RECENT UNSEEN)")
        assert b"RECENT 1" in data[0] and b"UNSEEN 1" in data[0], data
        typ, data = m.select("INBOX", readonly=True)  # EXAMINE sees \Recent, leaves it
        assert typ == "OK" and m.untagged_responses.get("RECENT") == [b"1"], m.untagged_responses
        m.close()
        assert files(bob / "new") == [name]
        typ, data = m.select("INBOX")
        assert typ == "OK" and data == [b"1"]
        assert m.untagged_responses.get("RECENT") == [b"1"], m.untagged_responses
        typ, data = m.fetch("1", "(FLAGS)")
        assert b"\\Recent" in data[0] and b"\\Seen" not in data[0], data
        # claimed by this SELECT: the mount shows it in cur/, still unread
        wait_for(lambda: files(bob / "new") == [] and len(files(bob / "cur")) == 1, 10, "the mail in cur/")
        (cur,) = files(bob / "cur")
        assert cur.startswith(name) and cur.endswith(":2,"), cur
        assert (bob / "cur" / cur).read_bytes().endswith(msg)
        # a second client is not the first to see it
        m2 = imaplib.IMAP4("127.0.0.1", port)
        m2.login("bob", "secret-bob")
        m2.select("INBOX")
        assert m2.untagged_responses.get("RECENT") == [b"0"], m2.untagged_responses
        m2.logout()
        # mail arriving while INBOX is selected: this session is the first told
        m.untagged_responses.clear()
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as c:
            c.sendmail("alice@example.net", ["bob@example.org"], msg.replace(b"fresh", b"second"))
        assert m.noop()[0] == "OK"
        assert m.untagged_responses.get("EXISTS") == [b"2"], m.untagged_responses
        assert m.untagged_responses.get("RECENT") == [b"2"], m.untagged_responses
        wait_for(lambda: files(bob / "new") == [] and len(files(bob / "cur")) == 2, 10, "both in cur/")
        m.logout()
