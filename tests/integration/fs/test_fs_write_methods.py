"""Every way a program puts a message into a Maildir on the mount stores it or
fails with an errno: tmp/ then rename or link, straight into new/ or cur/,
cp, cat >, rsync, mv from another file system, Python open+write(+fsync)+close.
Each is tried on a fresh mount, after a read of another message (the kernel
then keeps reads cached and stops sending RELEASE: issue 11) and after a
remount; the bytes are compared, the message is seen over IMAP, and it is
still there after the mount restarts. A writer killed half-way leaves
nothing."""
import hashlib
import os
import subprocess
import time

from mkhelpers import wait_for
from mountlib import files, imap_bodies, stack, wait_imap_has


def run(*argv, **kw):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=60, **kw)


def w_tmp_rename(src, d, name):
    os.rename(src_copy(src, d / "tmp" / name), d / "new" / name)


def w_tmp_link(src, d, name):
    t = src_copy(src, d / "tmp" / name)
    os.link(t, d / "cur" / (name + ":2,S"))
    os.unlink(t)


def src_copy(src, dst):
    with open(dst, "wb") as f:
        f.write(src.read_bytes())
    return dst


def w_direct_new(src, d, name):
    src_copy(src, d / "new" / name)


def w_direct_cur(src, d, name):
    src_copy(src, d / "cur" / (name + ":2,FS"))


def w_cp(src, d, name):
    cp = run("cp", src, d / "new" / name)
    assert cp.returncode == 0, cp.stderr


def w_cat_redirect(src, d, name):
    cp = run("sh", "-c", f'cat "$1" > "$2"', "sh", src, d / "new" / name)
    assert cp.returncode == 0, cp.stderr


def w_rsync(src, d, name):
    cp = run("rsync", src, d / "new" / name)
    assert cp.returncode == 0, cp.stderr


def w_mv_other_fs(src, d, name):
    moved = src.parent / ("mv-" + name)
    moved.write_bytes(src.read_bytes())
    cp = run("mv", moved, d / "new" / name)
    assert cp.returncode == 0, cp.stderr
    assert not moved.exists()


def w_python_fsync(src, d, name):
    fd = os.open(d / "new" / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, src.read_bytes())
    os.fsync(fd)
    os.close(fd)


METHODS = [w_tmp_rename, w_tmp_link, w_direct_new, w_direct_cur, w_cp, w_cat_redirect, w_rsync,
           w_mv_other_fs, w_python_fsync]


def message(tag):
    return (f"From: writer@example.org\r\nTo: bob@example.org\r\nSubject: {tag}\r\n"
            f"Message-ID: <{tag}@example.org>\r\n\r\nwritten by {tag}\r\n" + "x" * 3000 + "\r\n").encode()


def test_every_write_method_stores_or_fails(instance):
    with stack(instance) as s:
        bob = s.mnt / "bob"
        written = {}  # bytes -> tag
        # something to read: the read that made the kernel stop sending RELEASE
        seed = message("seed")
        src = instance.root / "seed.eml"
        src.write_bytes(seed)
        w_tmp_rename(src, bob, "1700000000.SEED.host")
        written[seed] = "seed"
        n = 0
        for phase in ("fresh", "after-read", "after-remount"):
            if phase == "after-remount":
                s.restart_mount()
            for method in METHODS:
                n += 1
                if phase != "fresh":
                    # read another message on the mount first
                    (name,) = [x for x in files(bob / "cur") + files(bob / "new")
                               if x.startswith("1700000000.SEED.host")]
                    sub = "cur" if name in files(bob / "cur") else "new"
                    assert (bob / sub / name).read_bytes() == seed
                tag = f"{phase}-{method.__name__}"
                body = message(tag)
                src = instance.root / f"{tag}.eml"
                src.write_bytes(body)
                method(src, bob, f"17000{n:05d}.W{n}.host")
                written[body] = tag
                wait_imap_has(s, body)
                if phase == "fresh" and method is w_cp:
                    # a fresh mount is fresh only until the first read
                    s.restart_mount()
        # the store holds each exactly once, byte for byte, and the mount lists them
        m = s.imap()
        got = imap_bodies(m)
        m.logout()
        assert sorted(got) == sorted(written)
        on_mount = [(bob / sub / x).read_bytes() for sub in ("new", "cur") for x in files(bob / sub)]
        assert sorted(on_mount) == sorted(written)
        assert files(bob / "tmp") == []
        # and after a restart of the mount
        s.restart_mount()
        on_mount = [(bob / sub / x).read_bytes() for sub in ("new", "cur") for x in files(bob / sub)]
        assert sorted(on_mount) == sorted(written)
        for body in written:
            sha = hashlib.sha256(body).hexdigest()
            assert sum(1 for sub in ("new", "cur") for x in files(bob / sub)
                       if os.getxattr(bob / sub / x, "user.mail.sha256").decode() == sha) == 1
        # flags came from the names
        m = s.imap()
        got = imap_bodies(m)
        m.logout()
        assert "\\Flagged" in got[message("fresh-w_direct_cur")] and "\\Seen" in got[message("fresh-w_direct_cur")]
        assert "\\Seen" in got[message("after-read-w_tmp_link")]
        assert "\\Seen" not in got[message("after-read-w_cp")]


def test_what_cannot_be_stored_fails_with_an_errno(instance):
    with stack(instance) as s:
        bob = s.mnt / "bob"
        src = instance.root / "a.eml"
        src.write_bytes(message("first"))
        run("cp", src, bob / "new" / "1700000000.A.host")
        wait_imap_has(s, message("first"))
        (name,) = files(bob / "new")
        assert (bob / "new" / name).read_bytes() == message("first")
        # overwriting a stored message: cp reports the error, the store is unchanged
        src.write_bytes(message("second"))
        for target in (name, "1700000000.A.host"):
            cp = run("cp", src, bob / "new" / target)
            assert cp.returncode != 0 and "Operation not permitted" in cp.stderr, cp
        cp = run("sh", "-c", 'echo more >> "$1"', "sh", bob / "new" / name)
        assert cp.returncode != 0
        assert (bob / "new" / name).read_bytes() == message("first")
        # a file bigger than fs_tmp_max_size
        s.inst.write_conf(fs_tmp_max_size="64k")
        s.restart_mount()
        big = instance.root / "big.eml"
        big.write_bytes(b"Subject: big\r\n\r\n" + b"z" * 100000)
        cp = run("cp", big, bob / "new" / "1700000001.B.host")
        assert cp.returncode != 0 and "too large" in cp.stderr.lower(), cp
        time.sleep(0.3)
        assert files(bob / "new") == [name]
        m = s.imap()
        assert list(imap_bodies(m)) == [message("first")]
        m.logout()


KILLED = ("import sys,time\n"
          "f=open(sys.argv[1],'wb')\n"
          "f.write(b'From: x\\r\\nSubject: half\\r\\n\\r\\n'+b'y'*50000); f.flush()\n"
          "print('written', flush=True); time.sleep(60)\n")


def test_killed_writer_leaves_nothing_in_tmp_or_new(instance):
    with stack(instance) as s:
        bob = s.mnt / "bob"
        src = instance.root / "a.eml"
        src.write_bytes(message("kept"))
        w_cp(src, bob, "1700000000.KEPT.host")
        wait_imap_has(s, message("kept"))
        (kept,) = files(bob / "new")
        for rnd in range(2):
            for sub in ("tmp", "new", "cur"):
                (bob / kept.split(",")[0]).exists()  # a lookup
                assert (bob / "new" / kept).read_bytes() == message("kept")  # a read first
                p = subprocess.Popen(["python3", "-c", KILLED, str(bob / sub / f"1700000001.K{rnd}.host")],
                                     stdout=subprocess.PIPE)
                assert p.stdout.readline().strip() == b"written"
                p.kill()
                p.wait()  # reaped at once, as a shell would
                # (a file being written is listed in tmp/ only: wait for the mount's word)
                wait_for(lambda: f"{sub}/1700000001.K{rnd}.host" in s.fs_log(), 10,
                         f"the killed writer's file in {sub}/ to be dropped")
                assert files(bob / sub) == ([kept] if sub == "new" else [])
                assert not os.path.exists(bob / sub / f"1700000001.K{rnd}.host")
            if rnd == 0:
                s.restart_mount()
        m = s.imap()
        assert list(imap_bodies(m)) == [message("kept")]
        m.logout()
        s.restart_mount()
        assert files(bob / "new") == [kept] and files(bob / "cur") == [] and files(bob / "tmp") == []


def test_without_fanotify_open_is_answered_and_release_stores(instance, mkstore_bin):
    """Without fanotify (mailkeep-fs run as an ordinary user; forced here with
    MAILKEEP_FS_NO_FANOTIFY, since /dev/fuse is root's alone on this machine)
    the mount answers open() for real, so the kernel sends RELEASE and the
    last close stores a file written straight into new/, also after reads."""
    from mkhelpers import BIN
    instance.data.mkdir(parents=True, exist_ok=True)
    instance.mk("user", "add", "bob", "--no-password", "--uid", 2001, "--gid", 2001)
    mnt = instance.root / "mail"
    fs = instance.spawn(BIN / "mailkeep-fs", "-c", instance.conf, "-f",
                        env=dict(os.environ, MAILKEEP_FS_NO_FANOTIFY="1"))
    try:
        wait_for(lambda: os.path.ismount(mnt), 10, "the mount")

        def stored():
            cp = subprocess.run([str(mkstore_bin), str(instance.data / "store"), "list", "bob", "INBOX"],
                                capture_output=True, text=True, check=True)
            return len(cp.stdout.splitlines())

        bob = mnt / "bob"
        src = instance.root / "m.eml"
        src.write_bytes(message("seed"))
        w_tmp_rename(src, bob, "1700000000.S.host")
        (seed,) = files(bob / "new")
        for n, method in enumerate((w_cp, w_direct_new, w_cat_redirect, w_python_fsync)):
            assert (bob / "new" / seed).read_bytes() == message("seed")  # a read first
            src.write_bytes(message(f"direct{n}"))
            method(src, bob, f"170000000{n + 1}.D.host")
            wait_for(lambda: stored() == n + 2, 10, "the copy in the store")
            (name,) = [x for x in files(bob / "new") if x.startswith(f"170000000{n + 1}.D.host")]
            assert (bob / "new" / name).read_bytes() == message(f"direct{n}")
        assert "open() is answered for real" in open(fs.logfile).read()
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
        instance.stop(fs)


def test_attributes_of_a_stored_message(instance):
    """chmod/chown/utimes as rsync -a and cp -p make them: what cannot change
    the message is accepted, what would let others in fails with EPERM, and
    the mtime is the internal date (touch -d sets it, IMAP shows it)."""
    import errno
    import pytest
    with stack(instance) as s:
        bob = s.mnt / "bob"
        src = instance.root / "a.eml"
        src.write_bytes(message("dates"))
        w_tmp_rename(src, bob, "1700000000.T.host")
        (name,) = files(bob / "new")
        p = bob / "new" / name
        os.chmod(p, 0o600)
        os.chmod(p, 0o400)  # narrower: accepted, nothing changes
        assert os.stat(p).st_mode & 0o777 == 0o600
        for mode in (0o640, 0o644, 0o4600):
            with pytest.raises(OSError) as e:
                os.chmod(p, mode)
            assert e.value.errno == errno.EPERM
        os.chown(p, 2001, 2001)
        with pytest.raises(OSError) as e:
            os.chown(p, 0, 0)
        assert e.value.errno == errno.EPERM
        assert run("touch", "-d", "2020-01-02 03:04:05 UTC", p).returncode == 0
        assert os.stat(p).st_mtime == 1577934245
        m = s.imap()
        m.select("INBOX", readonly=True)
        typ, data = m.fetch("1", "(INTERNALDATE)")
        assert b'INTERNALDATE "02-Jan-2020 03:04:05 +0000"' in data[0], data
        m.logout()
        s.restart_mount()
        assert os.stat(bob / "new" / name).st_mtime == 1577934245
        # directories: the same rules
        os.chmod(bob / "cur", 0o700)
        with pytest.raises(OSError) as e:
            os.chmod(bob / "cur", 0o755)
        assert e.value.errno == errno.EPERM
        os.utime(bob / "cur", (1600000000, 1600000000))  # accepted; the mount keeps its own
