"""Crash test: a bounded load while smtpin is killed with SIGKILL at random
times and restarted. Every message that got 250 must be in the store with
its bytes intact; anything stored must be a whole message (nothing half
written is visible); fsck finds nothing wrong."""
import hashlib
import os
import random
import signal
import smtplib
import socket
import threading
import time


def make_message(n):
    rnd = random.Random(n)
    lines = [f"Message-ID: <crash-{n}@test.example>", f"Subject: crash test {n}", "From: load@example.com",
             "To: bob@example.org", ""]
    for _ in range(rnd.randint(20, 120)):
        lines.append("".join(rnd.choice("abcdefghij .") for _ in range(rnd.randint(0, 76))))
    return ("\r\n".join(lines) + "\r\n").encode()


def stored_without_received(body):
    # our Received: header is the first field, then our Authentication-Results
    # (smtpin/authres.c), each with its continuation lines
    assert body.startswith(b"Received: ")
    i = 0
    while True:
        j = body.index(b"\r\n", i)
        i = j + 2
        if body[i:i + 1] in (b"\t", b" "):
            continue
        if body.startswith(b"Authentication-Results: mx.example.org;", i):
            continue
        return body[i:]


def test_sigkill_under_load(smtpin_factory):
    s = smtpin_factory()
    s.useradd("bob")
    s.start()
    acked, sent = {}, {}
    lock = threading.Lock()
    stop = threading.Event()
    counter = iter(range(100000))

    def client():
        while not stop.is_set():
            with lock:
                n = next(counter)
                if n >= 3000:
                    return
            msg = make_message(n)
            sent[n] = msg
            try:
                with smtplib.SMTP("127.0.0.1", s.port, timeout=10) as c:
                    c.sendmail("load@example.com", ["bob@example.org"], msg)
                with lock:
                    acked[n] = msg
            except (smtplib.SMTPException, OSError):
                time.sleep(0.05)  # the server is down or was killed: not acknowledged

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    kills = 0
    deadline = time.monotonic() + 60
    rnd = random.Random(4711)
    # six kills at random moments, then the load stops (at most 3000 messages, 60 s)
    while kills < 6 and any(t.is_alive() for t in threads) and time.monotonic() < deadline:
        time.sleep(rnd.uniform(0.1, 0.6))
        os.kill(s.proc.pid, signal.SIGKILL)
        s.proc.wait()
        kills += 1
        s.proc = None
        s.start()
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join(30)
    assert kills == 6
    assert len(acked) >= 50, f"only {len(acked)} messages acknowledged"

    stored = {}
    for uid, size, sha, meta in s.messages("bob"):
        body = s.body("bob", uid)
        assert hashlib.sha256(body).hexdigest() == sha and size == len(body)
        stored.setdefault(stored_without_received(body), uid)
    sent_bytes = set(sent.values())
    for b in stored:
        assert b in sent_bytes, "a stored message is not one that was sent whole"
    missing = [n for n, m in acked.items() if m not in stored]
    assert not missing, f"{len(missing)} acknowledged messages lost: {missing[:10]}"
    s.stop()
    assert s.fsck().returncode == 0, s.fsck().stdout
    cp = s.inst.mk("fsck")  # `mailkeep fsck` agrees
    assert "is consistent" in cp.stdout
