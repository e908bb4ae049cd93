"""Dedup across users, fsck catching damage done on purpose, imports killed
with SIGKILL, a full store (map limit; a full disk: test_store_full_disk.py),
and bad input."""
import os
import random
import signal
import subprocess
import time

import pytest

from mkhelpers import BIN, CORPUS
from storehelp import (corpus_sets, data_mdb, mdb_dump, mdb_put, mdb_records, split_from, stats,
                       store_instance, user_mailboxes, write_mboxrd)  # noqa: F401


def test_same_mbox_two_users_does_not_double_bytes(store_instance, tmp_path):
    inst = store_instance
    inst.mk("user", "add", "alice", "--no-password")
    files = [p for v in corpus_sets().values() for p in v]
    box = tmp_path / "all.mbox"
    write_mboxrd(box, files)
    inst.mk("import", "bob", box)
    one = stats(inst)
    inst.mk("import", "--mailbox", "Archive", "alice", box)
    two = stats(inst)
    assert two["messages"] == 2 * one["messages"]
    assert two["blobs"] == one["blobs"]
    assert two["bytes_stored"] == one["bytes_stored"]
    assert two["bytes_referenced"] == 2 * one["bytes_referenced"]
    assert two["dedup_ratio"] == pytest.approx(2.0, abs=0.01)
    assert two["users_detail"]["alice"]["messages"] == two["users_detail"]["bob"]["messages"]


def _import_corpus(inst, user="bob", *extra):
    return inst.mk("import", "--format", "files", *extra, user, CORPUS, check=False)


def test_fsck_catches_altered_blob(store_instance):
    inst = store_instance
    assert _import_corpus(inst).returncode == 0
    assert inst.mk("fsck").returncode == 0
    # find a message's bytes in the LMDB file and change one of them
    raw = bytearray(data_mdb(inst).read_bytes())
    victim = None
    for p in corpus_sets()["spam"][:50]:
        body = split_from(p.read_bytes())[1]
        chunk = body[len(body) // 2: len(body) // 2 + 64]
        if len(chunk) == 64 and raw.count(chunk) == 1:
            victim = raw.find(chunk)
            break
    assert victim is not None, "no message found in data.mdb"
    raw[victim + 10] ^= 0x20
    data_mdb(inst).write_bytes(bytes(raw))
    cp = inst.mk("fsck", check=False)
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert "problem:" in cp.stdout
    assert "1 problem" in cp.stdout, cp.stdout


def test_fsck_catches_broken_reference_and_counter(store_instance):
    inst = store_instance
    assert _import_corpus(inst).returncode == 0
    lines = mdb_dump(inst, "msgs")
    recs = mdb_records(lines)
    assert recs
    k, v = recs[len(recs) // 2]
    # value: version byte, then the 32-byte blob hash: point it at a blob that does not exist
    broken = v[:2] + "ab" * 32 + v[2 + 64:]
    mdb_put(inst, "msgs", lines, [(k, broken)])
    cp = inst.mk("fsck", check=False)
    assert cp.returncode == 1
    problems = [l for l in cp.stdout.splitlines() if l.startswith("problem:")]
    assert problems, cp.stdout
    # the blob it pointed at lost a reference: fsck sees the wrong count or the missing blob
    assert any("ab" * 8 in l or "blob" in l for l in problems), problems

    # a reference count that lies
    inst2_lines = mdb_dump(inst, "blobinfo")
    brecs = mdb_records(inst2_lines)
    bk, bv = brecs[0]
    refs = int(bv[:8], 16) + 3
    mdb_put(inst, "blobinfo", inst2_lines, [(bk, f"{refs:08x}" + bv[8:])])
    cp2 = inst.mk("fsck", check=False)
    assert cp2.returncode == 1
    assert len([l for l in cp2.stdout.splitlines() if l.startswith("problem:")]) > len(problems)


def test_import_killed_at_random_points(store_instance):
    inst = store_instance
    sets = corpus_sets()
    total = sum(len(v) for v in sets.values())
    rnd = random.Random(20021)
    for round_ in range(6):
        p = subprocess.Popen([str(BIN / "mailkeep"), "-c", str(inst.conf), "import", "--format", "files",
                              "--batch", "40", "bob", str(CORPUS)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0.02, 0.5))
        p.send_signal(signal.SIGKILL)
        p.wait()
        cp = inst.mk("fsck", check=False)
        assert cp.returncode == 0, f"round {round_}: {cp.stdout}{cp.stderr}"
    cp = _import_corpus(inst)
    assert cp.returncode == 0, cp.stderr
    mbs = user_mailboxes(inst, "bob")
    for name, files in sets.items():
        assert mbs[name] == len(files), (name, mbs)
    st = stats(inst)
    assert st["messages"] == total
    assert st["blobs"] == total
    assert inst.mk("fsck").returncode == 0


def test_full_store_clear_error_and_consistent(instance):
    inst = instance
    inst.write_conf(store_map_size="2m", store_map_max="4m")
    inst.mk("user", "add", "bob", "--no-password")
    cp = _import_corpus(inst, "bob", "--batch", "20")
    assert cp.returncode == 1
    assert "full" in cp.stderr and "store_map_max" in cp.stderr, cp.stderr
    assert inst.mk("fsck").returncode == 0
    st = stats(inst)
    got = st["messages"]
    assert 0 < got < sum(len(v) for v in corpus_sets().values())
    # more room: the same import finishes, without duplicates
    inst.write_conf(store_map_max="1g")
    cp = _import_corpus(inst)
    assert cp.returncode == 0, cp.stderr
    assert f"{got} already there" in cp.stdout
    assert stats(inst)["messages"] == sum(len(v) for v in corpus_sets().values())
    assert inst.mk("fsck").returncode == 0


def test_bad_input(store_instance, tmp_path):
    inst = store_instance
    # a truncated mbox: the cut message is kept as it is, with a warning
    box = tmp_path / "cut.mbox"
    box.write_bytes(b"From a@b Thu Aug 22 12:36:23 2002\nSubject: whole\n\nfine\n\n"
                    b"From a@b Thu Aug 22 12:36:24 2002\nSubject: cut\n\nhalf a li")
    cp = inst.mk("import", "--mailbox", "Cut", "bob", box)
    assert "cut short" in cp.stderr and "message 2" in cp.stderr
    assert "imported 2 messages" in cp.stdout
    # NUL bytes: stored exactly, with a warning
    nul = tmp_path / "nul" / "m1"
    nul.parent.mkdir()
    nul_msg = b"Subject: nul\n\nbefore\x00after\n"
    nul.write_bytes(nul_msg)
    cp = inst.mk("import", "--format", "files", "--mailbox", "Nul", "bob", nul.parent)
    assert "NUL" in cp.stderr
    # a 50 MB message
    big = tmp_path / "big" / "m50"
    big.parent.mkdir()
    rnd = random.Random(5)
    line = bytes(rnd.choice(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(76))
    big_msg = b"Subject: big\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n" + \
        (line + b"\n") * (50 * 1024 * 1024 // 77)
    big.write_bytes(big_msg)
    cp = inst.mk("import", "--format", "files", "--mailbox", "Big", "bob", big.parent)
    assert "imported 1 messages" in cp.stdout, cp.stdout + cp.stderr
    # a file that is not mail is skipped with a message, not stored; a run that
    # found files but imported none is not a success
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_bytes(b"# my notes\nnothing here\n")
    cp = inst.mk("import", "--format", "files", "--mailbox", "Junk2", "bob", junk, check=False)
    assert cp.returncode == 1
    assert "notes.txt: does not begin with a header line: not a mail message: skipped" in cp.stderr
    assert "skipped 1: 1 file that is not mail" in cp.stderr
    assert "no message was imported" in cp.stderr
    # a file that is not an mbox, named as one
    cp = inst.mk("import", "--format", "mbox", "bob", junk / "notes.txt", check=False)
    assert cp.returncode == 1 and "not an mbox" in cp.stderr
    # everything that was accepted comes back exactly
    out = tmp_path / "out"
    inst.mk("export", "--format", "files", "--no-from-line", "bob", out)
    assert sorted(p.read_bytes() for p in (out / "Cut").iterdir()) == \
        sorted([b"Subject: whole\n\nfine\n", b"Subject: cut\n\nhalf a li"])
    assert (out / "Nul" / "m1").read_bytes() == nul_msg
    assert (out / "Big" / "m50").read_bytes() == big_msg
    assert not (out / "Junk2").exists()
    assert inst.mk("fsck").returncode == 0


def test_config_typo(instance):
    inst = instance
    with open(inst.conf, "a") as f:
        f.write("store_map_sise = 2g\n")
        f.write("store_map_max = lots\n")
    cp = inst.mk("check", check=False)
    assert cp.returncode == 1
    lines = cp.stderr.splitlines()
    n = len(inst.conf.read_text().splitlines())
    assert any(l.startswith(f"{inst.conf}:{n - 1}:") and "store_map_sise" in l for l in lines), cp.stderr
    assert any(l.startswith(f"{inst.conf}:{n}:") and "store_map_max" in l for l in lines), cp.stderr


def test_config_enumerated_values(instance, tmp_path):
    """Settings that take one of a few words: an unknown word is file:line and
    exit 1, like any other config error; the words the programs accept pass."""
    inst = instance
    base = len(inst.conf.read_text().splitlines())
    bad = [("spam_algorithm", "bayes", "expected chi-square or graham"),
           ("spam_training_mode", "always", "expected toe, teft or tum"),
           ("spam_tokenizer", "words", "expected osb4, osb or sbph"),
           ("smtpd_tls_security_level", "required", "expected none, may or encrypt"),
           ("postscreen_greet_action", "reject", "expected ignore, enforce or drop"),
           ("log_target", "stdout", "expected syslog or stderr"),
           ("ldap_scope", "subtree", "expected sub, one or base")]
    with open(inst.conf, "a") as f:
        for name, value, _ in bad:
            f.write(f"{name} = {value}\n")
    cp = inst.mk("check", check=False)
    assert cp.returncode == 1
    lines = cp.stderr.splitlines()
    for i, (name, value, why) in enumerate(bad):
        want = f"{inst.conf}:{base + 1 + i}: {name} = {value}: {why}"
        assert want in lines, (want, cp.stderr)
    assert f"{len(bad)} problems" in cp.stderr
    # the same settings with words the programs take: clean
    conf = inst.conf.read_text().splitlines()[:base]
    conf += ["spam_algorithm = Graham", "spam_training_mode = teft", "spam_tokenizer = osb",
             "smtpd_tls_security_level = encrypt", "postscreen_greet_action = Enforce",
             "log_target = stderr", "ldap_scope = one"]
    inst.conf.write_text("\n".join(conf) + "\n")
    cp = inst.mk("check", check=False)
    assert cp.returncode == 0, cp.stderr
    # and through $name expansion, as the programs see them
    inst.conf.write_text("\n".join(conf[:base] + ["my_alg = bayes", "spam_algorithm = $my_alg"]) + "\n")
    cp = inst.mk("check", check=False)
    assert cp.returncode == 1
    assert f"{inst.conf}:{base + 2}: spam_algorithm = bayes: expected chi-square or graham" in cp.stderr
    # `check --list` names the words
    listed = inst.mk("check", "--list").stdout
    assert "# How token evidence is combined: chi-square (Robinson-Fisher) or graham; one of: " \
        "chi-square, graham" in listed


def test_config_user_directory_checked(instance, tmp_path):
    inst = instance
    inst.write_conf(user_directory="nis")
    cp = inst.mk("check", check=False)
    assert cp.returncode == 1 and "user_directory = nis" in cp.stderr
    n = [l.split(" =")[0] for l in inst.conf.read_text().splitlines()].index("user_directory") + 1
    assert f"{inst.conf}:{n}: user_directory = nis: expected embedded, ldap or ldap:..." in cp.stderr
    cf = tmp_path / "ldap-users.cf"
    cf.write_text("server_host = 127.0.0.1:389\nsearch_bas = dc=example,dc=org\n")
    inst.write_conf(user_directory=f"ldap:{cf}")
    cp = inst.mk("check", check=False)
    assert cp.returncode == 1 and f"{cf}:2:" in cp.stderr and "search_bas" in cp.stderr


def test_concurrent_imports(store_instance, tmp_path):
    """Two import processes at once (LMDB's one writer at a time, across
    processes): each gets all its messages, the store stays consistent."""
    inst = store_instance
    sets = corpus_sets()
    procs = []
    for name, files in sets.items():
        box = tmp_path / f"{name}.mbox"
        write_mboxrd(box, files)
        procs.append(subprocess.Popen([str(BIN / "mailkeep"), "-c", str(inst.conf), "import", "--batch", "100",
                                       "--mailbox", f"Both.{name}", "bob", str(box)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    mbs = user_mailboxes(inst, "bob")
    for name, files in sets.items():
        assert mbs[f"Both.{name}"] == len(files)
    assert inst.mk("fsck").returncode == 0
