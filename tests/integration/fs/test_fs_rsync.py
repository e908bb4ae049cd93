"""rsync -a and cp -a of a real Maildir tree (folders, flags in the names,
mtimes, state files) into the mount finish with exit 0 and import everything:
`mailkeep export` then gives the same bytes, flags and dates."""
import os
import random
import subprocess

from mountlib import stack

FOLDERS = ["", ".Lists", ".Lists.lkml", ".Archive"]
FLAGS = ["", "S", "RS", "FS", "DS", "ST", "F"]


def make_maildir(top, n, uid, seed):
    """n messages spread over FOLDERS, {(folder, bytes): (flags or None for new/, mtime)}."""
    rnd = random.Random(seed)
    want = {}
    for f in FOLDERS:
        for sub in ("cur", "new", "tmp"):
            os.makedirs(top / f / sub, exist_ok=True)
        if f:
            (top / f / "maildirfolder").write_bytes(b"")
            (top / f / ".mbsyncstate").write_text(f"FarUidValidity {rnd.randint(1, 10**9)}\n")
    (top / "dovecot-uidlist").write_text("3 V1 N1\n")
    for i in range(n):
        f = rnd.choice(FOLDERS)
        body = (f"From: sender{i % 37}@example.org\r\nTo: bob@example.org\r\nSubject: message {i}\r\n"
                f"Message-ID: <m{i}.{seed}@example.org>\r\n\r\n" +
                " ".join(rnd.choice(["mail", "kept", "for", "decades", "rsync", "bytes"])
                         for _ in range(rnd.randint(10, 400))) + "\r\n").encode()
        mtime = 1500000000 + i * 97
        base = f"{mtime}.M{i}P{seed}.oldhost"
        if rnd.random() < 0.2:
            p, flags = top / f / "new" / base, None
        else:
            flags = rnd.choice(FLAGS)
            p = top / f / "cur" / f"{base}:2,{flags}"
        p.write_bytes(body)
        os.utime(p, (mtime, mtime))
        want[(f, body)] = (flags, mtime)
    subprocess.run(["chown", "-R", f"{uid}:{uid}", str(top)], check=True)
    subprocess.run(["chmod", "-R", "u=rwX,go=", str(top)], check=True)
    return want


def exported(instance, user, out):
    instance.mk("export", "--utf8-folders", user, out)
    got = {}
    for f in FOLDERS:
        for sub in ("cur", "new"):
            for name in os.listdir(out / f / sub):
                p = out / f / sub / name
                flags = name.split(":2,", 1)[1] if sub == "cur" else None
                got[(f, p.read_bytes())] = (flags, int(os.stat(p).st_mtime))
    return got


def test_rsync_and_cp_a_of_a_maildir(instance):
    with stack(instance, users=("bob", "carol")) as s:
        src = instance.root / "src"
        want = make_maildir(src, 2000, 2001, 1)
        cp = subprocess.run(["rsync", "-a", f"{src}/", f"{s.mnt / 'bob'}/"], capture_output=True, text=True,
                            timeout=900)
        assert cp.returncode == 0, cp.stderr[-3000:]
        got = exported(instance, "bob", instance.root / "out-bob")
        assert len(got) == len(want) == 2000
        assert got == want
        # the state files are plain files beside the mail
        files = instance.data / "files" / "bob"
        assert (files / "dovecot-uidlist").read_text() == "3 V1 N1\n"
        assert (files / ".Lists.lkml" / ".mbsyncstate").read_text() == (src / ".Lists.lkml" / ".mbsyncstate").read_text()
        # a second run finds everything there: nothing twice
        cp = subprocess.run(["rsync", "-a", f"{src}/", f"{s.mnt / 'bob'}/"], capture_output=True, text=True,
                            timeout=900)
        assert cp.returncode == 0, cp.stderr[-3000:]
        assert exported(instance, "bob", instance.root / "out-bob2") == want

        # cp -a: files created straight into cur/ and new/, times and modes set on them
        src2 = instance.root / "src2"
        want2 = make_maildir(src2, 300, 2002, 2)
        cp = subprocess.run(["cp", "-a", f"{src2}/.", f"{s.mnt / 'carol'}/"], capture_output=True, text=True,
                            timeout=900)
        assert cp.returncode == 0, cp.stderr[-3000:]
        s.restart_mount()  # nothing waits in memory
        assert exported(instance, "carol", instance.root / "out-carol") == want2
