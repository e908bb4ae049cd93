"""Fixtures for the imapd tests: an instance with a TLS certificate, users
alice and bob (password "secret-<name>"), and mailkeep-imapd running on free
ports (plain+STARTTLS and implicit TLS)."""
import imaplib
import os
import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mkhelpers import BIN, BUILD, CORPUS, REPO, free_port, wait_port  # noqa: E402

HERE = Path(__file__).resolve().parent
PKGS = "lmdb libcrypto libssl libevent libevent_openssl libevent_pthreads ldap lber libetpan zlib libcrypt"


def build_helper(name, tmpdir):
    """Compiles a small C test helper from this folder against the built libraries."""
    out = Path(tmpdir) / name
    if out.exists():
        return out
    libs = subprocess.run(["pkg-config", "--libs", *PKGS.split()], capture_output=True, text=True,
                          check=True).stdout.split()
    subprocess.run(["cc", "-std=gnu11", "-O1", "-I", str(REPO), "-o", str(out), str(HERE / f"{name}.c"),
                    str(BUILD / "index" / "libindex.a"), str(BUILD / "lib" / "libmk.a"), *libs,
                    "-pthread", "-lm"], check=True)
    return out


@pytest.fixture(scope="session")
def helpers(tmp_path_factory):
    d = tmp_path_factory.mktemp("helpers")
    return {"mkuser": build_helper("mkuser", d), "etpan_check": build_helper("etpan_check", d)}


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
                        imap_auth_penalty="1s", imap_auth_penalty_max="4s")
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
        self.proc = self.inst.spawn(BIN / "mailkeep-imapd", "-c", self.inst.conf, "-f")
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


@pytest.fixture
def imapd(instance, helpers):
    d = Imapd(instance, helpers)
    d.add_user("alice")
    d.add_user("bob")
    d.start()
    yield d

