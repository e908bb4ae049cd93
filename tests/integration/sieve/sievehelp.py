"""Helpers of the Sieve and quota tests: one instance with smtpin (SMTP and
LMTP) and imapd, users made with `mailkeep user add`, scripts put with
`mailkeep sieve put`, results read over IMAP (imaplib)."""
import imaplib
import re
import subprocess
import time

from mkhelpers import BIN, free_port, wait_port


class Mail:
    def __init__(self, smtpin, imapd_cls, helpers):
        self.s = smtpin
        self.inst = smtpin.inst
        self.imap = imapd_cls(self.inst, helpers)
        self.passwords = {}

    def start(self, *users):
        for u in users:
            self.passwords[u] = self.imap.add_user(u)
        self.s.start()
        self.imap.start()
        return self

    def put_script(self, user, text, name="main", activate=True):
        p = self.inst.root / f"{user}-{name}.sieve"
        p.write_bytes(text.encode() if isinstance(text, str) else text)
        args = ["sieve", "put", user, name, str(p)] + (["--activate"] if activate else [])
        return self.inst.mk(*args, check=False)

    def send(self, to, data, sender="alice@example.com", lmtp=False, extra=()):
        args = ["--to", to, "--from", sender or "<>", "--data", "-"]
        if lmtp:
            args += ["--protocol", "LMTP"]
        argv = ["swaks", "--server", f"127.0.0.1:{self.s.lmtp_port if lmtp else self.s.port}",
                "--timeout", "20", *args, *extra]
        return subprocess.run(argv, input=data, capture_output=True, text=True, timeout=60)

    def imap_login(self, user):
        m = imaplib.IMAP4("127.0.0.1", self.imap.port)
        m.login(user, self.passwords[user])
        return m

    def mailboxes(self, user):
        """{mailbox: [(flags, bytes)]} over IMAP."""
        m = self.imap_login(user)
        out = {}
        typ, data = m.list()
        for line in data:
            name = line.decode().rsplit(' "." ', 1)[1].strip('"') if isinstance(line, bytes) else ""
            typ, d = m.select(f'"{name}"', readonly=True)
            if typ != "OK":
                continue
            n = int(d[0])
            msgs = []
            if n:
                typ, d = m.fetch("1:*", "(FLAGS BODY.PEEK[])")
                for item in d:
                    if isinstance(item, tuple):
                        flags = re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1).decode()
                        msgs.append((flags, item[1]))
            out[name] = msgs
        m.logout()
        return out


def message(subject="hello", frm="Alice <alice@example.com>", to="bob@example.org", headers="", body="Hi.\r\n"):
    return (f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Date: Thu, 03 Dec 2026 09:00:00 +0000\r\nMessage-ID: <{time.monotonic_ns()}@example.com>\r\n"
            f"{headers}\r\n{body}")
