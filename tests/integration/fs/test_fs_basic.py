"""The mount seen by everyday tools: ls, find, stat, grep, rg, cp, mv, rm,
getfattr/setfattr; names, sizes, owners, modes; writes as MUAs make them."""
import errno
import hashlib
import os
import re
import shutil
import stat
import subprocess
import time

import pytest

from mkhelpers import wait_for

MSG1 = b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: hello\r\n\r\nThe quick brown fox\r\n"
MSG2 = b"From: carol@example.org\r\nSubject: second\r\n\r\nnothing special here\r\n"
NAME_RE = re.compile(r"^[0-9]+\.M[0-9]+U[0-9]+\.mailkeep,S=([0-9]+)(:2,([A-Z]*))?$")


def files(d):
    return sorted(p for p in os.listdir(d) if not p.startswith("."))


def run(*argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, **kw)


def test_layout_names_and_attributes(mount):
    mount.deliver("bob", MSG1, flags="N")
    mount.deliver("bob", MSG2, flags="S")
    mount.deliver("bob", MSG2, mailbox="Sent", flags="S")
    bob = mount.path / "bob"
    assert sorted(os.listdir(mount.path)) == ["alice", "bob"]
    assert {"cur", "new", "tmp", ".Sent", ".Junk", ".Trash", ".Drafts"} <= set(os.listdir(bob))
    new, cur = files(bob / "new"), files(bob / "cur")
    assert len(new) == 1 and len(cur) == 1
    # new/ mail has no info part, cur/ has ":2,<flags>"
    m = NAME_RE.match(new[0])
    assert m and m.group(2) is None and int(m.group(1)) == len(MSG1)
    m = NAME_RE.match(cur[0])
    assert m and m.group(3) == "S" and int(m.group(1)) == len(MSG2)
    st = os.stat(bob / "new" / new[0])
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert (st.st_uid, st.st_gid, st.st_size, st.st_nlink) == (2001, 2001, len(MSG1), 1)
    assert abs(st.st_mtime - time.time()) < 120  # internal date = delivery time
    for d in (bob, bob / "cur", bob / ".Sent", bob / ".Sent" / "cur"):
        st = os.stat(d)
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == 2001
    assert (bob / "new" / new[0]).read_bytes() == MSG1
    assert (bob / ".Sent" / "cur" / files(bob / ".Sent" / "cur")[0]).read_bytes() == MSG2
    # the same inode across two stats, and names are stable across mounts
    ino = os.stat(bob / "cur" / cur[0]).st_ino
    mount.stop()
    mount.start()
    assert files(bob / "cur") == cur
    assert os.stat(bob / "cur" / cur[0]).st_ino == ino


def test_find_grep_rg_stat(mount):
    for i in range(30):
        mount.deliver("bob", MSG1 + f"number {i}\r\n".encode(), flags="S")
    mount.deliver("bob", MSG2, mailbox="Sent", flags="S")
    bob = mount.path / "bob"
    found = run("find", str(bob), "-type", "f").stdout.split()
    assert len(found) == 31
    g = run("grep", "-rl", "quick brown", str(bob))
    assert g.returncode == 0 and len(g.stdout.split()) == 30
    g = run("grep", "-rc", "number 17", str(bob / "cur"))
    assert sum(int(l.rsplit(":", 1)[1]) for l in g.stdout.split()) == 1
    assert run("grep", "-r", "absent-string-xyz", str(bob)).returncode == 1
    r = run("rg", "--hidden", "-l", "nothing special", str(bob))  # .Folders are hidden to rg
    assert r.returncode == 0 and len(r.stdout.split()) == 1 and "/.Sent/cur/" in r.stdout
    s = run("stat", "-c", "%s %u %a", *found)
    assert all(line.split()[1:] == ["2001", "600"] for line in s.stdout.splitlines())
    du = run("du", "-sb", str(bob))
    assert du.returncode == 0


def test_xattrs(mount):
    uid = mount.deliver("bob", MSG1, flags="S")
    path = mount.path / "bob" / "cur" / files(mount.path / "bob" / "cur")[0]
    names = os.listxattr(path)
    assert {"user.mail.sha256", "user.mail.uid", "user.mail.modseq", "user.mail.internaldate"} <= set(names)
    assert os.getxattr(path, "user.mail.sha256").decode() == hashlib.sha256(MSG1).hexdigest()
    assert int(os.getxattr(path, "user.mail.uid")) == uid
    assert int(os.getxattr(path, "user.mail.modseq")) > 0
    assert int(os.getxattr(path, "user.mail.internaldate")) == int(os.stat(path).st_mtime)
    out = run("getfattr", "-d", "-m", "user.mail", str(path)).stdout
    assert f'user.mail.sha256="{hashlib.sha256(MSG1).hexdigest()}"' in out
    # facts about stored mail cannot be written; unknown names are not supported
    with pytest.raises(OSError) as e:
        os.setxattr(path, "user.mail.uid", b"7")
    assert e.value.errno == errno.EPERM
    with pytest.raises(OSError) as e:
        os.setxattr(path, "user.other", b"7")
    assert e.value.errno == errno.ENOTSUP
    assert run("setfattr", "-n", "user.mail.sha256", "-v", "0", str(path)).returncode != 0
    with pytest.raises(OSError) as e:
        os.getxattr(path, "user.spam.result")
    assert e.value.errno == errno.ENODATA
    assert os.getxattr(path, "user.mail.sha256").decode() == hashlib.sha256(MSG1).hexdigest()


def test_flags_by_rename_and_new_to_cur(mount):
    mount.deliver("bob", MSG1, flags="N")
    bob = mount.path / "bob"
    name = files(bob / "new")[0]
    ino = os.stat(bob / "new" / name).st_ino
    os.rename(bob / "new" / name, bob / "cur" / (name + ":2,S"))
    assert files(bob / "new") == []
    assert files(bob / "cur") == [name + ":2,S"]
    assert os.stat(bob / "cur" / (name + ":2,S")).st_ino == ino  # same message
    (st_flags, size, sha, base), = mount.listing("bob").values()
    assert st_flags == "S"
    os.rename(bob / "cur" / (name + ":2,S"), bob / "cur" / (name + ":2,FRS"))
    assert list(mount.listing("bob").values())[0][0] == "FRS"
    assert files(bob / "cur") == [name + ":2,FRS"]
    # T is \Deleted
    os.rename(bob / "cur" / (name + ":2,FRS"), bob / "cur" / (name + ":2,ST"))
    assert list(mount.listing("bob").values())[0][0] == "ST"
    assert not os.path.exists(bob / "cur" / (name + ":2,FRS"))
    assert (bob / "cur" / (name + ":2,ST")).read_bytes() == MSG1
    # mv with the tool, too
    assert run("mv", str(bob / "cur" / (name + ":2,ST")), str(bob / "cur" / (name + ":2,"))).returncode == 0
    assert list(mount.listing("bob").values())[0][0] == "-"


def test_move_between_folders_keeps_one_copy(mount):
    mount.deliver("bob", MSG1, flags="S")
    bob = mount.path / "bob"
    name = files(bob / "cur")[0]
    sha = hashlib.sha256(MSG1).hexdigest()
    assert mount.refs(sha) == 1
    os.rename(bob / "cur" / name, bob / ".Junk" / "cur" / name)
    assert files(bob / "cur") == []
    junk = files(bob / ".Junk" / "cur")
    assert len(junk) == 1
    assert (bob / ".Junk" / "cur" / junk[0]).read_bytes() == MSG1
    assert mount.listing("bob") == {}
    assert [v[2] for v in mount.listing("bob", "Junk").values()] == [sha]
    assert mount.refs(sha) == 1  # a move, not a copy
    # link = copy into another folder: the same bytes, one more reference
    os.link(bob / ".Junk" / "cur" / junk[0], bob / ".Archive" / "cur" / junk[0])
    assert mount.refs(sha) == 2
    assert (bob / ".Archive" / "cur" / files(bob / ".Archive" / "cur")[0]).read_bytes() == MSG1


def test_unlink_expunges(mount):
    mount.deliver("bob", MSG1, flags="S")
    mount.deliver("bob", MSG2, flags="S")
    bob = mount.path / "bob"
    victim = [n for n in files(bob / "cur") if (bob / "cur" / n).read_bytes() == MSG2][0]
    os.unlink(bob / "cur" / victim)
    assert len(files(bob / "cur")) == 1
    assert [v[2] for v in mount.listing("bob").values()] == [hashlib.sha256(MSG1).hexdigest()]
    assert mount.refs(hashlib.sha256(MSG2).hexdigest()) == 0
    assert run("rm", str(bob / "cur" / files(bob / "cur")[0])).returncode == 0
    assert mount.listing("bob") == {}


def test_deliver_through_tmp_rename_and_link(mount):
    bob = mount.path / "bob"
    # the Maildir way: write into tmp/, rename into new/
    (bob / "tmp" / "1700000000.P1.host").write_bytes(MSG1)
    assert mount.listing("bob") == {}  # not in the store while in tmp/
    os.rename(bob / "tmp" / "1700000000.P1.host", bob / "new" / "1700000000.P1.host")
    assert files(bob / "tmp") == []
    assert files(bob / "new") == [f"1700000000.P1.host,S={len(MSG1)}"]
    (flags, size, sha, base), = mount.listing("bob").values()
    assert (flags, size, base) == ("N", len(MSG1), "1700000000.P1.host")
    assert (bob / "new" / "1700000000.P1.host").read_bytes() == MSG1
    # mutt's way: link into cur/ with flags, then unlink the tmp file
    (bob / "tmp" / "1700000001.R2.host").write_bytes(MSG2)
    os.link(bob / "tmp" / "1700000001.R2.host", bob / "cur" / "1700000001.R2.host:2,S")
    os.unlink(bob / "tmp" / "1700000001.R2.host")
    assert os.stat(bob / "cur" / "1700000001.R2.host:2,S").st_size == len(MSG2)
    assert f"1700000001.R2.host,S={len(MSG2)}:2,S" in files(bob / "cur")
    assert sorted(v[0] for v in mount.listing("bob").values()) == ["N", "S"]
    # cp then mv, into a folder
    src = mount.inst.root / "msg.eml"
    src.write_bytes(MSG2 + b"x")
    assert run("cp", str(src), str(bob / ".Drafts" / "tmp" / "d1")).returncode == 0
    assert run("mv", str(bob / ".Drafts" / "tmp" / "d1"), str(bob / ".Drafts" / "cur" / "d1:2,D")).returncode == 0
    assert [v[0] for v in mount.listing("bob", "Drafts").values()] == ["D"]
    assert (bob / ".Drafts" / "cur" / f"d1,S={len(MSG2) + 1}:2,D").read_bytes() == MSG2 + b"x"


def test_folders_mkdir_rename_rmdir(mount):
    bob = mount.path / "bob"
    # a folder is made as maildirmake makes it: mkdir .F, then cur new tmp in it
    for f in (".Lists", ".Lists.lkml"):
        os.mkdir(bob / f)
        assert os.listdir(bob / f) == []  # a plain directory until it is a Maildir
        for sub in ("cur", "new", "tmp"):
            os.mkdir(bob / f / sub)
        assert sorted(os.listdir(bob / f)) == ["cur", "new", "tmp"]
    assert mount.listing("bob", "Lists.lkml") == {}  # the mailbox exists, empty
    mount.deliver("bob", MSG1, mailbox="Lists.lkml", flags="S")
    assert len(files(bob / ".Lists.lkml" / "cur")) == 1
    os.rename(bob / ".Lists", bob / ".Mailing")
    assert ".Mailing.lkml" in os.listdir(bob) and ".Lists.lkml" not in os.listdir(bob)
    assert len(files(bob / ".Mailing.lkml" / "cur")) == 1
    with pytest.raises(OSError) as e:
        os.rmdir(bob / ".Mailing.lkml")
    assert e.value.errno == errno.ENOTEMPTY
    shutil.rmtree(bob / ".Mailing.lkml")
    assert ".Mailing.lkml" not in os.listdir(bob)
    with pytest.raises(OSError) as e:
        os.mkdir(bob / ".Mailing")
    assert e.value.errno == errno.EEXIST
    # any other directory is a plain one (not mail, never a mailbox)
    os.mkdir(bob / "notafolder")
    assert os.listdir(bob / "notafolder") == []
    os.rmdir(bob / "notafolder")


def test_posix_errors(mount):
    mount.deliver("bob", MSG1, flags="S")
    mount.deliver("alice", MSG1, flags="S")
    bob, alice = mount.path / "bob", mount.path / "alice"
    name = files(bob / "cur")[0]
    p = bob / "cur" / name

    def err(fn, *a):
        with pytest.raises(OSError) as e:
            fn(*a)
        return e.value.errno

    assert err(os.stat, bob / "cur" / "nope:2,S") == errno.ENOENT
    assert err(os.stat, bob / "new" / name) == errno.ENOENT  # it is in cur/
    assert name.endswith(":2,S"), name
    assert err(os.stat, bob / "cur" / (name[:-1])) == errno.ENOENT, os.stat(bob / "cur" / (name[:-1]))  # other flags: other name
    assert err(os.rename, p, alice / "cur" / name) == errno.EXDEV
    assert err(os.link, p, alice / "cur" / name) == errno.EXDEV
    assert err(os.symlink, "x", bob / "cur" / "link") == errno.EPERM
    assert err(os.truncate, p, 3) == errno.EPERM
    fd = os.open(p, os.O_WRONLY)
    try:
        assert err(os.write, fd, b"x") == errno.EPERM
    finally:
        os.close(fd)
    assert err(os.chown, p, 0, 0) == errno.EPERM
    assert err(os.chmod, p, 0o644) == errno.EPERM
    assert err(os.rename, p, bob / "tmp" / name) == errno.EPERM
    assert err(os.unlink, bob / "cur" / "nope:2,S") == errno.ENOENT
    assert err(os.mkdir, bob / "cur" / "x") == errno.EPERM
    assert err(os.rmdir, bob / "cur") == errno.ENOTEMPTY
    # O_EXCL on an existing name
    assert err(os.open, p, os.O_CREAT | os.O_EXCL | os.O_WRONLY) == errno.EEXIST
    (bob / "tmp" / "t1").write_bytes(b"a")
    assert err(os.open, bob / "tmp" / "t1", os.O_CREAT | os.O_EXCL | os.O_WRONLY) == errno.EEXIST
    # the store did not change
    assert len(mount.listing("bob")) == 1 and p.read_bytes() == MSG1
    # rename is atomic: the old name is gone when the new one is there, never both or neither
    os.rename(p, bob / "cur" / (name[:-1] + "RS"))
    assert not os.path.exists(p) and os.path.exists(bob / "cur" / (name[:-1] + "RS"))
    os.unlink(bob / "tmp" / "t1")
    assert files(bob / "tmp") == []


def test_statfs(mount):
    sv = os.statvfs(mount.path / "bob")
    assert sv.f_bsize > 0 and sv.f_blocks > 0 and sv.f_namemax == 255


def test_live_changes_reach_a_listed_directory(mount):
    # The kernel may cache names and attributes for an hour (fs_entry_timeout):
    # these changes show only because the watcher pushes invalidations. The
    # waits are generous (no timing is tested); it takes milliseconds.
    bob = mount.path / "bob"
    uid = mount.deliver("bob", MSG1, flags="N")
    assert len(files(bob / "new")) == 1
    old = files(bob / "new")[0]
    mtime = os.stat(bob / "new").st_mtime_ns
    # new mail from another process
    mount.deliver("bob", MSG2, flags="N")
    wait_for(lambda: len(files(bob / "new")) == 2, 10, "new mail on the mount")
    assert os.stat(bob / "new").st_mtime_ns > mtime
    # a flag set elsewhere (as over IMAP): the name changes, the old one is gone
    mount.mk("flags", "bob", "INBOX", uid, "-N")
    mount.mk("flags", "bob", "INBOX", uid, "+S")
    wait_for(lambda: old + ":2,S" in files(bob / "cur"), 10, "flag change on the mount")
    # the old name, which the kernel had cached, goes too (cur/ may be read
    # from the store a moment before the watcher has told the kernel)
    wait_for(lambda: not os.path.exists(bob / "new" / old), 10, "the old name to go")
    assert os.path.exists(bob / "cur" / (old + ":2,S"))
    # read over IMAP (\Seen set, \Recent left): the message leaves new/
    uid2 = [u for u, v in mount.listing("bob").items() if "N" in v[0]][0]
    before = set(files(bob / "new"))
    mount.mk("flags", "bob", "INBOX", uid2, "+S")
    wait_for(lambda: files(bob / "new") == [], 10, "a seen message to leave new/")
    assert len(files(bob / "cur")) == 2
    wait_for(lambda: not any(os.path.exists(bob / "new" / n) for n in before), 10, "old name to go")
    # a new folder made elsewhere
    mount.mk("mkbox", "bob", "Later")
    wait_for(lambda: ".Later" in os.listdir(bob), 10, "new folder")


def test_killed_writer_leaves_nothing(mount):
    bob = mount.path / "bob"
    code = ("import os,sys,time\n"
            f"f=open({str(bob / 'tmp' / '1700000000.K1.host')!r},'wb')\n"
            "f.write(b'From: x\\r\\nSubject: half\\r\\n\\r\\n'+b'y'*100000); f.flush()\n"
            "print('written', flush=True); time.sleep(60)\n")
    p = subprocess.Popen(["python3", "-c", code], stdout=subprocess.PIPE, start_new_session=True)
    assert p.stdout.readline().strip() == b"written"
    os.killpg(p.pid, 9)
    p.wait()
    assert files(bob / "new") == [] and files(bob / "cur") == []
    assert mount.listing("bob") == {}
    # what is left in tmp/ is a tmp file, as on any Maildir; removing it works
    left = files(bob / "tmp")
    assert left in ([], ["1700000000.K1.host"])
    for n in left:
        os.unlink(bob / "tmp" / n)
    assert files(bob / "tmp") == []


def test_cp_directly_into_new_and_cur_stores_on_close(mount):
    bob = mount.path / "bob"
    src = mount.inst.root / "m.eml"
    src.write_bytes(MSG1)
    assert run("cp", str(src), str(bob / "new" / "1700000005.C1.host")).returncode == 0
    assert run("cp", str(src), str(bob / "cur" / "1700000006.C2.host:2,FS")).returncode == 0
    # RELEASE comes after close() returns: wait for the store
    wait_for(lambda: len(mount.listing("bob")) == 2, 10, "cp'd files in the store")
    got = {v[3]: v[0] for v in mount.listing("bob").values()}
    assert got == {"1700000005.C1.host": "N", "1700000006.C2.host": "FS"}
    wait_for(lambda: files(bob / "new") == [f"1700000005.C1.host,S={len(MSG1)}"], 10, "new/ name")
    assert files(bob / "cur") == [f"1700000006.C2.host,S={len(MSG1)}:2,FS"]
    # the name cp used still finds the message
    assert (bob / "new" / "1700000005.C1.host").read_bytes() == MSG1
    assert (bob / "cur" / "1700000006.C2.host:2,FS").read_bytes() == MSG1
    # a dot file (rsync's temporary) is not taken as a message
    (bob / "cur" / ".tmpfile").write_bytes(MSG2)
    time.sleep(0.3)
    assert len(mount.listing("bob")) == 2
    os.unlink(bob / "cur" / ".tmpfile")


def test_rename_is_atomic_for_readers(mount):
    mount.deliver("bob", MSG1, flags="S")
    mount.deliver("bob", MSG2, flags="S")
    cur = mount.path / "bob" / "cur"
    name = [n for n in files(cur) if (cur / n).read_bytes() == MSG1][0]
    a, b = name, name[:-1] + "RS"
    stop = [False]
    seen = []

    def reader():
        while not stop[0]:
            names = os.listdir(cur)
            seen.append((a in names) + (b in names))

    import threading
    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(100):
            os.rename(cur / a, cur / b)
            os.rename(cur / b, cur / a)
    finally:
        stop[0] = True
        t.join(10)
    # every listing shows the message under exactly one of its names
    assert seen and set(seen) == {1}
    assert list(mount.listing("bob").values())[0][0] == "S"
