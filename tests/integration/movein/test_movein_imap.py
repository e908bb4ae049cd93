"""mailkeep import USER imaps://LOGIN@HOST from a real Dovecot (issue 20).

The source holds 5,000 corpus messages in folders (special-use ones under
provider names, a hierarchy, a name with '.', non-ASCII names), with flags,
keywords and internal dates set by APPEND, plus Dovecot's virtual "All
Mail" (\\All) over all of them, as Gmail shows one. Every test reads both
sides with imaplib (Dovecot, and mailkeep-imapd over the store) and compares
every message's bytes, flags and internal date."""
import collections
import os
import random
import signal
import subprocess
import time

import pytest

from mkhelpers import BIN
from moveinlib import (CuttingProxy, RefusingProxy, append_all, corpus_messages, digest, list_folders, mutf7,
                       read_mailbox)

# source folder (UTF-8) -> (our mailbox (UTF-8), how many messages)
LAYOUT = [
    ("INBOX", "INBOX", 2500),
    ("Sent Items", "Sent", 600),
    ("Drafts", "Drafts", 50),
    ("Spam", "Junk", 300),
    ("Deleted Messages", "Trash", 200),
    ("Old", "Archive", 300),
    ("Lists/dev.team", "Lists.dev\u2024team", 400),
    ("Entwürfe", "Entwürfe", 150),
    ("日本語/メモ", "日本語.メモ", 200),
    ("a.b", "a\u2024b", 300),
    ("Empty", "Empty", 0),
]
TOTAL = sum(n for _, _, n in LAYOUT)
KEYWORDS = ["$Forwarded", "project-x", "$Label1"]


def flags_for(i, folder):
    f = []
    if i % 3:
        f.append("\\Seen")
    if i % 7 == 0:
        f.append("\\Answered")
    if i % 11 == 0:
        f.append("\\Flagged")
    if folder == "Drafts":
        f.append("\\Draft")
    for k, kw in enumerate(KEYWORDS):
        if i % (5 + 8 * k) == 0:
            f.append(kw)
    return "(" + " ".join(f) + ")" if f else None


def fill(dovecot, user, layout, msgs, t0=946684800):
    m = dovecot.connect(user)
    i = 0
    for folder, _, n in layout:
        wire = mutf7(folder)
        if folder != "INBOX":
            typ, resp = m.create(f'"{wire}"')
            assert typ == "OK", resp
        items = []
        for _ in range(n):
            items.append((msgs[i], flags_for(i, folder), t0 + i * 3607))
            i += 1
        append_all(m, wire, items)
    m.logout()


@pytest.fixture(scope="module")
def source(dovecot):
    """User src on the Dovecot: 5,000 messages in LAYOUT."""
    msgs = corpus_messages(TOTAL)
    assert len(set(map(digest, msgs))) == TOTAL
    fill(dovecot, "src", LAYOUT, msgs)
    return dovecot


def our_wire(name):
    # mailkeep-imapd: '.' separator, modified UTF-7
    return mutf7(name)


def side(m, wire):
    """Counter of (sha256, flags, internal date) of a folder, read with imaplib."""
    return collections.Counter((digest(b), fl, time.mktime(d) if d else None)
                               for b, fl, d in read_mailbox(m, wire))


def compare_all(dovecot, user, target, layout):
    """Every source folder equals its mailbox here: same messages (bytes), flags, dates;
    no duplicates, nothing missing."""
    src = dovecot.connect(user)
    ours = target.start_imapd()
    try:
        total = 0
        for folder, mine, _ in layout:
            want = side(src, mutf7(folder))
            got = side(ours, our_wire(mine))
            missing = want - got
            extra = got - want
            assert not missing and not extra, (folder, mine, len(missing), len(extra),
                                               list(missing)[:2], list(extra)[:2])
            total += sum(want.values())
        return total
    finally:
        src.logout()
        ours.logout()


def test_import_every_folder_byte_identical(source, target):
    cp = target.run_import("src")
    assert f"imported {TOTAL} messages" in cp.stdout, cp.stdout + cp.stderr
    # Dovecot's virtual All Mail (\All) is the same messages again: none is added twice
    assert f"{TOTAL} of All Mail already in another mailbox" in cp.stdout, cp.stdout
    assert compare_all(source, "src", target, LAYOUT) == TOTAL
    # special-use folders landed in ours, not in copies named as the provider names them
    ours = target.start_imapd()
    names = list_folders(ours)
    ours.logout()
    for provider in ("Sent Items", "Spam", "Deleted Messages", "Old"):
        assert provider not in names, names
    assert "Empty" in names, names
    # a second run copies nothing (CONDSTORE: unchanged folders are not even listed)
    cp = target.run_import("src")
    assert "imported 0 messages" in cp.stdout, cp.stdout + cp.stderr
    target.inst.mk("fsck")


def test_killed_at_random_points_resumes_then_copies_only_new(source, target):
    seed = int(os.environ.get("MOVEIN_SEED", time.time()))
    rng = random.Random(seed)
    # --max-rate keeps a whole run over ~1.5 s on any machine, so the kills land
    # inside it (between messages, in a FETCH, in a commit), not after it
    args = [str(BIN / "mailkeep"), "-c", str(target.inst.conf),
            *map(str, target.import_args("src", "--batch", "100", "--max-rate", "15m"))]
    kills = 0
    for _ in range(5):
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.05, 1.2))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.communicate()
    assert kills >= 1, f"seed {seed}: the import always ended before the kill"
    target.inst.mk("fsck")
    cp = target.run_import("src", "--batch", "150")
    assert compare_all(source, "src", target, LAYOUT) == TOTAL, f"seed {seed}"
    # 100 new messages on the server: exactly those are copied
    new = corpus_messages(100, seed=7)
    m = source.connect("src")
    append_all(m, "INBOX", [(b, "(\\Seen)", 1500000000 + i) for i, b in enumerate(new[:60])])
    append_all(m, mutf7("Lists/dev.team"), [(b, None, 1500001000 + i) for i, b in enumerate(new[60:])])
    m.logout()
    cp = target.run_import("src")
    assert "imported 100 messages" in cp.stdout, cp.stdout + cp.stderr
    layout = [(f, t, n) for f, t, n in LAYOUT]
    assert compare_all(source, "src", target, layout) == TOTAL + 100
    # and the store is whole
    target.inst.mk("fsck")


@pytest.fixture(scope="module")
def odd(dovecot):
    """User odd: a 50 MB message, and 300 messages of ~5-60 KB for the proxy to cut into."""
    rng = random.Random(20)
    m = dovecot.connect("odd")
    big = (b"From: a@example.org\r\nTo: b@example.org\r\nSubject: big\r\n"
           b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")
    line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3\r\n"
    big += line * (50 * 1024 * 1024 // len(line))
    m.create('"Big"')
    append_all(m, "Big", [(big, "(\\Seen)", 1000000000)])
    msgs = []
    for i in range(300):
        body = b"".join(b"%06d " % rng.randrange(10**6) + b"x" * 60 + b"\r\n"
                        for _ in range(rng.randrange(60, 800)))
        msgs.append(b"From: a@example.org\r\nSubject: msg %d\r\n\r\n" % i + body)
    m.create('"Cut"')
    append_all(m, "Cut", [(b, "(\\Flagged)", 1100000000 + i) for i, b in enumerate(msgs)])
    m.logout()
    return dovecot


ODD_LAYOUT = [("INBOX", "INBOX", 0), ("Big", "Big", 1), ("Cut", "Cut", 300)]


def test_connection_cut_mid_fetch_reconnects(odd, target):
    proxy = CuttingProxy(odd.port, after=2_000_000, cuts=2)
    try:
        cp = target.run_import("odd", port=proxy.port)
    finally:
        proxy.close()
    assert proxy.cut_done >= 2, "the proxy never cut a connection"
    assert "trying again" in cp.stderr, cp.stderr
    assert "imported 301 messages" in cp.stdout, cp.stdout + cp.stderr
    assert compare_all(odd, "odd", target, ODD_LAYOUT) == 301


def test_connection_always_cut_fails_clearly_then_resumes(odd, target):
    proxy = CuttingProxy(odd.port, after=3_000_000, cuts=1000)
    try:
        cp = target.run_import("odd", "--retries", "1", port=proxy.port, check=False)
    finally:
        proxy.close()
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert "giving up" in cp.stderr and "run" in cp.stderr, cp.stderr
    target.inst.mk("fsck")
    cp = target.run_import("odd")
    assert compare_all(odd, "odd", target, ODD_LAYOUT) == 301


@pytest.mark.parametrize("code", ["UNAVAILABLE", "THROTTLED"])
def test_server_refusal_backs_off_and_goes_on(odd, target, code):
    """NO [UNAVAILABLE] / NO [THROTTLED] to a FETCH: keep what came, wait,
    reconnect, go on; nothing twice, nothing missing."""
    proxy = RefusingProxy(odd, code, count=2)
    try:
        t0 = time.monotonic()
        cp = target.run_import("odd", port=proxy.port)
        took = time.monotonic() - t0
    finally:
        proxy.close()
    assert proxy.refused == 2
    assert f"[{code}]" in cp.stderr and "trying again in 1 s" in cp.stderr, cp.stderr
    assert "trying again in 2 s" in cp.stderr or cp.stderr.count("trying again in 1 s") == 2, cp.stderr
    assert took >= 2, "it did not wait before trying again"
    assert "imported 301 messages" in cp.stdout, cp.stdout + cp.stderr
    assert compare_all(odd, "odd", target, ODD_LAYOUT) == 301


def test_untagged_throttled_slows_down(odd, target):
    """* OK [THROTTLED] (a provider's hint): the importer pauses, then goes on."""
    proxy = RefusingProxy(odd, "THROTTLED", count=1, untagged=True)
    try:
        cp = target.run_import("odd", port=proxy.port)
    finally:
        proxy.close()
    assert proxy.refused == 1
    assert "[THROTTLED]: pausing 1 s" in cp.stderr, cp.stderr
    assert "imported 301 messages" in cp.stdout, cp.stdout + cp.stderr
    assert compare_all(odd, "odd", target, ODD_LAYOUT) == 301


def our_counts(target):
    m = target.start_imapd()
    try:
        out = {}
        for name in list_folders(m):
            typ, data = m.status(f'"{name}"', "(MESSAGES)")
            out[name] = int(data[0].split(b"MESSAGES ")[1].split(b")")[0])
        return out
    finally:
        m.logout()


def test_wrong_password_changes_nothing(odd, target):
    before = our_counts(target)
    (target.inst.root / "bad.pw").write_text("not-the-password\n")
    cp = target.inst.mk("import", "--password-file", target.inst.root / "bad.pw", "--ca-file",
                        odd.ca, "bob", odd.url("odd"), check=False)
    assert cp.returncode == 1
    assert "refused the login" in cp.stderr and "AUTHENTICATIONFAILED" in cp.stderr, cp.stderr
    assert "nothing was imported" in cp.stderr, cp.stderr
    assert our_counts(target) == before


def test_tls_verified_by_default(odd, target):
    before = our_counts(target)
    cp = target.run_import("odd", ca=False, check=False)
    assert cp.returncode == 1
    assert "not trusted" in cp.stderr and "--ca-file" in cp.stderr, cp.stderr
    assert our_counts(target) == before


@pytest.mark.parametrize("mech", ["xoauth2", "oauthbearer"])
def test_oauth2_token(odd, target, mech):
    """Dovecot's oauth2 passdb checks the token with an introspection endpoint
    (a stand-in: no identity provider runs here); the SASL exchange is real."""
    tok = target.inst.root / "tok"
    tok.write_text("token-of-odd\n")
    cp = target.inst.mk("import", "--oauth2-token-file", tok, "--oauth2-mechanism", mech, "--ca-file",
                        odd.ca, "bob", odd.url("odd"))
    assert "imported 301 messages" in cp.stdout, cp.stdout + cp.stderr
    tok.write_text("a-wrong-token\n")
    before = our_counts(target)
    cp = target.inst.mk("import", "--oauth2-token-file", tok, "--oauth2-mechanism", mech, "--ca-file",
                        odd.ca, "bob", odd.url("odd"), check=False)
    assert cp.returncode == 1 and "refused the login" in cp.stderr, cp.stderr
    assert our_counts(target) == before


def test_starttls_and_password_prompt_from_stdin(odd, target):
    """imap:// (STARTTLS, required: the password never goes in clear)."""
    url = f"imap://odd@127.0.0.1:{odd.plain_port}"
    cp = target.inst.mk("import", "--ca-file", odd.ca, "bob", url, input="pw-odd\n")
    assert "imported 301 messages" in cp.stdout, cp.stdout + cp.stderr


def test_flag_changes_on_the_server_follow(odd, target):
    """CONDSTORE: a later run carries the server's flag changes over to the
    messages it brought (read on the old phone meanwhile, flagged, tagged)."""
    target.run_import("odd")
    m = odd.connect("odd")
    try:
        m.select('"Cut"')
        typ, _ = m.uid("STORE", "1:10", "+FLAGS", "(\\Seen $Label2)")
        assert typ == "OK"
        typ, _ = m.uid("STORE", "5:15", "-FLAGS", "(\\Flagged)")
        assert typ == "OK"
    finally:
        m.logout()
    cp = target.run_import("odd")
    assert "imported 0 messages" in cp.stdout and "flags of 15 changed as on the server" in cp.stdout, \
        cp.stdout + cp.stderr
    assert compare_all(odd, "odd", target, ODD_LAYOUT) == 301
    cp = target.run_import("odd")
    assert "flags of" not in cp.stdout, cp.stdout
    # put them back for the other tests of the module
    m = odd.connect("odd")
    try:
        m.select('"Cut"')
        m.uid("STORE", "1:10", "-FLAGS", "(\\Seen $Label2)")
        m.uid("STORE", "5:15", "+FLAGS", "(\\Flagged)")
    finally:
        m.logout()


def test_max_bytes_stops_and_the_next_run_goes_on(odd, target):
    cp = target.run_import("odd", "--max-bytes", "1m")
    assert "stopped after" in cp.stderr and "run the same command again" in cp.stderr, cp.stderr
    assert cp.returncode == 0
    first = int(cp.stdout.split("imported ")[1].split()[0])
    assert 1 <= first < 301, cp.stdout
    cp = target.run_import("odd")
    assert f"imported {301 - first} messages" in cp.stdout, cp.stdout + cp.stderr
    assert compare_all(odd, "odd", target, ODD_LAYOUT) == 301


def test_under_a_parent_mailbox(odd, target):
    """--mailbox P: the server's folders under P (INBOX is P)."""
    cp = target.run_import("odd", "--mailbox", "Old.Work")
    assert "imported 301 messages" in cp.stdout, cp.stdout + cp.stderr
    layout = [("INBOX", "Old.Work", 0), ("Big", "Old.Work.Big", 1), ("Cut", "Old.Work.Cut", 300)]
    assert compare_all(odd, "odd", target, layout) == 301
    names = list_folders(target.start_imapd())
    assert "Big" not in names and "Cut" not in names, names


def test_courier_like_namespace(dovecot, target):
    """A server whose folders live under "INBOX." with '.' (Courier, Cyrus):
    the namespace prefix is dropped, special use still maps."""
    msgs = corpus_messages(40, seed=3)
    m = dovecot.connect("courier-a")
    layout = [("INBOX", "INBOX", 10), ("INBOX.Sent Items", "Sent", 10), ("INBOX.Lists.dev", "Lists.dev", 10),
              ("INBOX.Spam", "Junk", 10)]
    for i, (folder, _, n) in enumerate(layout):
        if folder != "INBOX":
            m.create(f'"{folder}"')
        append_all(m, folder, [(b, "(\\Seen)", 1200000000 + j) for j, b in enumerate(msgs[i * 10:i * 10 + n])])
    m.logout()
    cp = target.run_import("courier-a")
    assert "imported 40 messages" in cp.stdout, cp.stdout + cp.stderr
    assert compare_all(dovecot, "courier-a", target, layout) == 40
    names = list_folders(target.start_imapd())
    assert not any(n.startswith("INBOX.") for n in names), names


def test_url_and_option_errors(target):
    for args, words in [
        (["bob", "imaps://127.0.0.1"], "give the login"),
        (["bob", "imaps://u:pw@127.0.0.1"], "no password in the URL"),
        (["bob", "imaps://u@127.0.0.1:99999"], "bad port"),
        (["--password-file", "x", "--oauth2-token-file", "y", "bob", "imaps://u@h"], "not both"),
    ]:
        cp = target.inst.mk("import", *args, check=False)
        assert cp.returncode == 2, (args, cp.stderr)
        assert words in cp.stderr, (args, cp.stderr)
