"""Password checks run on a few worker threads (cmd_auth.c): a login storm
gets every answer right, and the memory the hashes take is bounded by the
number of workers, not by the number of clients logging in. A yescrypt
check takes about 16 MB while it runs; 48 clients logging in at once took
up to ~48 x 16 MB before; now at most max(4, CPUs) run at once."""
import os
import threading

from rawimap import Raw
from test_fetch_memory import Sampler


def test_login_storm_all_answered_memory_bounded(imapd):
    n = 48
    socks = [Raw(imapd.port, timeout=120) for _ in range(n)]
    answers = [None] * n
    go = threading.Barrier(n)

    def login(k):
        go.wait()
        _, answers[k] = socks[k].cmd("LOGIN alice secret-alice" if k % 8 else "LOGIN bob secret-bob")

    with Sampler(imapd.proc.pid) as s:
        th = [threading.Thread(target=login, args=(k,)) for k in range(n)]
        for t in th:
            t.start()
        for t in th:
            t.join(120)
    assert all(a is not None and b" OK " in a for a in answers), answers
    grew = (s.peak - s.base) / 1024
    print(f"{n} logins at once: RssAnon +{grew:.0f} MB")
    bound = 256 if "asan" in os.environ.get("MAILKEEP_IMAPD", "") else 128  # ASan's quarantine
    assert grew < bound, f"RssAnon grew by {grew:.0f} MB"
    # the sessions work, and a wrong password is still refused
    for r in socks[:3]:
        lines, t = r.cmd("SELECT INBOX")
        assert b" OK " in t
    bad = Raw(imapd.port)
    _, t = bad.cmd("LOGIN alice wrong")
    assert b" NO " in t
    for r in socks + [bad]:
        r.close()
