"""Moving-in benchmark (issue 20): mailkeep's IMAP import against mbsync.

A Debian Dovecot (tests/integration/movein/moveinlib.py: IMAPS with a test
CA, Maildir, mail_fsync = never so the source is not what is measured)
holds N messages from the corpus in five folders. Each repetition copies
all of it, interleaved (the order alternates):
  mailkeep  `mailkeep import --password-file F --ca-file CA bob imaps://src@127.0.0.1:PORT`
            into a fresh instance (durable: one fsync'ed commit per batch)
  mbsync    `mbsync -c RC -a` (Far = the Dovecot over IMAPS, Near = a fresh
            Maildir, Patterns *, Create Near, Sync Pull; mbsync's default
            FSync yes: each message file fsync'ed)
  mbsync-nofsync  the same with FSync no (not durable; the cost of the
            copy alone)
Reported: messages/s of each (median [min-max] over the repetitions) and the
ratio mailkeep/mbsync per repetition (median [min-max]); above 1: mailkeep
is faster. Each run's copy is checked (message count) before it counts.

usage: bench.py WORKDIR [--messages N] [--reps N]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

here = Path(__file__).resolve().parent
top = here.parents[2]
sys.path.insert(0, str(top / "tests" / "integration"))
sys.path.insert(0, str(top / "tests" / "integration" / "movein"))
from mkhelpers import BIN  # noqa: E402
from moveinlib import Dovecot, append_all, corpus_messages  # noqa: E402

FOLDERS = [("INBOX", 0.5), ("Sent Items", 0.15), ("Lists/dev", 0.15), ("Old", 0.1), ("Spam", 0.1)]


def fill(dv, n):
    msgs = corpus_messages(n)
    m = dv.connect("src")
    i = 0
    for name, share in FOLDERS:
        k = n - i if name == FOLDERS[-1][0] else int(n * share)
        if name != "INBOX":
            m.create(f'"{name}"')
        append_all(m, name, [(b, "(\\Seen)" if j % 2 else None, 1000000000 + i + j)
                             for j, b in enumerate(msgs[i:i + k])])
        i += k
    m.logout()
    return n


def run_mailkeep(work, dv, rep):
    root = work / f"mk{rep}"
    subprocess.run([BIN / "mailkeep", "init", "--local", root], check=True, capture_output=True)
    conf = root / "mailkeep.conf"
    subprocess.run([BIN / "mailkeep", "-c", conf, "user", "add", "bob", "--password-file", "-"],
                   input=b"pw\n", check=True, capture_output=True)
    pw = work / "src.pw"
    pw.write_text("pw-src\n")
    t0 = time.monotonic()
    cp = subprocess.run([BIN / "mailkeep", "-c", conf, "import", "--password-file", pw, "--ca-file", dv.ca,
                         "bob", dv.url("src")], capture_output=True, text=True)
    dt = time.monotonic() - t0
    if cp.returncode != 0:
        raise SystemExit(f"mailkeep import failed: {cp.stderr}")
    got = int(cp.stdout.split("imported ")[1].split()[0])
    shutil.rmtree(root)
    return got, dt


def count_maildir(path):
    return sum(len(files) for d, _, files in os.walk(path) if os.path.basename(d) in ("cur", "new"))


def run_mbsync(work, dv, rep, fsync=True):
    md = work / f"mbsync{rep}"
    md.mkdir()
    rc = work / f"mbsyncrc{rep}"
    rc.write_text(("" if fsync else "FSync no\n\n") + f"""IMAPAccount src
Host localhost
Port {dv.port}
User src
Pass pw-src
SSLType IMAPS
CertificateFile {dv.ca}

IMAPStore far
Account src

MaildirStore near
Path {md}/
Inbox {md}/INBOX
SubFolders Verbatim

Channel copy
Far :far:
Near :near:
Patterns * !"[Virtual]*"
Create Near
Sync Pull
SyncState *
""")
    t0 = time.monotonic()
    cp = subprocess.run(["mbsync", "-q", "-c", str(rc), "-a"], capture_output=True, text=True)
    dt = time.monotonic() - t0
    if cp.returncode != 0:
        raise SystemExit(f"mbsync failed: {cp.stderr}")
    got = count_maildir(md)
    shutil.rmtree(md)
    return got, dt


def fmt(v):
    return f"{statistics.median(v):,.0f} [{min(v):,.0f}-{max(v):,.0f}]"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("--messages", type=int, default=int(os.environ.get("MOVEIN_BENCH_MESSAGES", 5000)))
    ap.add_argument("--reps", type=int, default=int(os.environ.get("MOVEIN_BENCH_REPS", 3)))
    a = ap.parse_args()
    work = Path(a.work)
    dv = Dovecot({"src": "pw-src"})
    try:
        n = fill(dv, a.messages)
        print(f"movein bench: {n} messages in {len(FOLDERS)} folders on Dovecot (IMAPS, 127.0.0.1), "
              f"{a.reps} interleaved repetitions")
        if shutil.which("imapsync") is None:
            print("  imapsync: not available (not packaged in Debian 12): not compared")
        rates = {"mailkeep": [], "mbsync": [], "mbsync-nofsync": []}
        ratios, ratios_nf = [], []
        runners = {"mailkeep": run_mailkeep, "mbsync": run_mbsync,
                   "mbsync-nofsync": lambda w, d, r: run_mbsync(w, d, r, fsync=False)}
        for rep in range(a.reps):
            order = list(rates) if rep % 2 == 0 else list(reversed(list(rates)))
            r = {}
            for who in order:
                got, dt = runners[who](work, dv, rep)
                if got != n:
                    raise SystemExit(f"{who} copied {got} of {n} messages")
                r[who] = n / dt
                rates[who].append(r[who])
                print(f"  rep {rep + 1}: {who:8s} {n} messages in {dt:6.2f} s = {r[who]:8,.0f} msg/s")
            ratios.append(r["mailkeep"] / r["mbsync"])
            ratios_nf.append(r["mailkeep"] / r["mbsync-nofsync"])
        print(f"mailkeep import : {fmt(rates['mailkeep'])} msg/s")
        print(f"mbsync          : {fmt(rates['mbsync'])} msg/s (FSync yes, its default)")
        print(f"mbsync FSync no : {fmt(rates['mbsync-nofsync'])} msg/s (not durable: a crash may lose mail)")
        print(f"ratio mailkeep/mbsync (msg/s, >1 is better): {statistics.median(ratios):.2f}x "
              f"[{min(ratios):.2f}-{max(ratios):.2f}] over {len(ratios)} runs")
        print(f"ratio mailkeep/mbsync FSync no: {statistics.median(ratios_nf):.2f}x "
              f"[{min(ratios_nf):.2f}-{max(ratios_nf):.2f}]")
    finally:
        dv.close()


if __name__ == "__main__":
    main()
