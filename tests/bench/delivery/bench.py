"""Delivery benchmark (issue 3): messages per second accepted durably into a
mailbox, 6 KB messages, 1/8/32 concurrent smtp-source sessions.

Systems, all in the same run, interleaved (a different order per repetition):
  postfix+dovecot  smtp-source -> Postfix smtpd -> queue -> lmtp -> Dovecot LMTP -> Maildir
  postfix+mailkeep (not by default) the same Postfix -> lmtp -> mailkeep-smtpin's LMTP -> store
  dovecot-lmtp     smtp-source -L -> Dovecot LMTP -> Maildir
  mailkeep-smtp    smtp-source -> mailkeep-smtpin (SMTP) -> store
  mailkeep-lmtp    smtp-source -L -> mailkeep-smtpin (LMTP) -> store
  sink             smtp-source -> smtp-sink (stores nothing: the ceiling)

Rate = messages / time from the first connection until the last message is in
the mailbox. For Postfix that is when the last file appears in Dovecot's
Maildir (Postfix's 250 only means queued); for Dovecot's LMTP and mailkeep, 250
is said after the durable write, so it is when smtp-source ends. After each
run the messages are counted in the store (Maildir files; `mailkeep stats`):
a run whose count is short is reported as failed, never as a rate.
Mail stores (and Postfix's queue) live on a fresh loop ext4 file system.

usage: bench.py WORKDIR [--reps N] [--sessions 1,8,32] [--systems a,b] [--messages N1,N8,N32]
"""
import argparse
import os
import pwd
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
import benchlib as bl  # noqa: E402

SMTP_SOURCE = "/usr/sbin/smtp-source"
SMTP_SINK = "/usr/sbin/smtp-sink"
BODY_LEN = 6144
MASTER_CF = """# only what a Postfix that receives over SMTP and delivers over LMTP needs
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
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Postfix:
    """Debian's Postfix with its own config directory (postfix -c DIR), queue on
    the loop file system, data_directory and log under ROOT, listening on a free
    port of 127.0.0.1 and delivering every recipient of example.org over LMTP to
    Dovecot (example.net, when mailkeep runs too, to mailkeep's LMTP)."""

    def __init__(self, procs, root: Path, queue: Path, lmtp_port, mk_lmtp_port=None):
        self.procs = procs
        self.root = root
        self.port = bl.free_port()
        root.mkdir(parents=True)
        data = root.parent / f"{root.name}-data"  # not inside the config dir, which must be root's
        data.mkdir()
        pw = pwd.getpwnam("postfix")
        os.chown(data, pw.pw_uid, pw.pw_gid)
        queue.mkdir(parents=True)
        (root / "main.cf").write_text(f"""# written by tests/bench/delivery/bench.py
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {root}-data
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.example.org
mydomain = example.org
myorigin = $mydomain
mydestination = example.org, example.net
local_recipient_maps =
alias_maps =
alias_database =
local_transport = lmtp:inet:127.0.0.1:{lmtp_port}
{f"transport_maps = inline:{{example.net=lmtp:inet:127.0.0.1:{mk_lmtp_port}}}" if mk_lmtp_port else ""}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
biff = no
append_dot_mydomain = no
""")
        (root / "master.cf").write_text(MASTER_CF.format(listen=f"127.0.0.1:{self.port}"))
        self.queue = queue
        self.pid = None

    def start(self):
        # `postfix start` (start-fg too) leaves a master that made itself a session
        # leader, child of init: it is tracked and ended by the pid in its pid file.
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
        """SIGTERM to the master (as `postfix stop` does; it ends its children),
        then SIGKILL to its process group if it is still there after 15 s."""
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
    def __init__(self, procs):
        self.procs = procs
        self.port = bl.free_port()
        self.proc = None

    def start(self):
        self.proc = self.procs.spawn([SMTP_SINK, "-u", "nobody", f"127.0.0.1:{self.port}", "256"], "smtp-sink")
        bl.wait_port(self.port, proc=self.proc, what="smtp-sink")
        return self


def smtp_source(port, sessions, count, lmtp, rcpt, timeout):
    argv = [SMTP_SOURCE, "-d", "-s", str(sessions), "-m", str(count), "-l", str(BODY_LEN),
            "-f", "sender@example.com", "-t", rcpt, "-M", "client.example.com", "-S", "benchmark"]
    if lmtp:
        argv.append("-L")
    argv.append(f"127.0.0.1:{port}")
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if cp.returncode != 0:
        raise RuntimeError(f"smtp-source exited {cp.returncode}: {cp.stderr.strip()[-400:]}")


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = Path(args.workdir)
        self.logs = self.work / "logs"
        self.logs.mkdir()
        self.procs = bl.Procs(self.logs)
        self.fs = None
        self.postfix = None
        self.systems = {}

    def setup(self):
        want = set(self.args.systems)
        self.fs = bl.LoopFS(self.work, size_mb=self.args.fs_mb)
        mnt = self.fs.mnt
        with_postfix = bool(want & {"postfix+dovecot", "postfix+mailkeep"})
        if with_postfix or "dovecot-lmtp" in want:
            self.dovecot = bl.Dovecot(self.procs, self.work / "dovecot", mnt / "dovecot",
                                      {"bob": "secret", "carol": "secret"}, lmtp=True).start()
        mk_sids = None
        if want & {"mailkeep-smtp", "mailkeep-lmtp", "postfix+mailkeep"}:
            if not (bl.BIN / "mailkeep-smtpin").exists():
                print(f"delivery bench: {bl.BIN}/mailkeep-smtpin not built; mailkeep left out", file=sys.stderr)
            else:
                self.mk = bl.Mailkeep(self.procs, mnt / "mailkeep",
                                      settings={"mydestination": "example.org, example.net, localhost"})
                self.mk.start_smtpin()
                mk_sids = [self.mk.daemons["smtpin"].pid]
        mk_count = lambda: self.mk.stats()["messages"]  # noqa: E731
        if with_postfix:
            self.postfix = Postfix(self.procs, self.work / "postfix", mnt / "postfix-queue",
                                   self.dovecot.lmtp_port, self.mk.lmtp_port if mk_sids else None)
            self.postfix.start()  # self.postfix is set first: close() stops a half-started master
        if "postfix+dovecot" in want:
            self.systems["postfix+dovecot"] = dict(
                port=self.postfix.port, lmtp=False, rcpt="carol@example.org",
                count=lambda: bl.maildir_count(self.dovecot.maildir("carol")), wait_store=True, poll=0.02,
                sids=[self.postfix.pid, self.dovecot.proc.pid])
        if "postfix+mailkeep" in want and mk_sids:
            self.systems["postfix+mailkeep"] = dict(
                port=self.postfix.port, lmtp=False, rcpt="bob@example.net", count=mk_count,
                wait_store=True, poll=0.1, sids=[self.postfix.pid, *mk_sids])
        if "dovecot-lmtp" in want:
            self.systems["dovecot-lmtp"] = dict(
                port=self.dovecot.lmtp_port, lmtp=True, rcpt="bob@example.org",
                count=lambda: bl.maildir_count(self.dovecot.maildir("bob")), wait_store=False,
                sids=[self.dovecot.proc.pid])
        if "mailkeep-smtp" in want and mk_sids:
            self.systems["mailkeep-smtp"] = dict(port=self.mk.smtp_port, lmtp=False, rcpt="bob@example.org",
                                                 count=mk_count, wait_store=False, sids=mk_sids)
        if "mailkeep-lmtp" in want and mk_sids:
            self.systems["mailkeep-lmtp"] = dict(port=self.mk.lmtp_port, lmtp=True, rcpt="bob@example.org",
                                                 count=mk_count, wait_store=False, sids=mk_sids)
        if "sink" in want:
            sink = Sink(self.procs).start()
            self.systems["sink"] = dict(port=sink.port, lmtp=False, rcpt="bob@example.org",
                                        count=None, wait_store=False, sids=[sink.proc.pid])

    def run_one(self, name, sessions, count):
        s = self.systems[name]
        before = s["count"]() if s["count"] else 0
        deadline = self.args.run_timeout
        cpu0 = bl.session_cpu(s["sids"])
        t0 = time.monotonic()
        smtp_source(s["port"], sessions, count, s["lmtp"], s["rcpt"], deadline)
        if s["wait_store"]:
            while s["count"]() < before + count:
                if time.monotonic() - t0 > deadline:
                    raise RuntimeError(f"only {s['count']() - before} of {count} arrived within {deadline}s")
                time.sleep(s["poll"])
        elapsed = time.monotonic() - t0
        cpu = bl.session_cpu(s["sids"]) - cpu0
        if s["count"]:
            got = s["count"]() - before
            if got != count:
                raise RuntimeError(f"{got} of {count} messages in the store after the run")
        return count / elapsed, cpu * 1000 / count

    def run(self):
        names = [n for n in self.args.systems if n in self.systems]
        # warm-up: each system once, not counted
        for n in names:
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
                        print(f"  rep {rep + 1} sessions {sessions:2d} {n:16s} {rate:8.0f} msg/s "
                              f"{cpu_ms:6.2f} CPU-ms/msg", flush=True)
                    except (RuntimeError, subprocess.TimeoutExpired) as e:
                        failures.setdefault((n, sessions), []).append(str(e))
                        print(f"  rep {rep + 1} sessions {sessions:2d} {n:16s} FAILED: {e}", flush=True)
        return results, failures

    def close(self):
        if self.postfix:
            self.postfix.stop()
        self.procs.close()
        if self.fs:
            self.fs.close()


def report(results, cpu, failures, names, sessions_list):
    print()
    print("Delivery: messages/s accepted durably into a mailbox, 6 KB messages "
          "(median [min-max] over repetitions)")
    head = f"{'system':18s}" + "".join(f"{f'{s} session' + ('s' if s > 1 else ''):>26s}" for s in sessions_list)
    print(head)
    med = {}
    for n in names:
        row = f"{n:18s}"
        for s in sessions_list:
            v = results.get((n, s)) or []
            if v:
                m, lo, hi = bl.median_range(v)
                med[(n, s)] = m
                row += f"{f'{m:.0f} [{lo:.0f}-{hi:.0f}]':>26s}"
            else:
                row += f"{'failed' if (n, s) in failures else '-':>26s}"
        print(row)
    print()
    print("Ratios (median of per-repetition ratios [min-max]; goal: mailkeep-smtp >= 3x postfix+dovecot)")
    pairs = [("mailkeep-smtp", "postfix+dovecot"), ("mailkeep-lmtp", "postfix+dovecot"),
             ("mailkeep-lmtp", "dovecot-lmtp"), ("mailkeep-smtp", "dovecot-lmtp"),
             ("postfix+mailkeep", "postfix+dovecot"), ("mailkeep-smtp", "sink"), ("postfix+dovecot", "sink")]
    print(f"{'ratio':36s}" + "".join(f"{f'{s} sess.':>22s}" for s in sessions_list))
    for a, b in pairs:
        if a not in names or b not in names:
            continue
        row = f"{a + ' / ' + b:36s}"
        for s in sessions_list:
            va, vb = results.get((a, s)) or [], results.get((b, s)) or []
            k = min(len(va), len(vb))
            if k:
                m, lo, hi = bl.median_range([va[i] / vb[i] for i in range(k)])
                row += f"{f'{m:.2f}x [{lo:.2f}-{hi:.2f}]':>22s}"
            else:
                row += f"{'-':>22s}"
        print(row)
    if cpu:
        print()
        print("Server CPU per delivered message (user+sys of the daemons' processes, ms; median [min-max]);")
        print("less noisy than msg/s on a shared machine. Ratio: peer / mailkeep-smtp (>1: mailkeep uses less)")
        print(f"{'system':32s}" + "".join(f"{f'{s} sess.':>22s}" for s in sessions_list))
        for n in names:
            if n == "sink":
                continue
            row = f"{n:32s}"
            for s in sessions_list:
                v = cpu.get((n, s)) or []
                row += f"{f'{bl.median_range(v)[0]:.2f} [{min(v):.2f}-{max(v):.2f}]' if v else '-':>22s}"
            print(row)
        if "mailkeep-smtp" in names:
            for b in ("postfix+dovecot", "dovecot-lmtp"):
                if b not in names:
                    continue
                row = f"{b + ' / mailkeep-smtp':32s}"
                for s in sessions_list:
                    va, vb = cpu.get((b, s)) or [], cpu.get(("mailkeep-smtp", s)) or []
                    k = min(len(va), len(vb))
                    r = [va[i] / vb[i] for i in range(k) if vb[i] > 0]
                    row += f"{f'{bl.median_range(r)[0]:.2f}x [{min(r):.2f}-{max(r):.2f}]' if r else '-':>22s}"
                print(row)
    for (n, s), errs in sorted(failures.items()):
        print(f"FAILED {n} with {s} sessions: {errs[0]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workdir")
    ap.add_argument("--reps", type=int, default=int(os.environ.get("DELIVERY_BENCH_REPS", "5")))
    ap.add_argument("--sessions", default="1,8,32")
    ap.add_argument("--messages", default=os.environ.get("DELIVERY_BENCH_MESSAGES", "300,1000,1500"))
    ap.add_argument("--systems", default=os.environ.get(
        "DELIVERY_BENCH_SYSTEMS", "postfix+dovecot,dovecot-lmtp,mailkeep-smtp,mailkeep-lmtp,sink"))
    ap.add_argument("--budget", type=float, default=float(os.environ.get("DELIVERY_BENCH_BUDGET", "300")),
                    help="seconds after which no new run starts")
    ap.add_argument("--run-timeout", type=float, default=120)
    ap.add_argument("--fs-mb", type=int, default=3072)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    args.sessions = [int(x) for x in args.sessions.split(",")]
    args.messages = [int(x) for x in args.messages.split(",")]
    if len(args.messages) != len(args.sessions):
        ap.error("--messages needs one count per --sessions entry")
    args.systems = args.systems.split(",")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("delivery bench: terminated"))
    b = Bench(args)
    try:
        b.setup()
        names = [n for n in args.systems if n in b.systems]
        print(f"delivery bench: {', '.join(names)}; sessions {args.sessions}, messages {args.messages}, "
              f"{args.reps} repetitions; stores on a fresh loop ext4 at {b.fs.mnt}", flush=True)
        results, failures = b.run()
    finally:
        b.close()
    report(results, getattr(b, "cpu", {}), failures, names, args.sessions)
    print(f"(logs were in {b.logs}; removed with the run's temporary directory)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
