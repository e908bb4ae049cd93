"""Import -> export round trips over every corpus message: byte-identical
messages, flags and folders preserved, and the exported Maildir read by
independent readers (Python's mailbox module, mblaze)."""
import collections
import mailbox
import os
import subprocess

from mkhelpers import BIN, CORPUS
from storehelp import FLAG_SETS, corpus_sets, split_from, write_mboxrd, stats, user_mailboxes, store_instance  # noqa: F401


def test_files_round_trip_byte_identical(store_instance, tmp_path):
    inst = store_instance
    sets = corpus_sets()
    total = sum(len(v) for v in sets.values())
    cp = inst.mk("import", "--format", "files", "bob", CORPUS)
    assert f"imported {total} messages" in cp.stdout, cp.stdout
    assert user_mailboxes(inst, "bob")["ham"] == len(sets.get("ham", [])) or "ham" not in sets
    out = tmp_path / "out"
    inst.mk("export", "--format", "files", "bob", out)
    for name, files in sets.items():
        got = sorted(p.name for p in (out / name).iterdir())
        assert got == [p.name for p in files]
        for p in files:
            assert (out / name / p.name).read_bytes() == p.read_bytes(), p
    # the stored message is what follows the From line; export without it
    out2 = tmp_path / "out2"
    inst.mk("export", "--format", "files", "--no-from-line", "bob", out2)
    for name, files in sets.items():
        for p in files[:50]:
            assert (out2 / name / p.name).read_bytes() == split_from(p.read_bytes())[1]
    assert inst.mk("fsck").returncode == 0


def make_maildir(root, sets):
    """A Maildir++ tree from the corpus: ham in INBOX and .Lists.ham, spam in .Junk,
    flags from FLAG_SETS, every 7th message in new/; returns {relpath: bytes}."""
    expect = {}
    folders = {"ham": ["", ".Lists.ham"], "spam": [".Junk"]}
    i = 0
    for name, files in sets.items():
        targets = folders.get(name, ["." + name])
        for j, p in enumerate(files):
            folder = targets[j % len(targets)]
            d = root / folder if folder else root
            for sub in ("cur", "new", "tmp"):
                (d / sub).mkdir(parents=True, exist_ok=True)
            base = f"{1000000000 + i}.M{i}P1.corpus"
            if i % 7 == 3:
                rel = os.path.join(folder, "new", base)
            else:
                rel = os.path.join(folder, "cur", f"{base}:2,{FLAG_SETS[i % len(FLAG_SETS)]}")
            msg = split_from(p.read_bytes())[1]
            (root / rel).write_bytes(msg)
            os.utime(root / rel, (1000000000 + i, 1000000000 + i))
            expect[rel] = msg
            i += 1
    return expect


def test_maildir_round_trip_flags_folders(store_instance, tmp_path):
    inst = store_instance
    sets = corpus_sets()
    src = tmp_path / "src"
    expect = make_maildir(src, sets)
    inst.mk("import", "bob", src)
    out = tmp_path / "out"
    inst.mk("export", "bob", out)
    got = {}
    for dirpath, _, names in os.walk(out):
        for n in names:
            full = os.path.join(dirpath, n)
            rel = os.path.relpath(full, out)
            if n == "maildirfolder":
                continue
            got[rel] = full
    # the welcome-less user has only the imported messages
    assert set(got) == set(expect), sorted(set(got) ^ set(expect))[:10]
    for rel, msg in expect.items():
        with open(got[rel], "rb") as f:
            assert f.read() == msg, rel
        assert int(os.stat(got[rel]).st_mtime) == int(os.stat(src / rel).st_mtime)
    # importing again adds nothing
    cp = inst.mk("import", "bob", src)
    assert "imported 0 messages" in cp.stdout and f"{len(expect)} already there" in cp.stdout

    # Python's mailbox module reads it, with the same flags
    md = mailbox.Maildir(out, factory=None, create=False)
    folders = {"": md}
    for f in md.list_folders():
        folders["." + f] = md.get_folder(f)
    assert set(folders) == {"", ".Lists.ham", ".Junk", ".Archive", ".Drafts", ".Sent", ".Trash"} | \
        {"." + n for n in sets if n not in ("ham", "spam")}
    seen = 0
    for folder, box in folders.items():
        for key in box.keys():
            m = box.get_message(key)
            sub = m.get_subdir()
            rel = os.path.join(folder, sub, key + (":" + m.get_info() if m.get_info() else "")) \
                if sub == "cur" else os.path.join(folder, "new", key)
            assert rel in expect, rel
            letters = rel.split(":2,")[1] if ":2," in rel else ""
            assert m.get_flags() == letters
            assert box.get_bytes(key) == expect[rel]
            seen += 1
    assert seen == len(expect)

    # mblaze: mlist finds every message; -S / -F select by flag like the names say
    listed = subprocess.run(["mlist", str(out), *[str(out / f) for f in folders if f]],
                            capture_output=True, text=True, check=True).stdout.split("\n")
    assert len([x for x in listed if x]) == len(expect)
    want_seen = sum(1 for rel in expect if "S" in rel.split(":2,")[-1] and ":2," in rel)
    got_seen = subprocess.run(["mlist", "-S", str(out), *[str(out / f) for f in folders if f]],
                              capture_output=True, text=True).stdout.split("\n")
    assert len([x for x in got_seen if x]) == want_seen
    # mshow parses a message's header
    one = next(rel for rel in expect if rel.startswith(".Junk"))
    hdr = subprocess.run(["mshow", "-q", str(out / one)], capture_output=True, text=True).stdout
    assert hdr.strip(), "mshow printed no header"


def test_mbox_round_trip(store_instance, tmp_path):
    inst = store_instance
    sets = corpus_sets()
    files = [p for v in sets.values() for p in v]
    box = tmp_path / "all.mbox"
    write_mboxrd(box, files)
    cp = inst.mk("import", "--mailbox", "Old", "bob", box)
    assert f"imported {len(files)} messages" in cp.stdout, cp.stdout + cp.stderr
    # files export writes the kept From line back: each corpus file comes back exactly
    out = tmp_path / "files"
    inst.mk("export", "--format", "files", "--mailbox", "Old", "bob", out)
    got = collections.Counter(p.read_bytes() for p in (out / "Old").iterdir())
    # a corpus file without a From line got the mbox's made-up one in front
    want = collections.Counter(
        p.read_bytes() if p.read_bytes().startswith(b"From ") else
        b"From MAILER-DAEMON Thu Jan  1 00:00:00 2004\n" + p.read_bytes() for p in files)
    assert got == want
    # mbox export of the same mailbox is the same mboxrd file, byte for byte
    again = tmp_path / "again.mbox"
    inst.mk("export", "--format", "mbox", "--mailbox", "Old", "bob", again)
    assert again.read_bytes() == box.read_bytes()
    # Python reads the exported mbox: same number of messages
    assert len(mailbox.mbox(again)) == len(files)


def test_mboxo_and_mboxrd_unquoting(store_instance, tmp_path):
    inst = store_instance
    body = (b"Subject: q\n\nFrom the start\n>From one\n>>From two\n")
    rd = tmp_path / "rd.mbox"
    rd.write_bytes(b"From a@b Thu Aug 22 12:36:23 2002\n" + b"Subject: q\n\n>From the start\n>>From one\n>>>From two\n\n")
    o = tmp_path / "o.mbox"
    o.write_bytes(b"From a@b Thu Aug 22 12:36:23 2002\n" + b"Subject: q\n\n>From the start\n>From one\n>>From two\n\n")
    inst.mk("import", "--mailbox", "RD", "bob", rd)
    inst.mk("import", "--mailbox", "O", "--mbox-variant", "o", "bob", o)
    out = tmp_path / "out"
    inst.mk("export", "--format", "files", "--no-from-line", "bob", out)
    (rdmsg,) = list((out / "RD").iterdir())
    (omsg,) = list((out / "O").iterdir())
    assert rdmsg.read_bytes() == body
    # mboxo: ">From" loses its '>', ">>From" is kept (mboxo never quoted it)
    assert omsg.read_bytes() == b"Subject: q\n\nFrom the start\nFrom one\n>>From two\n"


def test_mbox_flags_and_dates(store_instance, tmp_path):
    inst = store_instance
    box = tmp_path / "f.mbox"
    box.write_bytes(b"From a@b Thu Aug 22 12:36:23 2002\nSubject: 1\nStatus: RO\nX-Status: AF\n\nx\n\n"
                    b"From a@b Fri Aug 23 12:36:23 2002\nSubject: 2\n\ny\n")
    inst.mk("import", "bob", box)
    out = tmp_path / "md"
    inst.mk("export", "bob", out)
    names = sorted(os.listdir(out / "cur"))
    assert len(names) == 2
    flags = sorted(n.split(":2,")[1] for n in names)
    assert flags == ["", "FRS"]
    mtimes = sorted(int(os.stat(out / "cur" / n).st_mtime) for n in names)
    assert mtimes == [1030019783, 1030019783 + 86400]
    st = stats(inst)
    assert st["messages"] == 2


def test_mbox_on_standard_input(store_instance, tmp_path):
    inst = store_instance
    files = corpus_sets()["spam"][:200]
    box = tmp_path / "s.mbox"
    write_mboxrd(box, files)
    cp = inst.mk("import", "--mailbox", "Piped", "bob", "-", input=box.read_bytes())
    assert b"imported 200 messages" in cp.stdout
    again = tmp_path / "again.mbox"
    inst.mk("export", "--format", "mbox", "--mailbox", "Piped", "bob", again)
    assert again.read_bytes() == box.read_bytes()
    # and out on standard output
    out = subprocess.run([str(BIN / "mailkeep"), "-c", str(inst.conf), "export", "--format", "mbox",
                          "--mailbox", "Piped", "bob", "-"], capture_output=True, check=True)
    assert out.stdout == box.read_bytes()
    assert b"exported 200 messages" in out.stderr
