"""Fixtures for the FUSE mount tests: a store with users, mailkeep-fs mounted
under the test's instance directory, and a helper (tests/helpers/mkstore) that
writes into the store from another process, as smtpin or imapd would."""
import os
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
BUILD = Path(os.environ.get("MAILKEEP_BUILD", REPO / "build"))
BIN = BUILD / "bin"

MKSTORE = BUILD / "tests" / "helpers" / "mkstore"


@pytest.fixture(scope="session")
def mkstore_bin():
    # build/asan holds sanitizer builds of the libraries: link the helper the same way
    san = ["SANITIZE=1"] if BUILD.name == "asan" else []
    subprocess.run(["make", "-s", "-C", str(REPO), "-f", "tests/helpers/Makefile",
                    f"BUILD={BUILD}", *san, str(MKSTORE)], check=True, capture_output=True)
    return MKSTORE


class Mount:
    def __init__(self, inst, mkstore):
        self.inst = inst
        self.mkstore = mkstore
        self.store = inst.data / "store"
        self.path = inst.root / "mail"
        self.proc = None

    def mk(self, *args, input=None, check=True):
        cp = subprocess.run([str(self.mkstore), str(self.store), *map(str, args)], input=input,
                            capture_output=True, timeout=120)
        if check and cp.returncode != 0:
            raise AssertionError(f"mkstore {args}: {cp.stderr.decode()}")
        return cp.stdout.decode()

    def user(self, name, uid, gid):
        self.mk("user", name, uid, gid)

    def deliver(self, user, data, mailbox="INBOX", flags="N"):
        if isinstance(data, str):
            data = data.encode()
        return int(self.mk("deliver", user, mailbox, flags or "-", input=data))

    def listing(self, user, mailbox="INBOX"):
        """{uid: (flags, size, sha256, base)} as the store has it."""
        out = {}
        for line in self.mk("list", user, mailbox).splitlines():
            uid, flags, size, sha, base = line.split(" ", 4)
            out[int(uid)] = (flags, int(size), sha, base)
        return out

    def refs(self, sha):
        return int(self.mk("refs", sha).strip())

    def start(self):
        self.proc = self.inst.spawn(BIN / "mailkeep-fs", "-c", self.inst.conf, "-f")
        deadline = time.monotonic() + 10
        while not os.path.ismount(self.path):
            if self.proc.poll() is not None:
                raise RuntimeError("mailkeep-fs exited: " + Path(self.proc.logfile).read_text())
            if time.monotonic() > deadline:
                raise TimeoutError("mount did not appear")
            time.sleep(0.05)

    def stop(self):
        if os.path.ismount(self.path):
            subprocess.run(["fusermount3", "-u", str(self.path)], capture_output=True)
        if self.proc is not None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.inst.stop(self.proc)
            self.proc = None

    def log(self):
        return Path(self.proc.logfile).read_text() if self.proc else ""


@pytest.fixture
def store_users(instance, mkstore_bin):
    """A store with bob (uid 2001) and alice (uid 2002), nothing mounted yet."""
    instance.data.mkdir(parents=True, exist_ok=True)
    m = Mount(instance, mkstore_bin)
    m.user("bob", 2001, 2001)
    m.user("alice", 2002, 2002)
    yield m
    m.stop()


@pytest.fixture
def mount(store_users):
    store_users.start()
    return store_users


def wait_for(pred, timeout=5.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
