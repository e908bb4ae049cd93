"""Compression at rest (issue 17): every corpus message comes back byte for
byte after compress -> read -> export; a raw store converted by `mailkeep
compact`, killed with SIGKILL half-way, passes fsck and the next run goes on
from where it stopped; an uncompressed store is read by the new code."""
import os
import signal
import smtplib
import subprocess
import time

from mkhelpers import BIN, CORPUS, free_port, wait_port
from storehelp import corpus_sets, split_from, stats, store_instance  # noqa: F401


def export_equals_corpus(inst, out):
    inst.mk("export", "--format", "files", "bob", out)
    n = 0
    for name, files in corpus_sets().items():
        for p in files:
            assert (out / name / p.name).read_bytes() == p.read_bytes(), p
            n += 1
    return n


def test_corpus_compressed_and_read_back(store_instance, tmp_path):
    inst = store_instance
    inst.mk("import", "--format", "files", "bob", CORPUS)
    st = stats(inst)
    assert st["blobs_compressed"] > st["blobs"] * 9 // 10
    assert st["bytes_encoded"] < st["bytes_stored"] * 0.5
    assert st["dictionaries"] == 1
    assert export_equals_corpus(inst, tmp_path / "out") == st["messages"]
    assert inst.mk("fsck").returncode == 0


def test_compact_killed_then_resumed(instance, tmp_path):
    inst = instance
    inst.write_conf(store_compression_level="0")  # as an older mailkeep wrote it
    inst.mk("user", "add", "bob", "--no-password")
    inst.mk("import", "--format", "files", "bob", CORPUS)
    before = stats(inst)
    assert before["blobs_compressed"] == 0
    assert export_equals_corpus(inst, tmp_path / "raw") == before["messages"]  # read by the new code
    inst.write_conf(store_compression_level="6")
    p = subprocess.Popen([BIN / "mailkeep", "-c", inst.conf, "compact", "--batch", "40"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    # kill it once a round is written: the first progress line comes after the
    # first round, the next ones once a second (by then the corpus may be done)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = p.stderr.readline().decode()
        if line.startswith("compact: ") and "/" in line:
            done = int(line.split()[1].split("/")[0])
            if done > 0:
                break
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL
    assert inst.mk("fsck").returncode == 0
    half = stats(inst)
    assert 0 < half["blobs_compressed"] < before["blobs"]
    cp = inst.mk("compact")
    assert "went on from an earlier run" in cp.stdout, cp.stdout
    after = stats(inst)
    assert after["blobs_compressed"] > after["blobs"] * 9 // 10
    assert after["bytes_encoded"] < before["bytes_encoded"] * 0.5
    assert inst.mk("fsck").returncode == 0
    assert export_equals_corpus(inst, tmp_path / "after") == before["messages"]
    # nothing left for a third run
    cp = inst.mk("compact")
    assert cp.stdout.startswith("compact: 0 of ")


def test_compact_while_smtpin_delivers(instance, tmp_path):
    """`mailkeep compact` on a live system: the real smtpin takes mail over LMTP
    (new messages, and copies of corpus messages whose blobs compact is
    rewriting) for as long as compact runs; every accepted message is there
    afterwards, byte for byte, and the store is consistent."""
    inst = instance
    inst.write_conf(store_compression_level="0")
    inst.mk("user", "add", "bob", "--no-password")
    inst.mk("import", "--format", "files", "bob", CORPUS)
    before = stats(inst)
    lmtp_port = free_port()
    inst.write_conf(store_compression_level="6", smtpd_listen=f"127.0.0.1:{free_port()}",
                    lmtp_listen=f"127.0.0.1:{lmtp_port}", mynetworks="127.0.0.1/32")
    smtpin = inst.spawn(BIN / "mailkeep-smtpin", "-c", inst.conf, "-f")
    wait_port(lmtp_port, proc=smtpin)
    # ham in CRLF form (smtpin refuses bare LF; spam could meet the filter)
    corpus = [split_from(p.read_bytes())[1] for p in corpus_sets()["ham"][:300]]
    corpus = [m.replace(b"\n", b"\r\n") for m in corpus if b"\r" not in m]
    cp = subprocess.Popen([BIN / "mailkeep", "-c", inst.conf, "compact", "--batch", "20"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    inst.procs.append(cp)
    assert cp.stderr.readline().startswith(b"compact: "), "no progress from compact"
    sent, during = [], 0
    c = smtplib.LMTP("127.0.0.1", lmtp_port)
    c.ehlo("client.example.net")
    i = 0
    deadline = time.monotonic() + 120
    while cp.poll() is None and time.monotonic() < deadline:
        if i % 2 == 0:
            msg = (f"From: alice@example.net\r\nTo: bob@example.org\r\nSubject: live {i}\r\n"
                   f"Message-ID: <live{i}@example.net>\r\n\r\nnew mail {i} while compact runs\r\n").encode()
        else:  # the same bytes as a corpus message: its blob may be the one being rewritten
            msg = corpus[(i * 37) % len(corpus)]
        assert c.mail("alice@example.net")[0] == 250
        assert c.rcpt("bob@example.org")[0] == 250
        code, _ = c.data(msg)
        assert code == 250
        sent.append(msg)
        during += cp.poll() is None
        i += 1
    c.quit()
    assert cp.wait(60) == 0, cp.stderr.read()
    assert during >= 2, "no delivery while compact ran"
    after = stats(inst)
    assert after["messages"] == before["messages"] + len(sent)
    assert after["blobs_compressed"] > before["blobs"] * 9 // 10
    assert inst.mk("fsck").returncode == 0
    inst.mk("export", "--format", "files", "--mailbox", "INBOX", "bob", tmp_path / "out")
    got = [p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert len(got) == len(sent)
    # smtpin adds its Return-Path and Received lines above the message: each
    # delivered message ends with exactly the bytes sent (LMTP's CRLF form)
    for m in sent:
        assert any(g.endswith(m) or g.replace(b"\r\n", b"\n").endswith(m.replace(b"\r\n", b"\n"))
                   for g in got), m[:80]
