"""Outbound benchmark (issue 15): messages per second from submission to the
far end, and server CPU per message, mailkeep against Postfix relaying to the
same smtp-sink, 6 KB messages, 1/8/32 submission sessions.

Both systems take the same submission: STARTTLS, AUTH PLAIN, then one message
after another on each session (Python's smtplib, one process per session),
and relay everything to a relayhost that is one smtp-sink:

  postfix   smtpd (TLS, SASL through a Dovecot auth service) -> queue (one file,
            one fsync per message) -> qmgr -> smtp -> relayhost
  mailkeep  mailkeep-smtpin (submission) -> store (group commit) ->
            mailkeep-smtpout -> relayhost

Rate = messages / time from the first connection until the last message is at
the sink (one file per message, counted). A run whose count is short is
reported as failed, never as a rate. CPU = user+sys of the server's
processes (Postfix's master and children, Dovecot's auth; mailkeep-smtpin and
-smtpout) over the run, per message. Queues and stores live on a fresh loop
ext4 file system; systems are interleaved, in a new order each repetition.

usage: bench.py WORKDIR [--reps N] [--sessions 1,8,32] [--messages N1,N8,N32]
"""
import argparse
import multiprocessing
import os
import pwd
import random
import shutil
import signal
import smtplib
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
import benchlib as bl  # noqa: E402

SMTP_SINK = "/usr/sbin/smtp-sink"
BODY_LEN = 6144
MASTER_CF = """# what a Postfix that takes submissions and relays them needs
{listen}  inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def make_cert(d: Path):
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "30", "-subj", "/CN=mx.example.org", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


class DovecotAuth:
    """A Dovecot with no protocol but its auth service on a TCP port, for
    Postfix's smtpd_sasl_type = dovecot."""

    def __init__(self, procs, root: Path):
        self.procs = procs
        self.port = bl.free_port()
        (root / "run").mkdir(parents=True)
        (root / "state").mkdir()
        # yescrypt, as mailkeep hashes passwords: a login costs both sides the same
        (root / "users").write_text(f"bob:{{CRYPT}}{bl.yescrypt('secret')}\n")
        (root / "dovecot.conf").write_text(f"""instance_name = mk-sendbench-{self.port}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols =
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=CRYPT username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home=/nonexistent
}}
service auth {{
  inet_listener {{
    address = 127.0.0.1
    port = {self.port}
  }}
}}
""")
        self.conf = root / "dovecot.conf"
        self.proc = None

    def start(self):
        self.proc = self.procs.spawn(["dovecot", "-F", "-c", self.conf], "dovecot-auth")
        bl.wait_port(self.port, proc=self.proc, what="dovecot auth")
        return self


class Postfix:
    def __init__(self, procs, root: Path, queue: Path, auth_port, sink_port, cert, key):
        self.procs = procs
        self.root = root
        self.port = bl.free_port()
        root.mkdir(parents=True)
        data = root.parent / f"{root.name}-data"
        data.mkdir()
        pw = pwd.getpwnam("postfix")
        os.chown(data, pw.pw_uid, pw.pw_gid)
        queue.mkdir(parents=True)
        (root / "main.cf").write_text(f"""# written by tests/bench/send/bench.py
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {root}-data
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.example.org
mydomain = example.org
mydestination =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks =
relayhost = [127.0.0.1]:{sink_port}
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:127.0.0.1:{auth_port}
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions =
smtp_tls_security_level = none
smtpd_client_connection_count_limit = 100
default_process_limit = 100
biff = no
append_dot_mydomain = no
""")
        (root / "master.cf").write_text(MASTER_CF.format(listen=f"127.0.0.1:{self.port}"))
        self.queue = queue
        self.pid = None

    def start(self):
        subprocess.run(["postfix", "-c", self.root, "check"], check=True, capture_output=True)
        subprocess.run(["postfix", "-c", self.root, "start"], check=True, capture_output=True)
        pidfile = self.queue / "pid" / "master.pid"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                self.pid = int(pidfile.read_text().split()[0])
                break
            except (OSError, ValueError, IndexError):
                time.sleep(0.05)
        else:
            raise RuntimeError(f"postfix: no pid in {pidfile}")
        bl.wait_port(self.port, what="postfix")
        return self

    def alive(self):
        try:
            with open(f"/proc/{self.pid}/stat", "rb") as f:
                return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
        except OSError:
            return False

    def stop(self):
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 15
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.alive():
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.pid = None


class Sink:
    """One smtp-sink, one file per message in a directory on tmpfs."""

    def __init__(self, procs):
        self.procs = procs
        self.port = bl.free_port()
        base = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.dump = Path(tempfile.mkdtemp(prefix="mk-sendbench-sink-", dir=base))
        os.chmod(self.dump, 0o777)
        self.proc = None

    def start(self):
        self.proc = self.procs.spawn([SMTP_SINK, "-u", "nobody", "-d", f"{self.dump}/%H%M%S.", f"127.0.0.1:{self.port}",
                                      "512"], "smtp-sink")
        bl.wait_port(self.port, proc=self.proc, what="smtp-sink")
        return self

    def count(self):
        return sum(1 for _ in os.scandir(self.dump))

    def clear(self):
        for e in os.scandir(self.dump):
            os.unlink(e.path)

    def remove(self):
        shutil.rmtree(self.dump, ignore_errors=True)


def body(i):
    head = (f"From: bob@example.org\r\nTo: carol@example.com\r\nSubject: bench {i}\r\n"
            f"Message-ID: <bench-{i}-{time.monotonic_ns()}@example.org>\r\n\r\n")
    line = "x" * 70 + "\r\n"
    return (head + line * (BODY_LEN // len(line))).encode()


def worker_init():
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def session(args):
    port, n, first = args
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c = smtplib.SMTP("127.0.0.1", port, timeout=60)
    c.starttls(context=ctx)
    c.login("bob", "secret")
    for i in range(first, first + n):
        c.sendmail("bob@example.org", ["carol@example.com"], body(i))
    c.quit()
    return n


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = Path(args.workdir)
        self.logs = self.work / "logs"
        self.logs.mkdir()
        self.procs = bl.Procs(self.logs)
        self.fs = self.postfix = self.sink = None
        self.systems = {}
        self.pool = multiprocessing.Pool(max(args.sessions), initializer=worker_init)

    def setup(self):
        self.fs = bl.LoopFS(self.work, size_mb=self.args.fs_mb)
        mnt = self.fs.mnt
        self.sink = Sink(self.procs).start()
        cert, key = make_cert(self.work)
        if "postfix" in self.args.systems:
            auth = DovecotAuth(self.procs, self.work / "dovecot").start()
            self.postfix = Postfix(self.procs, self.work / "postfix", mnt / "postfix-queue", auth.port,
                                   self.sink.port, cert, key)
            self.postfix.start()
            self.systems["postfix"] = dict(port=self.postfix.port, sids=[self.postfix.pid, auth.proc.pid])
        if "mailkeep" in self.args.systems:
            mk = bl.Mailkeep(self.procs, mnt / "mailkeep", settings={
                "mydestination": "example.org, localhost", "tls_cert_file": str(cert), "tls_key_file": str(key),
                "relayhost": f"[127.0.0.1]:{self.sink.port}", "smtp_tls_security_level": "none",
                "smtpd_user_message_rate_limit": "0", "smtpd_user_recipient_rate_limit": "0",
                "smtp_connection_cache_time_limit": "2s"})
            sub = bl.free_port()
            mk.write_conf(submission_listen=f"127.0.0.1:{sub}", smtpd_listen="", lmtp_listen="")
            p_in = self.procs.spawn([bl.BIN / "mailkeep-smtpin", "-c", mk.conf, "-f"], "mailkeep-smtpin")
            bl.wait_port(sub, proc=p_in, what="mailkeep-smtpin")
            p_out = self.procs.spawn([bl.BIN / "mailkeep-smtpout", "-c", mk.conf, "-f"], "mailkeep-smtpout")
            time.sleep(0.5)
            if p_out.poll() is not None:
                raise RuntimeError("mailkeep-smtpout exited at start")
            self.mk = mk
            self.systems["mailkeep"] = dict(port=sub, sids=[p_in.pid, p_out.pid])

    def run_one(self, name, sessions, count):
        s = self.systems[name]
        self.sink.clear()
        per = [count // sessions + (1 if k < count % sessions else 0) for k in range(sessions)]
        starts = [sum(per[:k]) for k in range(sessions)]
        cpu0 = bl.session_cpu(s["sids"])
        t0 = time.monotonic()
        sent = sum(self.pool.map(session, [(s["port"], per[k], starts[k]) for k in range(sessions)]))
        while self.sink.count() < count:
            if time.monotonic() - t0 > self.args.run_timeout:
                raise RuntimeError(f"only {self.sink.count()} of {count} at the sink within {self.args.run_timeout}s")
            time.sleep(0.005)
        elapsed = time.monotonic() - t0
        # the queue is empty again: both systems remove a message after the relay's 250
        time.sleep(0.3)
        cpu = bl.session_cpu(s["sids"]) - cpu0
        got = self.sink.count()
        if sent != count or got != count:
            raise RuntimeError(f"{got} of {count} messages at the sink after the run")
        return count / elapsed, cpu * 1000 / count

    def run(self):
        names = [n for n in self.args.systems if n in self.systems]
        for n in names:  # warm-up, not counted
            self.run_one(n, 4, 40)
        results = {(n, s): [] for n in names for s in self.args.sessions}
        self.cpu = {(n, s): [] for n in names for s in self.args.sessions}
        failures = {}
        rng = random.Random(self.args.seed)
        t_start = time.monotonic()
        for rep in range(self.args.reps):
            for sessions, count in zip(self.args.sessions, self.args.messages):
                order = names[:]
                rng.shuffle(order)
                for n in order:
                    if time.monotonic() - t_start > self.args.budget:
                        print(f"  time budget of {self.args.budget}s spent: stopping after {rep} repetitions",
                              flush=True)
                        return results, failures
                    try:
                        rate, cpu_ms = self.run_one(n, sessions, count)
                        results[(n, sessions)].append(rate)
                        self.cpu[(n, sessions)].append(cpu_ms)
                        print(f"  rep {rep + 1} sessions {sessions:2d} {n:9s} {rate:8.0f} msg/s "
                              f"{cpu_ms:6.2f} CPU-ms/msg", flush=True)
                    except (RuntimeError, smtplib.SMTPException, OSError) as e:
                        failures.setdefault((n, sessions), []).append(str(e))
                        print(f"  rep {rep + 1} sessions {sessions:2d} {n:9s} FAILED: {e}", flush=True)
        return results, failures

    def close(self):
        self.pool.terminate()
        self.pool.join()
        if self.postfix:
            self.postfix.stop()
        self.procs.close()
        if self.sink:
            self.sink.remove()
        if self.fs:
            self.fs.close()


def report(results, cpu, failures, names, sessions_list):
    print()
    print("Outbound: messages/s from submission (STARTTLS + AUTH) to the relay host, 6 KB messages "
          "(median [min-max] over repetitions)")
    print(f"{'system':12s}" + "".join(f"{f'{s} session' + ('s' if s > 1 else ''):>24s}" for s in sessions_list))
    for n in names:
        row = f"{n:12s}"
        for s in sessions_list:
            v = results.get((n, s)) or []
            if v:
                m, lo, hi = bl.median_range(v)
                row += f"{f'{m:.0f} [{lo:.0f}-{hi:.0f}]':>24s}"
            else:
                row += f"{'failed' if (n, s) in failures else '-':>24s}"
        print(row)
    print()
    print("Server CPU per message (user+sys, ms; median [min-max])")
    for n in names:
        row = f"{n:12s}"
        for s in sessions_list:
            v = cpu.get((n, s)) or []
            row += f"{f'{bl.median_range(v)[0]:.2f} [{min(v):.2f}-{max(v):.2f}]' if v else '-':>24s}"
        print(row)
    if "mailkeep" in names and "postfix" in names:
        print()
        print("Ratios (median of per-repetition ratios [min-max]; goal >= 1x)")
        row1, row2 = f"{'rate mailkeep/postfix':28s}", f"{'CPU postfix/mailkeep':28s}"
        for s in sessions_list:
            a, b = results.get(("mailkeep", s)) or [], results.get(("postfix", s)) or []
            k = min(len(a), len(b))
            r = [a[i] / b[i] for i in range(k)]
            row1 += f"{f'{bl.median_range(r)[0]:.2f}x [{min(r):.2f}-{max(r):.2f}]' if r else '-':>24s}"
            a, b = cpu.get(("postfix", s)) or [], cpu.get(("mailkeep", s)) or []
            k = min(len(a), len(b))
            r = [a[i] / b[i] for i in range(k) if b[i] > 0]
            row2 += f"{f'{bl.median_range(r)[0]:.2f}x [{min(r):.2f}-{max(r):.2f}]' if r else '-':>24s}"
        print(f"{'':28s}" + "".join(f"{f'{s} sess.':>24s}" for s in sessions_list))
        print(row1)
        print(row2)
    for (n, s), errs in sorted(failures.items()):
        print(f"FAILED {n} with {s} sessions: {errs[0]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workdir")
    ap.add_argument("--reps", type=int, default=int(os.environ.get("SEND_BENCH_REPS", "3")))
    ap.add_argument("--sessions", default="1,8,32")
    ap.add_argument("--messages", default=os.environ.get("SEND_BENCH_MESSAGES", "300,1000,1500"))
    ap.add_argument("--systems", default=os.environ.get("SEND_BENCH_SYSTEMS", "postfix,mailkeep"))
    ap.add_argument("--budget", type=float, default=float(os.environ.get("SEND_BENCH_BUDGET", "300")))
    ap.add_argument("--run-timeout", type=float, default=120)
    ap.add_argument("--fs-mb", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    args.sessions = [int(x) for x in args.sessions.split(",")]
    args.messages = [int(x) for x in args.messages.split(",")]
    if len(args.messages) != len(args.sessions):
        ap.error("--messages needs one count per --sessions entry")
    args.systems = args.systems.split(",")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("send bench: terminated"))
    b = Bench(args)
    names = []
    try:
        b.setup()
        names = [n for n in args.systems if n in b.systems]
        print(f"send bench: {', '.join(names)}; sessions {args.sessions}, messages {args.messages}, "
              f"{args.reps} repetitions; queues on a fresh loop ext4 at {b.fs.mnt}", flush=True)
        results, failures = b.run()
    finally:
        b.close()
    report(results, getattr(b, "cpu", {}), failures, names, args.sessions)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
