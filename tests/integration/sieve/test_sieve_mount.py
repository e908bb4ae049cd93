"""/mail/<user>/.sieve: the active script as a file on the mount, backed by the
store; a broken save is refused (fsync, rename: EINVAL) and the old script
stays active; quota on the mount: EDQUOT and df."""
import errno
import os
import subprocess

import pytest

from mkhelpers import wait_for

GOOD = b'require "fileinto";\nif header :contains "subject" "lists" { fileinto "Lists"; }\n'
BETTER = b'require "fileinto";\nif header :contains "subject" "news" { fileinto "News"; }\n'
BROKEN = b'require "fileinto";\nif header :contains "subject" "x" {\n  fileint "X";\n}\n'


def sieve_list(inst, user="bob"):
    return inst.mk("sieve", "list", user).stdout


def test_sieve_file_follows_the_store_and_refuses_broken_saves(mnt, tmp_path):
    inst = mnt.inst
    mnt.start()
    f = mnt.path / "bob" / ".sieve"
    assert not f.exists()                      # no active script: no file
    # a script put with the CLI (as ManageSieve would) shows on the mount
    src = tmp_path / "good.sieve"
    src.write_bytes(GOOD)
    inst.mk("sieve", "put", "bob", "rules", str(src), "--activate")
    wait_for(lambda: f.exists() and f.read_bytes() == GOOD, timeout=5, what=".sieve shows the active script")
    assert ".sieve" in os.listdir(mnt.path / "bob")
    # an editor that writes and fsyncs a broken script: EINVAL, the old script stays
    fd = os.open(f, os.O_WRONLY | os.O_TRUNC)
    os.write(fd, BROKEN)
    with pytest.raises(OSError) as e:
        os.fsync(fd)
    os.close(fd)
    assert e.value.errno == errno.EINVAL
    assert inst.mk("sieve", "get", "bob", "rules").stdout.encode() == GOOD
    wait_for(lambda: f.read_bytes() == GOOD, timeout=5, what="the file shows the active script again")
    # no temporary or backup file of the editors is left behind
    assert [n for n in os.listdir(mnt.path / "bob") if not n.startswith(".") or n == ".sieve"
            if n not in ("cur", "new", "tmp", ".sieve")] == []
    assert not any(n.endswith("~") or n.startswith(".sieve.") for n in os.listdir(mnt.path / "bob"))
    assert "line 3, column 3: unknown command 'fileint'" in mnt.log()
    # a good save with fsync replaces the active script's text
    with open(f, "wb") as fh:
        fh.write(BETTER)
        fh.flush()
        os.fsync(fh.fileno())
    assert inst.mk("sieve", "get", "bob", "rules").stdout.encode() == BETTER
    assert "rules ACTIVE" in sieve_list(inst)
    # an atomic save (write a copy, rename it over): checked before the rename
    tmp = mnt.path / "bob" / ".sieve.tmp"
    tmp.write_bytes(BROKEN)
    with pytest.raises(OSError) as e:
        os.rename(tmp, f)
    assert e.value.errno == errno.EINVAL
    assert tmp.exists() and inst.mk("sieve", "get", "bob", "rules").stdout.encode() == BETTER
    tmp.write_bytes(GOOD)
    os.rename(tmp, f)
    assert inst.mk("sieve", "get", "bob", "rules").stdout.encode() == GOOD
    # cp (no fsync): stored at close
    src.write_bytes(BETTER)
    subprocess.run(["cp", str(src), str(f)], check=True)
    wait_for(lambda: inst.mk("sieve", "get", "bob", "rules").stdout.encode() == BETTER, timeout=5,
             what="cp's close saves the script")
    # rm deactivates; the script stays in the store
    f.unlink()
    out = sieve_list(inst)
    assert "rules" in out and "ACTIVE" not in out
    # a new .sieve where none is active: stored as the script "mount", active
    with open(f, "wb") as fh:
        fh.write(GOOD)
        fh.flush()
        os.fsync(fh.fileno())
    out = sieve_list(inst)
    assert "mount ACTIVE" in out and "rules" in out
    assert inst.mk("sieve", "get", "bob", "mount").stdout.encode() == GOOD


def test_editors_on_the_mount(mnt, tmp_path):
    """Real editors: sed -i (a copy renamed over the file) and vim (its own
    way of saving, with fsync): good edits are stored, broken ones refused."""
    inst = mnt.inst
    mnt.start()
    f = mnt.path / "bob" / ".sieve"
    src = tmp_path / "good.sieve"
    src.write_bytes(GOOD)
    inst.mk("sieve", "put", "bob", "rules", str(src), "--activate")
    wait_for(lambda: f.exists() and f.read_bytes() == GOOD, timeout=5, what=".sieve")
    # sed -i: writes a temporary file beside it and renames it over
    cp = subprocess.run(["sed", "-i", "s/lists/mailinglists/", str(f)], capture_output=True, text=True)
    assert cp.returncode == 0, cp.stderr
    assert b'"mailinglists"' in inst.mk("sieve", "get", "bob", "rules").stdout.encode()
    cp = subprocess.run(["sed", "-i", "s/fileinto \"Lists\"/fileint \"Lists\"/", str(f)], capture_output=True,
                        text=True)
    assert cp.returncode != 0 and "Invalid argument" in cp.stderr, cp.stderr
    assert b"fileinto" in inst.mk("sieve", "get", "bob", "rules").stdout.encode()
    # vim in ex mode: a good substitution and a broken one
    env = dict(os.environ, HOME=str(tmp_path))
    cp = subprocess.run(["vim", "-N", "-u", "NONE", "-i", "NONE", "-Es", "-c", "%s/mailinglists/lists/", "-c", "wq",
                         str(f)], capture_output=True, text=True, env=env, timeout=60)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert inst.mk("sieve", "get", "bob", "rules").stdout.encode() == GOOD
    cp = subprocess.run(["vim", "-N", "-u", "NONE", "-i", "NONE", "-Es", "-c", "%s/fileinto \"Lists\"/fileint 1/",
                         "-c", "wq", str(f)], capture_output=True, text=True, env=env, timeout=60)
    assert cp.returncode != 0
    assert inst.mk("sieve", "get", "bob", "rules").stdout.encode() == GOOD
    wait_for(lambda: f.read_bytes() == GOOD, timeout=5, what="the file shows the active script again")
    # no temporary or backup file of the editors is left behind
    assert [n for n in os.listdir(mnt.path / "bob") if not n.startswith(".") or n == ".sieve"
            if n not in ("cur", "new", "tmp", ".sieve")] == []
    assert not any(n.endswith("~") or n.startswith(".sieve.") for n in os.listdir(mnt.path / "bob"))
