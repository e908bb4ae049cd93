"""Retraining through IMAP: MOVE into Junk learns spam, MOVE or COPY out of
Junk learns innocent, and the counts move by exactly one message."""
from mkhelpers import CORPUS
from spamhelp import spam_stats


def test_imap_move_and_copy_retrain(imapd):
    inst = imapd.inst
    spam = sorted((CORPUS / "spam").iterdir())[0::16][:30]
    ham = sorted(p for p in (CORPUS / "ham").iterdir() if p.name.startswith("easy"))[0::16][:60]
    inst.mk("spam", "train", "--spam", "--user", "alice", *spam)
    inst.mk("spam", "train", "--innocent", "--user", "alice", *ham)
    before = spam_stats(inst, "alice")

    m = imapd.login("alice")
    msg = sorted((CORPUS / "spam").iterdir())[7].read_bytes()
    typ, _ = m.append("INBOX", None, None, msg)
    assert typ == "OK"
    m.select("INBOX")
    typ, data = m.uid("SEARCH", "ALL")
    uid = data[0].split()[-1]
    typ, _ = m.uid("MOVE", uid, "Junk")
    assert typ == "OK"
    moved = spam_stats(inst, "alice")
    assert moved["spam_learned"] == before["spam_learned"] + 1
    assert moved["innocent_learned"] == before["innocent_learned"]
    assert moved["spam_misses"] == before["spam_misses"] + 1

    # COPY out of Junk: a correction back to innocent, exactly one message
    m.select("Junk")
    typ, data = m.uid("SEARCH", "ALL")
    juid = data[0].split()[-1]
    typ, _ = m.uid("COPY", juid, "INBOX")
    assert typ == "OK"
    back = spam_stats(inst, "alice")
    assert back["spam_learned"] == before["spam_learned"]
    assert back["innocent_learned"] == before["innocent_learned"] + 1
    assert back["tokens"] == moved["tokens"]

    # MOVE between two ordinary mailboxes teaches nothing
    m.select("INBOX")
    typ, data = m.uid("SEARCH", "ALL")
    typ, _ = m.uid("MOVE", data[0].split()[-1], "Archive")
    assert typ == "OK"
    assert spam_stats(inst, "alice") == back
    assert spam_stats(inst, "bob")["tokens"] == 0
    m.logout()
