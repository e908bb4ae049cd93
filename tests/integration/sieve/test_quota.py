"""Quotas: delivery past a limit (452 4.2.2 or 552 5.2.2 per setting, at RCPT
and after DATA, per recipient over LMTP), the 80/95% warnings, IMAP QUOTA
(GETQUOTAROOT agrees with `mailkeep user show`), APPEND/COPY over quota
(NO [OVERQUOTA]) while MOVE works, EDQUOT and df on the mount."""
import errno
import imaplib
import os
import re
import subprocess

import pytest

from mkhelpers import wait_for
from sievehelp import Mail, message


@pytest.fixture
def mail(smtpin_factory, helpers):
    import imapdutil
    return Mail(smtpin_factory(), imapdutil.Imapd, helpers)


def show(inst, user="bob"):
    """(bytes, limit, messages, mlimit, dedup) from `mailkeep user show`."""
    out = inst.mk("user", "show", user).stdout
    st = re.search(r"^quota storage\s+(\d+) bytes of (\d+|no limit)", out, re.M)
    mg = re.search(r"^quota messages\s+(\d+) of (\d+|no limit)", out, re.M)
    dd = re.search(r"^stored\s+(\d+) bytes once deduplicated", out, re.M)
    lim = lambda v: None if v == "no limit" else int(v)
    return int(st.group(1)), lim(st.group(2)), int(mg.group(1)), lim(mg.group(2)), int(dd.group(1))


def body(n):
    return "x" * n + "\r\n"


def test_delivery_past_the_limit_and_the_warnings(mail):
    mail.start("bob", "alice")
    inst = mail.inst
    inst.mk("user", "quota", "bob", "--storage", "20k", "--messages", "100")
    assert show(inst)[1] == 20 * 1024 and show(inst)[3] == 100
    # about 1 KB at a time, smaller near the end, until 95% is crossed (what
    # smtpin adds, Received: and Authentication-Results:, is ~450 bytes a
    # message): 80% and 95% are crossed on the way, every message fits
    sent, limit = 0, 20 * 1024
    while show(inst)[0] < limit * 95 // 100:
        n = min(900, limit - show(inst)[0] - 700)
        assert n > 0, show(inst)
        cp = mail.send("bob@example.org", message(subject=f"m{sent}", body=body(n)))
        assert cp.returncode == 0, cp.stdout[-800:]
        sent += 1
    subjects = [re.search(rb"Subject: ([^\r\n]*)", m[1]).group(1) for m in mail.mailboxes("bob")["INBOX"]]
    assert subjects.count(b"Your mailbox is 80% full") == 1, subjects
    assert subjects.count(b"Your mailbox is 95% full") == 1, subjects
    assert subjects.index(b"Your mailbox is 80% full") < subjects.index(b"Your mailbox is 95% full")
    # full now: refused at RCPT for bob alone, 452 4.2.2 (quota_full_tempfail = yes)
    cp = mail.send("bob@example.org,alice@example.org", message(subject="more", body=body(3500)))
    assert "452 4.2.2 <bob@example.org>: Mailbox full: over quota" in cp.stdout
    assert re.search(r"<-  250 2\.0\.0 Ok: queued as", cp.stdout)
    assert len(mail.mailboxes("alice")["INBOX"]) == 1
    # LMTP: the same, per recipient
    cp = mail.send("bob@example.org", message(subject="lmtp", body=body(3500)), lmtp=True)
    assert "452 4.2.2" in cp.stdout
    # 552 5.2.2 when over quota is permanent
    mail.s.restart(quota_full_tempfail="no")
    cp = mail.send("bob@example.org", message(subject="more", body=body(3500)))
    assert "552 5.2.2 <bob@example.org>: Mailbox full: over quota" in cp.stdout
    # a message that fits at RCPT but not with its size: refused after DATA, nothing stored
    inst.mk("user", "quota", "bob", "--storage", "40k")
    before = show(inst)
    cp = mail.send("bob@example.org", message(subject="huge", body=body(30000)))
    assert "552 5.2.2 Mailbox full" in cp.stdout, cp.stdout[-500:]
    assert show(inst)[:3] == before[:3]


def test_getquotaroot_agrees_with_user_show_and_append_over_quota(mail):
    mail.start("bob")
    inst = mail.inst
    inst.mk("user", "quota", "bob", "--storage", "16k", "--messages", "10")
    for i in range(2):
        assert mail.send("bob@example.org", message(subject=f"m{i}", body=body(3000))).returncode == 0
    m = mail.imap_login("bob")
    assert b"QUOTA=RES-STORAGE" in m.capability()[1][0]
    typ, data = m.getquotaroot("INBOX")
    assert typ == "OK"
    assert data[0] == [b'"INBOX" ""'], data
    q = re.match(rb'"" \(STORAGE (\d+) (\d+) MESSAGE (\d+) (\d+)\)', data[1][0])
    used, lim, n, nlim, dedup = show(inst)
    assert int(q.group(1)) == (used + 1023) // 1024 and int(q.group(2)) == lim // 1024
    assert int(q.group(3)) == n and int(q.group(4)) == nlim
    assert m.getquota('""')[1][0] == data[1][0]
    typ, _ = m.setquota('""', "(STORAGE 100)")
    assert typ == "NO"
    # a copy into another folder counts (dedup bytes do not: stored once)
    m.select("INBOX")
    assert m.copy("1", "Archive")[0] == "OK"
    used2, _, n2, _, dedup2 = show(inst)
    assert n2 == n + 1 and used2 > used and dedup2 == dedup
    # APPEND past the limit: NO [OVERQUOTA], nothing stored
    msg = message(subject="appended", body=body(9000)).encode()
    typ, data = m.append("INBOX", None, None, msg)
    assert typ == "NO" and b"[OVERQUOTA]" in data[0], data
    assert show(inst)[2] == n2
    # COPY past it too; MOVE changes nothing in the use, so it works
    typ, data = m.copy("1:*", "Archive")
    assert typ == "NO" and b"[OVERQUOTA]" in data[0], data
    assert m._simple_command("MOVE", "1", "Trash")[0] == "OK"
    assert show(inst)[:3] == (used2, lim, n2)
    # STATUS DELETED-STORAGE (RFC 9208)
    m.select("Archive")
    m.store("1", "+FLAGS", "\\Deleted")
    typ, data = m.status("Archive", "(DELETED DELETED-STORAGE)")
    assert re.search(rb"DELETED 1 DELETED-STORAGE [1-9]\d*", data[0]), data
    m.logout()


def test_edquot_and_df_on_the_mount(mnt, tmp_path):
    inst = mnt.inst
    mnt.start()
    for i in range(3):
        mnt.deliver("bob", f"Subject: m{i}\r\n\r\n{'x' * 3000}\r\n")
    inst.mk("user", "quota", "bob", "--storage", "12k", "--messages", "50")
    df = subprocess.run(["df", "-B1", "--output=size,used,avail", str(mnt.path / "bob")],
                        capture_output=True, text=True, check=True).stdout.split("\n")[1].split()
    size, used, avail = map(int, df)
    assert size == 12 * 1024 and avail <= 12 * 1024 - 9000, df
    st = os.statvfs(mnt.path / "bob")
    assert st.f_files == 50 and st.f_ffree == 50 - 3
    # a message past the quota: EDQUOT while writing
    with pytest.raises(OSError) as e:
        with open(mnt.path / "bob" / "new" / "1700000000.M1.host", "wb") as f:
            f.write(b"Subject: big\r\n\r\n" + b"y" * 8000)
            f.flush()
            os.fsync(f.fileno())
    assert e.value.errno == errno.EDQUOT
    assert len(mnt.listing("bob")) == 3
    # at the limit: not even a new file can be made
    inst.mk("user", "quota", "bob", "--messages", "3")
    with pytest.raises(OSError) as e:
        open(mnt.path / "bob" / "new" / "1700000001.M2.host", "wb").close()
    assert e.value.errno == errno.EDQUOT
