"""In the flow: smtpin classifies each recipient's copy with that user's own
filter; spam goes to the user's Junk, the rest to INBOX, and the verdict is in
the message's metadata (and so in the mount's user.spam.* xattrs)."""
import re

from mkhelpers import CORPUS
from spamhelp import spam_stats


def test_smtp_delivery_is_classified_per_recipient(smtpin_factory, tmp_path):
    s = smtpin_factory(spam_training_mode="teft")
    s.useradd("bob")
    s.useradd("alice")
    s.start()
    inst = s.inst
    spam = sorted((CORPUS / "spam").iterdir())
    ham = sorted(p for p in (CORPUS / "ham").iterdir() if p.name.startswith("easy"))
    inst.mk("spam", "train", "--spam", "--user", "bob", *spam[0::8][:80])
    inst.mk("spam", "train", "--innocent", "--user", "bob", *ham[0::8][:160])
    # alice learned the opposite: the same mail must land differently for her
    inst.mk("spam", "train", "--innocent", "--user", "alice", *spam[0::8][:80])
    inst.mk("spam", "train", "--spam", "--user", "alice", *ham[0::8][:160])

    probe = next(p for p in spam[3::8] if p.stat().st_size < 20000)
    before = spam_stats(inst, "bob")
    cp = s.swaks("--to", "bob@example.org,alice@example.org", "--from", "x@example.com",
                 "--data", str(probe))
    assert cp.returncode == 0, cp.stdout
    assert re.search(r"<-  250 2\.0\.0 Ok: queued as", cp.stdout)

    junk = s.messages("bob", "Junk")
    assert len(junk) == 1 and s.messages("bob") == []
    meta = junk[0][3]
    assert "spam.result=Spam\n" in meta
    prob = float(re.search(r"spam\.probability=([0-9.]+)", meta).group(1))
    assert prob >= 0.9
    assert re.search(r"spam\.factors=\d+, \S+ [01]\.\d{5}", meta)
    inbox = s.messages("alice")
    assert len(inbox) == 1 and "spam.result=Innocent\n" in inbox[0][3]
    # teft: bob's copy was learned as spam at delivery
    after = spam_stats(inst, "bob")
    assert after["spam_learned"] == before["spam_learned"] + 1
    assert after["spam_classified"] == before["spam_classified"] + 1
