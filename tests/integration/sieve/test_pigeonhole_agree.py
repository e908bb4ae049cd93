"""The interpreter against the reference: Pigeonhole's sieve-test (Dovecot's
Sieve, Debian's dovecot-sieve) and `mailkeep sieve test` run the same
real-world scripts (tests/integration/sieve/scripts/) on the same messages
(the SpamAssassin corpus: real headers, lists, encodings, multiparts) with
the same envelope; what each would do — the folders it stores into, with
their flags, discard, reject, redirect — must be the same."""
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mkhelpers import BIN, CORPUS

HERE = Path(__file__).resolve().parent
SIEVE_TEST = shutil.which("sieve-test")


def pigeonhole(tmp, script, msg, sender, rcpt):
    assert SIEVE_TEST, "sieve-test (Debian's dovecot-sieve) is missing: run tools/install-deps.sh"
    cp = subprocess.run([SIEVE_TEST, "-c", "/dev/null", "-o", "mail_uid=65534", "-o", "mail_gid=65534",
                         "-o", f"mail_location=maildir:{tmp}/nomail", "-f", sender, "-r", rcpt,
                         str(script), str(msg)], capture_output=True, text=True, timeout=60)
    out, actions, cur = cp.stdout, set(), None
    if "Performed actions" not in out:
        raise AssertionError(f"sieve-test {script.name} {msg.name}: {cp.stdout}{cp.stderr}")
    failed = "final result: failed" in cp.stderr
    for line in out.splitlines():
        m = re.match(r"\s*\* store message in folder: (.*)$", line)
        if m:
            cur = [m.group(1), []]
            actions.add(("store", m.group(1)))
            continue
        m = re.match(r"\s*\+ add IMAP flags: (.*)$", line)
        if m and cur is not None:
            actions.discard(("store", cur[0], " ".join(sorted(cur[1]))) if cur[1] else ("store", cur[0]))
            cur[1] += m.group(1).lower().split()
            actions.add(("store", cur[0], " ".join(sorted(cur[1]))))
            continue
        if re.match(r"\s*\* discard", line):
            actions.add(("discard",))
        m = re.match(r"\s*\* redirect message to: <(.*)>", line)
        if m:
            actions.add(("redirect", m.group(1)))
        m = re.match(r"\s*\* reject message with reason: (.*)$", line)
        if m:
            actions.add(("reject", m.group(1)))
    return actions, failed


def ours(inst, script, msg, sender, rcpt):
    cp = inst.mk("sieve", "test", str(script), str(msg), "--from", sender, "--to", rcpt)
    actions, failed = set(), False
    for line in cp.stdout.splitlines():
        if line.startswith("error "):
            failed = True
            continue
        m = re.match(r"store (.*?)(?: \+flags (.*))?$", line)
        if m:
            actions.add(("store", m.group(1), m.group(2)) if m.group(2) else ("store", m.group(1)))
        elif line == "discard":
            actions.add(("discard",))
        elif line.startswith("redirect "):
            actions.add(("redirect", line[9:]))
        elif line.startswith("reject "):
            actions.add(("reject", line[7:]))
    return actions, failed


def messages():
    ham = sorted((CORPUS / "ham").iterdir())
    spam = sorted((CORPUS / "spam").iterdir())
    return [p for p in ham[::31][:65] + spam[::27][:35] if p.stat().st_size < 200_000]


@pytest.fixture
def shared_dir():
    """sieve-test drops to nobody, who cannot enter pytest's 0700 tmp_path."""
    import tempfile
    d = Path(tempfile.mkdtemp(prefix="mk-sieve-agree-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("script", sorted((HERE / "scripts").glob("*.sieve")), ids=lambda p: p.stem)
def test_same_decisions_as_pigeonhole(instance, shared_dir, script):
    tmp_path = shared_dir
    sc = tmp_path / script.name
    shutil.copy(script, sc)
    os.chmod(tmp_path, 0o755)
    os.chmod(sc, 0o644)
    msgs = messages()
    assert len(msgs) >= 90

    def one(i, msg):
        m = tmp_path / f"m{i}.eml"
        shutil.copy(msg, m)
        os.chmod(m, 0o644)
        sender, rcpt = "someone@example.com", "bob+lists@example.org"
        theirs, tf = pigeonhole(tmp_path, sc, m, sender, rcpt)
        mine, mf = ours(instance, sc, m, sender, rcpt)
        if theirs != mine:
            return (f"{msg.parent.name}/{msg.name}: pigeonhole {sorted(theirs)}{' (failed)' if tf else ''}"
                    f" mailkeep {sorted(mine)}{' (failed)' if mf else ''}")
        return None

    # two at a time (the CI machine has two cores): each pair of processes is
    # independent, and this test is most of the area's time
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(one, range(len(msgs)), msgs))
    assert len(results) == len(msgs)
    differ = [r for r in results if r]
    assert not differ, f"{len(differ)} of {len(msgs)} messages differ:\n" + "\n".join(differ[:20])
