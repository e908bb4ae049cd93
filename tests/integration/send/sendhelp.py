"""Helpers of the sending tests (imported by name: `from sendhelp import ...`):
a mailkeep instance with smtpin's submission listeners and mailkeep-smtpout,
Postfix's smtp-sink as the far end, dnsmasq as the local DNS server, and a
small store helper (tests/integration/smtpin/storetool.c) to read mailboxes."""
import email
import email.policy
import os
import shutil
import tempfile
import re
import signal
import smtplib
import socket
import subprocess
import time
from pathlib import Path

from mkhelpers import BIN, BUILD, REPO, Instance, client_ctx, free_port, wait_log, wait_port  # noqa: F401

HERE = Path(__file__).resolve().parent


def build_storetool(out):
    libs = subprocess.run(["pkg-config", "--libs", "lmdb", "libzstd", "libcrypto", "libssl", "libcrypt"],
                          capture_output=True, text=True).stdout.split()
    san = ["-fsanitize=address,undefined"] if "asan" in str(BUILD) else []
    subprocess.run(["cc", "-std=gnu11", *san, "-I", str(REPO), "-o", str(out),
                    str(HERE.parent / "smtpin" / "storetool.c"),
                    str(BUILD / "index" / "libindex.a"), str(BUILD / "lib" / "libmk.a"),
                    *(libs or ["-llmdb", "-lcrypto", "-lssl", "-lcrypt"]), "-lpthread"], check=True)
    return out


class Mk:
    """One mailkeep instance: smtpin (MX on smtp_port, submission on sub_port
    with STARTTLS, submissions on subs_port with implicit TLS) and smtpout."""

    def __init__(self, root: Path, storetool, name="mk", host="127.0.0.1", **settings):
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.inst = Instance(root)
        self.tool = storetool
        self.host = host
        self.smtp_port = settings.pop("listen_port", None) or free_port()
        self.sub_port = free_port()
        self.subs_port = free_port()
        self.store = self.inst.data / "store"
        tls = root / "tls"
        tls.mkdir(exist_ok=True)
        self.cert, self.key = tls / "cert.pem", tls / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-days", "30", "-subj", "/CN=mx.example.org", "-keyout", str(self.key),
                        "-out", str(self.cert)], check=True, capture_output=True)
        base = {
            "smtpd_listen": f"{host}:{self.smtp_port}",
            "submission_listen": f"{host}:{self.sub_port}",
            "submissions_listen": f"{host}:{self.subs_port}",
            "lmtp_listen": "",
            "mynetworks": "127.0.0.1/32",
            "smtpd_timeout": "30s",
            "tls_cert_file": str(self.cert),
            "tls_key_file": str(self.key),
            "minimal_backoff_time": "2s",
            "maximal_backoff_time": "4s",
            "smtp_connect_timeout": "5s",
            "smtp_helo_timeout": "10s",
        }
        base.update(settings)
        self.inst.write_conf(**base)
        self.store.mkdir(parents=True, exist_ok=True)
        self.smtpin = None
        self.smtpout = None

    def configure(self, **settings):
        self.inst.write_conf(**settings)

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

    def start_smtpin(self):
        self.smtpin = self.inst.spawn(BIN / "mailkeep-smtpin", "-c", self.inst.conf, "-f")
        wait_port(self.smtp_port, host=self.host, proc=self.smtpin)
        return self

    def start_smtpout(self):
        self.smtpout = self.inst.spawn(BIN / "mailkeep-smtpout", "-c", self.inst.conf, "-f")
        wait_log(self.smtpout_log, r"daemon started", timeout=10)
        return self

    def stop_smtpout(self, sig=signal.SIGTERM):
        if self.smtpout is not None:
            self.inst.stop(self.smtpout, sig)
            self.smtpout = None

    def stop_smtpin(self, sig=signal.SIGTERM):
        if self.smtpin is not None:
            self.inst.stop(self.smtpin, sig)
            self.smtpin = None

    def _logs(self, prog):
        return "".join(Path(p.logfile).read_text(errors="replace") for p in self.inst.procs
                       if str(p.args[0]).endswith(prog))

    def smtpout_log(self):
        return self._logs("mailkeep-smtpout")

    def smtpin_log(self):
        return self._logs("mailkeep-smtpin")

    def mk(self, *args, **kw):
        return self.inst.mk(*args, **kw)

    def queue_ids(self):
        out = self.mk("queue", "list").stdout
        return re.findall(r"^([0-9A-F]{10,})[ !]", out, re.M)

    def submit(self, frm, to, body=None, user="alice", password="secret", port=None, implicit=False,
               headers=None):
        """Sends one message through the submission port (STARTTLS, or implicit TLS)."""
        if body is None:
            hdrs = {"From": frm, "To": ", ".join(to) if isinstance(to, list) else to,
                    "Subject": "test", "Message-ID": f"<{time.monotonic_ns()}@example.org>"}
            hdrs.update(headers or {})
            body = "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\nhello\r\n"
        if implicit:
            c = smtplib.SMTP_SSL(self.host, port or self.subs_port, context=client_ctx(), timeout=30)
        else:
            c = smtplib.SMTP(self.host, port or self.sub_port, timeout=30)
            c.starttls(context=client_ctx())
        try:
            c.login(user, password)
            return c.sendmail(frm, to, body)
        finally:
            c.quit()

    def close(self):
        self.inst.close()


class Sink:
    """Postfix's smtp-sink on host:port, one file per message in dump/."""

    def __init__(self, root: Path, host="127.0.0.1", port=None, args=()):
        # smtp-sink writes as "nobody": not under pytest's 0700 tree
        root = Path(tempfile.mkdtemp(prefix="mk-sink-"))
        self.root = root
        self.dump = root / "dump"
        self.dump.mkdir(exist_ok=True)
        os.chmod(root, 0o777)
        os.chmod(self.dump, 0o777)
        self.host = host
        self.port = port or free_port()
        self.args = list(args)
        self.proc = None

    def start(self):
        log = open(self.root / "sink.log", "ab")
        self.proc = subprocess.Popen(["smtp-sink", "-u", "nobody", "-c", "-d", f"{self.dump}/%Y%m%d%H%M%S.",
                                      *self.args, f"{self.host}:{self.port}", "256"],
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_port(self.port, host=self.host.strip("[]"), proc=self.proc)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        self.proc = None

    def remove(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def files(self):
        return sorted(p for p in self.dump.rglob("*") if p.is_file())

    def messages(self):
        """[(envelope lines, message bytes)] of what arrived."""
        out = []
        for f in self.files():
            data = f.read_bytes()
            out.append(data)
        return out


def parse_sink_file(data: bytes):
    """smtp-sink's dump: X-Client-*/X-Helo-Args/X-Mail-Args/X-Rcpt-Args lines, then the message."""
    env = {"rcpt": []}
    lines = data.split(b"\n")
    i = 0
    while i < len(lines):
        ln = lines[i].rstrip(b"\r")
        if ln.startswith(b"X-Mail-Args: "):
            env["from"] = ln[13:].decode()
        elif ln.startswith(b"X-Rcpt-Args: "):
            env["rcpt"].append(ln[13:].decode())
        elif ln.startswith(b"X-"):
            pass
        else:
            break
        i += 1
    env["msg"] = b"\n".join(lines[i:])
    return env


class Dns:
    """dnsmasq answering for test zones on 127.0.0.1:port, nothing else."""

    def __init__(self, root: Path, records=()):
        self.root = root
        self.port = free_port()
        self.records = list(records)
        self.proc = None

    def start(self):
        args = ["dnsmasq", "--no-daemon", "--keep-in-foreground", f"--port={self.port}",
                "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
                "--no-poll", "--user=root", "--group=root", "--pid-file=", "--local=/test/",
                "--local=/example.com/", "--local=/example.net/", "--log-facility=-"]
        args += self.records
        log = open(self.root / "dnsmasq.log", "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((self.root / "dnsmasq.log").read_text())
            if self._ready():
                return self
            time.sleep(0.05)
        raise TimeoutError("dnsmasq did not answer")

    def _ready(self):
        cp = subprocess.run(["dig", "+short", "+time=1", "+tries=1", "-p", str(self.port), "@127.0.0.1",
                             "ready.test", "A"], capture_output=True, text=True) \
            if _have("dig") else None
        if cp is None:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.settimeout(0.3)
                # a minimal query for ready.test A
                q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05ready\x04test\x00\x00\x01\x00\x01"
                s.sendto(q, ("127.0.0.1", self.port))
                s.recvfrom(512)
                return True
            except OSError:
                return False
            finally:
                s.close()
        return cp.returncode == 0

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)


def _have(prog):
    return any(os.access(os.path.join(d, prog), os.X_OK) for d in os.environ.get("PATH", "").split(":"))


def parse_dsn(data: bytes):
    """The DSN through Python's email module: (message, [per-recipient field dicts])."""
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status"
    parts = list(msg.iter_parts())
    status = [p for p in parts if p.get_content_type() == "message/delivery-status"]
    assert len(status) == 1, [p.get_content_type() for p in parts]
    groups = status[0].get_payload()
    # the first group is per-message, the others per recipient
    rcpts = [{k.lower(): str(v) for k, v in g.items()} for g in groups[1:]]
    return msg, rcpts


def wait_until(pred, timeout=30.0, what="condition", interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)
