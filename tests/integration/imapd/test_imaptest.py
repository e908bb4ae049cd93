"""Dovecot's imaptest against a real mailkeep-imapd: its scripted compliance
tests (every group must pass, as they do for Dovecot 2.3) and a bounded stress
run (10 clients, 10 s, an mbox made from the corpus) with no protocol error.

imaptest is built from the source archive in ../shared/imaptest (or
/work/shared/imaptest) once into build/imaptest and kept there (about 15-20 s
on this machine); it needs dovecot-dev, autoconf, automake and libtool
(tools/install-deps.sh installs them)."""
import os
import re
import subprocess
from pathlib import Path

import pytest

from mkhelpers import BUILD, CORPUS, REPO

SRC = REPO.parent / "shared" / "imaptest"
if not (SRC / "build.sh").is_file():
    SRC = Path(os.environ.get("MAILKEEP_IMAPTEST_SRC", "/work/shared/imaptest"))
DEST = BUILD / "imaptest"
BIN = DEST / "imaptest" / "src" / "imaptest"
TESTS = DEST / "imaptest" / "src" / "tests"
ENV = dict(os.environ, LD_LIBRARY_PATH="/usr/lib/dovecot")


@pytest.fixture(scope="session")
def imaptest_bin():
    """Builds imaptest once (cached under build/); a missing source or
    dovecot-dev is a failure with the reason, never a skip."""
    if not BIN.exists():
        assert (SRC / "build.sh").is_file(), f"imaptest source not found in {SRC} (see README.md)"
        cp = subprocess.run(["sh", str(SRC / "build.sh"), str(DEST)], capture_output=True, text=True,
                            timeout=900)
        assert cp.returncode == 0 and BIN.exists(), (
            f"building imaptest failed (apt: dovecot-dev autoconf automake libtool):\n"
            f"{cp.stdout[-3000:]}\n{cp.stderr[-3000:]}")
    return BIN


def run_imaptest(port, *args, timeout=300):
    cp = subprocess.run([str(BIN), "host=127.0.0.1", f"port={port}", "user=alice", "pass=secret-alice", *args],
                        capture_output=True, text=True, env=ENV, timeout=timeout)
    return cp.stdout + cp.stderr


def test_imaptest_scripted_zero_failures(imapd, imaptest_bin):
    out = run_imaptest(imapd.port, f"test={TESTS}")
    m = re.search(r"(\d+) test groups: (\d+) failed, (\d+) skipped", out)
    base = re.search(r"base protocol: (\d+)/(\d+) individual commands failed", out)
    ext = re.search(r"extensions: (\d+)/(\d+) individual commands failed", out)
    assert m and base and ext, f"no imaptest summary:\n{out[-4000:]}"
    print(m.group(0), "|", base.group(0), "|", ext.group(0))
    assert int(m.group(1)) >= 71, out[-2000:]  # every group ran
    assert int(base.group(2)) > 400 and int(ext.group(2)) > 100, out[-2000:]
    assert (m.group(2), base.group(1), ext.group(1)) == ("0", "0", "0"), out[-8000:]
    assert "Error:" not in out, out[-8000:]


def corpus_mbox(path, count):
    """An mbox (mboxrd escaping) of the first count corpus messages."""
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name != "README.md")[:count]
    assert len(files) == count
    with open(path, "wb") as out:
        for p in files:
            b = p.read_bytes()
            if b.startswith(b"From "):
                b = b.split(b"\n", 1)[1]
            lines = b.replace(b"\r\n", b"\n").split(b"\n")
            body = b"\n".join(b">" + ln if re.match(rb">*From ", ln) else ln for ln in lines)
            out.write(b"From user@example.org  Mon Jan  1 00:00:00 2024\n" + body.rstrip(b"\n") + b"\n\n")
    return path


def test_imaptest_stress_no_protocol_errors(imapd, imaptest_bin, tmp_path):
    """imaptest's default workload (LOGIN, LIST, STATUS, SELECT, FETCH, STORE
    of flags and keywords, EXPUNGE, APPEND, LOGOUT) from 10 clients at once,
    checking every response against its model of the mailbox: keywords
    outside FLAGS, \\Recent in two sessions, bad sizes, ... are errors."""
    mbox = corpus_mbox(tmp_path / "corpus.mbox", 300)
    out = run_imaptest(imapd.port, f"mbox={mbox}", "clients=10", "secs=10", timeout=120)
    errors = [ln for ln in out.splitlines() if "Error" in ln]
    assert not errors, "\n".join(errors[:40])
    tot = out[out.rindex("Totals:"):].splitlines()
    names, counts = tot[1].split(), [int(x) for x in tot[-1].split()]
    totals = dict(zip(names, counts))
    print(totals)
    for cmd in ("Logi", "Sele", "Fetc", "Stor", "Appe", "Expu"):
        assert totals.get(cmd, 0) > 10, (cmd, totals)
