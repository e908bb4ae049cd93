"""IMAP benchmark (issue 5): mailkeep-imapd against Debian's Dovecot imapd, in
the same run, over the same messages (the corpus, in the user's INBOX).

Dovecot gets its own config under the run's temporary directory, a passwd-file
user (yescrypt, as mailkeep hashes), plaintext LOGIN on 127.0.0.1, and a
Maildir with one file per corpus message; mailkeep gets an instance made by
`mailkeep init` and the same files through `mailkeep import`. Both stores are
on a fresh loop ext4 file system. Each mix of imapload.py runs for a fixed time
against each server, interleaved (the order changes per repetition), after a
warm-up that reads every message's headers and structure once on both.

Mixes: select, fetch, store, search, append, idle, resync (a phone's QRESYNC
resync), mixed (all of select/fetch/store/search/append at once).

Reported per mix: operations/s (median over repetitions [min-max]) and
latency p50/p95/p99 over all operations of all repetitions, with the ratios
mailkeep/Dovecot (ops/s: above 1 is better; latency: below 1 is better).

usage: bench.py WORKDIR CORPUS [--reps N] [--duration S] [--clients N] [--mixes a,b]
"""
import argparse
import os
import random
import shutil
import signal
import statistics
import sys
import time
from pathlib import Path

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here.parent / "common"))
sys.path.insert(0, str(here))
import benchlib as bl  # noqa: E402
import imapload  # noqa: E402

USER, PASSWORD = "bob", "bench-secret"


def corpus_files(corpus):
    return sorted(Path(d) / f for d, _, fs in os.walk(corpus) for f in fs if f != "README.md")


def pct(values, p):
    v = sorted(values)
    if not v:
        return None
    k = min(len(v) - 1, max(0, int(round(p / 100 * (len(v) - 1)))))
    return v[k]


def setup_mailbox(port, nmsgs):
    """CREATE Bench, check INBOX holds NMSGS, warm both servers up the same way:
    every message's list headers, envelope and structure once, every search once."""
    c = imapload.Imap(port)
    c.login(USER, PASSWORD)
    try:
        c.cmd("CREATE Bench")
    except imapload.ImapError:
        pass
    un, _ = c.cmd("SELECT INBOX")
    n = imapload.exists_of(un)
    if n != nmsgs:
        raise RuntimeError(f"INBOX holds {n} messages, expected {nmsgs}")
    c.cmd(f"FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE {imapload.HEADER_FIELDS})")
    c.cmd("FETCH 1:* (ENVELOPE BODYSTRUCTURE)")
    counts = {}
    for w in imapload.SEARCH_WORDS[:4]:
        counts[f"SUBJECT {w}"] = len(imapload.uids_of(c.cmd(f'UID SEARCH SUBJECT "{w}"')[0]))
    for w in imapload.FROM_WORDS[:4]:
        counts[f"FROM {w}"] = len(imapload.uids_of(c.cmd(f'UID SEARCH FROM "{w}"')[0]))
    counts["BODY linux"] = len(imapload.uids_of(c.cmd('UID SEARCH BODY "linux"')[0]))
    c.close()
    return counts


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = Path(args.workdir)
        self.logs = self.work / "logs"
        self.logs.mkdir()
        self.procs = bl.Procs(self.logs)
        self.fs = None
        self.servers = {}

    def setup(self):
        files = corpus_files(self.args.corpus)
        if self.args.limit:
            files = files[:self.args.limit]
        self.nmsgs = len(files)
        self.fs = bl.LoopFS(self.work, size_mb=self.args.fs_mb)
        mnt = self.fs.mnt
        # Dovecot: one Maildir file per message in cur/, no flags
        dv = bl.Dovecot(self.procs, self.work / "dovecot", mnt / "dovecot", {USER: PASSWORD}, imap=True)
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
        self.servers["dovecot"] = dv.imap_port
        self.sids = {"dovecot": [dv.proc.pid]}
        # mailkeep: the same files through mailkeep import
        if (bl.BIN / "mailkeep-imapd").exists():
            mk = bl.Mailkeep(self.procs, mnt / "mailkeep", user=USER, password=PASSWORD,
                             settings={"imap_max_commands_per_second": "1000000"})
            src = self.work / "corpus-link"
            src.mkdir()
            for i, f in enumerate(files):
                shutil.copyfile(f, src / f"{i:06d}")  # import skips symlinks
            mk.mk("import", "--format", "files", "--mailbox", "INBOX", "-q", USER, src)
            mk.start_imapd()
            self.mk = mk
            self.servers["mailkeep"] = mk.imap_port
            self.sids["mailkeep"] = [mk.daemons["imapd"].pid]
        else:
            print(f"imap bench: {bl.BIN}/mailkeep-imapd not built; Dovecot alone (no ratios)", file=sys.stderr)
        counts = {}
        for name, port in self.servers.items():
            counts[name] = setup_mailbox(port, self.nmsgs)
        if len(counts) == 2 and counts["dovecot"] != counts["mailkeep"]:
            diff = {k: (counts["dovecot"][k], counts["mailkeep"][k]) for k in counts["dovecot"]
                    if counts["dovecot"][k] != counts["mailkeep"][k]}
            print(f"  note: searches answer differently (dovecot, mailkeep): {diff}")
        return counts

    def run(self):
        a = self.args
        cfg_base = {"user": USER, "password": PASSWORD,
                    "corpus_msgs": imapload.load_corpus(a.corpus)}
        res = {(m, s): {"rates": [], "cpu": [], "lat": {}, "detail": {}, "errors": []} for m in a.mixes for s in self.servers}
        rng = random.Random(a.seed)
        t_start = time.monotonic()
        for rep in range(a.reps):
            for mix in a.mixes:
                order = list(self.servers)
                rng.shuffle(order)
                for s in order:
                    if time.monotonic() - t_start > a.budget:
                        print(f"  time budget of {a.budget}s spent: stopping in repetition {rep + 1}")
                        return res
                    cfg = dict(cfg_base, port=self.servers[s])
                    clients = a.phones if mix == "resync" else a.clients
                    sids = self.sids[s]
                    r = imapload.run_mix(cfg, mix, clients, a.duration, seed=rep * 100 + a.mixes.index(mix),
                                         probe=lambda: bl.session_cpu(sids))
                    cpu = r["probe"]  # server CPU within the measured window
                    d = res[(mix, s)]
                    rate = r["ops"] / r["elapsed"] if r["elapsed"] > 0 else 0
                    allv = [x for v in r["latencies"].values() for x in v]
                    if not allv and not r["errors"]:
                        r["errors"].append("no operation completed in the run")
                    if r["errors"]:
                        d["errors"].extend(r["errors"])
                        print(f"  rep {rep + 1} {mix:7s} {s:9s} ERRORS: {r['errors'][:3]}", flush=True)
                    if allv:
                        d["rates"].append(rate)
                        d["cpu"].append(cpu * 1000 / len(allv))
                        for op, v in r["latencies"].items():
                            d["lat"].setdefault(op, []).extend(v)
                        for op, v in r.get("detail", {}).items():
                            d["detail"].setdefault(op, []).extend(v)
                        print(f"  rep {rep + 1} {mix:7s} {s:9s} {rate:8.0f} ops/s  p50 {pct(allv, 50) * 1e3:7.2f} ms"
                              f"  p99 {pct(allv, 99) * 1e3:8.2f} ms  {d['cpu'][-1]:6.2f} CPU-ms/op", flush=True)
        return res

    def close(self):
        self.procs.close()
        if self.fs:
            self.fs.close()


def ms(v):
    return "-" if v is None else f"{v * 1e3:.2f}"


def report(res, mixes, servers, args):
    print()
    print(f"IMAP: {args.clients} clients per mix ({args.phones} phones + 1 changer for resync; "
          f"{args.clients} idlers + 1 appender at 20/s for idle), {args.duration:.0f} s per run, "
          f"{args.reps} repetitions")
    print("ops/s: median [min-max] over repetitions; latency in ms over every operation of every repetition")
    print("CPU-ms/op: the server's processes (user+sys) per measured operation, median; for idle and resync it")
    print("includes the background client's appends and changes")
    print(f"{'mix':8s} {'server':9s} {'ops/s':>20s} {'p50':>9s} {'p95':>9s} {'p99':>9s} {'CPU-ms/op':>10s}")
    for mix in mixes:
        for s in servers:
            d = res[(mix, s)]
            allv = [x for v in d["lat"].values() for x in v]
            if d["rates"]:
                m, lo, hi = bl.median_range(d["rates"])
                rate = f"{m:.0f} [{lo:.0f}-{hi:.0f}]"
            else:
                rate = "failed" if d["errors"] else "-"
            cpu = f"{statistics.median(d['cpu']):.3f}" if d["cpu"] else "-"
            print(f"{mix:8s} {s:9s} {rate:>20s} {ms(pct(allv, 50)):>9s} {ms(pct(allv, 95)):>9s} "
                  f"{ms(pct(allv, 99)):>9s} {cpu:>10s}")
    if len(servers) < 2:
        return
    print()
    print("Ratios mailkeep/Dovecot (ops/s: median of per-repetition ratios [min-max], >1 is better;")
    print("latency percentiles: <1 is better). Goal: ahead of Dovecot on every mix.")
    print("CPU: Dovecot's CPU-ms/op / mailkeep's, >1 means mailkeep uses less.")
    print(f"{'mix':8s} {'ops/s':>22s} {'p50':>8s} {'p95':>8s} {'p99':>8s} {'CPU':>8s}")
    for mix in mixes:
        a, b = res[(mix, "mailkeep")], res[(mix, "dovecot")]
        k = min(len(a["rates"]), len(b["rates"]))
        if mix == "idle":
            rr = "paced (n/a)"  # the appender sets the pace: compare the notification latency
        elif k:
            m, lo, hi = bl.median_range([a["rates"][i] / b["rates"][i] for i in range(k)])
            rr = f"{m:.2f}x [{lo:.2f}-{hi:.2f}]"
        else:
            rr = "-"
        la = [x for v in a["lat"].values() for x in v]
        lb = [x for v in b["lat"].values() for x in v]
        cols = []
        for p in (50, 95, 99):
            pa, pb = pct(la, p), pct(lb, p)
            cols.append(f"{pa / pb:.2f}x" if pa is not None and pb else "-")
        cr = (f"{statistics.median(b['cpu']) / statistics.median(a['cpu']):.2f}x"
              if a["cpu"] and b["cpu"] and statistics.median(a["cpu"]) > 0 else "-")
        print(f"{mix:8s} {rr:>22s} {cols[0]:>8s} {cols[1]:>8s} {cols[2]:>8s} {cr:>8s}")
    print()
    print("Per operation, p50 ms (dovecot / mailkeep):")
    for mix in mixes:
        dv, mk = res[(mix, "dovecot")], res[(mix, "mailkeep")]
        ops = sorted(set(dv["lat"]) | set(mk["lat"])) + sorted(set(dv["detail"]) | set(mk["detail"]))
        parts = []
        for op in ops:
            pd = pct(dv["lat"].get(op) or dv["detail"].get(op) or [], 50)
            pm = pct(mk["lat"].get(op) or mk["detail"].get(op) or [], 50)
            parts.append(f"{op} {ms(pd)}/{ms(pm)}")
        print(f"  {mix:8s} " + ", ".join(parts))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workdir")
    ap.add_argument("corpus")
    ap.add_argument("--reps", type=int, default=int(os.environ.get("IMAP_BENCH_REPS", "3")))
    ap.add_argument("--duration", type=float, default=float(os.environ.get("IMAP_BENCH_DURATION", "2")))
    ap.add_argument("--clients", type=int, default=int(os.environ.get("IMAP_BENCH_CLIENTS", "8")))
    ap.add_argument("--phones", type=int, default=4)
    ap.add_argument("--mixes", default=os.environ.get("IMAP_BENCH_MIXES", ",".join(imapload.MIXES)))
    ap.add_argument("--limit", type=int, default=0, help="only the first N corpus files")
    ap.add_argument("--budget", type=float, default=float(os.environ.get("IMAP_BENCH_BUDGET", "180")),
                    help="seconds after which no new run starts")
    ap.add_argument("--fs-mb", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    args.mixes = args.mixes.split(",")
    for m in args.mixes:
        if m not in imapload.MIXES:
            ap.error(f"unknown mix {m}; known: {', '.join(imapload.MIXES)}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("imap bench: terminated"))
    b = Bench(args)
    try:
        t0 = time.monotonic()
        b.setup()
        print(f"imap bench: {', '.join(b.servers)}; {b.nmsgs} corpus messages in INBOX; mixes "
              f"{', '.join(args.mixes)}; set up in {time.monotonic() - t0:.0f}s; stores on a fresh loop ext4",
              flush=True)
        res = b.run()
        servers = list(b.servers)
    finally:
        b.close()
    report(res, args.mixes, servers, args)
    failed = any(d["errors"] for d in res.values())
    if failed:
        print()
        for (mix, s), d in sorted(res.items()):
            for e in d["errors"][:3]:
                print(f"ERROR {mix} {s}: {e}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
