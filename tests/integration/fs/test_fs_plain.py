"""What is not mail on the mount: notmuch's database, mbsync's state, a
folder's maildirfolder file are plain files in <data_directory>/files/<user>/,
shown where they were written, never over IMAP, kept across restarts and in
`mailkeep backup`. A directory becomes a mailbox once it is a Maildir
(mkdir .F, then cur new tmp in it, as maildirmake and Python's mailbox do)."""
import errno
import filecmp
import mailbox
import os
import subprocess

import pytest

from mountlib import files, imap_bodies, stack, wait_imap_has


def msg(tag, date="Tue, 01 Dec 2026 10:00:00 +0000"):
    return (f"From: a@example.org\r\nTo: bob@example.org\r\nDate: {date}\r\nSubject: {tag}\r\n"
            f"Message-ID: <{tag}@example.org>\r\n\r\nbody of {tag}\r\n").encode()


def mailbox_names(m):
    typ, data = m.list()
    assert typ == "OK"
    return sorted(line.decode().rsplit(' "." ', 1)[1].strip('"') for line in data)


def notmuch(cfg, *args):
    cp = subprocess.run(["notmuch", *args], capture_output=True, text=True, timeout=120,
                        env=dict(os.environ, NOTMUCH_CONFIG=str(cfg)))
    assert cp.returncode == 0, (args, cp.stdout, cp.stderr)
    return cp.stdout


def test_notmuch_database_in_the_mail_root(instance):
    with stack(instance) as s:
        bob = s.mnt / "bob"
        for i in range(5):
            (bob / "tmp" / f"17000000{i}.N{i}.host").write_bytes(msg(f"nm{i}"))
            os.rename(bob / "tmp" / f"17000000{i}.N{i}.host", bob / "new" / f"17000000{i}.N{i}.host")
        cfg = instance.root / "notmuch-config"
        cfg.write_text(f"[database]\npath={bob}\n[user]\nname=Bob\nprimary_email=bob@example.org\n"
                       "[new]\ntags=unread;inbox;\n[maildir]\nsynchronize_flags=true\n")
        out = notmuch(cfg, "new")
        assert "Added 5 total messages" in out or "Added 5 new messages" in out, out
        assert (bob / ".notmuch" / "xapian").is_dir()
        assert (instance.data / "files" / "bob" / ".notmuch" / "xapian").is_dir()
        assert notmuch(cfg, "count", "subject:nm3").strip() == "1"
        notmuch(cfg, "tag", "+important", "subject:nm1")
        assert "nm1" in notmuch(cfg, "search", "tag:important")
        # flags synchronised by renames on the mount: read means \Seen over IMAP
        notmuch(cfg, "tag", "-unread", "subject:nm2")
        m = s.imap()
        assert "\\Seen" in imap_bodies(m)[msg("nm2")]
        assert "notmuch" not in " ".join(mailbox_names(m))  # never a mailbox
        m.logout()
        # a message arriving later, then notmuch new again
        (bob / "tmp" / "x").write_bytes(msg("late"))
        os.rename(bob / "tmp" / "x", bob / "new" / "1700000099.L.host")
        assert "Added 1 new message" in notmuch(cfg, "new")
        # the database survives a restart of the mount
        s.restart_mount()
        assert notmuch(cfg, "count", "*").strip() == "6"
        assert "nm1" in notmuch(cfg, "search", "tag:important")
        # and is in the backup
        dst = instance.root / "backup"
        instance.mk("backup", dst)
        assert filecmp.cmp(dst / "files" / "bob" / ".notmuch" / "xapian" / "iamglass",
                           bob / ".notmuch" / "xapian" / "iamglass", shallow=False)


def test_maildirmake_and_plain_files(instance):
    with stack(instance) as s:
        bob = s.mnt / "bob"
        # Python's mailbox makes a folder: mkdir .Projects, tmp new cur, maildirfolder
        root = mailbox.Maildir(str(bob), create=False)
        proj = root.add_folder("Projects")
        proj.add(msg("in projects"))
        assert os.path.isfile(bob / ".Projects" / "maildirfolder")
        wait_imap_has(s, msg("in projects"), mailbox="Projects")
        # (the mount names it "<key>,S=<size>", so the key add() gave is not found
        # by it, but the message is there)
        assert [proj.get_bytes(k) for k in proj.keys()] == [msg("in projects")]
        # a directory that is not a Maildir is no mailbox
        os.mkdir(bob / ".notmail")
        (bob / ".notmail" / "data").write_bytes(b"x" * 10000)
        os.mkdir(bob / "stuff")
        (bob / "stuff" / "nested").mkdir()
        (bob / "stuff" / "nested" / "f.txt").write_text("hello")
        (bob / ".mbsyncstate").write_text("FarUidValidity 1\n")
        (bob / ".Projects" / ".uidvalidity").write_text("1\n2\n")
        m = s.imap()
        names = mailbox_names(m)
        m.logout()
        assert "Projects" in names
        assert not any(n in names for n in ("notmail", ".notmail", "stuff", "nested", "mbsyncstate"))
        assert {".notmail", "stuff", ".mbsyncstate", ".Projects"} <= set(os.listdir(bob))
        assert sorted(os.listdir(bob / ".Projects")) == [".uidvalidity", "cur", "maildirfolder", "new", "tmp"]
        # same owner and mode rules as the mail
        st = os.stat(bob / ".mbsyncstate")
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (2001, 2001, 0o600)
        assert os.stat(bob / "stuff").st_mode & 0o777 == 0o700
        for p, mode in ((bob / ".mbsyncstate", 0o644), (bob / "stuff", 0o755)):
            with pytest.raises(OSError) as e:
                os.chmod(p, mode)
            assert e.value.errno == errno.EPERM
        os.chmod(bob / ".mbsyncstate", 0o400)
        assert os.stat(bob / ".mbsyncstate").st_mode & 0o777 == 0o400
        os.chmod(bob / ".mbsyncstate", 0o600)
        with pytest.raises(OSError) as e:
            os.chown(bob / ".mbsyncstate", 0, 0)
        assert e.value.errno == errno.EPERM
        os.chown(bob / ".mbsyncstate", 2001, 2001)
        os.utime(bob / ".mbsyncstate", (1600000000, 1600000000))
        assert os.stat(bob / ".mbsyncstate").st_mtime == 1600000000
        # rename, append, truncate, unlink as on any file system
        os.rename(bob / ".mbsyncstate", bob / ".Projects" / ".mbsyncstate")
        with open(bob / ".Projects" / ".mbsyncstate", "a") as f:
            f.write("MaxPulledUid 7\n")
        assert (bob / ".Projects" / ".mbsyncstate").read_text() == "FarUidValidity 1\nMaxPulledUid 7\n"
        os.truncate(bob / ".notmail" / "data", 100)
        assert os.path.getsize(bob / ".notmail" / "data") == 100
        # a message is not moved into the plain area by rename (mv copies)
        (name,) = files(bob / ".Projects" / "new")
        with pytest.raises(OSError) as e:
            os.rename(bob / ".Projects" / "new" / name, bob / "stuff" / name)
        assert e.value.errno == errno.EXDEV
        # kept across a restart; the folder's plain files go with a rename of it
        s.restart_mount()
        assert (bob / "stuff" / "nested" / "f.txt").read_text() == "hello"
        os.rename(bob / ".Projects", bob / ".Work")
        assert sorted(os.listdir(bob / ".Work")) == [".mbsyncstate", ".uidvalidity", "cur", "maildirfolder",
                                                    "new", "tmp"]
        m = s.imap()
        names = mailbox_names(m)
        assert "Work" in names and "Projects" not in names
        assert list(imap_bodies(m, "Work")) == [msg("in projects")]
        m.logout()
        # rm -r of a folder: its plain files, then the (empty) mailbox
        os.unlink(bob / ".Work" / "new" / name)
        subprocess.run(["rm", "-r", str(bob / ".Work"), str(bob / "stuff"), str(bob / ".notmail")], check=True)
        assert not {".Work", "stuff", ".notmail"} & set(os.listdir(bob))
        m = s.imap()
        assert "Work" not in mailbox_names(m)
        m.logout()
        assert sorted(os.listdir(instance.data / "files" / "bob")) == []
