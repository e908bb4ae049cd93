"""Helpers for the store and `mailkeep` command tests (issue 2); not a
conftest.py, since that name belongs to the shared tests/integration/conftest.py.

Corpus files begin with an mbox "From " line: `split_from` gives the line and
the message that follows it, as `mailkeep import` treats them.
"""
import re
import subprocess
from pathlib import Path

import pytest

from mkhelpers import CORPUS, BIN

# Deterministic flag sets for the Maildir round trip: Maildir letters in ASCII order.
FLAG_SETS = ["", "S", "RS", "FS", "DS", "PS", "ST", "FPRS", "DFRST"]


def split_from(data: bytes):
    """(from_line_without_newline or None, message bytes)."""
    if data.startswith(b"From "):
        nl = data.find(b"\n")
        if nl < 0:
            return data, b""
        return data[:nl], data[nl + 1:]
    return None, data


def mboxrd_quote(msg: bytes) -> bytes:
    return re.sub(rb"(?m)^(>*From )", rb">\1", msg)


def write_mboxrd(path: Path, files):
    """An mboxrd holding the corpus files (their own From lines as separators)."""
    with open(path, "wb") as f:
        for p in files:
            line, msg = split_from(p.read_bytes())
            if line is None:
                line = b"From MAILER-DAEMON Thu Jan  1 00:00:00 2004"
            f.write(line + b"\n")
            q = mboxrd_quote(msg)
            f.write(q)
            if not q.endswith(b"\n"):
                f.write(b"\n")
            f.write(b"\n")


def corpus_sets():
    """{'ham': [paths], 'spam': [paths]} from the corpus folders (whatever is there)."""
    out = {}
    for d in sorted(CORPUS.iterdir()):
        if d.is_dir():
            files = sorted(p for p in d.iterdir() if p.is_file())
            if files:
                out[d.name] = files
    assert out, f"no corpus folders under {CORPUS}"
    return out


def stats(instance):
    out = instance.mk("stats", "--users").stdout
    st = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] == "user":
            st.setdefault("users_detail", {})[parts[1]] = dict(zip(parts[2::2], map(int, parts[3::2])))
        elif len(parts) >= 2:
            st[parts[0]] = float(parts[1]) if "." in parts[1] else int(parts[1])
    return st


def user_mailboxes(instance, user):
    """{mailbox: messages} from `mailkeep user show`."""
    out = instance.mk("user", "show", user).stdout
    res = {}
    for line in out.splitlines():
        m = re.match(r"\s+(\S+)\s+messages (\d+)", line)
        if m:
            res[m.group(1)] = int(m.group(2))
    return res


@pytest.fixture
def store_instance(instance):
    """An instance with a store and the user bob (no password)."""
    instance.mk("user", "add", "bob", "--no-password")
    return instance


def data_mdb(instance) -> Path:
    return instance.data / "store" / "data.mdb"


def mdb_dump(instance, db) -> list:
    out = subprocess.run(["mdb_dump", "-s", db, str(instance.data / "store")], check=True,
                         capture_output=True, text=True).stdout
    return out.splitlines()


def mdb_records(lines):
    """[(key_hex, value_hex)] from mdb_dump output (hex mode)."""
    body = lines[lines.index("HEADER=END") + 1:]
    recs = []
    i = 0
    while i + 1 < len(body) and body[i] != "DATA=END":
        recs.append((body[i].strip(), body[i + 1].strip()))
        i += 2
    return recs


def mdb_put(instance, db, lines, records):
    """Loads records (overwriting) into db with mdb_load, keeping the dump's header."""
    header = lines[:lines.index("HEADER=END") + 1]
    text = "\n".join(header + [f" {k}\n {v}" for k, v in records] + ["DATA=END"]) + "\n"
    subprocess.run(["mdb_load", "-s", db, str(instance.data / "store")], input=text, text=True,
                   check=True, capture_output=True)
