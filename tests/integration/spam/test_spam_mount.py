"""Retraining from the mount: renaming a message into or out of .Junk and
`setfattr -n user.spam.class` change the owner's counts exactly (one message
moves from one column to the other), and the user.spam.* xattrs show it."""
import errno
import os
import subprocess

import pytest

from mkhelpers import CORPUS, wait_for
from spamhelp import spam_stats


def files(d):
    return sorted(p for p in os.listdir(d) if not p.startswith("."))


def getfattr(path, name):
    cp = subprocess.run(["getfattr", "--only-values", "-n", name, str(path)], capture_output=True, timeout=30)
    assert cp.returncode == 0, cp.stderr
    return cp.stdout.decode()


@pytest.fixture
def trained_mount(mount, tmp_path):
    inst = mount.inst
    spam = sorted((CORPUS / "spam").iterdir())[0::16][:40]
    ham = sorted(p for p in (CORPUS / "ham").iterdir() if p.name.startswith("easy"))[0::16][:80]
    inst.mk("spam", "train", "--spam", "--user", "alice", *spam)
    inst.mk("spam", "train", "--innocent", "--user", "alice", *ham)
    return mount


def test_rename_into_and_out_of_junk_retrains(trained_mount):
    m = trained_mount
    inst = m.inst
    msg = (sorted((CORPUS / "spam").iterdir())[5]).read_bytes()
    m.deliver("alice", msg, flags="S")
    alice = m.path / "alice"
    name = wait_for(lambda: files(alice / "cur"), what="message on the mount")[0]
    before = spam_stats(inst, "alice")
    path = alice / "cur" / name
    assert getfattr(path, "user.spam.class") == "none"
    # no verdict was recorded for this message (not delivered through smtpin)
    with pytest.raises(OSError) as e:
        os.getxattr(path, "user.spam.result")
    assert e.value.errno == errno.ENODATA
    # nothing of a verdict is listed for it, and nothing is computed per getxattr
    assert "user.spam.tokens" not in os.listxattr(path)
    assert "user.spam.class" in os.listxattr(path)

    # the user says: spam (mv into .Junk)
    os.rename(path, alice / ".Junk" / "cur" / name)
    after = spam_stats(inst, "alice")
    assert after["spam_learned"] == before["spam_learned"] + 1
    assert after["innocent_learned"] == before["innocent_learned"]
    assert after["spam_misses"] == before["spam_misses"] + 1
    jpath = alice / ".Junk" / "cur" / wait_for(lambda: files(alice / ".Junk" / "cur"), what="junk")[0]
    assert getfattr(jpath, "user.spam.class") == "spam"

    # a wrong move is undone by moving back: one spam becomes one innocent
    os.rename(jpath, alice / "cur" / os.path.basename(jpath))
    back = spam_stats(inst, "alice")
    assert back["spam_learned"] == before["spam_learned"]
    assert back["innocent_learned"] == before["innocent_learned"] + 1
    assert back["false_positives"] == before["false_positives"] + 1
    assert back["tokens"] == after["tokens"]  # the same tokens, other column

    # setfattr retrains too
    ipath = alice / "cur" / files(alice / "cur")[0]
    cp = subprocess.run(["setfattr", "-n", "user.spam.class", "-v", "spam", str(ipath)], capture_output=True)
    assert cp.returncode == 0, cp.stderr
    again = spam_stats(inst, "alice")
    assert again["spam_learned"] == after["spam_learned"]
    assert again["innocent_learned"] == after["innocent_learned"]
    assert getfattr(ipath, "user.spam.class") == "spam"
    cp = subprocess.run(["setfattr", "-n", "user.spam.class", "-v", "maybe", str(ipath)], capture_output=True)
    assert cp.returncode != 0
    assert spam_stats(inst, "alice") == again
    # bob's counts never moved
    assert spam_stats(inst, "bob")["tokens"] == 0


def test_moves_within_non_junk_folders_do_not_train(trained_mount):
    m = trained_mount
    inst = m.inst
    m.deliver("alice", b"From: a@example.org\r\nSubject: plain\r\n\r\nhello there\r\n", flags="S")
    alice = m.path / "alice"
    name = wait_for(lambda: files(alice / "cur"), what="message")[0]
    before = spam_stats(inst, "alice")
    os.rename(alice / "cur" / name, alice / ".Archive" / "cur" / name)
    assert spam_stats(inst, "alice") == before


def test_train_from_store_mailbox(store_users):
    m = store_users
    inst = m.inst
    spam = sorted((CORPUS / "spam").iterdir())[:3]
    for p in spam:
        m.deliver("alice", p.read_bytes(), mailbox="Junk", flags="S")
    out = inst.mk("spam", "train", "--spam", "--user", "alice", "--mailbox", "Junk").stdout
    assert "3 messages: 3 learned as spam" in out
    assert spam_stats(inst, "alice")["spam_learned"] == 3
    # the same bytes as files are the same messages: nothing new
    out = inst.mk("spam", "train", "--spam", "--user", "alice", *spam).stdout
    assert "0 learned as spam, 3 unchanged" in out
    cp = inst.mk("spam", "train", "--spam", "--user", "alice", "--mailbox", "Nope", check=False)
    assert cp.returncode == 1 and "no mailbox Nope" in cp.stderr
