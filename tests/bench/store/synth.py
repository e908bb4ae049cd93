#!/usr/bin/env python3
"""A synthetic mail archive that is not easier to compress than real mail
(issue 17), as an mboxrd file:  synth.py CORPUS_DIR OUT COUNT [SEED [SMALL_ATT_RATE]]

- Every message takes a corpus message as its template: its header fields
  (with a new Message-ID, Date and Received id) and the kind of its body.
- Bodies are runs of consecutive lines of the real corpus, from a random
  place (so quoting, HTML, signatures and base64 come with real mail's
  structure), log-uniform 2-20 KB; every run of digits is replaced by random
  digits (real mail is full of numbers seen once: ids, dates, amounts).
- Attachments carry random bytes, base64-encoded: the entropy of JPEG, PDF
  and ZIP files, which no compressor shrinks by more than base64's 3/4.
  One message in 2,000 has a 1-4 MB one (as issue 2's archive); with
  SMALL_ATT_RATE (default 0), that share of messages has a 20-200 KB one too.
Deterministic for a seed. Prints how many bytes are attachments."""
import base64
import random
import re
import sys
from pathlib import Path

DIGITS = re.compile(rb"[0-9]+")


def load(corpus):
    msgs = []
    for p in sorted(Path(corpus).rglob("*")):
        if p.is_file() and p.name != "README.md":
            data = p.read_bytes().replace(b"\r\n", b"\n")
            if data.startswith(b"From "):
                data = data.partition(b"\n")[2]
            head, sep, body = data.partition(b"\n\n")
            if sep:
                msgs.append((head, body))
    return msgs


def main():
    corpus, out, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rnd = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 17)
    small_rate = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    msgs = load(corpus)
    lines = [l for _, b in msgs for l in b.split(b"\n")]
    att_bytes = total = 0

    def digits(m):
        return b"".join(b"%d" % rnd.randrange(10) for _ in range(len(m.group(0))))

    with open(out, "wb") as f:
        for i in range(count):
            head, _ = msgs[rnd.randrange(len(msgs))]
            fields = []
            for fl in re.split(rb"\n(?![ \t])", head):
                name = fl.split(b":", 1)[0].lower()
                if name in (b"message-id", b"date", b"content-type", b"content-transfer-encoding",
                            b"mime-version"):
                    continue
                fields.append(DIGITS.sub(digits, fl) if name == b"received" else fl)
            t = 1000000000 + i * 600 + rnd.randrange(600)
            fields.append(b"Date: " + __import__("email.utils").utils.formatdate(t).encode())
            fields.append(b"Message-ID: <%d.%x@synth.example.org>" % (i, rnd.getrandbits(48)))
            fields.append(b"MIME-Version: 1.0")
            want = int(2048 * 10 ** rnd.random())
            start = rnd.randrange(len(lines))
            body, n = [], 0
            while n < want:
                ln = DIGITS.sub(digits, lines[start % len(lines)])
                body.append(ln)
                n += len(ln) + 1
                start += 1
            text = b"\n".join(body) + b"\n"
            att = 0
            if i % 2000 == 1999:
                att = rnd.randint(1 << 20, 4 << 20)
            elif rnd.random() < small_rate:
                att = rnd.randint(20 << 10, 200 << 10)
            if att:
                b = b"b%d" % i
                enc = base64.encodebytes(rnd.getrandbits(8 * att).to_bytes(att, "little"))
                att_bytes += len(enc)
                fields.append(b'Content-Type: multipart/mixed; boundary="' + b + b'"')
                msg = (b"\n".join(fields) + b"\n\n--" + b + b"\nContent-Type: text/plain\n\n" + text +
                       b"--" + b + b"\nContent-Type: application/octet-stream; name=\"file%d.jpg\"\n"
                       b"Content-Transfer-Encoding: base64\n\n" % i + enc + b"--" + b + b"--\n")
            else:
                fields.append(b"Content-Type: text/plain; charset=us-ascii")
                msg = b"\n".join(fields) + b"\n\n" + text
            msg = re.sub(rb"(?m)^(>*From )", rb">\1", msg)
            total += len(msg)
            f.write(b"From synth@example.org Thu Jan  1 00:00:00 2004\n" + msg + b"\n")
    print(f"synth: {count} messages, {total / 1e6:.1f} MB, attachments {att_bytes / max(total, 1) * 100:.1f}% of the bytes")


if __name__ == "__main__":
    main()
