"""Sieve at delivery, end to end: scripts put with `mailkeep sieve put` (as
ManageSieve stores them), mail sent with swaks over SMTP and LMTP, results
read with imaplib: the RFCs' examples and real-world scripts (list filing
by List-Id, plus-address filing, spam to Junk, vacation), rejections,
run-time failures (INBOX and one notice per new error), bad input."""
import re
import time

import pytest

from mkhelpers import CORPUS, wait_for
from sievehelp import Mail, message


@pytest.fixture
def mail(smtpin_factory, helpers):
    import imapdutil
    return Mail(smtpin_factory(), imapdutil.Imapd, helpers)


def subjects(msgs):
    return [re.search(rb"Subject: ([^\r\n]*)", m[1]).group(1).decode() for m in msgs]


def test_list_filing_by_list_id(mail):
    mail.start("bob")
    cp = mail.put_script("bob", 'require ["fileinto", "variables", "mailbox"];\n'
                         '# a list per folder, as Dovecot users file them\n'
                         'if header :matches "List-Id" "*<*.*>" { fileinto :create "Lists.${2}"; }\n')
    assert cp.returncode == 0, cp.stderr
    for lmtp in (False, True):
        cp = mail.send("bob@example.org", message(headers="List-Id: Kernel list <linux-kernel.vger.kernel.org>\r\n"),
                       lmtp=lmtp)
        assert cp.returncode == 0, cp.stdout
    cp = mail.send("bob@example.org", message(subject="personal"))
    assert cp.returncode == 0
    boxes = mail.mailboxes("bob")
    assert len(boxes["Lists.linux-kernel"]) == 2
    assert subjects(boxes["INBOX"]) == ["personal"]
    assert "sieve: user=<bob>: fileinto Lists.linux-kernel" in mail.s.log()
    assert "delivered to Lists.linux-kernel mailbox of bob" in mail.s.log()


def test_plus_address_and_rfc_examples(mail):
    mail.start("bob")
    # RFC 5233 section 4 (subaddress), RFC 5232 section 6 (imap4flags), RFC 5229 (variables)
    cp = mail.put_script("bob", r'''require ["envelope", "subaddress", "fileinto", "mailbox", "variables",
         "imap4flags", "copy"];
# bob+shop@example.org goes to the folder "shop"
if envelope :detail :matches "to" "*" {
    set :lower "box" "${1}";
    fileinto :create "${box}";
    stop;
}
# RFC 5232 6: flag what is from the boss, keep a copy flagged in INBOX
if address :is "From" "boss@example.com" {
    addflag "\\Flagged";
    fileinto :copy :flags "\\Seen $Boss" "Boss";
}
''')
    assert cp.returncode == 0, cp.stderr
    assert mail.send("bob+Shop@example.org", message(subject="order 1")).returncode == 0
    assert mail.send("bob+shop@example.org", message(subject="order 2"), lmtp=True).returncode == 0
    assert mail.send("bob@example.org", message(subject="raise", frm="Boss <boss@example.com>")).returncode == 0
    boxes = mail.mailboxes("bob")
    assert subjects(boxes["shop"]) == ["order 1", "order 2"]
    (flags, data), = boxes["INBOX"]
    assert b"Subject: raise" in data and "\\Flagged" in flags and "\\Seen" not in flags
    (flags, data), = boxes["Boss"]
    assert "\\Seen" in flags and "$Boss" in flags
    # the stored bytes are one blob for both copies
    assert boxes["Boss"][0][1] == boxes["INBOX"][0][1]


def test_spam_to_junk_with_spamtest(mail):
    mail.s.configure(spam_training_mode="teft")
    mail.start("bob")
    inst = mail.inst
    spam = sorted((CORPUS / "spam").iterdir())
    ham = sorted(p for p in (CORPUS / "ham").iterdir() if p.name.startswith("easy"))
    inst.mk("spam", "train", "--spam", "--user", "bob", *spam[0::8][:80])
    inst.mk("spam", "train", "--innocent", "--user", "bob", *ham[0::8][:160])
    # the filter's score, through spamtest: spam into "Spam" (not Junk, so that
    # the folder proves the script decided), anything else kept
    cp = mail.put_script("bob", 'require ["spamtest", "relational", "comparator-i;ascii-numeric", "fileinto",'
                         ' "mailbox"];\n'
                         'if spamtest :value "ge" :comparator "i;ascii-numeric" "8" {\n'
                         '    fileinto :create "Spam";\n'
                         '}\n')
    assert cp.returncode == 0, cp.stderr
    probe_spam = next(p for p in spam[3::8] if p.stat().st_size < 20000)
    probe_ham = next(p for p in ham[3::8] if p.stat().st_size < 20000)
    assert mail.send("bob@example.org", probe_spam.read_text(errors="replace")).returncode == 0
    assert mail.send("bob@example.org", probe_ham.read_text(errors="replace")).returncode == 0
    boxes = mail.mailboxes("bob")
    assert len(boxes.get("Spam", [])) == 1
    assert len(boxes["INBOX"]) == 1 and boxes.get("Junk", []) == []


def test_vacation_once_per_sender_never_to_lists_or_bots(mail):
    mail.start("bob")
    cp = mail.put_script("bob", 'require "vacation";\n'
                         'vacation :days 7 :subject "Away until Monday" :addresses ["bob@example.org"]\n'
                         '  "I am away; I will answer when I am back.";\n')
    assert cp.returncode == 0, cp.stderr
    log = mail.s.log
    assert mail.send("bob@example.org", message(subject="first")).returncode == 0
    wait_for(lambda: "vacation reply to <alice@example.com>" in log(), what="the vacation reply")
    assert mail.send("bob@example.org", message(subject="second"), lmtp=True).returncode == 0
    wait_for(lambda: "answered within the period" in log(), what="no second reply")
    assert log().count("vacation reply to <alice@example.com>") == 1
    # a list, a bot, the null sender, an automatic message: never answered
    assert mail.send("bob@example.org", message(headers="List-Id: <x.lists.example.com>\r\n"),
                     sender="carol@example.com").returncode == 0
    assert mail.send("bob@example.org", message(), sender="MAILER-DAEMON@example.com").returncode == 0
    assert mail.send("bob@example.org", message(), sender="").returncode == 0
    assert mail.send("bob@example.org", message(headers="Auto-Submitted: auto-generated\r\n"),
                     sender="dave@example.com").returncode == 0
    # not among the recipients (a Bcc from a list tool): not answered
    assert mail.send("bob@example.org", message(to="someone@example.net"), sender="erin@example.com").returncode == 0
    wait_for(lambda: log().count("vacation not sent") >= 6, what="five refusals and the period")
    for who in ("list mail", "a robot's address", "the null sender", "automatic message",
                "not in To/Cc/Bcc"):
        assert who in log(), who
    assert log().count("vacation reply to <") == 1
    # every message was kept
    assert len(mail.mailboxes("bob")["INBOX"]) == 7


def test_reject_discard_and_lmtp_per_recipient(mail, raw):
    mail.start("bob", "alice")
    assert mail.put_script("bob", 'require "reject";\nif header :contains "subject" "offer" '
                           '{ reject "No offers, thank you."; }\n').returncode == 0
    assert mail.put_script("alice", 'if header :contains "subject" "offer" { discard; }\n').returncode == 0
    # LMTP: each recipient's own answer
    r = raw(mail.s.lmtp_port)
    r.reply()
    r.cmd("LHLO client.example.com")
    r.cmd("MAIL FROM:<shop@example.com>")
    assert r.cmd("RCPT TO:<bob@example.org>").startswith("250")
    assert r.cmd("RCPT TO:<alice@example.org>").startswith("250")
    assert r.cmd("DATA").startswith("354")
    r.send(message(subject="special offer").replace("\r\n.", "\r\n..") + "\r\n.\r\n")
    replies = [r.reply(), r.reply()]
    assert replies[0].startswith("550 5.7.1 <bob@example.org> No offers, thank you."), replies
    assert replies[1].startswith("250 2.0.0 <alice@example.org>"), replies
    # SMTP, one recipient: the rejection is the DATA reply
    cp = mail.send("bob@example.org", message(subject="another offer"))
    assert "550 5.7.1 No offers, thank you." in cp.stdout
    # SMTP, two recipients: one reply for both, so bob's copy is kept instead
    cp = mail.send("bob@example.org,alice@example.org", message(subject="offer three"))
    assert re.search(r"<-  250 2\.0\.0 Ok: queued as", cp.stdout), cp.stdout
    assert subjects(mail.mailboxes("bob")["INBOX"]) == ["offer three"]
    assert mail.mailboxes("alice")["INBOX"] == []
    assert "the rejection cannot be said to the client" in mail.s.log()


def notices(boxes):
    return [m for m in boxes["INBOX"] if b"Subject: Your mail filter (Sieve) failed" in m[1]]


def test_runtime_failure_goes_to_inbox_with_one_notice_per_new_error(mail):
    mail.s.configure(sieve_mailbox_autocreate="no")
    mail.start("bob")
    assert mail.put_script("bob", 'require ["fileinto", "include"];\n'
                           'if header :contains "subject" "a" { include "missing"; }\n'
                           'fileinto "Nowhere";\n').returncode == 0
    for i in range(2):
        assert mail.send("bob@example.org", message(subject=f"a{i}")).returncode == 0
    assert mail.send("bob@example.org", message(subject="b")).returncode == 0
    boxes = mail.mailboxes("bob")
    kept = [m for m in boxes["INBOX"] if b"Subject: Your mail filter" not in m[1]]
    assert subjects(kept) == ["a0", "a1", "b"]
    n = notices(boxes)
    assert len(n) == 2, [x[1][:300] for x in n]  # two different errors, each told once
    text = b"".join(m[1] for m in n)
    assert b'line 2, column 37: included personal script "missing" does not exist' in text
    assert b'fileinto "Nowhere": there is no such mailbox' in text
    assert "the message goes to INBOX" in mail.s.log()


def test_bad_input_is_refused_and_mail_still_arrives(mail):
    mail.start("bob")
    inst = mail.inst
    # 10,000-deep nesting and a 1 MB script: refused at upload, with a reason
    deep = "if true {" * 10000 + "}" * 10000
    cp = mail.put_script("bob", deep, name="deep")
    assert cp.returncode == 1 and "nested too deeply" in cp.stderr and ":1:292:" in cp.stderr
    big = "# " + "x" * (1024 * 1024) + "\nkeep;\n"
    cp = mail.put_script("bob", big, name="big")
    assert cp.returncode == 1 and "over the limit of 524288" in cp.stderr
    assert inst.mk("sieve", "list", "bob").stdout == ""
    # a regex that backtracks catastrophically elsewhere: bounded here; on a
    # 1 MB body the step budget ends the script, and the mail is in INBOX
    assert mail.put_script("bob", 'require ["regex", "body", "fileinto"];\n'
                           'if header :regex "subject" "^(a+)+$" { fileinto "A"; }\n'
                           'if body :raw :regex "^(x|x|x|x|x|x|x|x|xx)*y$" { fileinto "B"; }\n').returncode == 0
    t0 = time.monotonic()
    cp = mail.send("bob@example.org", message(subject="a" * 60 + "!", body="x" * (1024 * 1024) + "\r\n"))
    assert cp.returncode == 0, cp.stdout[-2000:]
    took = time.monotonic() - t0
    boxes = mail.mailboxes("bob")
    assert "A" not in boxes and "B" not in boxes
    assert len([m for m in boxes["INBOX"] if b"x" * 1000 in m[1]]) == 1
    assert "over the step budget" in mail.s.log()
    print(f"1 MB body, catastrophic regex: delivered in {took:.2f} s")


def test_global_before_after_and_include(mail):
    inst = mail.inst
    gdir = inst.root / "sieve"
    gdir.mkdir()
    # before: spam headers into Junk for everyone; after: a flag on what is kept
    (gdir / "spam.sieve").write_text('require ["fileinto"];\n'
                                     'if header :contains "X-Spam-Flag" "YES" { fileinto "Junk"; stop; }\n')
    (gdir / "mark.sieve").write_text('require ["imap4flags"];\naddflag "$Filtered";\n')
    (gdir / "lists.sieve").write_text('require ["fileinto"];\nif exists "List-Id" { fileinto "Lists"; }\n')
    # a broken and a 1 MB global script: logged and skipped, mail still delivered
    (gdir / "broken.sieve").write_text("if true {" * 10000 + "}" * 10000)
    (gdir / "huge.sieve").write_text("# " + "x" * (1024 * 1024) + "\nkeep;\n")
    mail.s.configure(sieve_global_dir=str(gdir), sieve_before="broken huge spam", sieve_after="mark")
    mail.start("bob", "alice")
    assert mail.put_script("bob", 'require ["include"];\ninclude :global "lists";\n').returncode == 0
    assert mail.send("bob@example.org,alice@example.org",
                     message(subject="spammy", headers="X-Spam-Flag: YES\r\n")).returncode == 0
    assert mail.send("bob@example.org", message(subject="list", headers="List-Id: <l.example.com>\r\n")).returncode == 0
    assert mail.send("alice@example.org", message(subject="plain")).returncode == 0
    bob, alice = mail.mailboxes("bob"), mail.mailboxes("alice")
    assert subjects(bob["Junk"]) == ["spammy"] and subjects(alice["Junk"]) == ["spammy"]
    assert subjects(bob["Lists"]) == ["list"]
    (flags, _), = alice["INBOX"]
    assert "$Filtered" in flags                      # the after-script ran for alice's kept mail
    log = mail.s.log()
    assert "broken.sieve: line 1, column 292: nested too deeply" in log
    assert "huge.sieve cannot be read: larger than sieve_max_script_size (skipped)" in log


def test_a_folder_that_cannot_be_made_is_inbox(mail):
    mail.start("bob")
    assert mail.put_script("bob", 'require ["fileinto", "variables", "mailbox"];\n'
                           'if header :matches "subject" "*" { fileinto :create "a..${1}"; }\n').returncode == 0
    for lmtp in (False, True):
        cp = mail.send("bob@example.org", message(subject=f"x{int(lmtp)}"), lmtp=lmtp)
        assert cp.returncode == 0, cp.stdout[-500:]
    boxes = mail.mailboxes("bob")
    kept = [m for m in boxes["INBOX"] if b"Subject: Your mail filter" not in m[1]]
    assert subjects(kept) == ["x0", "x1"]
    assert b'fileinto "a..x0": not a valid mailbox name' in b"".join(m[1] for m in notices(boxes))
