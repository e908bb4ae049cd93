"""Fixtures for the smtpin tests: a running mailkeep-smtpin on free ports,
users in its store, swaks/smtp-source wrappers, and a small store helper
(storetool.c, built here against build/'s libraries) to read what was stored."""
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

import importlib.util

_spec = importlib.util.spec_from_file_location("mk_shared_conftest", HERE.parent / "conftest.py")
_shared = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_shared)
from mkhelpers import wait_log  # noqa: E402

BIN, BUILD, REPO, free_port, wait_port = _shared.BIN, _shared.BUILD, _shared.REPO, _shared.free_port, _shared.wait_port



@pytest.fixture(scope="session")
def storetool(tmp_path_factory):
    out = tmp_path_factory.mktemp("storetool") / "storetool"
    libs = subprocess.run(["pkg-config", "--libs", "lmdb", "libzstd", "libcrypto", "libssl", "libcrypt"],
                          capture_output=True, text=True).stdout.split()
    san = ["-fsanitize=address,undefined"] if "asan" in str(BUILD) else []
    subprocess.run(["cc", "-std=gnu11", *san, "-I", str(REPO), "-o", str(out), str(HERE / "storetool.c"),
                    str(BUILD / "index" / "libindex.a"), str(BUILD / "lib" / "libmk.a"),
                    *(libs or ["-llmdb", "-lzstd", "-lcrypto", "-lssl", "-lcrypt"]), "-lpthread"], check=True)
    return out


class Smtpin:
    def __init__(self, instance, storetool, settings):
        self.inst = instance
        self.tool = storetool
        self.port = free_port()
        self.lmtp_port = free_port()
        self.policy_port = free_port()
        self.smtps_port = free_port()
        self.store = instance.data / "store"
        self.tls_dir = instance.root / "tls"
        self.proc = None
        base = {
            "smtpd_listen": f"127.0.0.1:{self.port}",
            "smtpd_tls_wrappermode_listen": f"127.0.0.1:{self.smtps_port}",
            "lmtp_listen": f"127.0.0.1:{self.lmtp_port} unix:{instance.data}/run/lmtp",
            "greylist_policy_listen": f"127.0.0.1:{self.policy_port}",
            "mynetworks": "127.0.0.1/32",
            "smtpd_timeout": "30s",
        }
        base.update(settings)
        instance.write_conf(**base)
        self.make_tls()
        self.store.mkdir(parents=True, exist_ok=True)

    def make_tls(self):
        self.tls_dir.mkdir(exist_ok=True)
        cert, key = self.tls_dir / "cert.pem", self.tls_dir / "key.pem"
        if not cert.exists():
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                            "-nodes", "-days", "30", "-subj", "/CN=mx.example.org", "-keyout", str(key),
                            "-out", str(cert)], check=True, capture_output=True)

    def configure(self, **settings):
        self.inst.write_conf(**settings)

    def start(self):
        self.proc = self.inst.spawn(BIN / "mailkeep-smtpin", "-c", self.inst.conf, "-f")
        wait_port(self.port, proc=self.proc)
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None:
            self.inst.stop(self.proc, sig)
            self.proc = None

    def restart(self, **settings):
        self.stop()
        if settings:
            self.configure(**settings)
        return self.start()

    def log(self):
        return Path(self.proc.logfile).read_text(errors="replace") if self.proc else ""

    def wait_log(self, pattern, timeout=10):
        """Waits until the log matches the regex; returns the match."""
        return wait_log(self.log, pattern, timeout)

    def all_logs(self):
        return "".join(Path(p.logfile).read_text(errors="replace") for p in self.inst.procs
                       if p.args[0].endswith("mailkeep-smtpin"))

    def tool_run(self, *args, check=True):
        cp = subprocess.run([str(self.tool), str(self.store), *map(str, args)], capture_output=True)
        if check and cp.returncode != 0:
            raise AssertionError(f"storetool {args}: {cp.returncode} {cp.stderr!r} {cp.stdout!r}")
        return cp

    def useradd(self, name, password="secret"):
        self.tool_run("useradd", name, password)

    def alias(self, address, target):
        self.tool_run("alias", address, target)

    def messages(self, user, mailbox="INBOX"):
        """[(uid, size, sha256, meta)] of a mailbox."""
        out = self.tool_run("list", user, mailbox).stdout.decode()
        msgs = []
        for line in out.splitlines():
            uid, size, sha, meta = line.split(" ", 3)
            msgs.append((int(uid), int(size), sha, meta.replace("\\n", "\n")))
        return msgs

    def body(self, user, uid, mailbox="INBOX"):
        return self.tool_run("cat", user, uid, mailbox).stdout

    def fsck(self):
        return self.tool_run("fsck", check=False)

    def swaks(self, *args, port=None, server="127.0.0.1", timeout=60):
        argv = ["swaks", "--server", f"{server}:{port or self.port}", "--timeout", "20", *map(str, args)]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def smtpin_factory(instance, storetool):
    """smtpin_factory(**settings) -> a configured, not yet started Smtpin."""
    made = []

    def make(**settings):
        s = Smtpin(instance, storetool, settings)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


@pytest.fixture
def smtpin(smtpin_factory):
    s = smtpin_factory()
    s.useradd("bob")
    s.useradd("alice")
    return s.start()


class Raw:
    """A raw SMTP conversation over a socket, for what swaks cannot send."""

    def __init__(self, port, host="127.0.0.1", source=None, timeout=15):
        self.sock = socket.socket()
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def reply(self):
        """One complete (possibly multi-line) reply as text."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise EOFError("connection closed; got " + repr(lines))
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode(errors="replace"))
            if len(line) < 4 or line[3:4] != b"-":
                return "\n".join(lines)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def closed(self, timeout=5):
        """True if the server closes the connection (after any pending replies)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (socket.timeout, ConnectionResetError):
            return False

    def close(self):
        self.sock.close()


@pytest.fixture
def raw():
    conns = []

    def connect(port, **kw):
        r = Raw(port, **kw)
        conns.append(r)
        return r

    yield connect
    for c in conns:
        c.close()


def code_of(reply):
    return int(reply[:3])


def last_reply_codes(swaks_output):
    return [int(m.group(1)) for m in re.finditer(r"^<[~*-]*\s+(\d{3})[ -]", swaks_output, re.M)]
