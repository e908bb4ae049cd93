"""IMAP SEARCH through the words index (issue 17): a message APPENDed,
flagged, moved and expunged is found (or not) at once: the index is built
in the background, and what it has not taken yet is read one by one. BODY
and TEXT look at decoded text (quoted-printable here), as RFC 3501's
CHARSET implies and Dovecot does."""
import time

from imapdutil import Imapd  # noqa: F401


def ok(res):
    typ, data = res
    assert typ == "OK", res
    return data


MSG = (b"From: carol@example.org\r\nTo: alice@example.org\r\nSubject: plans\r\n"
       b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
       b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
       b"The quarterly zebrafish re=\r\nport is due on Fri=C3=A9day.\r\n")


def test_search_follows_changes(imapd):
    m = imapd.login()
    m.create("Archive")  # a default mailbox already
    ok(m.append("INBOX", None, None, MSG))
    ok(m.select("INBOX"))
    # at once: before or after the background indexer took it
    assert ok(m.search(None, "BODY", "\"zebrafish report\"")) == [b"1"]   # across a soft line break
    assert ok(m.search(None, "TEXT", "\"QUARTERLY ZEBRA\"")) == [b"1"]  # any case
    assert ok(m.search(None, "TEXT", "nothing-like-this")) == [b""]
    time.sleep(1.5)  # the indexer's lag is well under this
    assert ok(m.search(None, "BODY", "\"zebrafish report\"")) == [b"1"]
    ok(m.store("1", "+FLAGS", "(\\Flagged)"))
    assert ok(m.search(None, "FLAGGED", "BODY", "quarterly")) == [b"1"]
    typ, _ = m.uid("MOVE", "1", "Archive")
    assert typ == "OK"
    assert ok(m.search(None, "BODY", "zebrafish")) == [b""]
    ok(m.select("Archive"))
    assert ok(m.search(None, "BODY", "zebrafish")) == [b"1"]
    ok(m.store("1", "+FLAGS", "(\\Deleted)"))
    ok(m.expunge())
    assert ok(m.search(None, "BODY", "zebrafish")) == [b""]
    # the same bytes again (the index keeps docs by content): found again
    ok(m.append("Archive", None, None, MSG))
    ok(m.noop())
    assert ok(m.search(None, "BODY", "zebrafish")) == [b"1"]
    m.logout()
