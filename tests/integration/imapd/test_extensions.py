"""The extensions clients use (issue 12): SORT and THREAD through Python's
imaplib (its sort() and thread()) and curl, ESORT, MULTIAPPEND, CATENATE,
BINARY, STATUS=SIZE and CONTEXT=SEARCH's live updates. imaptest's scripts
cover each in depth (test_imaptest.py); these pin what a client sees."""
import base64
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rawimap import Raw  # noqa: E402


def msg(mid, subject, date, refs=None, frm="a@example.org", body="hello\r\n"):
    h = (f"From: {frm}\r\nTo: b@example.org\r\nSubject: {subject}\r\nDate: {date}\r\n"
         f"Message-ID: <{mid}@x>\r\n")
    if refs:
        h += "References: " + " ".join(f"<{r}@x>" for r in refs) + "\r\n"
    return (h + "\r\n" + body).encode()


THREAD_MSGS = [
    msg("a", "Plans", "Mon, 2 Nov 2026 10:00:00 +0000", frm="Zed <z@example.org>"),
    msg("b", "Re: Plans", "Mon, 2 Nov 2026 11:00:00 +0000", ["a"], frm="Amy <y@example.org>"),
    msg("c", "Other", "Mon, 2 Nov 2026 09:00:00 +0000", frm="bob@example.org"),
    msg("d", "Re: Plans", "Mon, 2 Nov 2026 12:00:00 +0000", ["a", "b"]),
    msg("e", "Re: [list] Other", "Mon, 2 Nov 2026 13:00:00 +0000", ["gone"]),
    msg("f", "Re: Plans", "Mon, 2 Nov 2026 09:30:00 +0100", ["a"]),
]


def fill(imapd):
    m = imapd.login()
    for data in THREAD_MSGS:
        m.append("INBOX", None, None, data)
    m.select("INBOX")
    return m


def test_sort_and_thread_with_imaplib(imapd):
    m = fill(imapd)
    typ, caps = m.capability()
    for cap in (b"SORT", b"SORT=DISPLAY", b"THREAD=REFERENCES", b"THREAD=ORDEREDSUBJECT", b"ESORT"):
        assert cap in caps[0].split(), caps
    assert m.sort("(DATE)", "UTF-8", "ALL") == ("OK", [b"6 3 1 2 4 5"])  # 6 is 08:30 UTC
    assert m.sort("(REVERSE DATE)", "UTF-8", "ALL") == ("OK", [b"5 4 2 1 3 6"])
    # base subjects: "other" x2, "plans" x4; ties by sequence number
    assert m.sort("(SUBJECT)", "UTF-8", "ALL") == ("OK", [b"3 5 1 2 4 6"])
    assert m.sort("(DISPLAYFROM)", "UTF-8", "ALL") == ("OK", [b"4 5 6 2 3 1"])
    typ, data = m.uid("SORT", "(SUBJECT REVERSE DATE)", "UTF-8", "SUBJECT", "plans")
    assert typ == "OK" and data == [b"4 2 1 6"], data
    # REFERENCES: 1 -> (2 -> 4) and 6; 5 (its parent is missing) joins 3 by subject
    assert m.thread("REFERENCES", "UTF-8", "ALL") == ("OK", [b"(3 5)(1 (6)(2 4))"])
    # threads in the order of their first messages' dates
    assert m.thread("ORDEREDSUBJECT", "UTF-8", "ALL") == ("OK", [b"(6 (1)(2)(4))(3 5)"])
    typ, data = m.uid("THREAD", "REFERENCES", "UTF-8", "FROM", "example.org")
    assert typ == "OK" and data == [b"(3 5)(1 (6)(2 4))"]
    m.logout()


def test_sort_thread_esort_with_curl(imapd):
    fill(imapd).logout()
    url = f"imap://127.0.0.1:{imapd.port}/INBOX"
    for command, want in (("UID SORT (REVERSE DATE) UTF-8 ALL", "* SORT 5 4 2 1 3 6"),
                          ("THREAD REFERENCES UTF-8 ALL", "* THREAD (3 5)(1 (6)(2 4))"),
                          ("THREAD ORDEREDSUBJECT UTF-8 SUBJECT other", "* THREAD (3 5)")):
        cp = subprocess.run(["curl", "-s", "--max-time", "20", "-u", "alice:secret-alice", url, "-X", command],
                            capture_output=True, text=True, timeout=30)
        assert cp.returncode == 0 and want in cp.stdout, (command, cp.returncode, cp.stdout, cp.stderr)


def test_multiappend_catenate_binary_status_size(imapd):
    r = Raw(imapd.port)
    r.cmd("LOGIN alice secret-alice")
    one = b"Subject: one\r\n\r\nfirst\r\n"
    two = b"Subject: two\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(b"\x00\x01bin") + b"\r\n"
    r.n += 1
    r.send(b"m APPEND INBOX (\\Seen) {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(one), one, len(two), two))
    _, t = r.until("m")
    m = re.search(rb"\[APPENDUID (\d+) 1:2\]", t)
    assert m, t
    # all or nothing: a bad URL in the second message stores neither
    r.send(b"n APPEND INBOX {%d+}\r\n%s CATENATE (URL \"/INBOX/;UID=99\")\r\n" % (len(one), one))
    _, t = r.until("n")
    assert b"NO [BADURL" in t, t
    lines, _ = r.cmd("STATUS INBOX (MESSAGES SIZE)")
    assert lines == [b'* STATUS "INBOX" (MESSAGES 2 SIZE %d)\r\n' % (len(one) + len(two))], lines
    # CATENATE: new header, the body of message 1 by URL, a tail
    hdr = b"Subject: built\r\n\r\n"
    r.send(b'c APPEND INBOX CATENATE (TEXT {%d+}\r\n%s URL "/INBOX;UIDVALIDITY=%s/;UID=1/;SECTION=TEXT" '
           b"TEXT {6+}\r\n--end\n)\r\n" % (len(hdr), hdr, m.group(1)))
    _, t = r.until("c")
    assert b"[APPENDUID " in t, t
    r.cmd("SELECT INBOX")
    lines, _ = r.cmd("FETCH 3 BODY.PEEK[]")
    assert b"Subject: built\r\n\r\nfirst\r\n--end\r\n)" in lines[0], lines  # CRLF form of the tail
    # ESORT (curl shows only responses named like the command, so raw here)
    lines, _ = r.cmd("SORT RETURN (MIN MAX COUNT ALL) (REVERSE SUBJECT) UTF-8 ALL")
    # subjects: 1 "one", 2 "two", 3 "built"; MIN/MAX are first/last in sort order
    assert lines == [b'* ESEARCH (TAG "t%d") MIN 2 MAX 3 ALL 2,1,3 COUNT 3\r\n' % r.n], lines
    lines, _ = r.cmd("SORT RETURN (PARTIAL 2:3) (SUBJECT) UTF-8 ALL")
    assert lines == [b'* ESEARCH (TAG "t%d") PARTIAL (2:3 1:2)\r\n' % r.n], lines
    lines, _ = r.cmd("FETCH 2 (BINARY.SIZE[1] BINARY.PEEK[1])")
    assert lines[0] == b"* 2 FETCH (BINARY.SIZE[1] 5 BINARY[1] ~{5}\r\n\x00\x01bin)\r\n", lines
    _, t = r.cmd("FETCH 2 BINARY.PEEK[HEADER]")
    assert b" BAD " in t
    r.close()


def test_context_search_update(imapd):
    a = Raw(imapd.port)
    b = Raw(imapd.port)
    for r in (a, b):
        r.cmd("LOGIN alice secret-alice")
    for i in range(4):
        data = b"Subject: m%d\r\n\r\nbody\r\n" % i
        a.send(b"p APPEND INBOX {%d+}\r\n%s\r\n" % (len(data), data))
        a.until("p")
    a.cmd("SELECT INBOX")
    b.cmd("SELECT INBOX")
    lines, t = a.cmd("SEARCH RETURN (UPDATE ALL) SEEN", tag="watch")
    assert lines == [b'* ESEARCH (TAG "watch")\r\n'] and b" OK " in t, (lines, t)
    b.cmd("STORE 2,3 +FLAGS (\\Seen)")
    lines, _ = a.cmd("NOOP")
    assert b'* ESEARCH (TAG "watch") ADDTO (0 2:3)\r\n' in lines, lines
    b.cmd("STORE 2 +FLAGS (\\Deleted)")
    b.cmd("EXPUNGE")
    lines, _ = a.cmd("NOOP")
    i = lines.index(b'* ESEARCH (TAG "watch") REMOVEFROM (0 2)\r\n')
    assert lines.index(b"* 2 EXPUNGE\r\n") > i, lines  # said while 2 still meant that message
    a.cmd("CANCELUPDATE \"watch\"")
    b.cmd("STORE 1 +FLAGS (\\Seen)")
    lines, _ = a.cmd("NOOP")
    assert not any(b"ESEARCH" in ln for ln in lines), lines
    _, t = a.cmd("SEARCH RETURN (UPDATE MIN) ALL")
    assert b" BAD " in t
    a.close()
    b.close()


def test_imap4rev2_alongside_imap4rev1(imapd):
    """RFC 9051 after ENABLE IMAP4rev2: UTF-8 mailbox names, no RECENT and no
    \\Recent, SEARCH answered with ESEARCH, a LIST in SELECT's answer,
    STATUS DELETED, "$" (SEARCHRES); a rev1 session meanwhile sees modified
    UTF-7 and \\Recent as before."""
    v2 = Raw(imapd.port)
    v1 = Raw(imapd.port)
    _, t = v2.cmd("LOGIN alice secret-alice")
    assert b"IMAP4rev1 IMAP4rev2 " in t and b" SEARCHRES" in t, t
    v1.cmd("LOGIN alice secret-alice")
    lines, _ = v2.cmd("ENABLE IMAP4rev2")
    assert lines == [b"* ENABLED IMAP4rev2\r\n"], lines
    name = "Grüße".encode()
    v2.send(b"c CREATE {%d+}\r\n%s\r\n" % (len(name), name))
    assert b" OK " in v2.until("c")[1]
    lines, _ = v2.cmd('LIST "" "Gr*"')
    assert lines == [b'* LIST (\\HasNoChildren) "." {%d}\r\n%s\r\n' % (len(name), name)], lines
    lines, _ = v1.cmd('LIST "" "Gr*"')
    assert lines == [b'* LIST (\\HasNoChildren) "." "Gr&APwA3w-e"\r\n'], lines
    data = b"Subject: x\r\n\r\ny\r\n"
    for _ in range(2):
        v2.send(b"a APPEND INBOX {%d+}\r\n%s\r\n" % (len(data), data))
        v2.until("a")
    lines, t = v2.cmd("SELECT INBOX")
    joined = b"".join(lines)
    assert b"RECENT" not in joined and b'* LIST () "." "INBOX"\r\n' in lines and b" OK " in t, lines
    lines, _ = v2.cmd("FETCH 1:2 FLAGS")
    assert all(b"\\Recent" not in ln for ln in lines), lines
    v2.cmd("STORE 2 +FLAGS (\\Deleted)")
    lines, _ = v2.cmd("SEARCH DELETED")
    assert lines == [b'* ESEARCH (TAG "t%d") ALL 2\r\n' % v2.n], lines
    lines, _ = v2.cmd("STATUS INBOX (MESSAGES DELETED SIZE)")
    assert lines == [b'* STATUS "INBOX" (MESSAGES 2 DELETED 1 SIZE %d)\r\n' % (2 * len(data))], lines
    v2.cmd("SEARCH RETURN (SAVE) UNDELETED")
    lines, _ = v2.cmd("FETCH $ (UID)")
    assert lines == [b"* 1 FETCH (UID 1)\r\n"], lines
    lines, _ = v1.cmd("SELECT INBOX")
    assert b"* 2 RECENT\r\n" in lines or b"* 0 RECENT\r\n" in lines, lines  # rev1 keeps RECENT
    v1.close()
    v2.close()


def test_context_sort_update(imapd):
    """CONTEXT=SORT: a sorted result kept current, by position (RFC 5267 4.4)."""
    a = Raw(imapd.port)
    b = Raw(imapd.port)
    for r in (a, b):
        r.cmd("LOGIN alice secret-alice")
    for subj in (b"d", b"b", b"c", b"a"):  # UIDs 1..4; by subject: 4 a, 2 b, 3 c, 1 d
        data = b"Subject: " + subj + b"\r\n\r\nbody\r\n"
        a.send(b"p APPEND INBOX {%d+}\r\n%s\r\n" % (len(data), data))
        a.until("p")
    a.cmd("SELECT INBOX")
    b.cmd("SELECT INBOX")
    lines, t = a.cmd("UID SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 UNSEEN", tag="s")
    assert lines == [b'* ESEARCH (TAG "s") UID ALL 4,2:3,1\r\n'], lines
    b.cmd("STORE 2,3 +FLAGS (\\Seen)")  # b and c leave; after b goes, c is at position 2
    lines, _ = a.cmd("NOOP")
    assert b'* ESEARCH (TAG "s") UID REMOVEFROM (2 2 2 3)\r\n' in lines, lines
    b.cmd("STORE 3 -FLAGS (\\Seen)")  # c comes back between a and d
    lines, _ = a.cmd("NOOP")
    assert b'* ESEARCH (TAG "s") UID ADDTO (2 3)\r\n' in lines, lines
    b.cmd("STORE 4 +FLAGS (\\Deleted)")
    b.cmd("EXPUNGE")
    lines, _ = a.cmd("NOOP")
    assert b'* ESEARCH (TAG "s") UID REMOVEFROM (1 4)\r\n' in lines, lines
    a.close()
    b.close()


def unsolicited(r, pred, timeout=10):
    """Untagged lines the server sends without a command, until pred(line)."""
    import socket
    import time
    got, end = [], time.monotonic() + timeout
    r.sock.settimeout(1)
    while time.monotonic() < end:
        try:
            ln = r.line()
        except socket.timeout:
            continue
        got.append(ln)
        if pred(ln):
            r.sock.settimeout(15)
            return got
    r.sock.settimeout(15)
    raise AssertionError(f"nothing matched within {timeout}s: {got}")


def test_notify_between_commands(imapd):
    """NOTIFY (RFC 5465): changes anywhere reach a client that sends nothing:
    STATUS for other mailboxes, LIST for names and subscriptions, EXISTS and
    FETCH (with the asked attributes) and EXPUNGE for the selected one."""
    a = Raw(imapd.port)
    b = Raw(imapd.port)
    for r in (a, b):
        r.cmd("LOGIN alice secret-alice")
    b.cmd("CREATE Other")
    _, t = a.cmd("NOTIFY SET (personal (AnnotationChange))")
    assert b"NO [BADEVENT" in t, t
    lines, t = a.cmd("NOTIFY SET STATUS (selected (MessageNew (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)]) "
                     "MessageExpunge FlagChange)) (personal (MessageNew MessageExpunge FlagChange "
                     "MailboxName SubscriptionChange))")
    assert b" OK " in t and any(ln.startswith(b'* STATUS "Other" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY ')
                                for ln in lines), lines
    a.cmd("SELECT INBOX")
    data = b"Subject: elsewhere\r\n\r\nx\r\n"
    b.send(b"x APPEND Other {%d+}\r\n%s\r\n" % (len(data), data))
    b.until("x")
    got = unsolicited(a, lambda ln: ln.startswith(b'* STATUS "Other"'))
    assert b"MESSAGES 1 UIDNEXT 2" in got[-1] and b"UNSEEN 1" in got[-1], got
    data = b"Subject: here\r\n\r\ny\r\n"
    b.send(b"y APPEND INBOX {%d+}\r\n%s\r\n" % (len(data), data))
    b.until("y")
    got = unsolicited(a, lambda ln: b"FETCH" in ln)
    assert b"* 1 EXISTS\r\n" in got, got
    assert got[-1] == b"* 1 FETCH (UID 1 BODY[HEADER.FIELDS (SUBJECT)] {17}\r\nSubject: here\r\n\r\n)\r\n", got
    b.cmd("CREATE Fresh")
    got = unsolicited(a, lambda ln: b'"Fresh"' in ln)
    assert got[-1] == b'* LIST () "." "Fresh"\r\n', got
    b.cmd("RENAME Fresh Renamed")
    got = unsolicited(a, lambda ln: b'"Renamed"' in ln)
    assert got[-1] == b'* LIST () "." "Renamed" ("OLDNAME" ("Fresh"))\r\n', got
    b.cmd("SUBSCRIBE Renamed")
    got = unsolicited(a, lambda ln: b'"Renamed"' in ln)
    assert got[-1] == b'* LIST (\\Subscribed) "." "Renamed"\r\n', got
    b.cmd("DELETE Renamed")
    got = unsolicited(a, lambda ln: b'"Renamed"' in ln)
    assert got[-1] == b'* LIST (\\NonExistent) "." "Renamed"\r\n', got
    b.cmd("SELECT INBOX")
    b.cmd("STORE 1 +FLAGS (\\Deleted)")
    b.cmd("EXPUNGE")
    got = unsolicited(a, lambda ln: ln == b"* 1 EXPUNGE\r\n")
    a.cmd("NOTIFY NONE")
    b.send(b"z APPEND Other {%d+}\r\n%s\r\n" % (len(data), data))
    b.until("z")
    lines, _ = a.cmd("NOOP")
    assert not any(b"STATUS" in ln for ln in lines), lines
    a.close()
    b.close()
