"""benchlib — what the delivery and IMAP benchmarks share: free ports, a fresh
loop ext4 file system for the mail stores, and the peers and mailkeep started
on 127.0.0.1 under a temporary directory, each ended by its pid.

Nothing here touches the system's own Postfix or Dovecot: each peer gets its
own config directory, queue/base directory and log file under the run's
temporary directory. Everything started is remembered and stopped by close().
"""
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
BUILD = Path(os.environ.get("MAILKEEP_BUILD", REPO / "build"))
BIN = BUILD / "bin"
NOBODY_UID, NOBODY_GID = 65534, 65534


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, host="127.0.0.1", timeout=15.0, proc=None, what="daemon"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{what}: nothing listens on {host}:{port} after {timeout}s")


def median_range(values):
    """(median, min, max) of a non-empty list."""
    return statistics.median(values), min(values), max(values)


def session_cpu(sids):
    """CPU seconds (user + system) used so far by every process in the sessions
    SIDS (each daemon is started as a session leader), including children they
    have already reaped. Live processes are never part of anyone's cutime, so
    adding utime+stime+cutime+cstime of each live process counts each once."""
    tck = os.sysconf("SC_CLK_TCK")
    sids = set(sids)
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(b")") + 2:].split()
        if int(fields[3]) in sids:  # field 6: session
            total += sum(int(x) for x in fields[11:15])  # fields 14-17: utime stime cutime cstime
    return total / tck


def fmt_ratio(r):
    return "-" if r is None else f"{r:.2f}x"


def yescrypt(password):
    """The password hashed as mailkeep hashes new passwords (yescrypt, libxcrypt's
    default cost), so a LOGIN costs both servers the same hashing."""
    import crypt  # noqa: deprecated in 3.11, still here; libcrypt does the work
    import ctypes
    lc = ctypes.CDLL("libcrypt.so.1")
    lc.crypt_gensalt.restype = ctypes.c_char_p
    lc.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    return crypt.crypt(password, lc.crypt_gensalt(b"$y$", 0, None, 0).decode())


class Procs:
    """Processes started for a run; each in its own session so that stopping
    one (by its pid, as a process group led by that pid) ends its children."""

    def __init__(self, logdir: Path):
        self.logdir = logdir
        self.procs = []

    def spawn(self, argv, name, **kw):
        log = open(self.logdir / f"{name}.log", "ab")
        p = subprocess.Popen([str(a) for a in argv], stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True, **kw)
        log.close()
        p.name = name
        p.logfile = self.logdir / f"{name}.log"
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, timeout=15):
        if p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        if p in self.procs:
            self.procs.remove(p)

    def close(self):
        for p in reversed(list(self.procs)):
            self.stop(p)


class LoopFS:
    """A fresh ext4 file system in a file under /tmp, mounted for the run
    (design.md, benchmark hygiene: the root ext4 here stalls on file creation;
    a loop file system with its inode tables and journal written up front
    gives repeatable baselines). Both sides' mail stores go on it."""

    def __init__(self, workdir: Path, size_mb=3072):
        self.image = workdir / "loop.img"
        self.mnt = workdir / "mnt"
        self.mounted = False
        self.mnt.mkdir()
        with open(self.image, "wb") as f:
            f.truncate(size_mb << 20)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0",
                        str(self.image)], check=True)
        subprocess.run(["mount", "-o", "loop", str(self.image), str(self.mnt)], check=True)
        self.mounted = True
        os.chmod(self.mnt, 0o755)

    def close(self):
        if self.mounted:
            subprocess.run(["sync"], check=False)
            for _ in range(20):
                if subprocess.run(["umount", str(self.mnt)], capture_output=True).returncode == 0:
                    self.mounted = False
                    break
                time.sleep(0.5)
            if self.mounted:
                users = subprocess.run(["fuser", "-vm", str(self.mnt)], capture_output=True, text=True)
                print(f"benchlib: {self.mnt} still busy, detached lazily:\n{users.stderr}", file=sys.stderr)
                subprocess.run(["umount", "-l", str(self.mnt)], check=False)
                self.mounted = False
        if self.image.exists():
            self.image.unlink()


def maildir_count(maildir: Path):
    """Messages in a Maildir folder (new/ and cur/; tmp/ is not delivered)."""
    n = 0
    for sub in ("new", "cur"):
        try:
            n += sum(1 for _ in os.scandir(maildir / sub))
        except FileNotFoundError:
            pass
    return n


class Dovecot:
    """Debian's Dovecot with its own config, base_dir and log under ROOT, mail
    in STORE (on the loop file system), users in a passwd-file. fsync settings
    are left at their durable defaults (mail_fsync = optimized: a message is
    fsynced before it is renamed into new/ and before LMTP says 250)."""

    def __init__(self, procs: Procs, root: Path, store: Path, users, lmtp=False, imap=False):
        self.procs = procs
        self.root = root
        self.store = store
        self.users = users
        self.lmtp_port = free_port() if lmtp else None
        self.imap_port = free_port() if imap else None
        root.mkdir(parents=True)
        (root / "run").mkdir()
        (root / "state").mkdir()
        store.mkdir(parents=True, exist_ok=True)
        with open(root / "users", "w") as f:
            for name, pw in users.items():
                home = store / name
                home.mkdir(exist_ok=True)
                os.chown(home, NOBODY_UID, NOBODY_GID)
                f.write(f"{name}:{{CRYPT}}{yescrypt(pw)}:{NOBODY_UID}:{NOBODY_GID}::{home}::\n")
        protocols = " ".join(p for p, on in (("lmtp", lmtp), ("imap", imap)) if on)
        conf = f"""# written by tests/bench/common/benchlib.py for one benchmark run
instance_name = mkbench-{os.getpid()}-{root.name}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = {protocols}
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=CRYPT username_format=%n {root}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%n {root}/users
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.lmtp_port or 0}
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port or 0}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service submission-login {{
  inet_listener submission {{
    port = 0
  }}
}}
protocol imap {{
  mail_max_userip_connections = 10000
}}
"""
        self.conf = root / "dovecot.conf"
        self.conf.write_text(conf)
        self.proc = None

    def start(self):
        self.proc = self.procs.spawn(["dovecot", "-F", "-c", self.conf], f"dovecot-{self.root.name}")
        for port in (self.lmtp_port, self.imap_port):
            if port:
                wait_port(port, proc=self.proc, what="dovecot")
        return self

    def maildir(self, user):
        return self.store / user / "Maildir"

    def stop(self):
        if self.proc is not None:
            self.procs.stop(self.proc)
            self.proc = None


class Mailkeep:
    """A mailkeep instance made by `mailkeep init` in ROOT (on the loop file
    system), its daemons logging to stderr into the run's log directory."""

    def __init__(self, procs: Procs, root: Path, user="bob", password="secret", settings=None):
        self.procs = procs
        self.root = root
        self.conf = root / "mailkeep.conf"
        pwfile = root.parent / f"{root.name}.pw"
        pwfile.write_text(password + "\n")
        subprocess.run([BIN / "mailkeep", "init", "--hostname", "mx.example.org", "--domain", "example.org",
                        root], check=True, capture_output=True)
        self.settings = {"log_target": "stderr", "mydestination": "example.org, localhost"}
        self.settings.update(settings or {})
        self.write_conf()
        # `user add`, not `init --user`: no welcome message, so INBOX holds what the bench puts there
        self.mk("user", "add", user, "--password-file", pwfile)
        pwfile.unlink()
        self.smtp_port = self.lmtp_port = self.imap_port = None
        self.daemons = {}

    def write_conf(self, **extra):
        self.settings.update(extra)
        base = self.conf.read_text().split("\n# benchmark settings\n")[0]
        self.conf.write_text(base + "\n# benchmark settings\n" +
                             "".join(f"{k} = {v}\n" for k, v in self.settings.items()))

    def mk(self, *args, timeout=600):
        cp = subprocess.run([BIN / "mailkeep", "-c", self.conf, *map(str, args)],
                            capture_output=True, text=True, timeout=timeout)
        if cp.returncode != 0:
            raise RuntimeError(f"mailkeep {' '.join(map(str, args))} exited {cp.returncode}: {cp.stderr}")
        return cp.stdout

    def stats(self):
        out = {}
        for line in self.mk("stats").splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                out[parts[0]] = int(parts[1])
        return out

    def start_smtpin(self):
        self.smtp_port, self.lmtp_port = free_port(), free_port()
        self.write_conf(smtpd_listen=f"127.0.0.1:{self.smtp_port}", lmtp_listen=f"127.0.0.1:{self.lmtp_port}",
                        mynetworks="127.0.0.0/8")
        p = self.procs.spawn([BIN / "mailkeep-smtpin", "-c", self.conf, "-f"], "mailkeep-smtpin")
        wait_port(self.smtp_port, proc=p, what="mailkeep-smtpin")
        self.daemons["smtpin"] = p
        return self

    def start_imapd(self):
        self.imap_port = free_port()
        self.write_conf(imapd_listen=f"127.0.0.1:{self.imap_port}", imapd_tls_listen="")
        p = self.procs.spawn([BIN / "mailkeep-imapd", "-c", self.conf, "-f"], "mailkeep-imapd")
        wait_port(self.imap_port, proc=p, what="mailkeep-imapd")
        self.daemons["imapd"] = p
        return self

    def stop(self):
        for p in self.daemons.values():
            self.procs.stop(p)
        self.daemons = {}


def rmtree(path: Path):
    shutil.rmtree(path, ignore_errors=True)
