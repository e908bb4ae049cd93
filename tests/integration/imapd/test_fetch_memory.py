"""A session's memory for FETCH stays bounded (issue 14, item 5): the answer
streams through one buffer of 256 KB (plus a 64 KB conversion piece and the
64 KB socket buffer), sent whenever it fills, inside a message's literal too.

Measured on the daemon's anonymous resident memory (RssAnon in
/proc/PID/status, sampled every 10 ms; the store's map is file-backed and not
counted): the bound asserted is 4 MB above what the daemon held before the
FETCH (measured: +0.3-0.4 MB), for 1,000 messages of 1 MB (1 GB of answer) and for one 40 MB message
(the old code held the whole message, and before that 1 TiB was its limit)."""
import os
import re
import threading
import time

from rawimap import Raw


# ASan's allocator keeps freed memory in quarantine (and its own bookkeeping),
# so under the ASan build of the daemon (MAILKEEP_IMAPD=build/asan/...) the
# bound is looser; it still catches an answer held whole (+40 MB and more).
BOUND_MB = 32 if "asan" in os.environ.get("MAILKEEP_IMAPD", "") else 4


def rss_anon_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise RuntimeError("no RssAnon")


class Sampler:
    """The peak of RssAnon while a block runs."""

    def __init__(self, pid):
        self.pid, self.peak, self.stop = pid, 0, threading.Event()
        self.th = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_anon_kb(self.pid))
            time.sleep(0.01)

    def __enter__(self):
        self.base = rss_anon_kb(self.pid)
        self.th.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.th.join()


def drain_fetch(r, tag, expect_at_least):
    """Reads a FETCH answer without keeping it; returns the bytes read."""
    total, tail = 0, b""
    buf = bytearray(1 << 20)
    end = b"\r\n" + tag + b" OK"
    while True:
        n = r.sock.recv_into(buf)
        assert n > 0, "connection closed"
        total += n
        tail = (tail + bytes(buf[:n]))[-200:]
        if total >= expect_at_least and end in tail and tail.endswith(b"\r\n"):
            return total


def big_message(size, seed):
    line = (f"{seed:08d} " + "abcdefghijklmnopqrstuvwxyz0123456789" * 2 + "\r\n").encode()
    body = line * (size // len(line) + 1)
    return (b"From: a@example.org\r\nSubject: big %d\r\n\r\n" % seed) + body[:size]


def append(r, data, tag="ap"):
    r.send(f"{tag} APPEND INBOX {{{len(data)}+}}\r\n".encode() + data + b"\r\n")
    _, t = r.until(tag)
    assert b" OK " in t, t


def test_fetch_of_a_thousand_megabyte_messages_stays_bounded(imapd):
    pid = imapd.proc.pid
    r = Raw(imapd.port, timeout=120)
    r.cmd("LOGIN alice secret-alice")
    append(r, big_message(1 << 20, 1))
    r.cmd("SELECT INBOX")
    for _ in range(10):  # 1, 2, 4, ... 1024 messages, one stored copy of the bytes
        _, t = r.cmd("COPY 1:* INBOX")
        assert b" OK " in t
    lines, _ = r.cmd("NOOP")
    lines, _ = r.cmd("STATUS INBOX (MESSAGES)")
    assert b"MESSAGES 1024" in lines[0], lines
    with Sampler(pid) as s:
        r.send(b"f FETCH 1:1000 BODY.PEEK[]\r\n")
        total = drain_fetch(r, b"f", 1000 << 20)
    grew = (s.peak - s.base) / 1024
    print(f"FETCH of 1000 x 1 MB: {total / 1e6:.0f} MB sent, RssAnon {s.base / 1024:.1f} MB before, "
          f"peak {s.peak / 1024:.1f} MB (+{grew:.1f} MB)")
    assert total > 1000 << 20
    assert grew < BOUND_MB, f"RssAnon grew by {grew:.1f} MB during the FETCH"
    r.close()


def test_fetch_of_a_forty_megabyte_message_stays_bounded(imapd):
    pid = imapd.proc.pid
    r = Raw(imapd.port, timeout=120)
    r.cmd("LOGIN alice secret-alice")
    append(r, big_message(40 << 20, 2))
    r.cmd("SELECT INBOX")
    r.cmd("NOOP")
    time.sleep(0.2)
    with Sampler(pid) as s:
        r.send(b"f FETCH 1 (RFC822.SIZE BODY.PEEK[])\r\n")
        total = drain_fetch(r, b"f", 40 << 20)
    grew = (s.peak - s.base) / 1024
    print(f"FETCH of one 40 MB message: RssAnon {s.base / 1024:.1f} MB before, peak {s.peak / 1024:.1f} MB "
          f"(+{grew:.1f} MB)")
    assert total > 40 << 20
    assert grew < BOUND_MB, f"RssAnon grew by {grew:.1f} MB during the FETCH"
    r.close()
