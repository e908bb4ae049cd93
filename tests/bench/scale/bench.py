#!/usr/bin/env python3
"""Scale benchmark driver (run.sh): BENCH_SCALE messages in one user.

Figures, each beside the native Maildir on the same loop ext4 where one
exists (ratio native/mailkeep: above 1 = mailkeep faster or smaller):
  import     `mailkeep import` of the Maildir++ tree (and the words index
             built after it), messages/s; store bytes against the Maildir's
  ls         `ls -f` of the big folder's cur/ (unsorted), native vs mount
  find       `find | wc -l` over the whole tree, warm and cold (drop_caches)
  grep       `grep -r` for an absent string, warm and cold
  IMAP       LOGIN, SELECT of the big folder, UID FETCH of the newest 50
             ENVELOPEs (a phone's first screen): seconds, mailkeep only
  search     `mailkeep search` of a rare word and IMAP SEARCH TEXT in the big folder
  fsck, backup  seconds for the whole store
"""
import argparse
import imaplib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def sh(*args, **kw):
    cp = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    if cp.returncode != 0:
        sys.exit(f"scale bench: {' '.join(map(str, args))} exited {cp.returncode}: {cp.stderr.strip()[:500]}")
    return cp


def timed(argv, shell=False):
    t = time.monotonic()
    cp = subprocess.run(argv, capture_output=True, shell=shell)
    return time.monotonic() - t, cp.stdout


def drop_caches():
    subprocess.run(["sync"])
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def du(p):
    return int(sh("du", "-sB1", p).stdout.split()[0])


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def row(name, native, mine, unit="s"):
    ratio = native / mine if mine > 0 else float("inf")
    print(f"  {name:34} {native:10.3f} {mine:10.3f} {unit:3}  {ratio:6.2f}x", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--messages", type=int, required=True)
    a = ap.parse_args()
    bin_ = Path(a.build) / "bin"
    work = Path(a.work)
    disk, mnt = work / "disk", work / "mail"
    native = disk / "maildir"
    n = a.messages
    procs = []
    try:
        t0 = time.monotonic()
        sh(sys.executable, HERE / "gen.py", native, n)
        print(f"scale benchmark: {n} messages, 200 folders ({n * 3 // 10} in Big), fresh loop ext4; "
              f"generated in {time.monotonic() - t0:.0f} s", flush=True)
        inst = disk / "inst"
        (inst / "data").mkdir(parents=True)
        conf = inst / "mailkeep.conf"
        port = free_port()
        conf.write_text(f"config_directory = {inst}\ndata_directory = {inst}/data\nlog_target = stderr\n"
                        f"mount_point = {mnt}\nimapd_listen = 127.0.0.1:{port}\nimapd_tls_listen =\n"
                        "imap_max_commands_per_second = 1000000\n")
        mk = [str(bin_ / "mailkeep"), "-c", str(conf)]
        subprocess.run(mk + ["user", "add", "bob", "--password-file", "-"], input="secret\n", text=True,
                       check=True, capture_output=True)
        os.sync()
        t = time.monotonic()
        cp = sh(*mk, "import", "bob", native)
        secs = time.monotonic() - t
        idx = [l for l in cp.stdout.splitlines() if l.startswith("indexed")]
        store_b, md_b = du(inst / "data" / "store"), du(native)
        st = dict(l.split()[:2] for l in sh(*mk, "stats").stdout.splitlines())
        print(f"\n  {'':34} {'native':>10} {'mailkeep':>10}       native/mailkeep")
        print(f"  import: {n / secs:.0f} msg/s ({secs:.0f} s, the words index included: {idx[0] if idx else '-'})")
        row("disk (MB): Maildir vs store", md_b / 1e6, store_b / 1e6, "MB")
        print(f"  {'':34} store: messages {int(st['bytes_encoded']) / 1e6:.0f} MB encoded of "
              f"{int(st['bytes_stored']) / 1e6:.0f} MB, {int(st['free_bytes']) / 1e6:.0f} MB free pages")
        t, _ = timed(mk + ["fsck"])
        print(f"  {'mailkeep fsck':34} {'':10} {t:10.1f} s")
        t, _ = timed(mk + ["backup", str(work / "disk" / "backup")])
        print(f"  {'mailkeep backup':34} {'':10} {t:10.1f} s")
        subprocess.run(["rm", "-rf", str(work / "disk" / "backup")])

        fs = subprocess.Popen([bin_ / "mailkeep-fs", "-c", conf, "-f"], stdout=subprocess.DEVNULL,
                              stderr=open(work / "fs.log", "w"), start_new_session=True)
        procs.append(fs)
        deadline = time.monotonic() + 30
        while not os.path.ismount(mnt):
            if time.monotonic() > deadline or fs.poll() is not None:
                sys.exit("scale bench: the mount did not come up")
            time.sleep(0.1)
        bob = mnt / "bob"
        cmds = [("ls -f Big/cur", ["ls", "-f", "{d}/.Big/cur"]),
                ("find | wc -l", "find '{d}' | wc -l"),
                ("grep -r absent", ["grep", "-r", "-l", "zzabsent-string-zz", "{d}"])]
        for name, cmd in cmds:
            for mode in ("warm", "cold"):
                res = {}
                for side, d in (("native", native), ("mount", bob)):
                    argv = cmd.replace("{d}", str(d)) if isinstance(cmd, str) else [c.replace("{d}", str(d)) for c in cmd]
                    if mode == "warm":  # twice: the first read on the mount also drops atimes
                        timed(argv, shell=isinstance(cmd, str))
                        timed(argv, shell=isinstance(cmd, str))
                    else:
                        drop_caches()
                    res[side], out = timed(argv, shell=isinstance(cmd, str))
                    res[side + "_lines"] = out.count(b"\n")
                row(f"{name} ({mode})", res["native"], res["mount"])
                if name != "grep -r absent" and abs(res["native_lines"] - res["mount_lines"]) > 3:
                    print(f"    note: {res['native_lines']} lines native, {res['mount_lines']} on the mount")

        imapd = subprocess.Popen([bin_ / "mailkeep-imapd", "-c", conf, "-f"], stdout=subprocess.DEVNULL,
                                 stderr=open(work / "imapd.log", "w"), start_new_session=True)
        procs.append(imapd)
        deadline = time.monotonic() + 30
        while True:
            try:
                m = imaplib.IMAP4("127.0.0.1", port)
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("scale bench: imapd did not come up")
                time.sleep(0.1)
        for round_ in ("first", "again"):
            if round_ == "again":
                m = imaplib.IMAP4("127.0.0.1", port)
            t = time.monotonic()
            m.login("bob", "secret")
            t1 = time.monotonic()
            typ, d = m.select("Big")
            t2 = time.monotonic()
            exists = int(d[0])
            typ, d = m.fetch(f"{max(1, exists - 49)}:{exists}", "(UID FLAGS ENVELOPE)")
            t3 = time.monotonic()
            assert typ == "OK" and len([x for x in d if isinstance(x, tuple) or x]) >= 50
            print(f"  IMAP {round_}: LOGIN {t1 - t:.3f} s, SELECT Big ({exists} messages) {t2 - t1:.3f} s, "
                  f"FETCH newest 50 ENVELOPE {t3 - t2:.3f} s", flush=True)
            t = time.monotonic()
            typ, d = m.search(None, "TEXT", "quarterly")
            print(f"  IMAP SEARCH TEXT quarterly in Big: {len(d[0].split())} found in {time.monotonic() - t:.3f} s")
            m.logout()
        t = time.monotonic()
        cp = subprocess.run(mk + ["search", "--limit", "1000000", "bob", "quarterly"], capture_output=True)
        found = len(cp.stdout.splitlines())
        print(f"  mailkeep search quarterly (all 200 folders): {found} found in {time.monotonic() - t:.3f} s")
    finally:
        if os.path.ismount(mnt):
            subprocess.run(["fusermount3", "-u", str(mnt)])
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    os.kill(p.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
