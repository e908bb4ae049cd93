"""Dovecot's imaptest as a load generator: mailkeep-imapd and Dovecot's imapd
side by side in the same run, on one fresh loop ext4, the same user with the
same yescrypt hash, the same corpus messages. Profiles (10 clients each):

  default  imaptest's own mix (LOGIN, LIST, STATUS, SELECT, FETCH, FETCH2,
           STORE, DELETE, EXPUNGE, APPEND, LOGOUT), APPENDing from an mbox
           of corpus messages, in its own mailbox "mix"
  append   sessions stay logged in and APPEND (from the same mbox) into
           "app", with imaptest's DELETE and EXPUNGE keeping it small
  fetch    sessions stay logged in and FETCH (imaptest's FETCH and FETCH2
           items) from INBOX, which holds the imported corpus
  login    LOGIN and LOGOUT only: logins per second with yescrypt

Per profile and command: commands per second for each server, the ratio
mailkeep / Dovecot (median, min-max over the repetitions, run interleaved)
and both servers' protocol error counts (imaptest checks every answer)."""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
import benchlib as bl  # noqa: E402

USER, PASSWORD = "bench", "bench-password"
IMAPTEST = bl.BUILD / "imaptest" / "imaptest" / "src" / "imaptest"
OFF = ["list=0", "status=0", "fetch=0", "fetch2=0", "store=0", "delete=0", "expunge=0", "append=0", "copy=0"]
PROFILES = {
    "default": ["box=mix"],
    # APPEND again with 95% (100% never ends); DELETE+EXPUNGE keep the mailbox small
    "append": ["box=app", "logout=0", "list=0", "status=0", "fetch=0", "fetch2=0", "store=0", "copy=0",
               "append=100,95"],
    "fetch": ["box=INBOX", "logout=0", "list=0", "status=0", "store=0", "delete=0", "expunge=0", "append=0",
              "copy=0", "fetch=100,90", "fetch2=100,90"],
    "login": ["box=INBOX", "select=0", *OFF],
}


def corpus_files(corpus):
    return sorted(p for p in Path(corpus).rglob("*") if p.is_file() and p.name != "README.md")


def write_mbox(path, files):
    with open(path, "wb") as out:
        for p in files:
            b = p.read_bytes()
            if b.startswith(b"From "):
                b = b.split(b"\n", 1)[1]
            lines = b.replace(b"\r\n", b"\n").split(b"\n")
            body = b"\n".join(b">" + ln if re.match(rb">*From ", ln) else ln for ln in lines)
            out.write(b"From user@example.org  Mon Jan  1 00:00:00 2024\n" + body.rstrip(b"\n") + b"\n\n")


def run_imaptest(port, profile, mbox, clients, secs, log):
    env = dict(os.environ, LD_LIBRARY_PATH="/usr/lib/dovecot")
    argv = [str(IMAPTEST), "host=127.0.0.1", f"port={port}", f"user={USER}", f"pass={PASSWORD}",
            f"mbox={mbox}", f"clients={clients}", f"secs={secs}", *PROFILES[profile]]
    cp = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=secs + 120)
    out = cp.stdout + cp.stderr
    log.write_text(out)
    errors = sum(1 for ln in out.splitlines() if "Error" in ln)
    if "Totals:" not in out:
        raise RuntimeError(f"imaptest gave no totals (see {log}):\n{out[-2000:]}")
    tot = out[out.rindex("Totals:"):].splitlines()
    names, counts = tot[1].split(), [int(x) for x in tot[-1].split()]
    avg = [ln for ln in out.splitlines() if ln.endswith("ms/cmd avg")]
    ms = dict(zip(names, [int(x) for x in avg[-1].split()[:-2]])) if avg else {}
    rates = {n: c / secs for n, c in zip(names, counts)}
    return rates, ms, errors


def create_boxes(port):
    import imaplib
    m = imaplib.IMAP4("127.0.0.1", port)
    m.login(USER, PASSWORD)
    for box in ("mix", "app"):
        m.create(box)
    m.logout()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workdir")
    ap.add_argument("corpus")
    ap.add_argument("--reps", type=int, default=int(os.environ.get("IMAPTEST_BENCH_REPS", "3")))
    ap.add_argument("--secs", type=int, default=int(os.environ.get("IMAPTEST_BENCH_SECS", "10")))
    ap.add_argument("--clients", type=int, default=int(os.environ.get("IMAPTEST_BENCH_CLIENTS", "10")))
    ap.add_argument("--messages", type=int, default=int(os.environ.get("IMAPTEST_BENCH_MESSAGES", "1000")))
    ap.add_argument("--profiles", default=os.environ.get("IMAPTEST_BENCH_PROFILES", "default,append,fetch,login"))
    a = ap.parse_args()
    work = Path(a.workdir)
    logs = work / "logs"
    logs.mkdir()
    procs = bl.Procs(logs)
    fs = None
    try:
        files = corpus_files(a.corpus)[:a.messages]
        mbox = work / "corpus.mbox"
        write_mbox(mbox, files[:300])
        fs = bl.LoopFS(work, size_mb=2048)
        servers = {}
        dv = bl.Dovecot(procs, work / "dovecot", fs.mnt / "dovecot", {USER: PASSWORD}, imap=True)
        md = dv.maildir(USER)
        for sub in ("cur", "new", "tmp"):
            (md / sub).mkdir(parents=True)
        t0 = int(time.time()) - 10 * 86400
        for i, f in enumerate(files):
            dst = md / "cur" / f"{t0 + i}.M{i}P{os.getpid()}.bench,S={f.stat().st_size}:2,"
            shutil.copyfile(f, dst)
            os.utime(dst, (t0 + i, t0 + i))
        for p in [md, *md.rglob("*")]:
            os.chown(p, bl.NOBODY_UID, bl.NOBODY_GID)
        dv.start()
        servers["dovecot"] = dv.imap_port
        mk = bl.Mailkeep(procs, fs.mnt / "mailkeep", user=USER, password=PASSWORD,
                         settings={"imap_max_commands_per_second": "1000000"})
        src = work / "corpus-files"
        src.mkdir()
        for i, f in enumerate(files):
            shutil.copyfile(f, src / f"{i:06d}")
        mk.mk("import", "--format", "files", "--mailbox", "INBOX", "-q", USER, src)
        mk.start_imapd()
        servers["mailkeep"] = mk.imap_port
        for port in servers.values():
            create_boxes(port)
        profiles = [p for p in a.profiles.split(",") if p]
        print(f"imaptest bench: {len(files)} corpus messages in INBOX, {a.clients} clients, {a.secs} s per run, "
              f"{a.reps} repetitions (interleaved), profiles {', '.join(profiles)}")
        res = {}  # (profile, server) -> list of (rates, ms, errors)
        for rep in range(a.reps):
            for prof in profiles:
                order = ["dovecot", "mailkeep"] if rep % 2 == 0 else ["mailkeep", "dovecot"]
                for srv in order:
                    r = run_imaptest(servers[srv], prof, mbox, a.clients, a.secs,
                                     logs / f"imaptest-{prof}-{srv}-{rep}.txt")
                    res.setdefault((prof, srv), []).append(r)
        report(res, profiles, a)
    finally:
        procs.close()
        if fs is not None:
            fs.close()


def report(res, profiles, a):
    print()
    for prof in profiles:
        dv, mk = res[(prof, "dovecot")], res[(prof, "mailkeep")]
        cmds = [c for c in dv[0][0] if any(r[0].get(c, 0) > 0 for r in dv + mk)]
        print(f"{prof}: commands/s (median of {a.reps}), mailkeep / Dovecot as a ratio (median, min-max)")
        print(f"  {'command':8} {'dovecot':>9} {'mailkeep':>9} {'ratio':>7}  {'min-max':>13}   "
              f"{'ms/cmd dv':>9} {'ms/cmd mk':>9}")
        for c in cmds:
            d = [r[0].get(c, 0) for r in dv]
            m = [r[0].get(c, 0) for r in mk]
            ratios = [x / y for x, y in zip(m, d) if y > 0]
            dmed = bl.median_range(d)[0]
            mmed = bl.median_range(m)[0]
            rr = bl.median_range(ratios) if ratios else (None, None, None)
            dms = bl.median_range([r[1].get(c, 0) for r in dv])[0]
            mms = bl.median_range([r[1].get(c, 0) for r in mk])[0]
            rng = f"{rr[1]:.2f}-{rr[2]:.2f}" if ratios else "-"
            print(f"  {c:8} {dmed:9.1f} {mmed:9.1f} {bl.fmt_ratio(rr[0]):>7}  {rng:>13}   {dms:9.0f} {mms:9.0f}")
        print(f"  protocol errors: dovecot {sum(r[2] for r in dv)}, mailkeep {sum(r[2] for r in mk)} "
              f"(over {a.reps} runs)")
        print()


if __name__ == "__main__":
    main()
