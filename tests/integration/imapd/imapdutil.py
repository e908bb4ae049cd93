"""Helpers shared by the imapd tests (imported by name: the module name is
unique, unlike "conftest", so it works when several test folders run at once)."""
import imaplib
import os
import socket
import ssl
import subprocess
from pathlib import Path

from mkhelpers import BIN, BUILD, CORPUS, REPO, free_port, wait_port  # noqa: F401


class Imapd:
    def __init__(self, inst, helpers):
        self.inst = inst
        self.port = free_port()
        self.tls_port = free_port()
        self.helpers = helpers
        tls = inst.root / "tls"
        tls.mkdir(exist_ok=True)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", str(tls / "key.pem"), "-out", str(tls / "cert.pem"), "-days", "30",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
        self.cert = tls / "cert.pem"
        inst.write_conf(imapd_listen=f"127.0.0.1:{self.port}", imapd_tls_listen=f"127.0.0.1:{self.tls_port}",
                        auth_penalty="1s", auth_penalty_max="4s")
        self.proc = None

    def add_user(self, name, password=None):
        password = password or f"secret-{name}"
        mk = BIN / "mailkeep"
        cp = None
        if mk.exists():
            cp = self.inst.mk("user", "add", name, "--password-file", "-", input=password + "\n", check=False)
        if cp is None or cp.returncode != 0:
            self.inst.data.mkdir(parents=True, exist_ok=True)
            subprocess.run([str(self.helpers["mkuser"]), str(self.inst.data / "store"), name, password],
                           check=True)
        return password

    def start(self):
        # MAILKEEP_IMAPD runs another build of the daemon (e.g. build/asan's) under the same tests
        binary = os.environ.get("MAILKEEP_IMAPD", str(BIN / "mailkeep-imapd"))
        self.proc = self.inst.spawn(binary, "-c", self.inst.conf, "-f")
        wait_port(self.port, proc=self.proc)
        wait_port(self.tls_port, proc=self.proc)
        return self

    def log(self):
        return Path(self.proc.logfile).read_text(errors="replace")

    def connect(self):
        return imaplib.IMAP4("127.0.0.1", self.port)

    def login(self, user="alice"):
        m = self.connect()
        m.login(user, f"secret-{user}")
        return m

    def connect_tls(self):
        ctx = ssl.create_default_context(cafile=str(self.cert))
        ctx.check_hostname = False
        return imaplib.IMAP4_SSL("127.0.0.1", self.tls_port, ssl_context=ctx)

    def raw(self, source="127.0.0.1"):
        """A plain socket to the server (for probes); returns (sock, greeting)."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10, source_address=(source, 0))
        f = s.makefile("rb")
        return s, f, f.readline()


def message(i, subject=None, body=None, sender="Bob <bob@example.org>"):
    subject = subject or f"test message {i}"
    body = body or f"Body of message {i}.\r\n"
    return (f"From: {sender}\r\nTo: Alice <alice@example.org>\r\nSubject: {subject}\r\n"
            f"Date: Mon, 2{i % 10} Nov 2026 10:00:00 +0000\r\nMessage-ID: <m{i}@example.org>\r\n\r\n{body}").encode()
