#!/usr/bin/python3
"""How long reading a message's user.spam.* attributes takes on the mount
with a large token database (run by tests/bench/spam/run.sh).

A user learns the whole corpus (about 2 M tokens), smtpin delivers messages
to them (each classified at delivery: the verdict is written as metadata),
mailkeep-fs mounts the store, and every user.spam.* attribute of every
delivered message is read with getxattr(2), as getfattr does, several
rounds; then getfattr(1) itself is timed (a process per call). Prints the
median and the 99th percentile per message (all six attributes).

    tests/bench/spam/getfattr.py [CORPUS]
"""
import os
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "integration"))
from mkhelpers import BIN, Instance, free_port, wait_for, wait_port  # noqa: E402

corpus = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CORPUS", "/work/shared/corpus/spamassassin"))
NAMES = ["user.spam.result", "user.spam.probability", "user.spam.confidence", "user.spam.factors",
         "user.spam.tokens", "user.spam.class"]

with tempfile.TemporaryDirectory(prefix="mk-getfattr-") as tmp:
    inst = Instance(Path(tmp))
    port = free_port()
    inst.write_conf(smtpd_listen=f"127.0.0.1:{port}", lmtp_listen=f"unix:{inst.data}/run/lmtp",
                    mynetworks="127.0.0.1/32")
    inst.data.mkdir(parents=True, exist_ok=True)
    inst.mk("user", "add", "bob", "--password-file", "-", "--uid", "2001", "--gid", "2001", input="secret\n")
    t = time.monotonic()
    inst.mk("spam", "train", "--spam", "--user", "bob", corpus / "spam", timeout=1200)
    inst.mk("spam", "train", "--innocent", "--user", "bob", corpus / "ham", timeout=1200)
    st = inst.mk("spam", "stats", "--user", "bob").stdout.split()
    st = dict(zip(st[2::2], st[3::2]))
    print(f"getfattr: bob learned {st['spam_learned']} spam and {st['innocent_learned']} innocent messages in "
          f"{time.monotonic() - t:.0f}s: {st['tokens']} tokens, {int(st['bytes']) / 1e6:.1f} MB of table")
    mount = mnt = None
    try:
        smtpd = inst.spawn(BIN / "mailkeep-smtpin", "-c", inst.conf, "-f")
        wait_port(port, proc=smtpd)
        msgs = sorted((corpus / "spam").iterdir())[::19][:25] + sorted((corpus / "ham").iterdir())[::41][:25]
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
            for p in msgs:
                data = p.read_bytes()
                if data.startswith(b"From "):
                    data = data.split(b"\n", 1)[1]  # the mbox line is not part of the message
                s.sendmail("x@example.com", ["bob@example.org"], data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        mount = inst.spawn(BIN / "mailkeep-fs", "-c", inst.conf, "-f")
        mnt = inst.root / "mail"
        wait_for(lambda: os.path.ismount(mnt), 10, "the mount")
        files = [d / n for d in (mnt / "bob" / "cur", mnt / "bob" / "new", mnt / "bob" / ".Junk" / "cur",
                                 mnt / "bob" / ".Junk" / "new") if d.is_dir() for n in os.listdir(d)]
        assert files, "no delivered message on the mount"
        per_msg = []
        for _ in range(5):
            for f in files:
                t0 = time.perf_counter()
                for n in NAMES:
                    os.getxattr(f, n)
                per_msg.append(time.perf_counter() - t0)
        per_msg.sort()
        print(f"getfattr: {len(files)} messages x 5 rounds, all six user.spam.* attributes with getxattr(2): "
              f"median {1e3 * statistics.median(per_msg):.3f} ms, p99 {1e3 * per_msg[int(0.99 * len(per_msg))]:.3f} "
              f"ms a message")
        listed = []
        for f in files:
            t0 = time.perf_counter()
            for n in os.listxattr(f):
                os.getxattr(f, n)
            listed.append(time.perf_counter() - t0)
        print(f"getfattr: listxattr(2) and every attribute (user.mail.* too), as getfattr -d -m - does: "
              f"median {1e3 * statistics.median(listed):.3f} ms a message")
        if os.environ.get("GETFATTR_STRACE"):
            subprocess.run(["strace", "-T", "-e", "trace=%file,listxattr,getxattr,lgetxattr,llistxattr",
                            "getfattr", "-d", "-m", "user.spam", str(files[0])])
        runs = []
        for f in files[:20]:
            t0 = time.perf_counter()
            subprocess.run(["getfattr", "-d", "-m", "user.spam", str(f)], capture_output=True, check=True)
            runs.append(time.perf_counter() - t0)
        empty = []
        for f in files[:20]:
            t0 = time.perf_counter()
            subprocess.run(["getfattr", "--version"], capture_output=True)
            empty.append(time.perf_counter() - t0)
        print(f"getfattr: getfattr -d -m user.spam (a process each): median {1e3 * statistics.median(runs):.2f} ms, "
              f"of which starting getfattr (--version) {1e3 * statistics.median(empty):.2f} ms")
    finally:
        if mnt is not None:
            subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
        inst.close()
