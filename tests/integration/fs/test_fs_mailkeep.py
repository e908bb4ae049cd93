"""The mount with the real mailkeep commands: `mailkeep user add`, `mailkeep
import` of a Maildir, `mailkeep mount` (which execs mailkeep-fs), and
`mailkeep export` giving the same bytes the mount shows; a restarted
mailkeep-fs takes over a stale mount."""
import filecmp
import os
import signal
import subprocess
import time

from mkhelpers import BIN, wait_for


def files(d):
    return sorted(p for p in os.listdir(d) if not p.startswith("."))


def test_import_mount_export(instance):
    src = instance.root / "src"
    for sub in ("cur", "new", "tmp", ".Lists/cur", ".Lists/new", ".Lists/tmp"):
        (src / sub).mkdir(parents=True)
    (src / "new" / "1700000000.A1.host").write_bytes(b"Subject: unread\r\n\r\nnew mail\r\n")
    (src / "cur" / "1700000001.A2.host:2,RS").write_bytes(b"Subject: replied\r\n\r\nold mail\r\n")
    (src / ".Lists" / "cur" / "1700000002.A3.host:2,S").write_bytes(b"Subject: list\r\n\r\nlist mail\r\n")
    # a Dovecot name: its base keeps ",S=..,W=.." and the mount shows it unchanged
    dove = b"Subject: dovecot\r\n\r\nfrom dovecot\r\n"
    dname = f"1700000003.M4P5.old,S={len(dove)},W={len(dove) + 3}"
    (src / ".Lists" / "cur" / f"{dname}:2,S").write_bytes(dove)
    instance.data.mkdir(parents=True, exist_ok=True)
    instance.mk("user", "add", "bob", "--no-password", "--uid", "2001", "--gid", "2001")
    instance.mk("import", "bob", src)
    mnt = instance.root / "mail"
    p = instance.spawn(BIN / "mailkeep", "-c", instance.conf, "mount", "-f")
    try:
        wait_for(lambda: os.path.ismount(mnt), 10, "mailkeep mount")
        bob = mnt / "bob"
        new, cur = files(bob / "new"), files(bob / "cur")
        assert len(new) == 1 and ":2," not in new[0]  # \Recent: new/, no info
        assert len(cur) == 1 and cur[0].endswith(":2,RS")
        assert (bob / "new" / new[0]).read_bytes() == b"Subject: unread\r\n\r\nnew mail\r\n"
        assert (bob / "cur" / cur[0]).read_bytes() == b"Subject: replied\r\n\r\nold mail\r\n"
        lists = files(bob / ".Lists" / "cur")
        assert len(lists) == 2 and all(n.endswith(":2,S") for n in lists)
        assert f"{dname}:2,S" in lists
        assert (bob / ".Lists" / "cur" / f"{dname}:2,S").read_bytes() == dove
        os.rename(bob / ".Lists" / "cur" / f"{dname}:2,S", bob / ".Lists" / "cur" / f"{dname}:2,FS")
        assert f"{dname}:2,FS" in files(bob / ".Lists" / "cur")
        assert (bob / ".Lists" / "cur" / f"{dname}:2,FS").read_bytes() == dove
        assert os.stat(bob / "cur" / cur[0]).st_uid == 2001
        # export gives the same bytes the mount shows
        out = instance.root / "export"
        instance.mk("export", "bob", out)
        exported = sorted(f.read_bytes() for f in out.rglob("*")
                          if f.is_file() and f.parent.name in ("cur", "new"))
        mounted = sorted(f.read_bytes() for f in bob.rglob("*") if f.is_file())
        assert exported == mounted and len(mounted) == 4
        # a mailkeep-fs that dies leaves a stale mount; the next one takes over
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(10)
        p2 = instance.spawn(BIN / "mailkeep-fs", "-c", instance.conf, "-f")
        wait_for(lambda: os.path.isdir(bob / "cur") and len(files(bob / "cur")) == 1, 10, "remount")
        assert (bob / "cur" / cur[0]).read_bytes() == b"Subject: replied\r\n\r\nold mail\r\n"
        instance.stop(p2)
    finally:
        subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)
        instance.stop(p)
