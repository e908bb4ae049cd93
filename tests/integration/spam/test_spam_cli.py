"""`mailkeep spam` on files and folders: training changes the counts exactly,
a correction flips exactly one message, forgetting undoes it, users are kept
apart, and a trained filter tells held-out spam from ham."""
import re

import pytest

from mkhelpers import CORPUS


def stats(inst, user=None):
    args = ["spam", "stats"] + (["--user", user] if user else [])
    out = {}
    for line in inst.mk(*args).stdout.splitlines():
        f = line.split()
        if f[0] == "global":
            name, rest = "global", f[1:]
        else:
            name, rest = f[1], f[2:]
        out[name] = {rest[i]: int(rest[i + 1]) for i in range(0, len(rest), 2)}
    return out


@pytest.fixture
def trained(instance, tmp_path):
    spam = sorted((CORPUS / "spam").iterdir())
    ham = sorted(p for p in (CORPUS / "ham").iterdir() if p.name.startswith("easy-ham"))
    sdir, hdir = tmp_path / "s", tmp_path / "h"
    sdir.mkdir()
    hdir.mkdir()
    # a Maildir-like layout for the spam: the walk must find cur/ and new/
    (sdir / "cur").mkdir()
    (sdir / "new").mkdir()
    # every 8th message (spread over the corpus's years) trains, odd ones are held out
    for i, p in enumerate(spam[0::8][:60]):
        (sdir / ("cur" if i % 2 else "new") / p.name).write_bytes(p.read_bytes())
    for p in ham[0::8][:120]:
        (hdir / p.name).write_bytes(p.read_bytes())
    instance.mk("user", "add", "alice", "--no-password")
    instance.mk("user", "add", "bob", "--no-password")
    out = instance.mk("spam", "train", "--spam", "--user", "alice", sdir).stdout
    assert "60 messages: 60 learned as spam" in out
    out = instance.mk("spam", "train", "--innocent", "--user", "alice", hdir).stdout
    assert "120 messages: 120 learned as innocent" in out
    return instance, spam, ham, sdir, hdir


def test_train_counts_and_separation(trained):
    inst, spam, ham, sdir, hdir = trained
    st = stats(inst)
    assert st["alice"]["spam_learned"] == 60
    assert st["alice"]["innocent_learned"] == 120
    assert st["alice"]["tokens"] > 1000
    assert st["bob"]["spam_learned"] == 0 and st["bob"]["tokens"] == 0
    assert st["global"]["tokens"] == 0
    # learning the same messages again changes nothing
    out = inst.mk("spam", "train", "--innocent", "--user", "alice", hdir).stdout
    assert "0 learned as innocent, 120 unchanged" in out
    assert stats(inst, "alice")["alice"] == st["alice"]


def test_correction_is_exact_and_forget_undoes(trained):
    inst, spam, ham, sdir, hdir = trained
    before = stats(inst, "alice")["alice"]
    one = next((sdir / "cur").iterdir())
    inst.mk("spam", "train", "--innocent", "--user", "alice", one)
    flipped = stats(inst, "alice")["alice"]
    assert flipped["spam_learned"] == before["spam_learned"] - 1
    assert flipped["innocent_learned"] == before["innocent_learned"] + 1
    assert flipped["tokens"] == before["tokens"]  # same tokens, other column
    inst.mk("spam", "train", "--spam", "--user", "alice", one)
    assert stats(inst, "alice")["alice"]["tokens"] == before["tokens"]
    assert stats(inst, "alice")["alice"]["spam_learned"] == before["spam_learned"]
    # forgetting a message removes every count it added
    inst.mk("spam", "train", "--forget", "--user", "alice", one)
    after = stats(inst, "alice")["alice"]
    assert after["spam_learned"] == before["spam_learned"] - 1
    assert after["tokens"] < before["tokens"]
    inst.mk("spam", "train", "--spam", "--user", "alice", one)
    assert stats(inst, "alice")["alice"] == before


def test_classify_held_out(trained):
    inst, spam, ham, sdir, hdir = trained
    held_spam, held_ham = spam[1::47][:20], ham[1::61][:20]
    out = inst.mk("spam", "classify", "--user", "alice", *held_spam, *held_ham).stdout.splitlines()
    assert len(out) == 40
    verdict = {}
    for line in out:
        path, result, prob, conf = line.rsplit(" ", 3)
        assert result in ("Spam", "Innocent")
        assert 0.0 <= float(prob) <= 1.0 and 0.0 <= float(conf) <= 1.0
        verdict[path] = result
    spam_caught = sum(verdict[str(p)] == "Spam" for p in held_spam)
    ham_called_spam = sum(verdict[str(p)] == "Spam" for p in held_ham)
    # trained on 180 messages only; the filter errs on the side of the good mail
    # (windows of 4-5 words and HTML attributes no longer add up): 10 of 20
    # spam caught and no good message lost (13 and 0 before that change)
    assert spam_caught >= 10, out
    assert ham_called_spam == 0, out
    # bob learned nothing and there is no global set: nothing is spam
    out = inst.mk("spam", "classify", "--user", "bob", *held_spam[:3]).stdout
    assert "Spam" not in out.replace("/spam/", "")


def test_explain_and_global(trained):
    inst, spam, ham, sdir, hdir = trained
    out = inst.mk("spam", "explain", "--user", "alice", spam[-1]).stdout
    assert re.search(r"^result: (Spam|Innocent)$", out, re.M)
    assert re.search(r"^factors: \d+, ", out, re.M)
    assert "tokenizer: sbph" in out
    # the global set serves users without training
    inst.mk("spam", "train", "--spam", "--global", sdir)
    inst.mk("spam", "train", "--innocent", "--global", hdir)
    st = stats(inst)
    assert st["global"]["spam_learned"] == 60 and st["global"]["innocent_learned"] == 120
    assert st["bob"]["tokens"] == 0
    out = inst.mk("spam", "classify", "--user", "bob", *spam[1::47][:10]).stdout.splitlines()
    assert sum(l.split()[-3] == "Spam" for l in out) >= 5, out


def test_errors_are_clear(instance):
    instance.mk("user", "add", "alice", "--no-password")
    cp = instance.mk("spam", "train", "--spam", "/nonexistent", check=False)
    assert cp.returncode == 2 and "--user USER or --global" in cp.stderr
    cp = instance.mk("spam", "train", "--spam", "--user", "nobody", "/etc/hostname", check=False)
    assert cp.returncode == 1 and "no user nobody" in cp.stderr
    cp = instance.mk("spam", "frobnicate", check=False)
    assert cp.returncode == 2
    cp = instance.mk("spam", "classify", "--user", "alice", "/nonexistent/x", check=False)
    assert cp.returncode != 0 and "/nonexistent/x" in cp.stderr
