"""Regression tests for what Dovecot's imaptest found in mailkeep-imapd
(issue 12) and the IMAP literal hang (issue 13, item 2): one test per
finding, over raw sockets against the real daemon."""
import re
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from imapdutil import message  # noqa: E402
from rawimap import Raw  # noqa: E402


def login(imapd, user="alice"):
    r = Raw(imapd.port)
    _, t = r.cmd(f"LOGIN {user} secret-{user}")
    assert b" OK " in t
    return r


def append(r, data, mailbox="INBOX", flags=""):
    r.n += 1
    tag = f"a{r.n}"
    r.send(f"{tag} APPEND {mailbox} {flags}{{{len(data)}+}}\r\n".encode() + data + b"\r\n")
    _, t = r.until(tag)
    assert b" OK " in t, t
    return t


def ok(resp):
    lines, t = resp
    assert b" OK" in t, (lines, t)
    return lines


def test_atoms_with_open_bracket(imapd):
    """'[' is an atom character (only ']' is a resp-special): no BAD."""
    r = login(imapd)
    lines, t = r.cmd("SELECT !#$$&'+,-.0123456789:;<=>?@^_`|[}")
    assert b" NO " in t, t
    ok(r.cmd("CREATE a[b"))
    lines = ok(r.cmd('LIST "" a[%'))
    assert lines == [b'* LIST (\\HasNoChildren) "." "a[b"\r\n']
    ok(r.cmd("SELECT a[b"))
    # the lenient section reading stays for fetch attributes
    append(r, message(1))
    ok(r.cmd("SELECT INBOX"))
    lines = ok(r.cmd("FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]"))
    assert b"Subject: test message 1" in lines[0]
    _, t = r.cmd("FETCH 1 BODY[HEADER")
    assert b" BAD " in t


def test_store_flags_nil_is_a_keyword(imapd):
    r = login(imapd)
    append(r, message(1))
    ok(r.cmd("SELECT INBOX"))
    ok(r.cmd("STORE 1 +FLAGS NIL"))
    lines = ok(r.cmd("FETCH 1 FLAGS"))
    assert re.search(rb"FLAGS \([^)]*\bNIL\b", lines[-1]), lines


def test_copy_gives_recent(imapd):
    a, b = login(imapd), login(imapd)
    for i in range(3):
        append(a, message(i))
    ok(a.cmd("CREATE Dest"))
    ok(b.cmd("SELECT Dest"))
    ok(a.cmd("SELECT INBOX"))
    ok(a.cmd("STORE 1 FLAGS (\\Seen)"))
    ok(a.cmd("COPY 1:2 Dest"))
    lines = ok(b.cmd("NOOP"))
    assert b"* 2 EXISTS\r\n" in lines and b"* 2 RECENT\r\n" in lines, lines
    lines = ok(b.cmd("FETCH 1:2 FLAGS"))
    assert all(b"\\Recent" in ln for ln in lines), lines
    assert b"\\Seen" in lines[0]


def test_condstore_highestmodseq_on_first_enabling_command(imapd):
    r = login(imapd)
    append(r, message(1))
    lines = ok(r.cmd("SELECT INBOX"))
    hms = [ln for ln in lines if b"HIGHESTMODSEQ" in ln][0]
    lines = ok(r.cmd("FETCH 1 MODSEQ"))
    assert lines[0].startswith(b"* OK [HIGHESTMODSEQ "), lines
    assert re.search(rb"\d+", lines[0]).group() == re.search(rb"\d+", hms).group()
    lines = ok(r.cmd("FETCH 1 MODSEQ"))  # only the first time
    assert not any(b"HIGHESTMODSEQ" in ln for ln in lines)


def test_esearch_min_max_modseq_of_returned_messages(imapd):
    r = login(imapd)
    for i in range(3):
        append(r, message(i))
    ok(r.cmd("SELECT INBOX"))
    ok(r.cmd("STORE 3 +FLAGS (\\Flagged)"))
    ok(r.cmd("STORE 1 +FLAGS (\\Answered)"))  # message 1 now has the highest modseq
    ok(r.cmd("STORE 2 +FLAGS (\\Draft)"))
    lines = ok(r.cmd("FETCH 1:3 MODSEQ"))
    ms = {int(m.group(1)): int(m.group(2)) for m in (re.search(rb"\* (\d+) FETCH \(MODSEQ \((\d+)\)", ln)
                                                     for ln in lines) if m}
    lines = ok(r.cmd("SEARCH RETURN (MIN) MODSEQ 1"))
    assert lines[0].rstrip().endswith(b"MIN 1 MODSEQ %d" % ms[1]), (lines, ms)
    lines = ok(r.cmd("SEARCH RETURN (MAX) MODSEQ 1"))
    assert lines[0].rstrip().endswith(b"MAX 3 MODSEQ %d" % ms[3]), (lines, ms)
    lines = ok(r.cmd("SEARCH RETURN (MIN MAX) 1:3 MODSEQ 1"))
    assert lines[0].rstrip().endswith(b"MODSEQ %d" % max(ms[1], ms[3]))
    lines = ok(r.cmd("SEARCH RETURN (ALL) MODSEQ 1"))
    assert lines[0].rstrip().endswith(b"MODSEQ %d" % max(ms.values()))


def test_envelope_comment_name_and_group_with_comment(imapd):
    r = login(imapd)
    append(r, b"Date: Thu, 15 Feb 2007 01:02:03 +0200\r\nFrom: user@domain (Real Name)\r\n"
              b"To: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;\r\n"
              b"Cc: group:;, group2: (foo) ;\r\nBcc: <@route:user@domain>\r\n\r\nbody\r\n")
    ok(r.cmd("SELECT INBOX"))
    lines = ok(r.cmd("FETCH 1 ENVELOPE"))
    env = lines[0]
    assert b'(("Real Name" NIL "user" "domain")) (("Real Name" NIL "user" "domain"))' in env, env
    assert (b'((NIL NIL "group" NIL)(NIL NIL "g1" "d1.org")(NIL NIL "g2" "d2.org")(NIL NIL NIL NIL)'
            b'(NIL NIL "group2" NIL)(NIL NIL "g3" "d3.org")(NIL NIL NIL NIL))') in env, env
    assert b'((NIL NIL "group" NIL)(NIL NIL NIL NIL)(NIL NIL "group2" NIL)(NIL NIL NIL NIL))' in env, env
    assert b'((NIL "@route" "user" "domain"))' in env, env


def test_list_extended_recursivematch_nonexistent_childinfo(imapd):
    r = login(imapd)
    for n in ("t.a", "t.b.c", "t.gone", "t.d.e", "t.d.f"):
        ok(r.cmd(f"CREATE {n}"))
    for n in ("t.a", "t.b.c", "t.gone", "t.d.e", "t.never"):
        ok(r.cmd(f"SUBSCRIBE {n}"))
    ok(r.cmd("DELETE t.gone"))
    assert b" BAD " in r.cmd('LIST (RECURSIVEMATCH) "" "*"')[1]
    assert b" BAD " in r.cmd('LIST (RECURSIVEMATCH REMOTE) "" "*"')[1]
    lines = ok(r.cmd('LIST (SUBSCRIBED) "" t.*'))
    by = {ln.rsplit(b" ", 1)[1].strip(b'"\r\n'): ln for ln in lines}
    assert set(by) == {b"t.a", b"t.b.c", b"t.gone", b"t.d.e", b"t.never"}, lines
    for gone in (b"t.gone", b"t.never"):
        assert b"\\NonExistent" in by[gone] and b"\\Subscribed" in by[gone], by[gone]
    assert b"\\NonExistent" not in by[b"t.a"]
    lines = ok(r.cmd('LIST (SUBSCRIBED RECURSIVEMATCH) "" t.%'))
    joined = b"".join(lines)
    assert b'"t.b" ("CHILDINFO" ("SUBSCRIBED"))' in joined, lines
    assert b'"t.d" ("CHILDINFO" ("SUBSCRIBED"))' in joined, lines
    assert re.search(rb'\(\\HasNoChildren \\Subscribed\) "\." "t\.a"\r\n', joined), lines
    # a child that matches the pattern itself: no CHILDINFO for its parent
    lines = ok(r.cmd('LIST (SUBSCRIBED RECURSIVEMATCH) "" (t.b t.b.c)'))
    assert not any(b"CHILDINFO" in ln for ln in lines), lines
    # creating a subscribed name makes a subscribed mailbox
    ok(r.cmd("CREATE t.never"))
    lines = ok(r.cmd('LIST (SUBSCRIBED) "" t.never'))
    assert len(lines) == 1 and b"\\NonExistent" not in lines[0] and b"\\Subscribed" in lines[0]


def test_lsub_percent_gives_parent_noselect(imapd):
    r = login(imapd)
    for n in ("p.x", "p.q.", "p.q.y", "p.z.w"):
        ok(r.cmd(f"CREATE {n}"))
    ok(r.cmd("SUBSCRIBE p.x"))
    ok(r.cmd("SUBSCRIBE p.q.y"))
    ok(r.cmd("SUBSCRIBE p.z.w"))
    lines = ok(r.cmd('LSUB "" p.%'))
    assert sorted(lines) == sorted([b'* LSUB () "." "p.x"\r\n', b'* LSUB (\\Noselect) "." "p.q"\r\n',
                                    b'* LSUB (\\Noselect) "." "p.z"\r\n']), lines
    lines = ok(r.cmd('LSUB "" p.*'))
    assert sorted(lines) == sorted([b'* LSUB () "." "p.x"\r\n', b'* LSUB () "." "p.q.y"\r\n',
                                    b'* LSUB () "." "p.z.w"\r\n']), lines


def test_move_into_the_selected_mailbox(imapd):
    r = login(imapd)
    append(r, message(1))
    append(r, message(2))
    lines = ok(r.cmd("SELECT INBOX"))
    uv = re.search(rb"UIDVALIDITY (\d+)", b"".join(lines)).group(1)
    lines, t = r.cmd("MOVE 1 INBOX")
    assert b" OK " in t, (lines, t)
    assert lines[0] == b"* OK [COPYUID %s 1 3] Moved\r\n" % uv, lines
    assert b"* 1 EXPUNGE\r\n" in lines and b"* 2 EXISTS\r\n" in lines, lines
    lines = ok(r.cmd("UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    assert [re.search(rb"UID (\d+)", ln).group(1) for ln in lines] == [b"2", b"3"]
    assert b"test message 1" in lines[1]


def test_search_from_with_comments_and_repeated_header(imapd):
    r = login(imapd)
    append(r, b"From: <user-from (comment)@ (comment) domain.org>\r\nTo: x@y.org\r\n\r\nbody\r\n")
    append(r, b"From: user-from@domain.org (RealFrom)\r\nX-Extra: hello\r\nX-Extra: another one\r\n"
              b"To: first@x.org\r\nTo: second@x.org\r\n\r\nbody\r\n")
    ok(r.cmd("SELECT INBOX"))
    assert ok(r.cmd("SEARCH FROM user-from@domain.org")) == [b"* SEARCH 1 2\r\n"]
    assert ok(r.cmd("SEARCH FROM realfrom")) == [b"* SEARCH 2\r\n"]
    assert ok(r.cmd("SEARCH FROM comment")) == [b"* SEARCH 1\r\n"]  # the raw text still counts
    assert ok(r.cmd('SEARCH HEADER X-Extra "another"')) == [b"* SEARCH 2\r\n"]
    assert ok(r.cmd('SEARCH HEADER X-Extra "hello"')) == [b"* SEARCH 2\r\n"]
    assert ok(r.cmd("SEARCH TO second@x.org")) == [b"* SEARCH 2\r\n"]
    assert ok(r.cmd('SEARCH HEADER X-Extra ""')) == [b"* SEARCH 2\r\n"]


def test_keywords_in_flags_and_new_flags_when_one_appears(imapd):
    a = login(imapd)
    append(a, message(1), flags="($Old) ")
    append(a, message(2))
    lines = ok(a.cmd("SELECT INBOX"))
    flags = [ln for ln in lines if ln.startswith(b"* FLAGS")][0]
    perm = [ln for ln in lines if b"PERMANENTFLAGS" in ln][0]
    assert b"$Old" in flags and b"$Old" in perm and b"\\*" in perm, lines
    b = login(imapd)
    ok(b.cmd("SELECT INBOX"))
    lines = ok(a.cmd("STORE 2 +FLAGS ($New)"))
    i_flags = [i for i, ln in enumerate(lines) if ln.startswith(b"* FLAGS")]
    i_fetch = [i for i, ln in enumerate(lines) if b"FETCH" in ln]
    assert i_flags and i_fetch and i_flags[0] < i_fetch[0], lines
    assert b"$New" in lines[i_flags[0]] and b"$Old" in lines[i_flags[0]]
    # the other session hears of the new keyword before a FETCH shows it
    lines = ok(b.cmd("NOOP"))
    i_flags = [i for i, ln in enumerate(lines) if ln.startswith(b"* FLAGS")]
    i_fetch = [i for i, ln in enumerate(lines) if b"$New" in ln and b"FETCH" in ln]
    assert i_flags and i_fetch and i_flags[0] < i_fetch[0], lines
    lines = ok(b.cmd("FETCH 1:2 FLAGS"))  # told already: no new FLAGS
    assert not any(ln.startswith(b"* FLAGS") for ln in lines), lines
    # EXAMINE: keywords listed, nothing permanent
    c = login(imapd)
    lines = ok(c.cmd("EXAMINE INBOX"))
    assert any(ln.startswith(b"* FLAGS") and b"$New" in ln for ln in lines)
    assert b"* OK [PERMANENTFLAGS ()]" in b"".join(lines)


def test_recent_goes_to_exactly_one_of_concurrent_selects(imapd):
    """Several sessions SELECT the same mailbox at the same moment, over and
    over with new mail in between: each \\Recent message is \\Recent in
    exactly one session."""
    w = login(imapd)
    sessions = [login(imapd) for _ in range(6)]
    for rnd in range(5):
        for i in range(4):
            append(w, message(rnd * 10 + i))
        got = [None] * len(sessions)
        start = threading.Barrier(len(sessions))

        def sel(k):
            start.wait()
            lines, t = sessions[k].cmd("SELECT INBOX")
            n = int(re.search(rb"\* (\d+) RECENT", b"".join(lines)).group(1))
            fl = sessions[k].cmd("SEARCH RECENT")[0]
            got[k] = (n, set(fl[0].split()[2:]))

        th = [threading.Thread(target=sel, args=(k,)) for k in range(len(sessions))]
        for t in th:
            t.start()
        for t in th:
            t.join(30)
        assert all(g is not None for g in got)
        total = sum(n for n, _ in got)
        assert total == 4, (rnd, got)
        seen = [u for _, s in got for u in s]
        assert len(seen) == len(set(seen)) == 4, (rnd, got)
        for s in sessions:
            s.cmd("UNSELECT")


BARE_LF = (b"From: a@example.org\nTo: b@example.org\nSubject: bare\nMIME-Version: 1.0\n"
           b"Content-Type: multipart/mixed; boundary=XX\n\npre\n--XX\nContent-Type: text/plain\n\n"
           b"one\ntwo\r\nthree\n--XX\nContent-Type: text/plain\n\nsecond\n--XX--\n")


def test_bare_lf_message_served_as_crlf(imapd, tmp_path):
    """A message stored with bare LF is CRLF on the wire, every size and
    offset agreeing with that form; the store keeps the bytes as they came."""
    md = tmp_path / "md"
    for sub in ("new", "cur", "tmp"):
        (md / sub).mkdir(parents=True)
    (md / "cur" / "1700000000.M1.host:2,S").write_bytes(BARE_LF)
    imapd.inst.mk("import", "alice", md)
    crlf = re.sub(rb"(?<!\r)\n", b"\r\n", BARE_LF)
    assert len(crlf) > len(BARE_LF)
    r = login(imapd)
    ok(r.cmd("SELECT INBOX"))
    lines = ok(r.cmd("FETCH 1 (RFC822.SIZE BODY.PEEK[])"))
    assert b"RFC822.SIZE %d " % len(crlf) in lines[0]
    assert lines[0].endswith(b"{%d}\r\n" % len(crlf) + crlf + b")\r\n"), lines[0][-200:]
    # partial offsets of the CRLF form, starting inside a converted line end
    for off, n in ((0, 5), (17, 3), (18, 1), (len(crlf) - 10, 50), (len(crlf) + 5, 10)):
        lines = ok(r.cmd(f"FETCH 1 BODY.PEEK[]<{off}.{n}>"))
        want = crlf[off:off + n]
        assert lines[0].endswith(b"{%d}\r\n" % len(want) + want + b")\r\n"), (off, n, lines[0])
    # parts and BODYSTRUCTURE sizes/lines of the CRLF form
    lines = ok(r.cmd("FETCH 1 (BODYSTRUCTURE BODY.PEEK[1] BODY.PEEK[HEADER.FIELDS (SUBJECT TO)])"))
    part1 = b"one\r\ntwo\r\nthree"
    assert b"BODY[1] {%d}\r\n%s" % (len(part1), part1) in lines[0], lines[0]
    assert b'("TEXT" "PLAIN" NIL NIL NIL "7BIT" %d 2 ' % len(part1) in lines[0], lines[0]  # lines: its LFs
    assert b"To: b@example.org\r\nSubject: bare\r\n\r\n" in lines[0]
    lines = ok(r.cmd("SEARCH LARGER %d" % (len(crlf) - 1)))
    assert lines == [b"* SEARCH 1\r\n"]
    # the store and an export keep the original bytes
    out = tmp_path / "out"
    imapd.inst.mk("export", "alice", out)
    exported = [p.read_bytes() for p in out.rglob("*") if p.is_file() and b"Subject: bare" in p.read_bytes()]
    assert exported == [BARE_LF], exported


def test_literal_sent_before_continuation_is_not_a_hang(imapd):
    """Issue 13 item 2: a synchronising literal sent in the same write as its
    command gets '+' and then its tagged answer, without more bytes."""
    r = login(imapd)
    r.sock.settimeout(5)
    r.send(b"t APPEND INBOX {3}\r\nabc\r\n")
    lines, t = r.until("t")
    assert lines[0].startswith(b"+ "), lines
    assert t.startswith(b"t OK "), t
    ok(r.cmd("SELECT INBOX"))
    r.send(b"s SEARCH SUBJECT {4}\r\ntest ALL\r\n")
    lines, t = r.until("s")
    assert lines[0].startswith(b"+ ") and t.startswith(b"s OK "), (lines, t)
    # two literals, both early, and a command after them in the same write
    r.send(b"u SEARCH SUBJECT {1}\r\nx FROM {1}\r\ny\r\nv NOOP\r\n")
    lines, t = r.until("u")
    assert t.startswith(b"u OK "), t
    lines, t = r.until("v")
    assert t.startswith(b"v OK ")
