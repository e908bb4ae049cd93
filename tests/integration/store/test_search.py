"""Full-text search (issue 17): the words index finds exactly what reading
every message finds (`mailkeep search --no-index`), for 200 random words and
phrases of the corpus and for non-ASCII text in ISO-8859-1 and UTF-8,
quoted-printable and base64 bodies, RFC 2047 headers and attachment names;
`mailkeep reindex` rebuilds it."""
import random
import re
from concurrent.futures import ThreadPoolExecutor

from mkhelpers import CORPUS
from storehelp import store_instance  # noqa: F401

SAMPLES = {
    "latin1-qp": (b"From: =?iso-8859-1?q?J=FCrgen_M=FCller?= <jm@example.de>\n"
                  b"Subject: =?iso-8859-1?q?Gr=FC=DFe_aus_K=F6ln?=\nMIME-Version: 1.0\n"
                  b"Content-Type: text/plain; charset=iso-8859-1\n"
                  b"Content-Transfer-Encoding: quoted-printable\n\n"
                  b"Die Stra=DFe ist gesperrt, sch=F6ne Gr=FC=DFe. Ein sehr langes Wort: Donaudampf=\n"
                  b"schifffahrtsgesellschaftskapit=E4n.\n"),
    "utf8-b64": (b"From: anna@example.ru\nSubject: =?utf-8?b?0J/RgNC40LLQtdGCINC40Lcg0JzQvtGB0LrQstGL?=\n"
                 b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=XX\n\n--XX\n"
                 b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
                 + __import__("base64").encodebytes("Встреча в пятницу, café crème à Paris".encode())
                 + b"--XX\nContent-Type: application/pdf; name=\"Rechnung-2026.pdf\"\n"
                 b"Content-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--XX--\n"),
    "html": (b"From: shop@example.com\nSubject: offer\nMIME-Version: 1.0\n"
             b"Content-Type: text/html; charset=utf-8\n\n"
             b"<html><body><p>Caf&eacute; <b>special</b>&nbsp;offer &amp; more</p>"
             b"<script>var hidden='zzscriptzz';</script></body></html>\n"),
}


def search(inst, *q, no_index=False):
    args = ["search", "--limit", "100000", "--names"] + (["--no-index"] if no_index else []) + ["bob", *q]
    cp = inst.mk(*args, check=False)
    assert cp.returncode in (0, 1), cp.stderr
    return sorted(cp.stdout.splitlines())


def corpus_terms(n, seed=17):
    rnd = random.Random(seed)
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name != "README.md")
    terms = []
    while len(terms) < n:
        text = rnd.choice(files).read_bytes().decode("latin-1")
        words = re.findall(r"[A-Za-z][A-Za-z0-9']{2,14}", text)
        if len(words) < 3:
            continue
        i = rnd.randrange(len(words) - 1)
        kind = rnd.random()
        if kind < 0.5:
            terms.append(words[i])                       # a word
        elif kind < 0.7:
            terms.append(words[i][1:-1] if len(words[i]) > 4 else words[i])  # inside a word
        else:
            terms.append(words[i] + " " + words[i + 1])  # a phrase (may not occur as such)
    return terms


def test_index_equals_reading_everything(store_instance, tmp_path):
    inst = store_instance
    src = tmp_path / "src"
    src.mkdir()
    for name, data in SAMPLES.items():
        (src / name).write_bytes(data)
    inst.mk("import", "--format", "files", "bob", CORPUS)
    inst.mk("import", "--format", "files", "--mailbox", "Samples", "bob", src)
    # two at a time (each reading of every message takes one core)
    terms = corpus_terms(200)
    with ThreadPoolExecutor(2) as pool:
        scanned = list(pool.map(lambda t: search(inst, t, no_index=True), terms))
    indexed = {t: search(inst, t) for t in terms}
    for t, b in zip(terms, scanned):
        assert indexed[t] == b, t
    assert sum(bool(b) for b in scanned) > 150  # most terms were taken from the corpus
    # non-ASCII, decoded from charset and transfer encoding, any case
    for q, want in [("grüße", "latin1-qp"), ("MÜLLER", "latin1-qp"), ("straße ist", "latin1-qp"),
                    ("donaudampfschifffahrtsgesellschaftskapitän", "latin1-qp"),
                    ("dampfschifffahrt", "latin1-qp"), ("встреча", "utf8-b64"), ("москвы", "utf8-b64"),
                    ("café crème", "utf8-b64"), ("rechnung-2026", "utf8-b64"), ("café special", "html"),
                    ("subject:grüße", "latin1-qp"), ("from:jürgen", "latin1-qp")]:
        got = search(inst, "--mailbox", "Samples", q) if False else search(inst, q)
        assert any(line.startswith("Samples\t") for line in got), (q, got)
        assert got == search(inst, q, no_index=True), q
    assert search(inst, "zzscriptzz") == []        # script is not text
    assert search(inst, "body:rechnung-2026") == []  # an attachment name is not the body
    # rebuilt from scratch: the same answers (those of reading everything, above)
    inst.mk("reindex")
    for t, b in zip(terms, scanned):
        assert search(inst, t) == b, t
    assert inst.mk("fsck").returncode == 0
