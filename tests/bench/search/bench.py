#!/usr/bin/env python3
"""IMAP SEARCH TEXT against Dovecot (run.sh). The same N messages (corpus
messages with unique headers, tests/bench/scale/gen.py) in one INBOX:
Dovecot 2.3 without a full-text plugin reads every message for a TEXT
search; mailkeep asks its words index (doc/search.md) and checks the
candidates. Both are warmed up (Dovecot's index built by a first SELECT and
FETCH, each search run once), then each search runs --reps times,
interleaved; the figure is the median time and the ratio Dovecot/mailkeep
(above 1: mailkeep faster). The answers are compared; a difference is
printed (the two do not decode text alike: HTML, charsets)."""
import argparse
import imaplib
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import benchlib as bl

HERE = Path(__file__).resolve().parent
QUERIES = ["quarterly", "zzabsentzz", "linux kernel", "money", "razor", "sourceforge", "please"]


def imap(port, user, pw):
    m = imaplib.IMAP4("127.0.0.1", port)
    m.login(user, pw)
    typ, d = m.select("INBOX")
    assert typ == "OK", d
    return m, int(d[0])


def search(m, q):
    t = time.monotonic()
    typ, d = m.uid("SEARCH", None, "TEXT", f'"{q}"')
    assert typ == "OK", d
    return time.monotonic() - t, set(d[0].split())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--messages", type=int, required=True)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    work, disk = Path(a.work), Path(a.work) / "disk"
    procs = bl.Procs(work)
    try:
        src = disk / "src"
        env = dict(os.environ, GEN_ONE_FOLDER="1")
        subprocess.run([sys.executable, HERE.parent / "scale" / "gen.py", src, str(a.messages)], env=env, check=True)
        # Dovecot: the Maildir as its user's INBOX
        dv = bl.Dovecot(procs, work / "dovecot", disk / "dovecot", {"bob": "secret"}, imap=True)
        shutil.copytree(src, disk / "dovecot" / "bob" / "Maildir", copy_function=os.link)
        subprocess.run(["chown", "-R", f"{bl.NOBODY_UID}:{bl.NOBODY_GID}", disk / "dovecot"], check=True)
        dv.start()
        # mailkeep
        inst = disk / "mk"
        (inst / "data").mkdir(parents=True)
        port = bl.free_port()
        conf = inst / "mailkeep.conf"
        conf.write_text(f"config_directory = {inst}\ndata_directory = {inst}/data\nlog_target = stderr\n"
                        f"imapd_listen = 127.0.0.1:{port}\nimapd_tls_listen =\n"
                        "imap_max_commands_per_second = 1000000\n")
        mk = [str(bl.BIN / "mailkeep"), "-c", str(conf)]
        subprocess.run(mk + ["user", "add", "bob", "--password-file", "-"], input="secret\n", text=True,
                       check=True, capture_output=True)
        t = time.monotonic()
        subprocess.run(mk + ["import", "-q", "bob", src], check=True, capture_output=True)
        print(f"search benchmark: {a.messages} messages in one INBOX; mailkeep import with the words "
              f"index {time.monotonic() - t:.0f} s", flush=True)
        mp = procs.spawn([bl.BIN / "mailkeep-imapd", "-c", conf, "-f"], "mailkeep-imapd")
        bl.wait_port(port, proc=mp, what="mailkeep-imapd")
        t = time.monotonic()
        dm, dn = imap(dv.imap_port, "bob", "secret")
        dm.fetch("1:*", "(FLAGS)")
        print(f"  Dovecot: first SELECT and FETCH FLAGS of {dn} messages {time.monotonic() - t:.0f} s", flush=True)
        km, kn = imap(port, "bob", "secret")
        assert dn == kn == a.messages, (dn, kn)
        times = {q: {"dovecot": [], "mailkeep": []} for q in QUERIES}
        for q in QUERIES:  # warm-up, and the answers compared
            _, d = search(dm, q)
            _, k = search(km, q)
            if len(d) != len(k):
                print(f"  note: TEXT \"{q}\": Dovecot {len(d)}, mailkeep {len(k)} messages", flush=True)
        for r in range(a.reps):
            for q in QUERIES:
                order = [("dovecot", dm), ("mailkeep", km)] if r % 2 == 0 else [("mailkeep", km), ("dovecot", dm)]
                for name, m in order:
                    times[q][name].append(search(m, q)[0])
        print(f"\n  {'UID SEARCH TEXT':24} {'Dovecot s':>10} {'mailkeep s':>11}  Dovecot/mailkeep")
        ratios = []
        for q in QUERIES:
            d, k = statistics.median(times[q]["dovecot"]), statistics.median(times[q]["mailkeep"])
            rs = [x / y for x, y in zip(times[q]["dovecot"], times[q]["mailkeep"])]
            ratios.append(statistics.median(rs))
            print(f"  {q:24} {d:10.3f} {k:11.4f}  {statistics.median(rs):8.0f}x [{min(rs):.0f}-{max(rs):.0f}]")
        print(f"  median over the searches: {statistics.median(ratios):.0f}x (goal >= 10x, issue 17)")
        dm.logout()
        km.logout()
    finally:
        procs.close() if hasattr(procs, "close") else [procs.stop(p) for p in procs.procs]


if __name__ == "__main__":
    main()
