"""Compression at rest (issue 17): every corpus message comes back byte for
byte after compress -> read -> export; a raw store converted by `mailkeep
compact`, killed with SIGKILL half-way, passes fsck and the next run goes on
from where it stopped; an uncompressed store is read by the new code."""
import os
import signal
import subprocess
import time

from mkhelpers import BIN, CORPUS
from storehelp import corpus_sets, stats, store_instance  # noqa: F401


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
    # kill it once some rounds are written
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = p.stderr.readline().decode()
        if line.startswith("compact: ") and "/" in line:
            done = int(line.split()[1].split("/")[0])
            if done >= 400:
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
