#!/usr/bin/env python3
"""Writing messages into the mount against writing them into a plain Maildir
on the same fresh ext4 with an fsync per file (what makes a message durable
there, as the store's commit does on the mount), interleaved, RUNS runs each;
prints the median ratio (native time / mount time: above 1 the mount is
faster) with min-max.
   write.py SRC_DIR NATIVE_DIR MOUNT_USER_DIR RUNS
SRC_DIR holds the messages as plain files named as Maildir messages.
  cp:    cp -r SRC/. DST/new/ (the mount stores each at its close; the time
         runs until all are listed), native: the same then `sync` on every file
  rsync: rsync -a SRC/ DST/new/ (the mount stores each at rsync's rename),
         native: rsync -a --fsync"""
import os
import statistics
import subprocess
import sys
import time


def timed(argv):
    t = time.monotonic()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t


def maildir(top):
    for sub in ("", "cur", "new", "tmp"):
        os.makedirs(os.path.join(top, sub), exist_ok=True)  # on the mount: .F then its cur new tmp


def wait_listed(d, n, t0, timeout=600):
    while len(os.listdir(d)) < n:
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"{d}: only {len(os.listdir(d))} of {n} listed")
        time.sleep(0.02)
    return time.monotonic() - t0


def main():
    src, native, mount, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    n = len(os.listdir(src))
    print(f"fs write benchmark: {n} messages, {runs} runs each, interleaved; native: plain Maildir on "
          f"the same ext4 with an fsync per file")
    print(f"{'command':28} {'native s':>9} {'mount s':>9}  ratio (native/mount) median [min-max]")
    subprocess.run(["sync"])
    for name in ("cp", "rsync -a"):
        nt, mt, ratios = [], [], []
        for r in range(runs):
            tag = f"{name.split()[0]}{r}"
            nd, md = os.path.join(native, f".{tag}"), os.path.join(mount, f".{tag}")
            maildir(nd)
            maildir(md)
            subprocess.run(["sync"])

            def run_native():
                if name == "cp":
                    t = time.monotonic()
                    subprocess.run(["cp", "-r", f"{src}/.", f"{nd}/new/"], check=True)
                    subprocess.run(["sh", "-c", 'find "$1" -type f -exec sync {} +', "sh", f"{nd}/new"],
                                   check=True)
                    return time.monotonic() - t
                return timed(["rsync", "-a", "--fsync", f"{src}/", f"{nd}/new/"])

            def run_mount():
                t = time.monotonic()
                if name == "cp":
                    subprocess.run(["cp", "-r", f"{src}/.", f"{md}/new/"], check=True)
                else:
                    subprocess.run(["rsync", "-a", f"{src}/", f"{md}/new/"], check=True)
                return wait_listed(f"{md}/new", n, t)

            order = [(run_native, nt), (run_mount, mt)] if r % 2 == 0 else [(run_mount, mt), (run_native, nt)]
            for fn, acc in order:
                acc.append(fn())
            ratios.append(nt[-1] / mt[-1])
        print(f"{name:28} {statistics.median(nt):9.3f} {statistics.median(mt):9.3f}  "
              f"{statistics.median(ratios):.2f}x [{min(ratios):.2f}-{max(ratios):.2f}]", flush=True)


if __name__ == "__main__":
    main()
