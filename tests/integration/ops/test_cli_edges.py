"""Issue 19, "the CLI's edges": one test per finding a new user met —
per-subcommand help, `fsck DIR` on a backup, a clear error for an export
onto a file, plurals, arrival dates from Date then mtime, --help and
--version on every binary, init --local beside a port in use, an example
without a developer's path."""
import email.utils
import os
import socket
import subprocess
import time

import pytest

from mkhelpers import BIN, Instance


def mk(*args, **kw):
    return subprocess.run([str(BIN / "mailkeep"), *map(str, args)], capture_output=True, text=True,
                          timeout=120, **kw)


@pytest.fixture
def inst(tmp_path):
    (tmp_path / "inst").mkdir()
    i = Instance(tmp_path / "inst")
    i.mk("user", "add", "bob", "--no-password")
    yield i
    i.close()


@pytest.mark.parametrize("cmd,sub,other", [("spam", "train", "classify"), ("spam", "stats", "explain"),
                                           ("user", "add", "passwd"), ("alias", "add", "list")])
def test_subcommand_help_is_about_that_subcommand(cmd, sub, other):
    cp = mk(cmd, sub, "--help")
    assert cp.returncode == 0, cp.stderr
    first = cp.stdout.splitlines()[0]
    assert first.startswith(f"usage: mailkeep {cmd} {sub}"), first
    # the other sub-commands are not described, and the page is not the general one
    assert f"mailkeep {cmd} {other} " not in cp.stdout and f"\n  {other} " not in cp.stdout
    assert cp.stdout != mk(cmd, "--help").stdout
    assert cp.stdout != mk(cmd, other, "--help").stdout


def test_fsck_of_a_backup_directory_without_a_config(inst, tmp_path):
    msg = tmp_path / "m.eml"
    msg.write_text("Subject: hi\n\nhello\n")
    inst.mk("import", "bob", msg)
    inst.mk("backup", tmp_path / "bk")
    # no configuration at all: neither -c nor $MAILKEEP_CONF nor /etc/mailkeep
    env = {k: v for k, v in os.environ.items() if k != "MAILKEEP_CONF"}
    cp = mk("-c", tmp_path / "none.conf", "fsck", tmp_path / "bk", env=env)
    assert cp.returncode == 0, cp.stderr
    assert "is consistent: 1 message, 1 blob checked" in cp.stdout
    cp = mk("fsck", tmp_path, env=env)
    assert cp.returncode == 1 and "holds no store (no data.mdb)" in cp.stderr
    cp = mk("fsck", tmp_path / "nothing-here", env=env)
    assert cp.returncode == 1 and "No such file or directory" in cp.stderr
    assert mk("fsck", "a", "b").returncode == 2


def test_export_onto_an_existing_file_says_what_to_do(inst, tmp_path):
    f = tmp_path / "existing"
    f.write_text("keep me\n")
    for fmt in ("maildir", "files", "mbox"):
        cp = inst.mk("export", "--format", fmt, "bob", f, check=False)
        assert cp.returncode == 1
        assert "exists and is not a directory" in cp.stderr and "--mailbox" in cp.stderr, cp.stderr
        assert "Not a directory" not in cp.stderr
    cp = inst.mk("export", "bob", f / "sub", check=False)
    assert cp.returncode == 1 and "a part of the path is a file" in cp.stderr
    assert f.read_text() == "keep me\n"


def test_plurals(inst, tmp_path):
    one = tmp_path / "one"
    one.mkdir()
    (one / "a.eml").write_text("Subject: a\n\nA\n")
    cp = inst.mk("import", "--format", "files", "--mailbox", "Solo", "bob", one)
    assert cp.stdout.startswith("imported 1 message (") and "1 mailbox created" in cp.stdout
    assert "0 warnings" in cp.stdout
    (one / "b.eml").write_text("Subject: b\n\nB\n")
    (one / "c.eml").write_text("Subject: c\n\nC\n")
    cp = inst.mk("import", "--format", "files", "--mailbox", "Solo", "bob", one)
    assert cp.stdout.startswith("imported 2 messages (") and "1 already there" in cp.stdout
    cp = inst.mk("export", "--mailbox", "Solo", "--format", "mbox", "bob", tmp_path / "solo.mbox")
    assert cp.stdout.startswith("exported 3 messages")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "d.eml").write_text("Subject: d\n\nD\n")
    inst.mk("import", "--format", "files", "--mailbox", "X", "bob", tmp_path / "x")
    cp = inst.mk("export", "--mailbox", "X", "--format", "mbox", "bob", tmp_path / "x.mbox")
    assert cp.stdout.startswith("exported 1 message (")


def test_arrival_date_from_date_then_mtime(inst, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    dated = src / "dated.eml"
    dated.write_text("From: a@example.org\nDate: Tue, 1 Apr 2003 10:00:00 +0200\n"
                     " \nSubject: dated\n\nbody\n".replace(" \n", ""))
    folded = src / "folded.eml"
    folded.write_text("Subject: folded\nDate: Wed, 5 Nov 1997\n 09:30:00 -0500\n\nbody\n")
    undated = src / "undated.eml"
    undated.write_text("Subject: no date\n\nbody\n")
    broken = src / "broken.eml"
    broken.write_text("Subject: bad date\nDate: sometime last week\n\nbody\n")
    future = src / "future.eml"
    future.write_text("Subject: clock\nDate: Fri, 1 Jan 2100 00:00:00 +0000\n\nbody\n")
    fromline = src / "fromline.eml"
    fromline.write_text("From someone@example.org Thu Aug 22 12:36:23 2002\n"
                        "Date: Tue, 1 Apr 2003 10:00:00 +0200\nSubject: envelope wins\n\nbody\n")
    mtime = 1_000_000_000  # 2001-09-09: the file's own date, kept as the fallback
    for p in (undated, broken, future):
        os.utime(p, (mtime, mtime))
    inst.mk("import", "--format", "files", "bob", src)
    out = tmp_path / "out"
    inst.mk("export", "--format", "files", "bob", out)
    got = {p.name: int(p.stat().st_mtime) for p in out.rglob("*.eml")}
    assert got["dated.eml"] == email.utils.mktime_tz(email.utils.parsedate_tz("Tue, 1 Apr 2003 10:00:00 +0200"))
    assert got["folded.eml"] == email.utils.mktime_tz(email.utils.parsedate_tz("Wed, 5 Nov 1997 09:30:00 -0500"))
    assert got["undated.eml"] == mtime
    assert got["broken.eml"] == mtime
    assert got["future.eml"] == mtime
    assert got["fromline.eml"] == email.utils.mktime_tz(email.utils.parsedate_tz("Thu, 22 Aug 2002 12:36:23 +0000"))


@pytest.mark.parametrize("binary", ["mailkeep", "mailkeep-smtpin", "mailkeep-imapd", "mailkeep-fs"])
def test_help_and_version_on_every_binary(binary):
    path = BIN / binary
    if not path.exists():
        pytest.fail(f"{binary} is not built")
    for flag in ("--help", "-h"):
        cp = subprocess.run([str(path), flag], capture_output=True, text=True, timeout=30)
        assert cp.returncode == 0 and cp.stdout.startswith(f"usage: {binary}"), (flag, cp.stdout, cp.stderr)
        assert "invalid option" not in cp.stderr and "unrecognized" not in cp.stderr
    for flag in ("--version", "-V"):
        cp = subprocess.run([str(path), flag], capture_output=True, text=True, timeout=30)
        assert cp.returncode == 0, (flag, cp.stderr)
        name, version = cp.stdout.split()
        assert name == binary and version[0].isdigit()


def test_import_help_has_no_developer_path():
    out = mk("import", "--help").stdout
    assert "/work/" not in out and "shared/corpus" not in out
    assert "Date field" in out  # the arrival-date rule is told


def test_init_local_beside_a_port_in_use(tmp_path):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", 2525))
        except OSError:
            pass  # something holds it already: the same situation
        else:
            s.listen()
        cp = mk("init", "--local", "--no-password", tmp_path / "i")
        assert cp.returncode == 0, cp.stderr
        conf = (tmp_path / "i" / "mailkeep.conf").read_text()
        line = next(ln for ln in conf.splitlines() if ln.startswith("smtpd_listen = "))
        port = int(line.rsplit(":", 1)[1])
        assert port != 2525 and 2525 < port < 2625
        assert f"port 2525 (SMTP) is in use on 127.0.0.1: smtpd_listen = 127.0.0.1:{port} instead" in cp.stdout
        assert str(tmp_path / "i" / "mailkeep.conf") in cp.stdout
        # the port chosen is free indeed
        with socket.socket() as t:
            t.bind(("127.0.0.1", port))
    assert mk("-c", tmp_path / "i" / "mailkeep.conf", "check").returncode == 0
