"""Store benchmark driver (called by run.sh).

1. Import: the corpus and a synthetic archive (synth.py: corpus messages as
   templates, runs of real corpus lines with fresh digits, 2-20 KB
   log-uniform, one in 2000 with a 1-4 MB attachment of random bytes) go
   from one mbox file into (a) a fresh mailkeep store with `mailkeep import`
   and (b) a Maildir, each message written to tmp/, fsync'ed and renamed into
   new/ by a simple deliverer (mkbench maildir-import). Messages/s, MB/s of
   message bytes, and bytes on disk (du: allocated blocks). For the big archive
   the Maildir side is timed over its first --maildir-limit seconds (a rate);
   the rest is written unsynced, only to measure the whole Maildir's size.
2. Durable delivery: 8 KB messages from 1, 8 and 32 threads through
   store_deliver (group commit) against fsync-per-message Maildir delivery.
The short runs are interleaved (mailkeep, Maildir, mailkeep, ...) --repeat
times; the figures are medians with min-max.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def sh(*args, **kw):
    cp = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    if cp.returncode != 0:
        sys.exit(f"bench: {' '.join(map(str, args))} exited {cp.returncode}: {cp.stderr.strip()}")
    return cp


def du(path):
    return int(sh("du", "-sB1", path).stdout.split()[0])


def parse(line):
    return {k: float(v) for k, v in (kv.split("=") for kv in line.split())}


def corpus_mbox(corpus, out):
    n = 0
    with open(out, "wb") as f:
        for p in sorted(Path(corpus).rglob("*")):
            if not p.is_file() or p.name == "README.md":
                continue
            data = p.read_bytes()
            if data.startswith(b"From "):
                line, _, msg = data.partition(b"\n")
            else:
                line, msg = b"From MAILER-DAEMON Thu Jan  1 00:00:00 2004", data
            import re
            msg = re.sub(rb"(?m)^(>*From )", rb">\1", msg)
            f.write(line + b"\n" + msg + (b"" if msg.endswith(b"\n") else b"\n") + b"\n")
            n += 1
    return n


def mailkeep_import(a, mbox, tag):
    inst = Path(a.fs) / f"mk-{tag}"
    inst.mkdir()
    conf = inst / "mailkeep.conf"
    conf.write_text(f"config_directory = {inst}\ndata_directory = {inst}/data\nlog_target = stderr\n")
    sh(a.mailkeep, "-c", conf, "user", "add", "bench", "--no-password")
    os.sync()
    t0 = time.monotonic()
    cp = sh(a.mailkeep, "-c", conf, "import", "-q", "--no-index", "bench", mbox)
    secs = time.monotonic() - t0
    st = dict(l.split()[:2] for l in sh(a.mailkeep, "-c", conf, "stats").stdout.splitlines())
    disk = du(inst / "data" / "store")
    t0 = time.monotonic()
    sh(a.mailkeep, "-c", conf, "reindex", "--pending")
    res = {"seconds": secs, "messages": int(st["messages"]), "bytes": int(st["bytes_referenced"]),
           "disk": disk, "encoded": int(st["bytes_encoded"]), "index_seconds": time.monotonic() - t0,
           "disk_indexed": du(inst / "data" / "store")}
    shutil.rmtree(inst)
    return res


def maildir_import(a, mbox, tag, limit=0):
    d = Path(a.fs) / f"md-{tag}"
    os.sync()
    args = [a.mkbench, "maildir-import", mbox, d] + ([str(limit)] if limit else [])
    r = parse(sh(*args).stdout)
    res = {"seconds": r["seconds"], "messages": int(r["messages"]), "bytes": int(r["bytes"]),
           "total_messages": int(r["total_messages"]), "disk": du(d)}
    shutil.rmtree(d)
    return res


def deliver(a, kind, writers, count, tag):
    d = Path(a.fs) / f"dl-{kind}-{tag}"
    os.sync()
    r = parse(sh(a.mkbench, f"deliver-{kind}", d, writers, count).stdout)
    shutil.rmtree(d)
    return r["messages"] / r["seconds"]


def med(xs):
    return statistics.median(xs), min(xs), max(xs)


def fmt_range(xs, f="{:.0f}"):
    m, lo, hi = med(xs)
    return (f.format(m) + (f" ({f.format(lo)}-{f.format(hi)})" if len(xs) > 1 else "")).ljust(24)


def main():
    ap = argparse.ArgumentParser()
    for o in ("mailkeep", "mkbench", "work", "fs", "fs-desc", "corpus"):
        ap.add_argument("--" + o, required=True)
    ap.add_argument("--messages", type=int, default=100000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--maildir-limit", type=float, default=45)
    a = ap.parse_args()
    t_start = time.monotonic()
    print(f"store benchmark: mailkeep vs Maildir (fsync per file), same run")
    print(f"  file system: {a.fs_desc}; {os.cpu_count()} CPUs; repeat {a.repeat}, medians (min-max)")

    # --- import -----------------------------------------------------------------
    cmbox = Path(a.work) / "corpus.mbox"
    n = corpus_mbox(a.corpus, cmbox)
    if n == 0:
        sys.exit(f"bench: no corpus messages under {a.corpus} (set MAILKEEP_CORPUS)")
    mk_runs, md_runs = [], []
    for i in range(a.repeat):
        mk_runs.append(mailkeep_import(a, cmbox, f"c{i}"))
        md_runs.append(maildir_import(a, cmbox, f"c{i}"))
    report_import(f"corpus ({n} messages, {mk_runs[0]['bytes'] / 1e6:.1f} MB)", mk_runs, md_runs)

    smbox = Path(a.work) / "synthetic.mbox"
    print("\n" + sh(sys.executable, Path(__file__).with_name("synth.py"), a.corpus, smbox, a.messages, 42).stdout.strip())
    mk = mailkeep_import(a, smbox, "s")
    md = maildir_import(a, smbox, "s", a.maildir_limit)
    note = ""
    if md["messages"] < md["total_messages"]:
        note = (f"  (Maildir rate timed over its first {md['messages']} messages / {md['seconds']:.0f} s; "
                f"its disk figure is for all {md['total_messages']})")
    report_import(f"synthetic archive ({mk['messages']} messages, {mk['bytes'] / 1e6:.0f} MB)", [mk], [md])
    if note:
        print(note)

    # --- durable delivery ---------------------------------------------------------
    print("\ndurable delivery of 8 KB messages (each caller told 'stored' only once on disk)")
    print("  Maildir: file fsync'ed, then renamed into new/; '+dir': new/ fsync'ed too (the name durable as well)")
    print(f"  {'writers':<8} {'mailkeep msgs/s':<24} {'Maildir msgs/s':<24} {'Maildir+dir msgs/s':<24} "
          f"ratio vs Maildir, vs +dir")
    for writers, count in ((1, 500), (8, 2400), (32, 4800)):
        s, m, md, ratios, ratios2 = [], [], [], [], []
        for i in range(a.repeat):
            s.append(deliver(a, "store", writers, count, f"{writers}.{i}"))
            m.append(deliver(a, "maildir", writers, count, f"{writers}.{i}"))
            md.append(deliver(a, "maildir-dirsync", writers, count, f"{writers}.{i}"))
            ratios.append(s[-1] / m[-1])
            ratios2.append(s[-1] / md[-1])
        print(f"  {writers:<8} {fmt_range(s)} {fmt_range(m)} {fmt_range(md)} "
              f"{fmt_range(ratios, '{:.2f}').strip()}x, {fmt_range(ratios2, '{:.2f}').strip()}x")
    print(f"\n(store bench took {time.monotonic() - t_start:.0f} s)")


def report_import(title, mk_runs, md_runs):
    print(f"\nimport: {title}")
    print(f"  {'':<20} {'msgs/s':<24} {'MB/s':<24} disk MB")
    for name, runs in (("mailkeep import", mk_runs), ("Maildir + fsync", md_runs)):
        rate = [r["messages"] / r["seconds"] for r in runs]
        mbs = [r["bytes"] / r["seconds"] / 1e6 for r in runs]
        disk = [r["disk"] / 1e6 for r in runs]
        print(f"  {name:<20} {fmt_range(rate)} {fmt_range(mbs, '{:.1f}')} {med(disk)[0]:.1f}")
    rr = [(k["messages"] / k["seconds"]) / (d["messages"] / d["seconds"]) for k, d in zip(mk_runs, md_runs)]
    dr = [k["disk"] / d["disk"] for k, d in zip(mk_runs, md_runs)]
    print(f"  ratio mailkeep/Maildir: speed {fmt_range(rr, '{:.1f}').strip()}x, "
          f"disk {fmt_range(dr, '{:.2f}').strip()}x (goal <= 0.40x, issue 17); "
          f"messages compressed to {mk_runs[0]['encoded'] / max(mk_runs[0]['bytes'], 1):.2f}x of their bytes")
    di = [k["disk_indexed"] / d["disk"] for k, d in zip(mk_runs, md_runs)]
    ix = [k["messages"] / k["index_seconds"] for k in mk_runs]
    print(f"  with the words index (mailkeep reindex --pending, {fmt_range(ix).strip()} msg/s): "
          f"disk {fmt_range(di, '{:.2f}').strip()}x of the Maildir")


if __name__ == "__main__":
    sys.exit(main())
