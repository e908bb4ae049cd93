"""The smtpin benchmark (see run.sh). Bounded: each run has a message count
and a time limit; every process started here is stopped by pid."""
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
BIN = Path(os.environ.get("MAILKEEP_BUILD", REPO / "build")) / "bin"
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
MESSAGES = int(os.environ.get("BENCH_MESSAGES", "1000"))
SIZE = 6144
SESSIONS = [1, 8, 32]
LIMIT = 300  # seconds per run, at most


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20, what=""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what}: nothing listens on {port}")


def smtp_source(port, sessions, count, lmtp=False):
    argv = ["smtp-source", "-s", str(sessions), "-m", str(count), "-l", str(SIZE), "-f", "bench@example.com",
            "-t", "bob@example.org"] + (["-L"] if lmtp else []) + [f"127.0.0.1:{port}"]
    t = time.monotonic()
    subprocess.run(argv, check=True, timeout=LIMIT, stdout=subprocess.DEVNULL)
    return time.monotonic() - t


class Smtpin:
    name = "mailkeep smtpin"

    def __init__(self, root):
        self.root = root / "smtpin"
        self.root.mkdir()
        self.port = free_port()
        conf = self.root / "mailkeep.conf"
        conf.write_text(f"""config_directory = {self.root}
data_directory = {self.root}/data
myhostname = mx.example.org
mydestination = example.org
log_target = stderr
smtpd_listen = 127.0.0.1:{self.port}
lmtp_listen = 127.0.0.1:{free_port()}
mynetworks = 127.0.0.1/32
smtpd_tls_security_level = none
""")
        self.conf = conf
        subprocess.run([str(BIN / "mailkeep"), "-c", str(conf), "user", "add", "bob"], input="secret\nsecret\n",
                       text=True, capture_output=True)
        self.log = open(self.root / "smtpin.log", "wb")
        self.proc = subprocess.Popen([str(BIN / "mailkeep-smtpin"), "-c", str(conf), "-f"], stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        wait_port(self.port, what="smtpin (see its log)")

    def run(self, sessions, count):
        before = self.log_count()
        secs = smtp_source(self.port, sessions, count)
        got = self.log_count() - before
        if got != count:
            raise SystemExit(f"smtpin stored {got} of {count}")
        return secs

    def log_count(self):
        self.log.flush()
        return (self.root / "smtpin.log").read_text(errors="replace").count("status=sent")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


class Dovecot:
    name = "Dovecot LMTP"

    def __init__(self, root):
        self.root = root / "dovecot"
        self.root.mkdir()
        self.port = free_port()
        mail = self.root / "mail"
        mail.mkdir()
        shutil.chown(mail, "nobody", "nogroup")
        for d in ("run", "state"):
            (self.root / d).mkdir()
        self.conf = self.root / "dovecot.conf"
        self.conf.write_text(f"""protocols = lmtp
listen = 127.0.0.1
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/dovecot.log
ssl = no
first_valid_uid = 1
mail_location = maildir:{mail}/%n
mail_fsync = optimized
lmtp_save_to_detail_mailbox = no
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={mail}/%n allow_all_users=yes
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.port}
  }}
  process_limit = 64
}}
""")
        self.mail = mail
        subprocess.run(["dovecot", "-c", str(self.conf)], check=True)
        wait_port(self.port, what="dovecot: " + (self.root / "dovecot.log").read_text()[-500:]
                  if (self.root / "dovecot.log").exists() else "dovecot")

    def delivered(self):
        n = 0
        for sub in ("new", "cur"):
            d = self.mail / "bob" / sub
            if d.is_dir():
                n += len(os.listdir(d))
        return n

    def run(self, sessions, count):
        before = self.delivered()
        secs = smtp_source(self.port, sessions, count, lmtp=True)
        if self.delivered() - before != count:
            raise SystemExit(f"dovecot stored {self.delivered() - before} of {count}")
        return secs

    def stop(self):
        subprocess.run(["doveadm", "-c", str(self.conf), "stop"], capture_output=True)


class PostfixDovecot:
    name = "Postfix -> LMTP -> Dovecot"

    def __init__(self, root, dovecot):
        self.dovecot = dovecot
        self.root = root / "postfix"
        self.root.mkdir()
        self.port = free_port()
        q = self.root / "queue"
        q.mkdir()
        (self.root / "data").mkdir()
        shutil.chown(self.root / "data", "postfix")
        cdir = self.root / "etc"
        cdir.mkdir()
        out = []
        for line in Path("/etc/postfix/master.cf").read_text().splitlines():
            f = line.split()
            if line.startswith("#") or not f:
                continue
            if line[0] in " \t":
                out.append(line)
                continue
            if f[0] == "smtp" and f[1] == "inet":
                f[0] = f"127.0.0.1:{self.port}"
            if len(f) >= 8 and f[4] == "y":
                f[4] = "n"
            out.append("  ".join(f[:8]) + ("  " + " ".join(f[8:]) if len(f) > 8 else ""))
        (cdir / "master.cf").write_text("\n".join(out) + "\n")
        (cdir / "main.cf").write_text(f"""compatibility_level = 3.6
queue_directory = {q}
data_directory = {self.root}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = relay.example.com
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
relay_domains = example.org
transport_maps = inline:{{ example.org=lmtp:inet:127.0.0.1:{dovecot.port} }}
smtpd_relay_restrictions = permit_mynetworks, reject
alias_maps =
alias_database =
maillog_file = {self.root}/postfix.log
maillog_file_prefixes = {self.root}
default_process_limit = 100
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
lmtp_destination_concurrency_limit = 32
default_destination_concurrency_limit = 32
in_flow_delay = 0
""")
        self.cdir = cdir
        cp = subprocess.run(["script", "-qec", f"postfix -c {cdir} start", "/dev/null"], capture_output=True,
                            text=True)
        if cp.returncode != 0:
            raise SystemExit("postfix: " + cp.stdout)
        wait_port(self.port)

    def run(self, sessions, count):
        before = self.dovecot.delivered()
        t = time.monotonic()
        smtp_source(self.port, sessions, count)
        while self.dovecot.delivered() - before < count:
            if time.monotonic() - t > LIMIT:
                raise SystemExit("postfix did not deliver everything in time")
            time.sleep(0.01)
        return time.monotonic() - t

    def stop(self):
        subprocess.run(["postfix", "-c", str(self.cdir), "stop"], capture_output=True)


class Sink:
    name = "smtp-sink (ceiling)"

    def __init__(self, root):
        self.port = free_port()
        self.proc = subprocess.Popen(["smtp-sink", "-u", "nobody", f"127.0.0.1:{self.port}", "256"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        wait_port(self.port)

    def run(self, sessions, count):
        return smtp_source(self.port, sessions, count)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def main():
    if os.geteuid() != 0:
        raise SystemExit("bench: needs root (Postfix and Dovecot)")
    root = Path(tempfile.mkdtemp(prefix="mk-bench-smtpin-"))
    root.chmod(0o755)
    peers, started = [], []
    try:
        smtpin = Smtpin(root)
        started.append(smtpin)
        dovecot = Dovecot(root)
        started.append(dovecot)
        pfdc = PostfixDovecot(root, dovecot)
        started.append(pfdc)
        sink = Sink(root)
        started.append(sink)
        peers = [smtpin, pfdc, dovecot, sink]
        results = {(p.name, s): [] for p in peers for s in SESSIONS}
        for rnd in range(ROUNDS):
            for s in SESSIONS:
                count = MESSAGES if s > 1 else max(100, MESSAGES // 3)
                for p in peers:
                    secs = p.run(s, count)
                    results[(p.name, s)].append(count / secs)
            print(f"round {rnd + 1}/{ROUNDS} done", file=sys.stderr)
        print(f"smtpin benchmark: {SIZE}-byte messages, {ROUNDS} round(s), median msg/s (min-max)")
        print(f"{'':28s}" + "".join(f"{s:>22d} sess" for s in SESSIONS))
        for p in peers:
            row = []
            for s in SESSIONS:
                v = results[(p.name, s)]
                row.append(f"{statistics.median(v):8.0f} ({min(v):.0f}-{max(v):.0f})")
            print(f"{p.name:28s}" + "".join(f"{r:>27s}" for r in row))
        print("ratios (smtpin / peer, median of per-round ratios):")
        for p in peers[1:]:
            row = []
            for s in SESSIONS:
                r = [a / b for a, b in zip(results[(smtpin.name, s)], results[(p.name, s)])]
                row.append(f"{statistics.median(r):.2f}x")
            print(f"  vs {p.name:24s}" + "".join(f"{x:>27s}" for x in row))
    finally:
        for p in reversed(started):
            try:
                p.stop()
            except Exception as e:  # keep stopping the others
                print(f"stopping {p.name}: {e}", file=sys.stderr)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
