"""Sieve at delivery, mailkeep against Dovecot + Pigeonhole (issue 18).

Four systems, each an LMTP server fed by Postfix's smtp-source (-L):
  dovecot-lmtp         Dovecot's LMTP, no script (carol)
  dovecot-lmtp+sieve   Dovecot's LMTP with Pigeonhole and script.sieve (bob)
  mailkeep-lmtp        mailkeep-smtpin's LMTP, no script (carol)
  mailkeep-lmtp+sieve  mailkeep-smtpin's LMTP with script.sieve (bob)
The script is a dozen Roundcube-style rules that a test message matches
none of, so every test runs and the message is kept in INBOX. Runs are
interleaved in a random order per repetition; the report gives messages/s
and CPU-ms per message (the server's process tree), medians with min-max,
and the ratios mailkeep / Dovecot with and without the script, and the
script's own cost on each side (with / without)."""
import argparse
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
import benchlib as bl  # noqa: E402

HERE = Path(__file__).resolve().parent
SMTP_SOURCE = "/usr/sbin/smtp-source"
BODY_LEN = 6000


def smtp_source(port, sessions, count, rcpt, timeout):
    argv = [SMTP_SOURCE, "-d", "-L", "-s", str(sessions), "-m", str(count), "-l", str(BODY_LEN),
            "-f", "sender@example.com", "-t", rcpt, "-M", "client.example.com", "-S", "benchmark",
            f"127.0.0.1:{port}"]
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
        self.systems = {}

    def setup(self):
        self.fs = bl.LoopFS(self.work, size_mb=self.args.fs_mb)
        mnt = self.fs.mnt
        script = (HERE / "script.sieve").read_text()
        # Dovecot with Pigeonhole for LMTP; bob has the script, carol none
        self.dovecot = bl.Dovecot(self.procs, self.work / "dovecot", mnt / "dovecot",
                                  {"bob": "secret", "carol": "secret"}, lmtp=True)
        with open(self.dovecot.conf, "a") as f:
            f.write("protocol lmtp {\n  mail_plugins = $mail_plugins sieve\n}\n"
                    "plugin {\n  sieve = file:~/sieve;active=~/.dovecot.sieve\n}\n")
        home = mnt / "dovecot" / "bob"
        (home / ".dovecot.sieve").write_text(script)
        os.chown(home / ".dovecot.sieve", bl.NOBODY_UID, bl.NOBODY_GID)
        self.dovecot.start()
        cp = subprocess.run(["sievec", "-c", str(self.dovecot.conf), str(home / ".dovecot.sieve")],
                            capture_output=True, text=True)
        if cp.returncode != 0:
            raise RuntimeError(f"Pigeonhole refuses the script: {cp.stdout} {cp.stderr}")
        for p in home.glob(".dovecot.svbin"):
            os.chown(p, bl.NOBODY_UID, bl.NOBODY_GID)
        # mailkeep: the same script for bob
        self.mk = bl.Mailkeep(self.procs, mnt / "mailkeep", settings={"spam_filter": "no"})
        pw = self.work / "carol.pw"
        pw.write_text("secret\n")
        self.mk.mk("user", "add", "carol", "--password-file", pw)
        sf = self.work / "script.sieve"
        sf.write_text(script)
        self.mk.mk("sieve", "put", "bob", "bench", sf, "--activate")
        self.mk.start_smtpin()
        mk_sids = [self.mk.daemons["smtpin"].pid]
        mk_count = lambda: self.mk.stats()["messages"]  # noqa: E731
        dv = self.dovecot
        self.systems = {
            "dovecot-lmtp": dict(port=dv.lmtp_port, rcpt="carol@example.org",
                                 count=lambda: bl.maildir_count(dv.maildir("carol")), sids=[dv.proc.pid]),
            "dovecot-lmtp+sieve": dict(port=dv.lmtp_port, rcpt="bob@example.org",
                                       count=lambda: bl.maildir_count(dv.maildir("bob")), sids=[dv.proc.pid]),
            "mailkeep-lmtp": dict(port=self.mk.lmtp_port, rcpt="carol@example.org", count=mk_count, sids=mk_sids),
            "mailkeep-lmtp+sieve": dict(port=self.mk.lmtp_port, rcpt="bob@example.org", count=mk_count,
                                        sids=mk_sids),
        }

    def run_one(self, name, sessions, count):
        s = self.systems[name]
        before = s["count"]()
        cpu0 = bl.session_cpu(s["sids"])
        t0 = time.monotonic()
        smtp_source(s["port"], sessions, count, s["rcpt"], self.args.run_timeout)
        elapsed = time.monotonic() - t0
        cpu = bl.session_cpu(s["sids"]) - cpu0
        got = s["count"]() - before
        if got != count:
            raise RuntimeError(f"{got} of {count} messages in INBOX after the run (the script filed some?)")
        return count / elapsed, cpu * 1000 / count

    def run(self):
        names = list(self.systems)
        for n in names:
            self.run_one(n, 4, 40)  # warm-up, not counted
        results = {n: [] for n in names}
        self.cpu = {n: [] for n in names}
        rng = random.Random(self.args.seed)
        t_start = time.monotonic()
        for rep in range(self.args.reps):
            order = names[:]
            rng.shuffle(order)
            for n in order:
                if time.monotonic() - t_start > self.args.budget:
                    print(f"  time budget of {self.args.budget}s spent after {rep} repetitions", flush=True)
                    return results
                rate, cpu_ms = self.run_one(n, self.args.sessions, self.args.messages)
                results[n].append(rate)
                self.cpu[n].append(cpu_ms)
                print(f"  rep {rep + 1} {n:20s} {rate:8.0f} msg/s {cpu_ms:6.2f} CPU-ms/msg", flush=True)
        return results

    def close(self):
        self.procs.close()
        if self.fs:
            self.fs.close()


def ratio_row(label, a, b):
    k = min(len(a), len(b))
    r = [a[i] / b[i] for i in range(k) if b[i] > 0]
    if not r:
        return f"{label:46s} -"
    m, lo, hi = bl.median_range(r)
    return f"{label:46s} {m:5.2f}x [{lo:.2f}-{hi:.2f}] ({k} runs)"


def report(results, cpu, sessions, messages):
    print()
    print(f"LMTP delivery, {sessions} sessions, {messages} messages of 6 KB per run "
          "(median [min-max] over repetitions)")
    for n in results:
        v, c = results[n], cpu[n]
        if v:
            m, lo, hi = bl.median_range(v)
            cm, clo, chi = bl.median_range(c)
            print(f"  {n:22s} {m:8.0f} msg/s [{lo:.0f}-{hi:.0f}]   {cm:6.2f} CPU-ms/msg [{clo:.2f}-{chi:.2f}]")
    print("Ratios (per repetition, then median [min-max]):")
    print("  " + ratio_row("msg/s mailkeep+sieve / dovecot+sieve", results["mailkeep-lmtp+sieve"],
                           results["dovecot-lmtp+sieve"]))
    print("  " + ratio_row("CPU/msg dovecot+sieve / mailkeep+sieve", cpu["dovecot-lmtp+sieve"],
                           cpu["mailkeep-lmtp+sieve"]))
    print("  " + ratio_row("msg/s mailkeep / dovecot (no script)", results["mailkeep-lmtp"],
                           results["dovecot-lmtp"]))
    print("  " + ratio_row("CPU/msg with script / without, mailkeep", cpu["mailkeep-lmtp+sieve"],
                           cpu["mailkeep-lmtp"]))
    print("  " + ratio_row("CPU/msg with script / without, dovecot", cpu["dovecot-lmtp+sieve"],
                           cpu["dovecot-lmtp"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workdir")
    ap.add_argument("--reps", type=int, default=int(os.environ.get("SIEVE_BENCH_REPS", "5")))
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--messages", type=int, default=400)
    ap.add_argument("--budget", type=float, default=float(os.environ.get("SIEVE_BENCH_BUDGET", "240")))
    ap.add_argument("--run-timeout", type=float, default=120)
    ap.add_argument("--fs-mb", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("sieve bench: terminated"))
    b = Bench(args)
    try:
        b.setup()
        print(f"sieve bench: {', '.join(b.systems)}; {args.sessions} sessions, {args.messages} messages, "
              f"{args.reps} repetitions; stores on a fresh loop ext4 at {b.fs.mnt}", flush=True)
        results = b.run()
    finally:
        b.close()
    report(results, getattr(b, "cpu", {}), args.sessions, args.messages)
    return 0


if __name__ == "__main__":
    sys.exit(main())
