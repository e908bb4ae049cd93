"""Readers listing directories while mail arrives and flags change from other
processes: every listing is consistent (no duplicates, no missing stable
entries), and the mount catches up with the store within a second."""
import os
import threading
import time

from mkhelpers import wait_for


def body(i):
    return (f"From: s{i}@example.org\r\nSubject: c{i}\r\n\r\n" + "line\r\n" * (i % 50)).encode()


def test_readdir_consistent_under_changes(mount):
    bob = mount.path / "bob"
    # 300 stable messages (never touched) and 40 that will change flags
    stable_dir = mount.inst.root / "stable"
    stable_dir.mkdir()
    for i in range(300):
        (stable_dir / f"{i:04d}").write_bytes(body(i))
    mount.mk("bulk", "bob", "INBOX", stable_dir, 100)
    churn = [mount.deliver("bob", body(1000 + i), flags="S") for i in range(40)]
    stable = set(os.listdir(bob / "cur"))
    churn_names = {n for n in stable if any(n.startswith(b[3] + ",") for u, b in mount.listing("bob").items()
                                            if u in churn)}
    stable -= churn_names
    assert len(stable) == 300

    stop = threading.Event()
    problems = []
    listings = [0]

    def reader():
        while not stop.is_set():
            for sub in ("cur", "new"):
                names = os.listdir(bob / sub)
                if len(names) != len(set(names)):
                    problems.append(f"duplicates in {sub}")
                if sub == "cur" and not stable <= set(names):
                    problems.append(f"missing stable entries: {len(stable - set(names))}")
                for n in names[:5]:
                    try:
                        os.stat(bob / sub / n)
                    except FileNotFoundError:
                        pass  # renamed or arrived meanwhile: fine
            listings[0] += 1

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 20
        for i in range(60):
            if time.monotonic() > deadline:
                break
            mount.deliver("bob", body(2000 + i), flags="N")
            uid = churn[i % len(churn)]
            mount.mk("flags", "bob", "INBOX", uid, "+F" if (i // len(churn)) % 2 == 0 else "-F")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not problems, problems[:5]
    assert listings[0] > 10

    # the mount agrees with the store within a second or so
    def in_step():
        want = set()
        for uid, (flags, size, sha, base) in mount.listing("bob").items():
            letters = "".join(c for c in flags if c in "DFRST")
            want.add(("new", f"{base},S={size}") if "N" in flags and not letters
                     else ("new" if "N" in flags else "cur", f"{base},S={size}:2,{letters}"))
        have = {("cur", n) for n in os.listdir(bob / "cur")} | {("new", n) for n in os.listdir(bob / "new")}
        return have == want
    wait_for(in_step, 10, "the mount to match the store")
    assert len(os.listdir(bob / "new")) == 60
