"""Under load: 8 SMTP senders, 2 IMAP clients setting flags and expunging,
2 writers on the mount (tmp/ then rename, and cp straight into new/ or cur/),
for a bounded time. Afterwards the store, IMAP and `ls` of the mount agree
exactly (the same UIDs with the same flags), every accepted message is there
once unless an IMAP client expunged it, and `mailkeep fsck` is clean."""
import imaplib
import os
import random
import re
import smtplib
import subprocess
import threading
import time

from mkhelpers import wait_for
from mountlib import files, stack

DURATION = 15  # seconds of load
LETTERS = {"\\Draft": "D", "\\Flagged": "F", "\\Answered": "R", "\\Seen": "S", "\\Deleted": "T"}


def body(mid, n):
    return (f"From: load@example.net\r\nTo: bob@example.org\r\nSubject: load {mid}\r\n"
            f"Message-ID: <{mid}@load>\r\n\r\n" + f"line {n} of the load test\r\n" * (5 + n % 50)).encode()


def test_store_imap_and_mount_agree_under_load(instance, mkstore_bin):
    with stack(instance, smtp=True) as s:
        bob = s.mnt / "bob"
        stop = time.monotonic() + DURATION
        accepted, expunged, errors = set(), set(), []
        lock = threading.Lock()

        def sender(k):
            n = 0
            try:
                with smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=60) as c:
                    c.ehlo("load.example.net")
                    while time.monotonic() < stop:
                        mid = f"smtp{k}.{n}"
                        c.sendmail("load@example.net", ["bob@example.org"], body(mid, n))
                        with lock:
                            accepted.add(mid)
                        n += 1
            except Exception as e:  # noqa: BLE001
                errors.append(f"sender {k}: {e!r}")

        def writer(k):
            n = 0
            src = instance.root / f"w{k}.eml"
            try:
                while time.monotonic() < stop:
                    mid = f"mount{k}.{n}"
                    name = f"{1700000000 + n}.W{k}N{n}.host"
                    if k == 0:
                        (bob / "tmp" / name).write_bytes(body(mid, n))
                        os.rename(bob / "tmp" / name, bob / "new" / name)
                    else:
                        src.write_bytes(body(mid, n))
                        target = bob / "cur" / f"{name}:2,S" if n % 2 else bob / "new" / name
                        cp = subprocess.run(["cp", str(src), str(target)], capture_output=True, text=True)
                        assert cp.returncode == 0, cp.stderr
                    with lock:
                        accepted.add(mid)
                    n += 1
                    if n % 10 == 0:  # and a flag change by rename now and then
                        names = files(bob / "cur")
                        if names:
                            nm = random.choice(names)
                            if nm.endswith(":2,S"):
                                try:
                                    os.rename(bob / "cur" / nm, bob / "cur" / (nm[:-1] + "FS"))
                                except FileNotFoundError:
                                    pass  # expunged or renamed meanwhile
            except Exception as e:  # noqa: BLE001
                errors.append(f"writer {k}: {e!r}")

        def imap_client(k):
            rnd = random.Random(k)
            try:
                m = s.imap()
                m.select("INBOX")
                while time.monotonic() < stop:
                    typ, data = m.uid("SEARCH", "ALL")
                    uids = data[0].split()
                    if not uids:
                        time.sleep(0.05)
                        continue
                    pick = rnd.sample(uids, min(len(uids), 3))
                    flag = rnd.choice(["\\Seen", "\\Flagged", "\\Answered"])
                    m.uid("STORE", b",".join(pick).decode(), "+FLAGS", f"({flag})")
                    if rnd.random() < 0.3:
                        victim = rnd.choice(uids).decode()
                        typ, data = m.uid("FETCH", victim, "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
                        mids = re.findall(rb"<([^>]+)@load>", b"".join(x[1] for x in data if isinstance(x, tuple)))
                        m.uid("STORE", victim, "+FLAGS", "(\\Deleted)")
                        m.expunge()
                        with lock:
                            expunged.update(x.decode() for x in mids)
                    time.sleep(0.02)
                m.logout()
            except Exception as e:  # noqa: BLE001
                errors.append(f"imap {k}: {e!r}")

        threads = ([threading.Thread(target=sender, args=(k,)) for k in range(8)] +
                   [threading.Thread(target=writer, args=(k,)) for k in range(2)] +
                   [threading.Thread(target=imap_client, args=(k,)) for k in range(2)])
        for t in threads:
            t.start()
        for t in threads:
            t.join(DURATION + 120)
        assert not any(t.is_alive() for t in threads)
        assert errors == []
        print(f"load: {len(accepted)} messages accepted, {len(expunged)} expunged over IMAP")
        assert len(accepted) > 50, len(accepted)

        def store_view():
            out = {}
            cp = subprocess.run([str(mkstore_bin), str(instance.data / "store"), "list", "bob", "INBOX"],
                                capture_output=True, text=True, check=True)
            for line in cp.stdout.splitlines():
                uid, flags, _size, _sha, _base = line.split(" ", 4)
                out[int(uid)] = "".join(sorted(flags.replace("N", "").replace("-", "")))
            return out

        def imap_view():
            m = s.imap()
            m.select("INBOX", readonly=True)
            typ, data = m.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            m.logout()
            out, mids = {}, []
            for item in data:
                if isinstance(item, tuple):
                    uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
                    fl = re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1).decode().split()
                    out[uid] = "".join(sorted(LETTERS[f] for f in fl if f in LETTERS))
                    mids += [x.decode() for x in re.findall(rb"<([^>]+)@load>", item[1])]
            return out, mids

        def mount_view():
            out = {}
            for sub in ("new", "cur"):
                for name in files(bob / sub):
                    uid = int(os.getxattr(bob / sub / name, "user.mail.uid"))
                    assert uid not in out, f"UID {uid} listed twice"
                    out[uid] = "".join(sorted(name.split(":2,", 1)[1])) if ":2," in name else ""
            return out

        # the mount catches up within a second or so; then all three agree
        store = store_view()
        wait_for(lambda: mount_view() == store, 10, "the mount to agree with the store")
        imap, mids = imap_view()
        assert imap == store
        assert mount_view() == store
        assert len(mids) == len(set(mids)), "a message twice"
        assert set(mids) == accepted - expunged
        assert files(bob / "tmp") == []
        cp = instance.mk("fsck")
        assert cp.returncode == 0, cp.stdout + cp.stderr
        # and the same after a restart of the mount
        s.restart_mount()
        assert mount_view() == store
