"""Other sources of issue 20: a Google Takeout mbox (labels -> mailboxes,
one stored copy), Thunderbird's local folders (mbox + .msf), and what
`mailkeep stats` shows of it. Read back with mailkeep-imapd and imaplib."""
import collections
import random
import re

import pytest

from moveinlib import digest, list_folders, mutf7, read_mailbox

LABELS = ["Inbox", "Sent", "Important", "Starred", "Unread", "Opened", "Work/Project",
          "Work", '"Family, close"', "Category Promotions", "=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=",
          "Spam", "Trash", "Drafts", "v1.2 notes"]
# label -> our mailbox (None: not a mailbox)
MAILBOX = {"Inbox": "INBOX", "Sent": "Sent", "Work/Project": "Work.Project", "Work": "Work",
           '"Family, close"': "Family, close", "=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=": "Grüße",
           "Spam": "Junk", "Trash": "Trash", "Drafts": "Drafts", "v1.2 notes": "v1\u20242 notes"}


def takeout(path, n=300, seed=5):
    rng = random.Random(seed)
    want = collections.Counter()          # (mailbox, sha) -> copies
    flags = {}
    blobs = set()
    sizes = {}
    with open(path, "wb") as f:
        for i in range(n):
            labels = rng.sample(LABELS, rng.randrange(0, 6))
            if i % 37 == 0:
                labels = ["Opened"]       # archived: only in All Mail
            body = f"Subject: takeout {i}\nFrom: x{i}@example.org\nX-Gmail-Labels: {','.join(labels)}\n" \
                   f"X-GM-THRID: {1000 + i}\n\nbody {i}\nFrom the start of a line\n"
            data = body.encode()
            # the mbox (mboxrd) quotes "From " in the body
            quoted = re.sub(rb"(?m)^(>*From )", rb">\1", data)
            f.write(b"From 1%017d@xxx Mon Jan 15 10:%02d:00 +0000 2018\n" % (i, i % 60) + quoted + b"\n")
            # what is stored is the LF bytes of the file; mailkeep-imapd serves
            # them in CRLF form (doc/imapd.md), so the messages are compared as that
            h = digest(data.replace(b"\n", b"\r\n"))
            blobs.add(h)
            sizes[h] = len(data)
            boxes = {MAILBOX[x] for x in labels if MAILBOX.get(x)}
            if not boxes:
                boxes = {"Archive"}
            fl = set()
            if "Unread" not in labels:
                fl.add("\\Seen")
            if "Starred" in labels:
                fl.add("\\Flagged")
            if "Important" in labels:
                fl.add("$Important")
            for b in boxes:
                want[(b, h)] += 1
                flags[(b, h)] = frozenset(fl)
    return want, flags, blobs, sizes


def stats(inst):
    out = {}
    for line in inst.mk("stats").stdout.splitlines():
        k, v = line.split()[:2]
        out[k] = v
    return out


def test_takeout_labels_are_mailboxes_stored_once(local, tmp_path):
    mbox = tmp_path / "All mail Including Spam and Trash.mbox"
    want, flags, blobs, sizes = takeout(mbox)
    before = stats(local.inst)
    cp = local.inst.mk("import", "bob", mbox)      # found by its X-Gmail-Labels
    assert f"imported {sum(want.values())} messages" in cp.stdout, cp.stdout + cp.stderr
    after = stats(local.inst)
    # every message is stored once, however many labels it has
    assert int(after["blobs"]) - int(before["blobs"]) == len(blobs)
    assert int(after["bytes_stored"]) - int(before["bytes_stored"]) == sum(sizes.values())
    referenced = sum(sizes[h] * c for (_, h), c in want.items())
    assert int(after["bytes_referenced"]) - int(before["bytes_referenced"]) == referenced
    assert referenced > sum(sizes.values())
    m = local.start_imapd()
    try:
        names = list_folders(m)
        got = collections.Counter()
        for box in {b for b, _ in want}:
            wire = mutf7(box)
            assert wire in names, (box, names)
            for body, fl, _ in read_mailbox(m, wire):
                got[(box, digest(body))] += 1
                assert fl == flags[(box, digest(body))], (box, fl)
        assert got == want
        assert "Important" not in names and "Starred" not in names and "Opened" not in names
    finally:
        m.logout()
    # again: nothing added
    cp = local.inst.mk("import", "bob", mbox)
    assert "imported 0 messages" in cp.stdout, cp.stdout


def moz(i, status, keys=""):
    return (f"From - Mon Jan 15 10:00:{i % 60:02d} 2018\n"
            f"X-Mozilla-Status: {status:04x}\nX-Mozilla-Status2: 00000000\n"
            f"X-Mozilla-Keys: {keys}\nSubject: tb {i}\nFrom: a@example.org\n\nbody {i}\n\n")


def test_thunderbird_local_folders(local, tmp_path):
    root = tmp_path / "Local Folders"
    (root / "Projects.sbd").mkdir(parents=True)
    (root / "Inbox").write_text(moz(1, 0x0001) + moz(2, 0x0000, "$label1 todo") + moz(3, 0x0009))
    (root / "Inbox.msf").write_text("// <!-- <mdb:mork:z v=\"1.4\"/> -->\n< <(a=c)> >\n")
    (root / "Sent").write_text(moz(4, 0x0003))
    (root / "Archives").write_text(moz(5, 0x1005))
    (root / "Projects").write_text("")
    (root / "Projects.msf").write_text("mork")
    (root / "Projects.sbd" / "Alpha").write_text(moz(6, 0x0001))
    (root / "msgFilterRules.dat").write_text("version=\"9\"\n")
    cp = local.inst.mk("import", "bob", root)
    assert "imported 5 messages" in cp.stdout, cp.stdout + cp.stderr
    assert "1 messages Thunderbird marks as deleted" in cp.stderr, cp.stderr
    m = local.start_imapd()
    try:
        def flags(box):
            return sorted(tuple(sorted(fl)) for _, fl, _ in read_mailbox(m, box))
        assert sorted(flags("INBOX")) == sorted([("\\Seen",), ("$label1", "todo")])
        assert flags("Sent") == [("\\Answered", "\\Seen")]
        assert flags("Archive") == [("$Forwarded", "\\Flagged", "\\Seen")]
        assert flags("Projects.Alpha") == [("\\Seen",)]
        names = list_folders(m)
        assert "Projects" in names and not any(".msf" in n for n in names), names
    finally:
        m.logout()


def dbox(kind, n=20):
    """An mdbox/sdbox store made by Debian's doveadm (as nobody: Dovecot never
    touches mail as root), with folders, flags and non-ASCII names."""
    import os
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path
    if shutil.which("doveadm") is None:
        pytest.skip("doveadm is not installed (tools/install-deps.sh installs dovecot-imapd)")
    root = Path(tempfile.mkdtemp(prefix="mk-movein-dbox-"))
    os.chmod(root, 0o755)
    shutil.chown(root, "nobody", "nogroup")
    conf = root / "d.conf"
    conf.write_text(f"mail_location = {kind}:{root}/{kind}\nfirst_valid_uid = 1\n"
                    "namespace inbox {\n  inbox = yes\n  prefix =\n  separator = .\n}\n")
    env = {"USER": "nobody", "HOME": str(root), "PATH": "/usr/bin:/bin"}

    def dv(*args, input=None):
        cp = subprocess.run(["runuser", "-u", "nobody", "--", "/usr/bin/env", *[f"{k}={v}" for k, v in env.items()],
                             "doveadm", "-c", str(conf), *args], input=input, capture_output=True)
        assert cp.returncode == 0, (args, cp.stderr)
        return cp.stdout
    folders = ["INBOX", "Work", "Entwürfe"]
    dv("mailbox", "create", "Work", "Entwürfe")
    want = collections.Counter()
    for i in range(n):
        box = folders[i % 3]
        data = f"Subject: dbox {i}\nFrom: a@example.org\n\nbody {i}\n".encode()
        dv("save", "-m", box, input=data)
        want[(box, digest(data.replace(b"\n", b"\r\n")))] += 1
    dv("flags", "add", "\\Seen", "mailbox", "Work", "all")
    return root, root / kind, want


@pytest.mark.parametrize("kind", ["mdbox", "sdbox"])
def test_dovecot_dbox_through_doveadm(local, kind):
    import shutil
    root, store, want = dbox(kind)
    try:
        cp = local.inst.mk("import", "bob", store)     # found by its mailboxes/ directory
        assert f"imported {sum(want.values())} messages" in cp.stdout, cp.stdout + cp.stderr
        m = local.start_imapd()
        try:
            got = collections.Counter()
            for box in ("INBOX", "Work", "Entwürfe"):
                for body, fl, _ in read_mailbox(m, mutf7(box)):
                    got[(box, digest(body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")))] += 1
                    assert ("\\Seen" in fl) == (box == "Work"), (box, fl)
            assert got == want
        finally:
            m.logout()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    import glob
    assert not glob.glob("/tmp/mailkeep-dovecot-*"), "the temporary copy was left behind"


def test_outlook_pst_through_readpst(local):
    """Needs a .pst with mail: no such file is in the repository (none with a
    licence to redistribute was found); set MAILKEEP_PST_SAMPLE to one and
    MAILKEEP_PST_MESSAGES to the number of mail messages in it."""
    import os
    import shutil
    sample = os.environ.get("MAILKEEP_PST_SAMPLE")
    if shutil.which("readpst") is None:
        pytest.skip("readpst is not installed (tools/install-deps.sh installs pst-utils)")
    if not sample:
        pytest.skip("no sample .pst (set MAILKEEP_PST_SAMPLE and MAILKEEP_PST_MESSAGES)")
    cp = local.inst.mk("import", "bob", sample)
    assert f"imported {os.environ['MAILKEEP_PST_MESSAGES']} messages" in cp.stdout, cp.stdout + cp.stderr
    assert not [p for p in os.listdir("/tmp") if p.startswith("mailkeep-pst-")]
