"""Sieve at delivery, end to end: scripts put with `mailkeep sieve put`, mail
sent with swaks over SMTP and LMTP, results read with imaplib."""
import re

import pytest

from sievehelp import Mail, message


@pytest.fixture
def mail(smtpin_factory, helpers):
    import imapdutil
    s = smtpin_factory()
    m = Mail(s, imapdutil.Imapd, helpers)
    return m


def test_list_filing_by_list_id(mail):
    mail.start("bob")
    cp = mail.put_script("bob", 'require ["fileinto", "variables"];\n'
                         'if header :matches "List-Id" "*<*.*>" { fileinto :create "Lists.${2}"; }\n'
                         if False else
                         'require ["fileinto", "variables", "mailbox"];\n'
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
    assert len(boxes["INBOX"]) == 1 and b"Subject: personal" in boxes["INBOX"][0][1]
    assert "sieve: user=<bob>: fileinto Lists.linux-kernel" in mail.s.log()
