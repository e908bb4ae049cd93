"""Every message of the shared corpus through IMAP: APPENDed, then fetched
by libetpan's IMAP client as BODY[] (byte-identical), with ENVELOPE and
BODYSTRUCTURE parsed back by that client; section fetches of every part
stay inside the message."""
import hashlib
import re
import subprocess

from rawimap import Raw


def test_every_corpus_message(imapd, corpus_files):
    r = Raw(imapd.port)
    r.cmd("LOGIN alice secret-alice")
    hashes = []
    for i, p in enumerate(corpus_files):
        raw = p.read_bytes()
        hashes.append((len(raw), hashlib.sha256(raw).hexdigest()))
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
