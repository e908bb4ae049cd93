#!/usr/bin/env python3
"""A big Maildir++ tree for the scale benchmark:  gen.py DIR N [SEED]
(GEN_ONE_FOLDER=1: all of it in INBOX, for the search benchmark)
N distinct messages over 200 folders: "Big" holds 30% (300k of a million),
INBOX 10%, the other 198 share the rest. Each message is a corpus message
(its body and most of its header) with a fresh Message-ID, Date and Subject
tag, so every file is distinct; about one message in 200 says "quarterly"."""
import os
import random
import sys
from pathlib import Path

CORPUS = Path(os.environ.get("MAILKEEP_CORPUS", "/work/shared/corpus/spamassassin"))


def main():
    top, n = Path(sys.argv[1]), int(sys.argv[2])
    rnd = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 7)
    msgs = []
    for p in sorted(CORPUS.rglob("*")):
        if p.is_file() and p.name != "README.md":
            d = p.read_bytes().replace(b"\r\n", b"\n")
            if d.startswith(b"From "):
                d = d.partition(b"\n")[2]
            h, _, b = d.partition(b"\n\n")
            h = b"\n".join(l for l in h.split(b"\n") if not l.lower().startswith((b"message-id:", b"date:", b"subject:")))
            msgs.append((h, b))
    folders = [""] + [".Big"] + [f".F{i:03d}" for i in range(198)]
    if os.environ.get("GEN_ONE_FOLDER"):  # everything in INBOX (the search benchmark)
        folders = [""] * 200
    for f in folders:
        for sub in ("cur", "new", "tmp"):
            (top / f / sub).mkdir(parents=True, exist_ok=True)
    t0 = 1000000000
    for i in range(n):
        r = rnd.random()
        f = folders[1] if r < 0.3 else folders[0] if r < 0.4 else folders[2 + rnd.randrange(198)]
        h, b = msgs[rnd.randrange(len(msgs))]
        t = t0 + i * 300
        word = b" quarterly" if rnd.random() < 0.005 else b""
        data = (b"Subject: message %d%s\nMessage-ID: <%d.scale@example.org>\nDate: %s\n" %
                (i, word, i, __import__("email.utils").utils.formatdate(t).encode()) + h + b"\n\n" + b)
        name = top / f / "cur" / f"{t}.M{i}P1.scale:2,S"
        with open(name, "wb") as fh:
            fh.write(data)
        os.utime(name, (t, t))


if __name__ == "__main__":
    main()
