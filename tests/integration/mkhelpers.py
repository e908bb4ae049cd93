"""Shared helpers for the integration tests (imported by name: `from mkhelpers import ...`).

Every test gets its own instance directory (config, store, run dir) under
pytest's tmp_path, its own free ports on 127.0.0.1, and the daemons it starts
are ended by pid when it finishes. Area-specific fixtures live in the
conftest.py of each sub-folder (smtpin/, fs/, imapd/, ...).
"""
import os
import random
import re
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("MAILKEEP_BUILD", REPO / "build"))
BIN = BUILD / "bin"
CORPUS = REPO.parent / "shared" / "corpus" / "spamassassin"
if not CORPUS.is_dir():
    CORPUS = Path(os.environ.get("MAILKEEP_CORPUS", "/work/shared/corpus/spamassassin"))


_ports_given = set()


def _ephemeral_range():
    try:
        lo, hi = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now, never given
    twice in this process, and outside the kernel's ephemeral range: a port
    from bind(0) can be taken by any client connection (swaks, smtplib, ...)
    before the daemon binds it, which made daemons fail to start now and then."""
    lo, hi = _ephemeral_range()
    candidates = [r for r in ((10000, lo - 1), (hi + 1, 65535)) if r[1] - r[0] > 1000] or [(10000, 65535)]
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(2000):
        a, b = rng.choice(candidates)
        port = rng.randint(a, b)
        if port in _ports_given:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _ports_given.add(port)
        return port
    raise RuntimeError("no free port found")


def wait_port(port, host="127.0.0.1", timeout=10.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = ""
            logfile = getattr(proc, "logfile", None)
            if logfile:
                try:
                    tail = Path(logfile).read_text(errors="replace")[-2000:]
                except OSError:
                    pass
            raise RuntimeError(f"daemon exited with {proc.returncode} before listening on {port}:\n{tail}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def make_cert(directory, cn):
    """A self-signed P-256 certificate and key for cn in directory (cn.crt,
    cn.key); returns (cert PEM, key PEM)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{cn}.crt", directory / f"{cn}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "30", "-subj", f"/CN={cn}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert.read_text(), key.read_text()


def client_ctx():
    """A TLS client context that accepts any certificate (the tests compare it themselves)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Instance:
    """A mailkeep instance in a temporary directory."""

    def __init__(self, root: Path, settings=None):
        self.root = root
        self.conf = root / "mailkeep.conf"
        self.data = root / "data"
        self.procs = []
        base = {
            "config_directory": str(root),
            "data_directory": str(self.data),
            "myhostname": "mx.example.org",
            "mydomain": "example.org",
            "mydestination": "example.org, example.net, localhost",
            "log_target": "stderr",
            "mount_point": str(root / "mail"),
        }
        base.update(settings or {})
        self.settings = base
        self.write_conf()

    def write_conf(self, **extra):
        self.settings.update(extra)
        self.conf.write_text("".join(f"{k} = {v}\n" for k, v in self.settings.items()))

    def mk(self, *args, check=True, input=None, timeout=600, env=None):
        """Runs the mailkeep command; returns the CompletedProcess (text)."""
        e = dict(os.environ)
        e.update(env or {})
        cp = subprocess.run([str(BIN / "mailkeep"), "-c", str(self.conf), *map(str, args)],
                            input=input, capture_output=True, text=isinstance(input, (str, type(None))),
                            timeout=timeout, env=e)
        if check and cp.returncode != 0:
            raise AssertionError(f"mailkeep {' '.join(map(str, args))} exited {cp.returncode}:\n"
                                 f"stdout: {cp.stdout}\nstderr: {cp.stderr}")
        return cp

    def spawn(self, *argv, **kw):
        """Starts a process that is ended (by pid) when the test ends."""
        log = open(self.root / f"{Path(str(argv[0])).name}.{len(self.procs)}.log", "wb")
        p = subprocess.Popen([str(a) for a in argv], stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True, **kw)
        p.logfile = log.name
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, timeout=10):
        if p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()

    def close(self):
        for p in reversed(self.procs):
            self.stop(p)


def wait_log(read, pattern, timeout=10):
    """Polls read() (a daemon's log text) until it matches the regex; returns the match."""
    deadline = time.monotonic() + timeout
    while True:
        m = re.search(pattern, read())
        if m or time.monotonic() > deadline:
            assert m, f"log never matched {pattern!r}:\n{read()[-3000:]}"
            return m
        time.sleep(0.05)


def wait_for(pred, timeout=5.0, what="condition"):
    """Polls pred until it returns something true; fails the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
