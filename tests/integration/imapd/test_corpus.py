"""Every message of the shared corpus through IMAP: APPENDed, then fetched
by libetpan's IMAP client as BODY[] (byte-identical), with ENVELOPE and
BODYSTRUCTURE parsed back by that client; section fetches of every part
stay inside the message. And the corpus imported by the real `mailkeep
import` (another process, while imapd runs) is what imapd serves, with
APPENDs of the same messages costing no new bytes.

Many corpus files end their lines with a bare LF: the store keeps them so,
and IMAP serves them in CRLF form (wire.h), so BODY[] is compared with that."""
import hashlib
import re
import subprocess
from collections import Counter

import pytest

from mkhelpers import BIN
from rawimap import Raw


def crlf(raw):
    """The CRLF form IMAP serves: each LF not preceded by CR becomes CRLF."""
    return re.sub(rb"(?<!\r)\n", b"\r\n", raw)


def stats(imapd):
    out = imapd.inst.mk("stats").stdout
    return dict(line.split(None, 1) for line in out.splitlines() if line.strip())


def etpan(imapd, mailbox, n):
    cp = subprocess.run([str(imapd.helpers["etpan_check"]), str(imapd.port), "alice", "secret-alice", mailbox,
                         str(n)], capture_output=True, text=True, timeout=600)
    assert cp.returncode == 0, cp.stderr[-2000:]
    return [line.split() for line in cp.stdout.split("\n")[:-1]]


def test_import_then_append_costs_no_bytes(imapd, corpus_files):
    if not (BIN / "mailkeep").exists():
        pytest.fail("build/bin/mailkeep is not built")
    files = corpus_files[:400]
    src = imapd.inst.root / "corpus400"
    src.mkdir()
    for i, p in enumerate(files):
        (src / f"{i:05d}").write_bytes(p.read_bytes())
    imapd.inst.mk("import", "alice", src)
    # the importer keeps a leading mbox "From " line as metadata (doc/tools.md)
    def stored(raw):
        return raw.split(b"\n", 1)[1] if raw.startswith(b"From ") else raw
    want = Counter((len(crlf(stored(p.read_bytes()))), hashlib.sha256(crlf(stored(p.read_bytes()))).hexdigest())
                   for p in files)
    got = etpan(imapd, "INBOX", len(files))
    assert Counter((int(size), digest) for _, size, digest, _, _ in got) == want
    before = stats(imapd)
    r = Raw(imapd.port)
    r.cmd("LOGIN alice secret-alice")
    r.cmd("CREATE Again")
    for i, p in enumerate(files):
        raw = stored(p.read_bytes())
        r.send(f"a{i} APPEND Again {{{len(raw)}+}}\r\n".encode() + raw + b"\r\n")
        assert r.line().startswith(f"a{i} OK".encode())
    r.close()
    after = stats(imapd)
    assert after["bytes_stored"] == before["bytes_stored"]
    assert int(after["messages"]) == int(before["messages"]) + len(files)


def test_every_corpus_message(imapd, corpus_files):
    r = Raw(imapd.port)
    r.cmd("LOGIN alice secret-alice")
    hashes = []
    for i, p in enumerate(corpus_files):
        raw = p.read_bytes()
        hashes.append((len(crlf(raw)), hashlib.sha256(crlf(raw)).hexdigest()))
        r.send(f"a{i} APPEND INBOX {{{len(raw)}+}}\r\n".encode() + raw + b"\r\n")
        ln = r.line()
        assert ln.startswith(f"a{i} OK".encode()), (p, ln)
    cp = subprocess.run([str(imapd.helpers["etpan_check"]), str(imapd.port), "alice", "secret-alice", "INBOX",
                         str(len(corpus_files))], capture_output=True, text=True, timeout=600)
    assert cp.returncode == 0, cp.stderr[-2000:]
    lines = cp.stdout.split("\n")[:-1]
    assert len(lines) == len(corpus_files)
    for line, (size, digest), p in zip(lines, hashes, corpus_files):
        uid, got_size, got_digest, parts, _ = line.split()
        assert (int(got_size), got_digest) == (size, digest), p
        assert int(parts) >= 1, (p, line)
    # BODYSTRUCTURE again from the cache (second fetch) is identical to the first
    r.cmd("SELECT INBOX")
    first, _ = r.cmd("FETCH 1:50 (BODYSTRUCTURE ENVELOPE)")
    second, _ = r.cmd("FETCH 1:50 (BODYSTRUCTURE ENVELOPE)")
    assert first == second and len(first) == 50
    # every part of the first 300 messages can be fetched, and lies inside the message
    for seq in range(1, min(300, len(corpus_files)) + 1):
        lines, _ = r.cmd(f"FETCH {seq} (BODYSTRUCTURE RFC822.SIZE)")
        bs = lines[0]
        size = int(re.search(rb"RFC822.SIZE (\d+)", bs).group(1))
        nparts = max(1, bs.count(b'("TEXT"') + bs.count(b'("APPLICATION"') + bs.count(b'("IMAGE"'))
        for part in range(1, min(nparts, 5) + 1):
            lines, t = r.cmd(f"FETCH {seq} (BODY.PEEK[{part}] BODY.PEEK[{part}.MIME])")
            assert b"OK" in t
            m = re.search(rb"BODY\[%d\] \{(\d+)\}" % part, lines[0])
            assert m and int(m.group(1)) <= size
    r.close()
