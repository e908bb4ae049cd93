"""Real Maildir clients on the mount: rsync, mblaze, neomutt (driven in tmux),
and two users with different uids."""
import errno
import filecmp
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from mkhelpers import wait_for


def msg(i, subject=None, extra=b""):
    return (f"From: sender{i}@example.org\r\nTo: bob@example.org\r\n"
            f"Date: Mon, 23 Nov 2026 10:{i % 60:02d}:00 +0000\r\n"
            f"Message-ID: <m{i}@example.org>\r\nSubject: {subject or f'message {i}'}\r\n\r\n"
            f"body of message {i}\r\n").encode() + extra


def files(d):
    return sorted(p for p in os.listdir(d) if not p.startswith("."))


def run(*argv, **kw):
    kw.setdefault("timeout", 60)
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kw)


def test_rsync_out_is_byte_identical_and_back_in_imports(mount):
    for i in range(20):
        mount.deliver("bob", msg(i), flags="S" if i % 2 else "N")
    mount.deliver("bob", msg(99, extra=b"x" * 300000), flags="S")
    bob = mount.path / "bob"
    out = mount.inst.root / "backup"
    r = run("rsync", "-a", f"{bob}/", f"{out}/")
    assert r.returncode == 0, r.stderr
    for sub in ("cur", "new"):
        assert files(out / sub) == files(bob / sub)
        for n in files(bob / sub):
            assert filecmp.cmp(out / sub / n, bob / sub / n, shallow=False)
            assert int(os.stat(out / sub / n).st_mtime) == int(os.stat(bob / sub / n).st_mtime)
    assert len(files(out / "cur")) + len(files(out / "new")) == 21
    # back into a new folder: rsync makes the folder, writes ".name.XXXXXX" and renames
    r = run("rsync", "-a", "--exclude=.*/", f"{out}/", f"{bob}/.Restored/")
    assert r.returncode == 0, r.stderr
    before = {v[2] for v in mount.listing("bob").values()}
    after = {v[2] for v in mount.listing("bob", "Restored").values()}
    assert after == before and len(after) == 21
    for sub in ("cur", "new"):
        assert files(bob / ".Restored" / sub) == files(out / sub)
    # a second rsync finds nothing to do and changes nothing
    r = run("rsync", "-a", "--exclude=.*/", f"{out}/", f"{bob}/.Restored/")
    assert r.returncode == 0, r.stderr
    assert len(mount.listing("bob", "Restored")) == 21
    # each blob stored once: the copies share the bytes
    assert all(mount.refs(sha) == 2 for sha in after)


def test_mblaze(mount, tmp_path):
    for i in range(5):
        mount.deliver("bob", msg(i, subject=f"blaze {i}"), flags="N" if i < 2 else "S")
    bob = mount.path / "bob"
    env = dict(os.environ, MBLAZE=str(tmp_path / "mblaze"), MAILDIR=str(bob))
    (tmp_path / "mblaze").mkdir()
    lst = run("mlist", bob, env=env)
    assert lst.returncode == 0 and len(lst.stdout.split("\n")) - 1 == 5
    scan = run("mscan", input=lst.stdout, env=env)
    assert scan.returncode == 0 and all(f"blaze {i}" in scan.stdout for i in range(5))
    # unread ones
    assert len(run("mlist", "-s", bob, env=env).stdout.split()) == 2
    # a sequence, then flags by mflag (a rename on the mount)
    assert run("mseq", "-S", input=lst.stdout, env=env).returncode == 0
    first = run("mseq", "1", env=env).stdout.strip()
    assert run("mflag", "-F", first, env=env).returncode == 0
    flagged = [n for n in files(bob / "cur") + files(bob / "new") if n.endswith("F") or ":2,F" in n]
    assert len(flagged) == 1
    assert sum(1 for v in mount.listing("bob").values() if "F" in v[0]) == 1
    # a fresh listing (mflag renamed a file), mshow reads from it
    lst = run("mlist", bob, env=env)
    assert run("mseq", "-S", input=lst.stdout, env=env).returncode == 0
    shown = run("mshow", "1", env=env)
    assert shown.returncode == 0 and "body of message" in shown.stdout
    flagged_path = [p for p in lst.stdout.split() if "F" in p.rsplit(":2,", 1)[-1]]
    shown = run("mshow", "-r", flagged_path[0], env=env)
    assert shown.returncode == 0 and "body of message" in shown.stdout
    # mrefile moves into another folder: the store moves, no copy
    target = run("mseq", "2", env=env).stdout.strip()
    sha = hashlib.sha256(Path(target).read_bytes()).hexdigest()
    assert run("mrefile", target, bob / ".Archive", env=env).returncode == 0
    assert not os.path.exists(target)
    assert [v[2] for v in mount.listing("bob", "Archive").values()] == [sha]
    assert mount.refs(sha) == 1
    assert len(mount.listing("bob")) == 4
    assert len(files(bob / ".Archive" / "cur")) + len(files(bob / ".Archive" / "new")) == 1


def test_neomutt_marks_read_deletes_and_copies(mount, tmp_path):
    for i in range(1, 4):
        mount.deliver("bob", msg(i, subject=f"mutt{i}"), flags="N")
    bob = mount.path / "bob"
    rc = tmp_path / "muttrc"
    rc.write_text("\n".join([
        "set mbox_type=Maildir", f"set folder={bob}", f"set spoolfile={bob}", 'set header_cache=""',
        "set delete=yes", "set confirmappend=no", "set confirmcreate=no", "set move=no",
        "set mark_old=no", "set quit=yes", "set wait_key=no", "set sort=date", "set beep=no",
        "set pager_stop=yes", ""]))
    session = f"fs{os.getpid()}x{int(time.time() * 1000) % 100000}"
    err = tmp_path / "mutt.err"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "150", "-y", "40",
                    f"neomutt -n -F {rc} -f {bob} 2>{err}"], check=True)

    def screen():
        return subprocess.run(["tmux", "capture-pane", "-t", session, "-p"], capture_output=True,
                              text=True).stdout

    def keys(*k):
        subprocess.run(["tmux", "send-keys", "-t", session, *k], check=True)
        time.sleep(0.4)

    try:
        wait_for(lambda: "mutt3" in screen(), 10, "neomutt index")
        keys("1", "Enter")  # jump to message 1 (sorted by date: mutt1)
        keys("Enter")       # read it
        keys("q")
        keys("2", "Enter")
        keys("d")           # delete mutt2
        keys("3", "Enter")
        keys("C")           # copy mutt3 to =.Sent
        keys("C-u")
        keys("=.Sent", "Enter")
        keys("$")           # sync
        wait_for(lambda: len(mount.listing("bob")) == 2, 10, "neomutt to sync")
        keys("q")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    inbox = mount.listing("bob")
    def subject_of(base):
        for d in ("cur", "new"):
            for n in files(bob / d):
                if n.startswith(base + ","):
                    return (bob / d / n).read_bytes().split(b"Subject: ")[1].split(b"\r\n")[0]
    by_subject = {subject_of(v[3]): v[0] for v in inbox.values()}
    assert by_subject.get(b"mutt1") == "S"       # marked read, moved to cur/
    assert b"mutt2" not in by_subject            # deleted: expunged from the store
    assert by_subject.get(b"mutt3") == "N"       # untouched
    sent = mount.listing("bob", "Sent")
    assert len(sent) == 1
    (uid, (flags, size, sha, base)), = sent.items()
    sent_files = files(bob / ".Sent" / "cur") + files(bob / ".Sent" / "new")
    assert len(sent_files) == 1
    assert b"mutt3" in next((bob / ".Sent" / d / sent_files[0]) for d in ("cur", "new")
                            if (bob / ".Sent" / d / sent_files[0]).exists()).read_bytes()


@pytest.fixture
def shared_mount(store_users):
    """The mount under a directory every uid can traverse (tmp_path is 0700)."""
    top = Path(tempfile.mkdtemp(prefix="mkfs-", dir="/tmp"))
    os.chmod(top, 0o755)
    store_users.path = top / "mail"
    store_users.inst.write_conf(mount_point=str(store_users.path))
    store_users.start()
    yield store_users
    store_users.stop()
    shutil.rmtree(top, ignore_errors=True)


def as_user(uid, *argv):
    return run("setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *argv)


def test_two_users_cannot_read_each_other(shared_mount):
    m = shared_mount
    m.deliver("bob", msg(1, subject="for bob"), flags="S")
    m.deliver("alice", msg(2, subject="for alice"), flags="S")
    bob_file = m.path / "bob" / "cur" / files(m.path / "bob" / "cur")[0]
    alice_file = m.path / "alice" / "cur" / files(m.path / "alice" / "cur")[0]
    # each reads their own
    r = as_user(2001, "cat", bob_file)
    assert r.returncode == 0 and "for bob" in r.stdout
    r = as_user(2002, "grep", "-r", "for alice", m.path / "alice")
    assert r.returncode == 0
    # and not the other's: EACCES
    r = as_user(2002, "cat", bob_file)
    assert r.returncode != 0 and "Permission denied" in r.stderr
    r = as_user(2001, "ls", m.path / "alice")
    assert r.returncode != 0 and "Permission denied" in r.stderr
    r = as_user(2002, "/usr/bin/python3", "-c",
                f"import os,errno\ntry: os.stat({str(bob_file)!r})\n"
                "except OSError as e: print(e.errno)\n")
    assert r.stdout.strip() == str(errno.EACCES)
    r = as_user(2002, "getfattr", "-d", bob_file)
    assert r.returncode != 0
    # nor change it
    r = as_user(2002, "mv", bob_file, m.path / "alice" / "cur" / "x:2,S")
    assert r.returncode != 0
    assert len(m.listing("bob")) == 1 and len(m.listing("alice")) == 1
