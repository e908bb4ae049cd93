"""Helpers of the fs tests that need more than the store: imapd beside the
mount (to see over IMAP what was written on the mount) and a mount that can be
restarted. Imported by name (`from mountlib import ...`)."""
import contextlib
import imaplib
import os
import subprocess
import time

from mkhelpers import BIN, free_port, wait_for, wait_port


class Stack:
    """imapd (and smtpin when smtp) and mailkeep-fs over one store with user
    bob (uid 2001, password secret-bob)."""

    def __init__(self, instance, smtp=False, users=("bob",)):
        self.inst = instance
        self.imap_port = free_port()
        self.smtp_port = free_port() if smtp else None
        settings = dict(imapd_listen=f"127.0.0.1:{self.imap_port}", imapd_tls_listen=f"127.0.0.1:{free_port()}")
        if smtp:
            settings.update(smtpd_listen=f"127.0.0.1:{self.smtp_port}",
                            lmtp_listen=f"unix:{instance.data}/run/lmtp", mynetworks="127.0.0.1/32")
        instance.write_conf(**settings)
        instance.data.mkdir(parents=True, exist_ok=True)
        for i, u in enumerate(users):
            instance.mk("user", "add", u, "--password-file", "-", "--uid", str(2001 + i), "--gid",
                        str(2001 + i), input=f"secret-{u}\n")
        self.daemons = []
        if smtp:
            self.daemons.append(instance.spawn(BIN / "mailkeep-smtpin", "-c", instance.conf, "-f"))
            wait_port(self.smtp_port, proc=self.daemons[-1])
        self.daemons.append(instance.spawn(BIN / "mailkeep-imapd", "-c", instance.conf, "-f"))
        wait_port(self.imap_port, proc=self.daemons[-1])
        self.mnt = instance.root / "mail"
        self.fs = None
        self.start_mount()

    def start_mount(self):
        self.fs = self.inst.spawn(BIN / "mailkeep-fs", "-c", self.inst.conf, "-f")
        deadline = time.monotonic() + 10
        while not os.path.ismount(self.mnt):
            if self.fs.poll() is not None:
                raise RuntimeError("mailkeep-fs exited: " + open(self.fs.logfile).read())
            assert time.monotonic() < deadline, "the mount did not appear"
            time.sleep(0.05)

    def stop_mount(self):
        deadline = time.monotonic() + 10
        while os.path.ismount(self.mnt):
            subprocess.run(["fusermount3", "-u", str(self.mnt)], capture_output=True)
            if not os.path.ismount(self.mnt):
                break
            assert time.monotonic() < deadline, "the mount stays busy"
            time.sleep(0.1)
        if self.fs is not None:
            self.fs.wait(10)
            self.fs = None

    def restart_mount(self):
        self.stop_mount()
        self.start_mount()

    def fs_log(self):
        return open(self.fs.logfile).read() if self.fs else ""

    def imap(self, user="bob"):
        m = imaplib.IMAP4("127.0.0.1", self.imap_port)
        m.login(user, f"secret-{user}")
        return m

    def close(self):
        self.stop_mount()
        for d in reversed(self.daemons):
            self.inst.stop(d)


@contextlib.contextmanager
def stack(instance, **kw):
    s = Stack(instance, **kw)
    try:
        yield s
    finally:
        s.close()


def imap_bodies(m, mailbox="INBOX"):
    """{body bytes: flags string} of a mailbox, over IMAP."""
    typ, _ = m.select(mailbox, readonly=True)
    assert typ == "OK", mailbox
    typ, data = m.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
    out = {}
    for item in data:
        if isinstance(item, tuple):
            flags = item[0].split(b"FLAGS (", 1)[1].split(b")", 1)[0].decode()
            out[item[1]] = flags
    return out


def files(d):
    return sorted(p for p in os.listdir(d) if not p.startswith("."))


def wait_imap_has(s, body, mailbox="INBOX", timeout=10):
    def has():
        m = s.imap()
        try:
            return body in imap_bodies(m, mailbox)
        finally:
            m.logout()
    wait_for(has, timeout, "the message over IMAP")
