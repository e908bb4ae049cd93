#!/usr/bin/env python3
"""Writes a deterministic synthetic mail archive as plain Maildirs:
   gen.py DIR N   -> DIR/{cur,new,tmp}, DIR/.Archive/..., DIR/.Lists/...
N distinct messages, mostly 2-20 KB, one in 2000 with a 1-3 MB attachment.
About a third contain the word "quarterly" (the common string of the benchmark)."""
import base64
import os
import random
import sys

WORDS = ("the of and to in is that for it as was with be by on not he this are or his from at which "
         "but have an they you were her she there been one all we their has would when if so no will "
         "more about up out who get them some could what into time only new also over after meeting "
         "report budget project server release patch kernel mail list thread review update question "
         "answer thanks regards please attached document schedule travel invoice order shipping").split()


def main():
    top, n = sys.argv[1], int(sys.argv[2])
    rnd = random.Random(20261123)
    lines = [" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(6, 14))) for _ in range(4000)]
    blob = base64.encodebytes(bytes(rnd.getrandbits(8) for _ in range(3 << 20))).decode()
    folders = [("", 0.5), (".Archive", 0.3), (".Lists", 0.2)]
    for f, _ in folders:
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(top, f, sub), exist_ok=True)
    t0 = 1500000000
    for i in range(n):
        r = rnd.random()
        folder = folders[0][0] if r < 0.5 else folders[1][0] if r < 0.8 else folders[2][0]
        size = rnd.randint(2000, 20000)
        date = t0 + i * 3000
        hdr = (f"Return-Path: <sender{i % 977}@example.org>\n"
               f"From: Sender {i % 977} <sender{i % 977}@example.org>\n"
               f"To: bob@example.org\nSubject: {lines[i % 4000][:60]}\n"
               f"Date: Mon, 23 Nov 2026 10:00:00 +0000\nMessage-ID: <{i}.bench@example.org>\n"
               "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n")
        parts = [hdr, f"message number {i}\n"]
        total = len(hdr)
        quarterly = rnd.random() < 0.33
        while total < size:
            ln = rnd.choice(lines)
            if quarterly and rnd.random() < 0.05:
                ln += " quarterly"
            parts.append(ln + "\n")
            total += len(ln) + 1
        if quarterly:
            parts.append("see the quarterly numbers\n")
        if i % 2000 == 1999:
            k = rnd.randint(1 << 20, 3 << 20)
            parts.append("\n--attachment--\n" + blob[:k] + "\n")
        name = os.path.join(top, folder, "cur", f"{date}.M{i}P1.bench:2,S")
        with open(name, "w") as fh:
            fh.write("".join(parts))
        os.utime(name, (date, date))


if __name__ == "__main__":
    main()
