"""kill -9 at random points while mail is submitted and sent: every message
that got its 250 from the submission port arrives at the sink (0 lost);
duplicates can only come from the window between the relay's 250 and the
queue's own commit (or a client that resent after losing the 250), and are
counted and printed. `mailkeep fsck` is clean at the end. The number of
messages is MK_SEND_CRASH_N (500 here; tests/bench/send runs 5,000)."""
import os
import random
import re
import signal
import smtplib
import threading
import time

from sendhelp import client_ctx, wait_until

N = int(os.environ.get("MK_SEND_CRASH_N", "500"))
CLIENTS = 8


def test_kill_9_during_a_bounded_send(mk, sink_factory):
    sink = sink_factory().start()
    mk.configure(relayhost=f"[127.0.0.1]:{sink.port}", smtp_tls_security_level="none",
                 smtpd_user_message_rate_limit="0", smtpd_user_recipient_rate_limit="0",
                 minimal_backoff_time="1s", maximal_backoff_time="2s")
    mk.start_smtpin().start_smtpout()
    accepted, lock = set(), threading.Lock()
    todo = list(range(N))
    done = threading.Event()

    def client(ids):
        c = None
        for i in ids:
            msgid = f"crash-{i}@example.org"
            body = (f"From: alice@example.org\r\nTo: carol@example.com\r\nSubject: {i}\r\n"
                    f"Message-ID: <{msgid}>\r\n\r\nmessage {i}\r\n")
            for _ in range(200):
                try:
                    if c is None:
                        c = smtplib.SMTP_SSL("127.0.0.1", mk.subs_port, context=client_ctx(), timeout=20)
                        c.login("alice", "secret")
                    c.sendmail("alice@example.org", ["carol@example.com"], body)
                    with lock:
                        accepted.add(msgid)
                    break
                except (smtplib.SMTPException, OSError):
                    try:
                        if c is not None:
                            c.close()
                    except OSError:
                        pass
                    c = None
                    time.sleep(0.2)
        if c is not None:
            try:
                c.quit()
            except (smtplib.SMTPException, OSError):
                pass

    rng = random.Random(N)
    kills = {"smtpout": 0, "smtpin": 0}

    def killer():
        while not done.is_set():
            time.sleep(rng.uniform(0.3, 1.0))
            which = "smtpin" if rng.random() < 0.3 else "smtpout"
            if which == "smtpin":
                mk.stop_smtpin(signal.SIGKILL)
                mk.start_smtpin()
            else:
                mk.stop_smtpout(signal.SIGKILL)
                mk.start_smtpout()
            kills[which] += 1

    threads = [threading.Thread(target=client, args=(todo[k::CLIENTS],)) for k in range(CLIENTS)]
    kt = threading.Thread(target=killer)
    kt.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # a few more kills while the queue drains
    time.sleep(1.5)
    done.set()
    kt.join()
    if mk.smtpout is None:
        mk.start_smtpout()
    wait_until(lambda: mk.queue_ids() == [], timeout=180, interval=0.5, what="the queue drained")
    seen = {}
    for f in sink.files():
        m = re.search(rb"Message-ID: <([^>]+)>", f.read_bytes())
        assert m, f
        seen[m.group(1).decode()] = seen.get(m.group(1).decode(), 0) + 1
    lost = accepted - set(seen)
    dups = sum(n - 1 for n in seen.values())
    print(f"\ncrash test: {N} messages, {len(accepted)} accepted, {kills['smtpout']} kills of smtpout, "
          f"{kills['smtpin']} of smtpin, {len(seen)} distinct at the sink, {dups} duplicates, {len(lost)} lost")
    assert kills["smtpout"] + kills["smtpin"] >= 3
    assert len(accepted) == N
    assert not lost, f"{len(lost)} accepted messages lost: {sorted(lost)[:10]}"
    fsck = mk.mk("fsck", check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
