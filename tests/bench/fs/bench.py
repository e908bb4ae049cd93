#!/usr/bin/env python3
"""Times the same commands over a plain Maildir and over the mount, warm and
cold, interleaved, and prints the median speed ratio (native time / mount
time: 1.0 = as fast as native, above = faster) with min-max.
   bench.py NATIVE_MAILDIR MOUNT_MAILDIR RUNS"""
import os
import statistics
import subprocess
import sys
import time


def commands(d):
    return [
        ("grep -r (absent string)", ["grep", "-r", "-l", "zzabsent-string-zz", d]),
        ("grep -r (common string)", ["grep", "-r", "-l", "quarterly", d]),
        ("find | wc -l", ["sh", "-c", f"find '{d}' | wc -l"]),
        ("du -s", ["du", "-s", d]),
        ("mlist | mscan (INBOX)", ["sh", "-c", f"mlist '{d}' | mscan"]),
    ]


def drop_caches():
    subprocess.run(["sync"])
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def timed(argv, env):
    t = time.monotonic()
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    return time.monotonic() - t, p.stdout


def main():
    native, mount, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    env = dict(os.environ, MBLAZE=os.environ.get("MBLAZE", "/tmp"), COLUMNS="100")
    print(f"fs benchmark: {native} (ext4, loop) vs {mount} (mailkeep-fs), {runs} runs each, interleaved")
    print(f"{'command':28} {'mode':5} {'native s':>9} {'mount s':>9}  ratio (native/mount) median [min-max]")
    for (name, ncmd), (_, mcmd) in zip(commands(native), commands(mount)):
        for mode in ("warm", "cold"):
            nt, mt, ratios = [], [], []
            if mode == "warm":
                # two runs to reach the steady state: on the mount, the first
                # read of a file also invalidates its cached atime, so the run
                # after it does one GETATTR per file; after that none
                n_out = timed(ncmd, env)[1]
                m_out = timed(mcmd, env)[1]
                timed(ncmd, env)
                timed(mcmd, env)
                nl, ml = n_out.count(b"\n"), m_out.count(b"\n")
                if name.startswith(("find", "mlist", "grep")) and nl != ml:
                    print(f"  note: outputs differ in line count: {nl} vs {ml}")
            for r in range(runs):
                order = [(ncmd, nt), (mcmd, mt)] if r % 2 == 0 else [(mcmd, mt), (ncmd, nt)]
                for cmd, acc in order:
                    if mode == "cold":
                        drop_caches()
                    acc.append(timed(cmd, env)[0])
                ratios.append(nt[-1] / mt[-1])
            print(f"{name:28} {mode:5} {statistics.median(nt):9.3f} {statistics.median(mt):9.3f}  "
                  f"{statistics.median(ratios):.2f}x [{min(ratios):.2f}-{max(ratios):.2f}]", flush=True)


if __name__ == "__main__":
    main()
