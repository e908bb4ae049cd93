"""/<user>/.search/<query>/cur/ on the mount (issue 17): the user's messages
that match a query, as a read-only Maildir that ls, grep and neomutt read;
never another user's; not listed among the folders."""
import errno
import os
import subprocess
import time

import pytest

from mkhelpers import wait_for


def msg(i, subject, body):
    return (f"From: carol{i}@example.org\r\nTo: bob@example.org\r\nSubject: {subject}\r\n"
            f"Message-ID: <s{i}@example.org>\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n")


def test_search_folder(mount, tmp_path):
    m1, m2, m3 = (msg(1, "zebra one", "the zebrafish report"),
                  msg(2, "other", "nothing to see"),
                  msg(3, "zebra two", "another ZEBRAFISH sighting"))
    mount.deliver("bob", m1)
    mount.deliver("bob", m2)
    mount.deliver("bob", m3, mailbox="Archive", flags="S")
    mount.deliver("alice", msg(4, "alice's", "her own zebrafish"))
    bob = mount.path / "bob"
    q = bob / ".search" / "zebrafish"
    names = sorted(os.listdir(q / "cur"))
    assert len(names) == 2, names
    assert sorted(os.listdir(q)) == ["cur", "new", "tmp"] and os.listdir(q / "new") == []
    assert {(q / "cur" / n).read_bytes() for n in names} == {m1.encode(), m3.encode()}
    assert all(":2," in n for n in names) and any(n.endswith(":2,S") for n in names)
    assert ".search" not in os.listdir(bob)  # not a folder for Maildir++ clients
    # grep and a phrase
    out = subprocess.run(["grep", "-rl", "report", bob / ".search" / "zebrafish report"],
                         capture_output=True, text=True).stdout.splitlines()
    assert len(out) == 1 and open(out[0], "rb").read() == m1.encode()
    assert os.listdir(bob / ".search" / "subject:other" / "cur") != []
    assert os.listdir(bob / ".search" / "nosuchwordanywhere" / "cur") == []
    # read-only
    with pytest.raises(OSError) as e:
        (q / "cur" / "x").write_bytes(b"x")
    assert e.value.errno in (errno.EPERM, errno.EACCES, errno.EROFS)
    with pytest.raises(OSError):
        os.unlink(q / "cur" / names[0])
    assert len(os.listdir(q / "cur")) == 2
    # new mail shows at the next listing
    mount.deliver("bob", msg(5, "zebra three", "zebrafish again"))
    wait_for(lambda: len(os.listdir(q / "cur")) == 3, 5, "the new match listed")


def test_neomutt_reads_search_results(mount, tmp_path):
    for i in range(1, 4):
        mount.deliver("bob", msg(i, f"mutt{i} kiwifruit" if i != 2 else "plain", "body text"))
    folder = mount.path / "bob" / ".search" / "kiwifruit"
    rc = tmp_path / "muttrc"
    rc.write_text("\n".join(["set mbox_type=Maildir", f"set folder={mount.path / 'bob'}",
                             f"set spoolfile={folder}", 'set header_cache=""', "set sort=date",
                             "set wait_key=no", "set beep=no", "set quit=yes", ""]))
    session = f"fss{os.getpid()}x{int(time.time() * 1000) % 100000}"
    tmux = ["tmux", "-L", session]  # a server of its own
    subprocess.run(tmux + ["new-session", "-d", "-s", session, "-x", "150", "-y", "40",
                           f"neomutt -n -R -F {rc} -f '{folder}'"], check=True)

    def screen():
        return subprocess.run(tmux + ["capture-pane", "-t", session, "-p"], capture_output=True,
                              text=True).stdout
    try:
        wait_for(lambda: "mutt1 kiwifruit" in screen() and "mutt3 kiwifruit" in screen(), 10,
                 "neomutt index of the search folder")
        assert "plain" not in screen()
        subprocess.run(tmux + ["send-keys", "-t", session, "1", "Enter", "Enter"], check=True)
        wait_for(lambda: "body text" in screen(), 10, "the message in neomutt's pager")
    finally:
        subprocess.run(tmux + ["kill-server"], capture_output=True)
