"""`mailkeep import` on awkward sources: symbolic links (followed as `find -L`
does, loops refused), files that are skipped (always named and counted),
Maildir++ folder names in modified UTF-7 as Dovecot writes them (decoded on
import, encoded again on export, checked with Debian's own Dovecot), and the
importer under ASan+UBSan on empty directories."""
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from mkhelpers import REPO, Instance, wait_for
from storehelp import store_instance, user_mailboxes  # noqa: F401


def msg(n: int) -> bytes:
    return f"From: a{n}@example.org\nSubject: message {n}\n\nbody {n}\n".encode()


def test_directory_of_symlinks_is_imported(store_instance, tmp_path):
    """A directory holding only symbolic links to messages (a common way to
    gather a corpus) imports the messages they point at."""
    inst = store_instance
    real = tmp_path / "real"
    real.mkdir()
    for i in range(5):
        (real / f"m{i}").write_bytes(msg(i))
    (real / "sub").mkdir()
    (real / "sub" / "s1").write_bytes(msg(10))
    links = tmp_path / "links"
    links.mkdir()
    for i in range(3):
        os.symlink(real / f"m{i}", links / f"m{i}")        # absolute
    os.symlink(Path("..") / "real" / "m3", links / "m3")    # relative
    os.symlink(real / "sub", links / "box")                 # a directory: a child mailbox
    cp = inst.mk("import", "--format", "files", "--mailbox", "Linked", "bob", links)
    assert "imported 5 messages" in cp.stdout, cp.stdout + cp.stderr
    assert "followed symbolic links to 4 files and 1 directory" in cp.stdout
    assert "skipped" not in cp.stderr
    boxes = user_mailboxes(inst, "bob")
    assert boxes["Linked"] == 4 and boxes["Linked.box"] == 1
    out = tmp_path / "out"
    inst.mk("export", "--format", "files", "bob", out)
    assert sorted(p.read_bytes() for p in (out / "Linked").iterdir()) == [msg(i) for i in range(4)]
    assert (out / "Linked.box" / "s1").read_bytes() == msg(10)
    assert not os.path.islink(out / "Linked" / "m0")


def test_what_cannot_be_imported_is_named_and_counted(store_instance, tmp_path):
    inst = store_instance
    src = tmp_path / "src"
    (src / "deeper").mkdir(parents=True)
    (src / "good").write_bytes(msg(1))
    os.symlink("nowhere", src / "dangling")
    os.symlink("loop-b", src / "loop-a")
    os.symlink("loop-a", src / "loop-b")
    os.mkfifo(src / "fifo")                                 # never opened: the import would hang
    os.symlink(src / "fifo", src / "link-to-fifo")
    os.symlink("..", src / "deeper" / "up")                 # leads back up: not entered
    os.symlink("/dev/zero", src / "zero")                   # a device
    (src / ".hidden").write_bytes(msg(2))
    (src / ".git").mkdir()
    (src / ".git" / "HEAD").write_bytes(b"ref: refs/heads/main\n")
    (src / "empty").write_bytes(b"")
    (src / "README").write_bytes(b"# a corpus\nnot mail\n")
    cp = inst.mk("import", "--format", "files", "--mailbox", "Mixed", "bob", src, timeout=60)
    assert cp.returncode == 0                               # one message did come in
    assert "imported 1 message " in cp.stdout and "11 skipped" in cp.stdout, cp.stdout
    err = cp.stderr
    for name, why in [("dangling", "a symbolic link to nothing"),
                      ("loop-a", "a symbolic link loop"), ("loop-b", "a symbolic link loop"),
                      ("fifo", "not a regular file"), ("link-to-fifo", "not a regular file"),
                      ("zero", "not a regular file"),
                      ("deeper/up", "a directory that leads back to one above it (a loop)"),
                      (".hidden", "hidden"), (".git", "hidden directory"),
                      ("empty", "empty file"), ("README", "does not begin with a header line: not a mail message")]:
        assert f"{src / name}: {why}" in err, (name, err)
    summary = [l for l in err.splitlines() if "skipped 11:" in l]
    assert summary, err
    for part in ["1 hidden file", "1 hidden directory (not searched)", "3 special files",
                 "1 symbolic link to nothing", "3 symbolic link loops", "1 empty message",
                 "1 file that is not mail"]:
        assert part in summary[0], (part, summary[0])
    assert user_mailboxes(inst, "bob")["Mixed"] == 1
    # only links to nothing: nothing imported is not a success, and says why
    dead = tmp_path / "dead"
    dead.mkdir()
    for i in range(3):
        os.symlink(tmp_path / f"gone{i}", dead / f"m{i}")
    cp = inst.mk("import", "--format", "files", "bob", dead, check=False)
    assert cp.returncode == 1
    assert "imported 0 messages" in cp.stdout and "3 skipped" in cp.stdout
    assert "skipped 3: 3 symbolic links to nothing" in cp.stderr
    assert "no message was imported" in cp.stderr
    assert inst.mk("fsck").returncode == 0


def test_maildir_with_symlinked_messages_and_folder(store_instance, tmp_path):
    inst = store_instance
    store = tmp_path / "elsewhere"
    store.mkdir()
    md = tmp_path / "Maildir"
    for d in ("cur", "new", "tmp", ".Lists/cur", ".Lists/new", ".Lists/tmp"):
        (md / d).mkdir(parents=True)
    (store / "a").write_bytes(msg(1))
    os.symlink(store / "a", md / "cur" / "1000000001.M1P1.host:2,S")
    (md / "cur" / "1000000002.M2P1.host:2,").write_bytes(msg(2))
    os.symlink(store / "missing", md / "new" / "1000000003.M3P1.host")
    archive = tmp_path / "archive-folder"
    for d in ("cur", "new", "tmp"):
        (archive / d).mkdir(parents=True)
    (archive / "cur" / "1000000004.M4P1.host:2,RS").write_bytes(msg(4))
    os.symlink(archive, md / ".Archive2003")
    cp = inst.mk("import", "bob", md)
    assert "imported 3 messages" in cp.stdout, cp.stdout + cp.stderr
    assert "1 skipped" in cp.stdout
    assert "1000000003.M3P1.host: a symbolic link to nothing: skipped" in cp.stderr
    boxes = user_mailboxes(inst, "bob")
    assert boxes["INBOX"] == 2 and boxes["Archive2003"] == 1


def make_dovecot_style_tree(root: Path):
    """A Maildir++ tree with folder names as Dovecot and Courier write them."""
    want = {}
    for n, folder in enumerate(["", ".Entw&APw-rfe", ".A&AOQ-b", ".A&AOQ-b.Sub", ".A&-B",
                                ".&ZeVnLIqe-"]):
        d = root / folder if folder else root
        for sub in ("cur", "new", "tmp"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        if folder:
            (d / "maildirfolder").write_bytes(b"")
        name = f"{1000000000 + n}.M{n}P1.host:2,S"
        (d / "cur" / name).write_bytes(msg(n))
        want[folder] = (name, msg(n))
    return want


def folders_of(maildir: Path):
    return sorted(p.name for p in maildir.iterdir() if p.name.startswith(".") and p.is_dir())


def test_utf7_folder_names_round_trip(store_instance, tmp_path):
    inst = store_instance
    src = tmp_path / "src"
    want = make_dovecot_style_tree(src)
    inst.mk("import", "bob", src)
    boxes = user_mailboxes(inst, "bob")
    for name in ["Entwürfe", "Aäb", "Aäb.Sub", "A&B", "日本語"]:
        assert boxes.get(name) == 1, (name, boxes)
    assert not [b for b in boxes if "&" in b and b != "A&B"], boxes
    # export writes them back in modified UTF-7: the same folder names
    out = tmp_path / "out"
    inst.mk("export", "bob", out)
    expect_folders = sorted(f for f in want if f) + [".Archive", ".Drafts", ".Junk", ".Sent",
                                                        ".Trash"]
    assert folders_of(out) == sorted(expect_folders)
    for folder, (name, data) in want.items():
        assert ((out / folder) if folder else out).joinpath("cur", name).read_bytes() == data
    # importing the export again adds nothing
    cp = inst.mk("import", "bob", out)
    assert "imported 0 messages" in cp.stdout and f"{len(want)} already there" in cp.stdout
    # --utf8-folders: the names the mount shows; they import to the same mailboxes
    out8 = tmp_path / "out8"
    inst.mk("export", "--utf8-folders", "bob", out8)
    assert {".Entwürfe", ".Aäb", ".Aäb.Sub", ".A&B", ".日本語"} <= set(folders_of(out8))
    cp = inst.mk("import", "bob", out8)
    assert "imported 0 messages" in cp.stdout, cp.stdout
    # a name that is not modified UTF-7 is kept as it is, with a warning; one that is
    # neither UTF-7 nor UTF-8 is refused with its messages counted (exit 1)
    odd = tmp_path / "odd"
    for folder in (".Bad&name", b".Latin\xe4".decode("utf-8", "surrogateescape")):
        for sub in ("cur", "new", "tmp"):
            (odd / folder / sub).mkdir(parents=True)
        (odd / folder / "cur" / "1.M1P1.host:2,").write_bytes(msg(99))
    cp = inst.mk("import", "bob", odd, check=False, input=b"")   # bytes: a path is not UTF-8
    assert cp.returncode == 1
    assert b"not valid modified UTF-7; mailbox 'Bad&name' keeps it as it is" in cp.stderr
    assert b".Latin\xe4: the folder name is neither modified UTF-7 nor UTF-8" in cp.stderr
    assert b"(1 message file in it)" in cp.stderr
    assert b"1 file in a folder whose name cannot be a mailbox name" in cp.stderr
    assert user_mailboxes(inst, "bob").get("Bad&name") == 1
    # --utf8-folders on import takes names as they are
    cp = inst.mk("import", "--utf8-folders", "--mailbox", "Raw", "bob", src)
    assert "Raw.Entw&APw-rfe" in user_mailboxes(inst, "bob")
    assert inst.mk("fsck").returncode == 0


class Doveadm:
    """Runs `doveadm ARGS` for user bob on the Maildir at a path (under .dir)."""

    def __init__(self, conf: Path, uid: int, gid: int, tmp: Path):
        self.conf, self.uid, self.gid, self.dir = conf, uid, gid, tmp

    def __call__(self, maildir: Path, *args, input=None):
        maildir.mkdir(exist_ok=True)
        if os.getuid() == 0:
            subprocess.run(["chown", "-R", f"{self.uid}:{self.gid}", str(maildir)], check=True)
        words = 2 if args[0] == "mailbox" else 1            # "mailbox list", "save", "fetch"
        cp = subprocess.run(["doveadm", "-c", str(self.conf), "-o", f"mail_location=maildir:{maildir}",
                             *args[:words], "-u", "bob", *args[words:]],
                            input=input, capture_output=True, timeout=60)
        assert cp.returncode == 0, (args, cp.stderr.decode(errors="replace"))
        return cp.stdout.decode()


@pytest.fixture
def doveadm(tmp_path):
    """Debian's Dovecot (no listeners: its auth service answers doveadm), so a
    real Maildir++ reader and writer checks our names. Dovecot will not run
    mail processes as root: as root, they run as nobody in a directory of
    their own (pytest's tmp_path is not reachable for nobody)."""
    if shutil.which("dovecot") is None or shutil.which("doveadm") is None:
        pytest.skip("Dovecot is not installed (tools/install-deps.sh installs it)")
    root = tmp_path / "dovecot"
    (root / "run").mkdir(parents=True)
    (root / "state").mkdir()
    uid, gid = (os.getuid(), os.getgid()) if os.getuid() != 0 else (65534, 65534)
    mail = Path(tempfile.mkdtemp(prefix="mk-import-dovecot-"))
    os.chmod(mail, 0o711)
    (mail / "home").mkdir()
    if os.getuid() == 0:
        os.chown(mail / "home", uid, gid)
    conf = root / "dovecot.conf"
    conf.write_text(f"""instance_name = mk-import-test-{os.getpid()}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols =
listen = 127.0.0.1
ssl = no
first_valid_uid = 1
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={mail}/home
}}
passdb {{
  driver = static
  args = nopassword=y
}}
""")
    log = open(root / "master.out", "wb")
    proc = subprocess.Popen(["dovecot", "-F", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        wait_for(lambda: (root / "run" / "auth-userdb").exists() or proc.poll() is not None,
                 timeout=15, what="dovecot's auth socket")
        assert proc.poll() is None, (root / "master.out").read_text()
        yield Doveadm(conf, uid, gid, mail)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
        shutil.rmtree(mail, ignore_errors=True)


def test_utf7_folder_names_with_real_dovecot(store_instance, doveadm):
    """Dovecot makes the folders and saves the messages; mailkeep imports them
    as UTF-8 mailboxes; Dovecot reads mailkeep's export with the same names."""
    inst = store_instance
    src = doveadm.dir / "dovecot-maildir"
    names = ["Entwürfe", "Aäb", "Aäb.Sub", "A&B", "日本語"]
    doveadm(src, "mailbox", "create", *names)
    for i, name in enumerate(names):
        doveadm(src, "save", "-m", name, input=msg(i))
    on_disk = folders_of(src)
    assert ".Entw&APw-rfe" in on_disk and ".A&AOQ-b.Sub" in on_disk, on_disk
    cp = inst.mk("import", "bob", src)
    assert f"imported {len(names)} messages" in cp.stdout, cp.stdout + cp.stderr
    boxes = user_mailboxes(inst, "bob")
    for name in names:
        assert boxes.get(name) == 1, (name, boxes)
    out = doveadm.dir / "export"
    inst.mk("export", "bob", out)
    assert set(on_disk) <= set(folders_of(out))
    listed = doveadm(out, "mailbox", "list").split("\n")
    for i, name in enumerate(names):
        assert name in listed, (name, listed)
        got = doveadm(out, "fetch", "text", "mailbox", name, "all")
        assert f"Subject: message {i}" in got, got


def test_import_of_empty_sources_under_ubsan(tmp_path):
    """The importer built with ASan+UBSan (make asan) on empty folders: a
    qsort(NULL, 0, ...) or memcpy(NULL, ..., 0) is undefined behaviour that
    UBSan stops the program for."""
    asan = Path(os.environ.get("MAILKEEP_ASAN_BUILD", REPO / "build" / "asan")) / "bin" / "mailkeep"
    if not asan.exists():
        pytest.skip(f"{asan} is not built (make asan)")
    (tmp_path / "inst").mkdir()
    inst = Instance(tmp_path / "inst")
    env = dict(os.environ, UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1",
               ASAN_OPTIONS="detect_leaks=1:abort_on_error=1")

    def mk(*args):
        return subprocess.run([str(asan), "-c", str(inst.conf), *map(str, args)],
                              capture_output=True, text=True, env=env, timeout=120)

    cp = mk("user", "add", "bob", "--no-password")
    assert cp.returncode == 0, cp.stderr
    md = tmp_path / "md"
    for d in ("cur", "new", "tmp", ".Empty/cur", ".Empty/new", ".Empty/tmp"):
        (md / d).mkdir(parents=True)
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    for src in (md, empty):
        cp = mk("import", "bob", src)
        assert "runtime error" not in cp.stderr and "Sanitizer" not in cp.stderr, cp.stderr
        assert cp.returncode == 0, cp.stderr
        assert "imported 0 messages" in cp.stdout
    out = tmp_path / "out"
    cp = mk("export", "bob", out)
    assert cp.returncode == 0 and "runtime error" not in cp.stderr, cp.stderr
