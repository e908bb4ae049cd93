"""imapd driven by Python's imaplib (and raw bytes where imaplib has no call):
every RFC 3501 command and every extension the server announces."""
import base64
import imaplib
import re
import time

import pytest

from imapdutil import message
from rawimap import Raw


def ok(res):
    typ, data = res
    assert typ == "OK", data
    return data


def test_capabilities_and_greeting(imapd):
    m = imapd.connect()
    caps = set(m.capabilities)
    assert {"IMAP4REV1", "STARTTLS", "AUTH=PLAIN", "SASL-IR", "LITERAL+", "ID", "ENABLE", "IDLE"} <= caps
    ok(m.login("alice", "secret-alice"))
    data = ok(m.capability())[0].decode()
    for c in ("NAMESPACE", "UIDPLUS", "MOVE", "SPECIAL-USE", "CREATE-SPECIAL-USE", "CONDSTORE", "QRESYNC",
              "UNSELECT", "CHILDREN", "LIST-EXTENDED", "LIST-STATUS", "ESEARCH", "COMPRESS=DEFLATE",
              "APPENDLIMIT="):
        assert c in data
    assert m.logout()[0] == "BYE"


def test_login_failures_and_penalty(imapd):
    m = imapd.connect()
    t0 = time.monotonic()
    with pytest.raises(imaplib.IMAP4.error) as e:
        m.login("alice", "wrong")
    assert "AUTHENTICATIONFAILED" in str(e.value)
    with pytest.raises(imaplib.IMAP4.error):
        m.login("nobody", "x")
    # the next attempt waits the penalty of the last failure (auth_penalty = 1s, then 2s)
    print(f"two failed logins took {time.monotonic() - t0:.2f}s")
    ok(m.login("alice", "secret-alice"))
    log = imapd.log()
    assert "user=<alice>, failures=1" in log and "user=<nobody>, failures=2" in log
    assert re.search(r"mailkeep/imapd\[\d+\]: warning: \w+: \[127\.0\.0\.1\]: IMAP authentication failed: "
                     r"method=LOGIN, user=<alice>", log), log
    # the fail2ban filter shipped in doc/ matches these lines
    from pathlib import Path
    conf = (Path(__file__).resolve().parents[3] / "doc" / "fail2ban" / "mailkeep-imapd.conf").read_text()
    rx = re.search(r"^failregex\s*=\s*(.+)$", conf, re.M).group(1).strip().replace("<HOST>", r"(?P<host>\S+?)")
    hosts = [mm.group("host") for line in log.splitlines() if (mm := re.search(rx, line))]
    assert hosts.count("127.0.0.1") == 2
    # and fail2ban itself, on the log file as it is written
    import subprocess
    cp = subprocess.run(["fail2ban-regex", str(imapd.proc.logfile),
                         str(Path(__file__).resolve().parents[3] / "doc" / "fail2ban" / "mailkeep-imapd.conf")],
                        capture_output=True, text=True)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert re.search(r"^Lines: \d+ lines, 0 ignored, 2 matched", cp.stdout, re.M), cp.stdout


def test_logindisabled_for_remote_clients(imapd):
    r = Raw(imapd.port, source="127.0.0.2")
    assert b"LOGINDISABLED" in r.greeting and b"AUTH=PLAIN" not in r.greeting
    _, tagged = r.cmd("LOGIN alice secret-alice")
    assert b"NO [PRIVACYREQUIRED]" in tagged
    _, tagged = r.cmd("AUTHENTICATE PLAIN " + base64.b64encode(b"\0alice\0secret-alice").decode())
    assert b"NO [PRIVACYREQUIRED]" in tagged
    # after STARTTLS the same client may log in
    _, tagged = r.cmd("STARTTLS")
    assert tagged.startswith(b"t3 OK")
    r.starttls(imapd.cert)
    lines, tagged = r.cmd("CAPABILITY")
    assert b"AUTH=PLAIN" in lines[0] and b"LOGINDISABLED" not in lines[0] and b"STARTTLS" not in lines[0]
    _, tagged = r.cmd("LOGIN alice secret-alice")
    assert b"OK" in tagged
    r.close()


def test_starttls_injection_discarded(imapd):
    r = Raw(imapd.port, source="127.0.0.2")
    # a command pipelined after STARTTLS in plaintext must never run inside TLS
    r.send(b"a STARTTLS\r\nb LOGIN alice secret-alice\r\n")
    assert r.line().startswith(b"a OK")
    r.starttls(imapd.cert)
    lines, tagged = r.cmd("NOOP", tag="c")
    assert all(not ln.startswith(b"b ") for ln in lines)
    lines, tagged = r.cmd("SELECT INBOX", tag="d")
    assert b"BAD" in tagged  # still not logged in
    assert "after STARTTLS discarded" in imapd.log()
    r.close()


def test_implicit_tls_and_authenticate(imapd):
    m = imapd.connect_tls()
    ok(m.authenticate("PLAIN", lambda _: b"\0alice\0secret-alice"))
    ok(m.select("INBOX"))
    assert m.logout()[0] == "BYE"
    # SASL-IR, and the continuation form
    r = Raw(imapd.port)
    _, t = r.cmd("AUTHENTICATE PLAIN " + base64.b64encode(b"alice\0alice\0secret-alice").decode())
    assert b"OK" in t
    r.close()
    r = Raw(imapd.port)
    r.send(b"x AUTHENTICATE PLAIN\r\n")
    assert r.line().startswith(b"+")
    r.send(base64.b64encode(b"\0bob\0secret-bob") + b"\r\n")
    assert r.line().startswith(b"x OK")
    r.close()
    # acting as someone else is refused
    r = Raw(imapd.port)
    _, t = r.cmd("AUTHENTICATE PLAIN " + base64.b64encode(b"bob\0alice\0secret-alice").decode())
    assert b"NO" in t
    r.close()


def test_mailbox_management(imapd):
    m = imapd.login()
    names = [ln.decode() for ln in ok(m.list())]
    for want in ('\\Sent) "." "Sent"', '\\Junk) "." "Junk"', '\\Trash) "." "Trash"', '"INBOX"'):
        assert any(want in n for n in names), names
    ok(m.create("Lists"))
    ok(m.create("Lists.lkml"))
    ok(m.create("Entw&APw-rfe"))
    typ, _ = m.create("Lists")
    assert typ == "NO"
    names = ok(m.list('""', "Lists*"))
    assert b'(\\HasChildren) "." "Lists"' in names
    assert b'(\\HasNoChildren) "." "Lists.lkml"' in names
    assert ok(m.list('""', "%")) and all(b"lkml" not in n for n in ok(m.list('""', "%")))
    assert any(b'"Entw&APw-rfe"' in n for n in ok(m.list()))
    ok(m.rename("Lists.lkml", "Lists.linux"))
    assert any(b"Lists.linux" in n for n in ok(m.list('""', "Lists.*")))
    ok(m.subscribe("Lists.linux"))
    assert b'() "." "Lists.linux"' in ok(m.lsub('""', "*"))
    ok(m.unsubscribe("Lists.linux"))
    assert b'() "." "Lists.linux"' not in ok(m.lsub('""', "*"))
    ok(m.delete("Lists.linux"))
    typ, _ = m.delete("INBOX")
    assert typ == "NO"
    # a mailbox whose parent does not exist (as a mkdir of .Top.Mid on the mount
    # makes): the parent is listed as \Noselect (\NonExistent with LIST-EXTENDED)
    ok(m.create("Top.Mid"))
    top = [n for n in ok(m.list('""', "%")) if n.endswith(b'"Top"')]
    assert len(top) == 1 and b"\\HasChildren" in top[0]
    if b"Noselect" in top[0]:
        r0 = Raw(imapd.port)
        r0.cmd("LOGIN alice secret-alice")
        lines, _ = r0.cmd('LIST () "" "Top"')
        assert lines == [b'* LIST (\\NonExistent \\HasChildren) "." "Top"\r\n']
        r0.close()
    # LIST "" "" gives the delimiter
    assert ok(m.list('""', '""')) == [b'(\\Noselect) "." ""']
    # CREATE-SPECIAL-USE, LIST-EXTENDED selection and RETURN options, LIST-STATUS
    r = Raw(imapd.port)
    r.cmd("LOGIN alice secret-alice")
    _, t = r.cmd("CREATE Archive2 (USE (\\Archive))")
    assert b"OK" in t
    lines, t = r.cmd('LIST (SPECIAL-USE) "" "*"')
    assert all(b"\\" in ln for ln in lines) and any(b"Archive2" in ln for ln in lines)
    lines, t = r.cmd('LIST "" ("INBOX" "Sent") RETURN (STATUS (MESSAGES UIDNEXT UNSEEN) SPECIAL-USE)')
    assert b"OK" in t
    assert sum(ln.startswith(b"* LIST") for ln in lines) == 2
    assert any(ln.startswith(b'* STATUS "Sent" (MESSAGES 0 UIDNEXT 1 UNSEEN 0)') for ln in lines), lines
    _, t = r.cmd("SUBSCRIBE INBOX")
    lines, t = r.cmd('LIST (SUBSCRIBED) "" "*" RETURN (CHILDREN)')
    assert all(b"\\Subscribed" in ln for ln in lines) and any(b'"INBOX"' in ln for ln in lines)
    assert not any(b"Archive2" in ln for ln in lines)
    r.close()


def test_namespace_id_enable_unselect(imapd):
    r = Raw(imapd.port)
    r.cmd("LOGIN alice secret-alice")
    lines, t = r.cmd("NAMESPACE")
    assert lines == [b'* NAMESPACE (("" ".")) NIL NIL\r\n']
    lines, t = r.cmd('ID ("name" "pytest")')
    assert lines[0].startswith(b"* ID (") and b"OK" in t
    lines, t = r.cmd("ENABLE QRESYNC")
    assert lines == [b"* ENABLED CONDSTORE QRESYNC\r\n"]
    r.cmd("SELECT INBOX")
    _, t = r.cmd("UNSELECT")
    assert b"OK" in t
    _, t = r.cmd("FETCH 1 FLAGS")
    assert b"BAD" in t
    r.close()


def test_append_fetch_items(imapd):
    m = imapd.login()
    raw = (b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.org>\r\nTo: a@example.org, Group: x@y.org, z@y.org;\r\n"
           b"Subject: parts\r\nMessage-ID: <p@x>\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n\r\nhello\r\nthere\r\n--b1\r\n"
           b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\nFrom: i@x.org\r\n\r\ninner body\r\n"
           b"--b1\r\nContent-Type: application/pdf; name=x.pdf\r\nContent-Disposition: attachment; filename=x.pdf\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--b1--\r\n")
    data = ok(m.append("INBOX", "(\\Flagged $Label1)", '"05-Jan-2020 10:11:12 +0100"', raw))
    assert re.match(rb"\[APPENDUID \d+ 1\]", data[0])
    ok(m.select("INBOX"))
    typ, d = m.fetch("1", "(FLAGS INTERNALDATE RFC822.SIZE UID)")
    s = d[0].decode()
    assert "\\Flagged" in s and "$Label1" in s and '"05-Jan-2020 09:11:12 +0000"' in s
    assert f"RFC822.SIZE {len(raw)}" in s
    typ, d = m.fetch("1", "(BODY.PEEK[] BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[1] BODY.PEEK[2.HEADER] "
                          "BODY.PEEK[2.TEXT] BODY.PEEK[3.MIME] BODY.PEEK[]<10.20> "
                          "BODY.PEEK[HEADER.FIELDS (Subject)] BODY.PEEK[HEADER.FIELDS.NOT (Subject To From)])")
    items = [x for x in d if isinstance(x, tuple)]
    got = [v for _, v in items]
    assert got[0] == raw
    assert got[1] == raw[:raw.index(b"\r\n\r\n") + 4]
    assert got[2] == raw[raw.index(b"\r\n\r\n") + 4:]
    assert got[3] == b"hello\r\nthere"
    assert got[4] == b"Subject: inner\r\nFrom: i@x.org\r\n\r\n"
    assert got[5] == b"inner body"
    assert got[6].startswith(b"Content-Type: application/pdf") and got[6].endswith(b"\r\n\r\n")
    assert got[7] == raw[10:30]
    assert got[8] == b"Subject: parts\r\n\r\n"
    assert b"Subject" not in got[9] and b"Message-ID: <p@x>" in got[9]
    # \Seen is set by BODY[] but not by BODY.PEEK[]
    assert b"\\Seen" not in m.fetch("1", "FLAGS")[1][0]
    typ, d = m.fetch("1", "(BODY[TEXT])")
    assert b"\\Seen" in b"".join(x if isinstance(x, bytes) else x[0] for x in d)
    typ, d = m.fetch("1", "(ENVELOPE BODYSTRUCTURE BODY)")
    s = b"".join(x if isinstance(x, bytes) else x[0] + x[1] for x in d)
    assert b'"parts"' in s and b'("Group" NIL NIL NIL)' not in s
    assert b'(NIL NIL "Group" NIL)(NIL NIL "x" "y.org")(NIL NIL "z" "y.org")(NIL NIL NIL NIL)' in s
    assert b'"MIXED"' in s and b'"MESSAGE" "RFC822"' in s and b'("ATTACHMENT" ("FILENAME" "x.pdf"))' in s
    # macros and RFC822 items
    for macro in ("ALL", "FAST", "FULL"):
        assert m.fetch("1", macro)[0] == "OK"
    typ, d = m.fetch("1", "(RFC822.HEADER RFC822.TEXT)")
    assert typ == "OK"
    typ, d = m.uid("FETCH", "1", "(RFC822)")
    assert d[0][1] == raw and b"UID 1" in d[0][0] + d[1]


def test_store_search_expunge(imapd):
    m = imapd.login()
    for i in range(1, 11):
        ok(m.append("INBOX", None, None, message(i, subject=f"subject {i}" + (" banana" if i % 3 == 0 else ""))))
    ok(m.select("INBOX"))
    d = ok(m.store("1:3", "+FLAGS", "(\\Seen \\Answered)"))
    assert len(d) == 3 and b"\\Answered" in d[0]
    ok(m.store("2", "-FLAGS", "(\\Answered)"))
    ok(m.store("4", "FLAGS", "(\\Draft $Work)"))
    ok(m.store("5", "+FLAGS.SILENT", "(\\Flagged)"))
    assert ok(m.search(None, "SEEN")) == [b"1 2 3"]
    assert ok(m.search(None, "UNSEEN")) == [b"4 5 6 7 8 9 10"]
    assert ok(m.search(None, "ANSWERED")) == [b"1 3"]
    assert ok(m.search(None, "KEYWORD", "$Work")) == [b"4"]
    assert ok(m.search(None, "FLAGGED")) == [b"5"]
    assert ok(m.search(None, "DRAFT", "UNFLAGGED")) == [b"4"]
    assert ok(m.search(None, "SUBJECT", "banana")) == [b"3 6 9"]
    assert ok(m.search(None, "OR", "SUBJECT", "banana", "FLAGGED")) == [b"3 5 6 9"]
    assert ok(m.search(None, "NOT", "SUBJECT", "banana", "2:4")) == [b"2 4"]
    assert ok(m.search(None, "FROM", "bob@example.org", "TO", "alice")) == [b"1 2 3 4 5 6 7 8 9 10"]
    assert ok(m.search(None, "HEADER", "Message-ID", "<m7@")) == [b"7"]
    assert ok(m.search(None, "BODY", '"message 10."')) == [b"10"]
    assert ok(m.search(None, "TEXT", "m10@example")) == [b"10"]
    assert ok(m.search(None, "LARGER", "1", "SMALLER", "100000")) == [b"1 2 3 4 5 6 7 8 9 10"]
    assert ok(m.search(None, "SENTON", "21-Nov-2026")) == [b"1"]
    assert ok(m.search(None, "SENTSINCE", "28-Nov-2026")) == [b"8 9"]
    assert ok(m.search(None, "SENTBEFORE", "21-Nov-2026")) == [b"10"]
    today = time.strftime("%d-%b-%Y", time.gmtime())
    assert ok(m.search(None, "ON", today)) == [b"1 2 3 4 5 6 7 8 9 10"]
    assert ok(m.search(None, "SINCE", "1-Jan-2000", "BEFORE", "1-Jan-2100")) == [b"1 2 3 4 5 6 7 8 9 10"]
    assert ok(m.search("UTF-8", "SUBJECT", '"subject 1"')) == [b"1 10"]
    # APPEND sets \Recent (RFC 3501 6.3.11) and this SELECT took it: NEW = \Recent unseen
    assert ok(m.search(None, "NEW")) == [b"4 5 6 7 8 9 10"] and ok(m.search(None, "OLD")) == [b""]
    assert ok(m.search(None, "ALL", "UNDELETED", "UNDRAFT", "UNANSWERED", "UNKEYWORD", "$Work")) == [b"2 5 6 7 8 9 10"]
    assert ok(m.uid("SEARCH", None, "UID", "3:5")) == [b"3 4 5"]
    typ, d = m.search("KOI8-R", "ALL")
    assert typ == "NO"
    # ESEARCH
    r = Raw(imapd.port)
    r.cmd("LOGIN alice secret-alice")
    r.cmd("SELECT INBOX")
    lines, t = r.cmd("SEARCH RETURN (MIN MAX COUNT ALL) SUBJECT banana")
    assert lines == [b'* ESEARCH (TAG "t3") MIN 3 MAX 9 ALL 3,6,9 COUNT 3\r\n']
    lines, t = r.cmd("UID SEARCH RETURN () 1:2")
    assert lines == [b'* ESEARCH (TAG "t4") UID ALL 1:2\r\n']
    r.close()
    # EXPUNGE and UID EXPUNGE
    ok(m.store("2,4", "+FLAGS", "\\Deleted"))
    d = ok(m.expunge())
    assert d == [b"2", b"3"]  # seq 2, then the old 4 is now 3
    ok(m.store("1:2", "+FLAGS", "\\Deleted"))
    typ, d = m.uid("EXPUNGE", "1")
    assert typ == "OK"
    assert ok(m.search(None, "ALL")) == [b"1 2 3 4 5 6 7"]
    assert ok(m.search(None, "DELETED")) == [b"1"]
    ok(m.close())
    ok(m.select("INBOX", readonly=True))
    assert ok(m.search(None, "ALL")) == [b"1 2 3 4 5 6"]
    typ, d = m.store("1", "+FLAGS", "\\Seen")
    assert typ == "NO"


def test_copy_move_uidplus(imapd):
    m = imapd.login()
    for i in range(1, 6):
        ok(m.append("INBOX", None, None, message(i)))
    ok(m.create("Work"))
    ok(m.select("INBOX"))
    typ, d = m.copy("1:2", "Work")
    assert typ == "OK" and re.match(rb"\[COPYUID \d+ 1:2 1:2\]", d[0])
    typ, d = m.copy("1", "Nope")
    assert typ == "NO" and b"TRYCREATE" in d[0]
    typ, d = m._simple_command("MOVE", "3:4", "Work")
    assert typ == "OK"
    assert m.untagged_responses.get("EXPUNGE") == [b"3", b"3"]
    ok(m.select("Work"))
    assert ok(m.search(None, "ALL")) == [b"1 2 3 4"]
    typ, d = m._simple_command("UID", "MOVE", "1", "INBOX")
    assert typ == "OK"
    ok(m.select("INBOX"))
    assert ok(m.search(None, "ALL")) == [b"1 2 3 4"]


def test_idle_sees_other_sessions(imapd):
    r = Raw(imapd.port)
    r.cmd("LOGIN alice secret-alice")
    r.cmd("SELECT INBOX")
    r.send(b"i IDLE\r\n")
    assert r.line().startswith(b"+")
    other = imapd.login()
    t0 = time.monotonic()
    ok(other.append("INBOX", None, None, message(1)))
    assert r.line() == b"* 1 EXISTS\r\n"
    print(f"EXISTS {1000 * (time.monotonic() - t0):.1f} ms after the APPEND")
    # the first session told of new mail holds its \Recent (RFC 3501 7.3.2)
    assert r.line() == b"* 1 RECENT\r\n"
    typ, d = other.select("INBOX")
    assert typ == "OK" and other.untagged_responses.get("RECENT") == [b"0"]
    ok(other.store("1", "+FLAGS", "\\Flagged"))
    ln = r.line()
    assert ln.startswith(b"* 1 FETCH (") and b"\\Flagged" in ln
    ok(other.store("1", "+FLAGS", "\\Deleted"))
    r.line()
    ok(other.expunge())
    assert r.line() == b"* 1 EXPUNGE\r\n"
    r.send(b"DONE\r\n")
    assert r.line().startswith(b"i OK")
    # NOOP also reports
    ok(other.append("INBOX", None, None, message(2)))
    lines, t = r.cmd("NOOP")
    assert b"* 1 EXISTS\r\n" in lines
    r.close()


def test_condstore_qresync_resync(imapd):
    m = imapd.login()
    for i in range(1, 6):
        ok(m.append("INBOX", None, None, message(i)))
    r = Raw(imapd.port)
    r.cmd("LOGIN alice secret-alice")
    r.cmd("ENABLE QRESYNC")
    lines, t = r.cmd("SELECT INBOX")
    uidvalidity = int(re.search(rb"UIDVALIDITY (\d+)", b"".join(lines)).group(1))
    hms = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"".join(lines)).group(1))
    lines, t = r.cmd("FETCH 1:* (UID FLAGS MODSEQ)")
    assert len(lines) == 5 and all(b"MODSEQ (" in ln for ln in lines)
    r.cmd("LOGOUT")
    r.close()
    # the phone is away; changes happen elsewhere
    ok(m.select("INBOX"))
    ok(m.store("2", "+FLAGS", "\\Seen"))
    ok(m.store("4", "+FLAGS", "\\Deleted"))
    ok(m.expunge())
    ok(m.append("INBOX", None, None, message(6)))
    # conditional store: fails on a message changed since
    r = Raw(imapd.port)
    r.cmd("LOGIN alice secret-alice")
    r.cmd("ENABLE QRESYNC")
    lines, t = r.cmd(f"SELECT INBOX (QRESYNC ({uidvalidity} {hms} 1:5))")
    joined = b"".join(lines)
    assert b"* VANISHED (EARLIER) 4\r\n" in lines
    fetches = [ln for ln in lines if b"FETCH" in ln]
    assert len(fetches) == 1 and b"UID 2 " in fetches[0] and b"\\Seen" in fetches[0]
    assert b"* 5 EXISTS" in joined
    new_hms = int(re.search(rb"HIGHESTMODSEQ (\d+)", joined).group(1))
    assert new_hms > hms
    lines, t = r.cmd(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {hms} VANISHED)")
    assert lines[0] == b"* VANISHED (EARLIER) 4\r\n"
    assert {re.search(rb"UID (\d+)", ln).group(1) for ln in lines[1:]} == {b"2", b"6"}
    lines, t = r.cmd(f"UID STORE 1,2 (UNCHANGEDSINCE {hms}) +FLAGS (\\Flagged)")
    assert b"[MODIFIED 2]" in t
    assert len(lines) == 1 and b"UID 1 " in lines[0] and b"MODSEQ" in lines[0]
    lines, t = r.cmd(f"SEARCH MODSEQ {hms + 1}")
    assert re.match(rb"\* SEARCH [\d ]+ \(MODSEQ \d+\)", lines[0])
    lines, t = r.cmd("STATUS Sent (HIGHESTMODSEQ MESSAGES)")
    assert b"HIGHESTMODSEQ" in lines[0]
    # an expunge in another session arrives as VANISHED, not EXPUNGE
    ok(m.store("1", "+FLAGS", "\\Deleted"))
    ok(m.expunge())
    lines, t = r.cmd("NOOP")
    assert b"* VANISHED 1\r\n" in lines
    r.close()


def test_compress_deflate(imapd):
    import zlib
    r = Raw(imapd.port)
    r.cmd("LOGIN alice secret-alice")
    _, t = r.cmd("COMPRESS DEFLATE")
    assert b"OK" in t
    comp = zlib.compressobj(wbits=-15)
    dec = zlib.decompressobj(wbits=-15)
    r.sock.sendall(comp.compress(b"z1 NOOP\r\nz2 LIST \"\" INBOX\r\n") + comp.flush(zlib.Z_SYNC_FLUSH))
    out = b""
    while b"z2 OK" not in out:
        out += dec.decompress(r.sock.recv(65536))
    assert b"z1 OK" in out and b'"INBOX"' in out
    r.close()


def test_literals_and_limits(imapd):
    r = Raw(imapd.port)
    r.cmd("LOGIN alice secret-alice")
    # LITERAL+ and a synchronising literal
    r.send(b"a1 CREATE {3+}\r\nabc\r\n")
    assert r.line().startswith(b"a1 OK")
    r.send(b"a2 CREATE {3}\r\n")
    assert r.line().startswith(b"+")
    r.send(b"xyz\r\n")
    assert r.line().startswith(b"a2 OK")
    # a literal over APPENDLIMIT: NO [TOOBIG] without "+", the session stays usable
    r.send(b"a3 APPEND INBOX {999999999999}\r\n")
    assert r.line().startswith(b"a3 NO [TOOBIG]")
    # a size that overflows 64 bits
    r.send(b"a4 APPEND INBOX {999999999999999999999999999}\r\n")
    assert r.line().startswith(b"a4 NO [TOOBIG]")
    _, t = r.cmd("NOOP")
    assert b"OK" in t
    # a huge non-synchronising literal cannot be refused politely: BYE
    r.send(b"a5 APPEND INBOX {999999999999+}\r\n")
    assert r.line().startswith(b"* BYE")
    r.close()
    # bad syntax is BAD, not a crash
    r = Raw(imapd.port)
    for bad in (b"(((((", b"a6 LOGIN \"unterminated", b"a7 FETCH 1 BODY[", b"\x00\x01\x02", b"a8 UID NOOP"):
        r.send(bad + b"\r\n")
        assert b"BAD" in r.line()
    deep = b"a9 SEARCH " + b"(" * 50 + b"ALL" + b")" * 50
    r.send(deep + b"\r\n")
    assert b"BAD" in r.line()
    r.close()


def test_unterminated_megabyte_line(imapd):
    r = Raw(imapd.port)
    r.send(b"a1 LOGIN " + b"x" * (1 << 20))
    ln = r.line()
    assert ln.startswith(b"* BYE") and b"too long" in ln
    with pytest.raises((EOFError, ConnectionError)):
        r.line()
    r.close()
    # the server is still fine
    m = imapd.login()
    ok(m.noop())


def test_isolation(imapd):
    bob = imapd.login("bob")
    ok(bob.create("Secret"))
    ok(bob.append("INBOX", None, None, message(1, subject="bob's secret")))
    ok(bob.append("Secret", None, None, message(2, subject="bob's other secret")))
    alice = imapd.login("alice")
    tricks = ["../bob", "..", "~bob", "~bob/INBOX", "/bob/INBOX", "bob/INBOX", "../bob/INBOX", "Secret",
              "bob.Secret", ".Secret", "INBOX/../../bob", "&AC4ALg-/bob", "&AC8-bob", "&AH4-bob", "*", "%",
              "bob", "INBOX.."]
    for name in tricks:
        for cmd in (lambda n: alice.select(n), lambda n: alice.status(n, "(MESSAGES)"),
                    lambda n: alice.append(n, None, None, b"Subject: x\r\n\r\nx\r\n")):
            try:
                typ, data = cmd(f'"{name}"')
            except imaplib.IMAP4.error as e:  # BAD
                typ, data = "BAD", [str(e).encode()]
            assert typ != "OK" or name == "*" and False, (name, data)
    r = Raw(imapd.port)
    r.cmd("LOGIN alice secret-alice")
    _, t = r.send(b"n1 SELECT {9+}\r\nINBOX\x00bob\r\n") or (None, r.line())
    assert b"OK" not in t
    for pat in ("*", "%", "~bob*", "../*", "*bob*", "&AC4ALg-*"):
        lines, t = r.cmd(f'LIST "" "{pat}"')
        assert not any(b"Secret" in ln for ln in lines), (pat, lines)
    lines, t = r.cmd('LIST "~bob" "*"')
    assert not any(b"Secret" in ln for ln in lines)
    r.cmd("SELECT INBOX")
    lines, t = r.cmd("SEARCH TEXT secret")
    assert lines == [b"* SEARCH\r\n"]
    r.close()


def test_large_message_partial_fetch(imapd):
    body = b"".join(b"%07d abcdefghijklmnopqrstuvwxyz0123456789\r\n" % i for i in range(400000))
    raw = b"From: big@example.org\r\nSubject: big\r\n\r\n" + body  # ~19 MB
    r = Raw(imapd.port)
    r.cmd("LOGIN alice secret-alice")
    r.send(b"a APPEND INBOX {%d+}\r\n" % len(raw) + raw + b"\r\n")
    assert r.line().startswith(b"a OK")
    r.cmd("SELECT INBOX")
    lines, t = r.cmd("FETCH 1 (RFC822.SIZE BODY.PEEK[]<0.40> BODY.PEEK[TEXT]<4800000.48> BODY.PEEK[HEADER])")
    assert b"OK" in t
    out = lines[0]
    assert b"RFC822.SIZE %d" % len(raw) in out
    assert b"BODY[]<0> {40}\r\n" + raw[:40] in out
    hl = raw.index(b"\r\n\r\n") + 4
    assert b"BODY[TEXT]<4800000> {48}\r\n" + raw[hl + 4800000:hl + 4800048] in out
    assert b"BODY[HEADER] {%d}\r\n" % hl in out
    lines, t = r.cmd("FETCH 1 BODY.PEEK[]")
    assert lines[0].endswith(raw + b")\r\n")
    r.close()


def test_connection_limit(instance, helpers):
    from imapdutil import Imapd
    instance.write_conf(imap_max_connections="2")
    d = Imapd(instance, helpers)
    d.add_user("alice")
    d.start()
    def until_ok():
        deadline = time.monotonic() + 5
        while True:  # a slot is free once an earlier session's thread ended
            e = Raw(d.port)
            if e.greeting.startswith(b"* OK") or time.monotonic() > deadline:
                return e
            e.close()
            time.sleep(0.1)

    a = until_ok()  # (the fixture's probes of the ports may still hold slots)
    b = until_ok()
    assert a.greeting.startswith(b"* OK") and b.greeting.startswith(b"* OK")
    c = Raw(d.port)
    assert c.greeting.startswith(b"* BYE Too many connections")
    a.cmd("LOGOUT")
    a.close()
    assert until_ok().greeting.startswith(b"* OK")
    assert "too many connections" in d.log()


def test_move_into_and_out_of_junk_retrains(imapd):
    def learned():
        out = imapd.inst.mk("spam", "stats", "--user", "alice").stdout
        return {k: int(v) for k, v in re.findall(r"(spam_learned|innocent_learned) (\d+)", out)}

    assert learned() == {"spam_learned": 0, "innocent_learned": 0}
    m = imapd.login()
    ok(m.append("INBOX", None, None, b"From: x@y.org\r\nSubject: cheap pills now\r\n\r\nbuy cheap pills now\r\n"))
    ok(m.select("INBOX"))
    ok(m._simple_command("MOVE", "1", "Junk"))
    assert learned() == {"spam_learned": 1, "innocent_learned": 0}
    ok(m.select("Junk"))
    ok(m._simple_command("UID", "MOVE", "1:*", "INBOX"))
    assert learned() == {"spam_learned": 0, "innocent_learned": 1}


def test_many_idle_sessions_all_hear(imapd):
    # more IDLE sessions than inotify instances a user may have (128 by default)
    n = 150
    sessions = []
    for i in range(n):
        r = Raw(imapd.port)
        r.cmd("LOGIN alice secret-alice")
        r.cmd("SELECT INBOX")
        r.send(b"i IDLE\r\n")
        assert r.line().startswith(b"+")
        sessions.append(r)
    m = imapd.login()
    ok(m.append("INBOX", None, None, message(1)))
    recent = 0
    for r in sessions:
        assert r.line() == b"* 1 EXISTS\r\n"
        ln = r.line()
        assert ln in (b"* 1 RECENT\r\n", b"* 0 RECENT\r\n"), ln
        recent += ln == b"* 1 RECENT\r\n"
        r.send(b"DONE\r\n")
        # the sessions that were not first may hear that it lost \Recent elsewhere
        while not (ln := r.line()).startswith(b"i OK"):
            assert ln == b"* 1 FETCH (FLAGS ())\r\n", ln
        r.close()
    assert recent == 1  # one session, and only one, is the first to see it


def test_recent_belongs_to_the_first_select(imapd, tmp_path):
    md = tmp_path / "md"
    for sub in ("new", "cur", "tmp"):
        (md / sub).mkdir(parents=True)
    for i in range(1, 4):
        (md / "new" / f"170000000{i}.M{i}.host").write_bytes(message(i))
    imapd.inst.mk("import", "alice", md)  # new/ messages stay \Recent
    ex = Raw(imapd.port)
    ex.cmd("LOGIN alice secret-alice")
    lines, _ = ex.cmd("EXAMINE INBOX")
    assert b"* 3 RECENT\r\n" in lines  # EXAMINE shows, does not take
    a = Raw(imapd.port)
    a.cmd("LOGIN alice secret-alice")
    lines, _ = a.cmd("SELECT INBOX")
    assert b"* 3 RECENT\r\n" in lines
    lines, _ = a.cmd("FETCH 1:3 FLAGS")
    assert all(b"\\Recent" in ln for ln in lines)
    assert a.cmd("SEARCH NEW")[0] == [b"* SEARCH 1 2 3\r\n"]
    b = Raw(imapd.port)
    b.cmd("LOGIN alice secret-alice")
    lines, _ = b.cmd("SELECT INBOX")
    assert b"* 0 RECENT\r\n" in lines
    lines, _ = b.cmd("FETCH 1:3 FLAGS")
    assert not any(b"\\Recent" in ln for ln in lines)
    assert b.cmd("SEARCH RECENT")[0] == [b"* SEARCH\r\n"]
    assert b.cmd("SEARCH OLD")[0] == [b"* SEARCH 1 2 3\r\n"]
    lines, _ = b.cmd("STATUS INBOX (RECENT)")
    assert lines == [b'* STATUS "INBOX" (RECENT 0)\r\n']
    for r in (ex, a, b):
        r.close()



def test_commands_per_second_slow_down_not_cut_off(instance, helpers):
    from imapdutil import Imapd
    instance.write_conf(imap_max_commands_per_second="5")
    d = Imapd(instance, helpers)
    d.add_user("alice")
    d.start()
    r = Raw(d.port)
    t0 = time.monotonic()
    r.send(b"".join(b"n%d NOOP\r\n" % i for i in range(12)))
    for i in range(12):
        assert r.line().startswith(b"n%d OK" % i)
    print(f"12 pipelined NOOPs at 5/s took {time.monotonic() - t0:.1f}s")
    r.close()
