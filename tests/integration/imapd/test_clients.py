"""imapd with real clients nobody here wrote: curl (imap:// and imaps://),
mbsync (isync) two-way sync, neomutt (in tmux), libetpan's IMAP client."""
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from imapdutil import message


def ok(res):
    typ, data = res
    assert typ == "OK", data
    return data


def curl(imapd, url, *extra):
    cp = subprocess.run(["curl", "-sS", "--max-time", "20", "--cacert", str(imapd.cert), "-u", "alice:secret-alice",
                         *extra, url], capture_output=True, timeout=30)
    assert cp.returncode == 0, cp.stderr
    return cp.stdout


@pytest.mark.parametrize("scheme", ["imap", "imaps", "imap-starttls"])
def test_curl_list_search_fetch(imapd, scheme):
    m = imapd.login()
    for i in range(1, 4):
        ok(m.append("INBOX", None, None, message(i, subject=f"curl {i}")))
    if scheme == "imaps":
        base, extra = f"imaps://localhost:{imapd.tls_port}", ["--resolve", f"localhost:{imapd.tls_port}:127.0.0.1"]
    elif scheme == "imap-starttls":
        base, extra = f"imap://localhost:{imapd.port}", ["--ssl-reqd", "--resolve", f"localhost:{imapd.port}:127.0.0.1"]
    else:
        base, extra = f"imap://127.0.0.1:{imapd.port}", []
    listing = curl(imapd, base + "/", *extra)
    assert b'"INBOX"' in listing and b'"Sent"' in listing
    found = curl(imapd, base + "/INBOX", "-X", 'SEARCH SUBJECT "curl 2"', *extra)
    assert found.strip() == b"* SEARCH 2"
    body = curl(imapd, base + "/INBOX;UID=3", *extra)
    assert body == message(3, subject="curl 3")
    part = curl(imapd, base + "/INBOX;UID=1;SECTION=HEADER.FIELDS%20(SUBJECT)", *extra)
    assert part.strip() == b"Subject: curl 1"


def mbsync(imapd, rc, *args):
    cp = subprocess.run(["mbsync", "-c", str(rc), *args], capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    return cp.stdout + cp.stderr


def maildir_state(root):
    """name -> (flags, bytes) for every message file, by folder."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.parent.name in ("cur", "new"):
            base, _, flags = p.name.partition(":2,")
            out[(str(p.parent.parent.relative_to(root)), p.read_bytes())] = flags
    return out


def server_state(imapd):
    m = imapd.login()
    state = {}
    for line in ok(m.list()):
        name = line.decode().rsplit(' "." ', 1)[1].strip('"')
        ok(m.select(f'"{name}"', readonly=True))
        typ, d = m.fetch("1:*", "(UID FLAGS MODSEQ)")
        if d != [None]:
            state[name] = sorted(x.decode() for x in d if x)
    m.logout()
    return state


def test_mbsync_two_way(imapd, tmp_path):
    m = imapd.login()
    ok(m.create("Work"))
    for i in range(1, 6):
        ok(m.append("INBOX", None, None, message(i)))
    ok(m.append("Work", "(\\Flagged)", None, message(10, subject="work item")))
    local = tmp_path / "Mail"
    local.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(f"""IMAPAccount test
Host localhost
Port {imapd.tls_port}
User alice
Pass secret-alice
SSLType IMAPS
CertificateFile {imapd.cert}

IMAPStore remote
Account test

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel all
Far :remote:
Near :local:
Patterns *
Create Both
Remove None
Expunge Both
SyncState *
Sync All
""")
    mbsync(imapd, rc, "-a")
    files = maildir_state(local)
    assert len([k for k in files if k[0] == "INBOX"]) == 5
    assert [v for k, v in files.items() if k[0] == "Work"] == ["F"]
    assert (local / "Sent").is_dir() and (local / "Junk").is_dir()
    # changes on both sides
    inbox_cur = local / "INBOX" / "cur"
    inbox = sorted((local / "INBOX" / "new").iterdir(), key=lambda p: p.read_bytes())
    first, second = inbox[0], inbox[1]
    first.rename(inbox_cur / (first.name.split(":2,")[0] + ":2,S"))
    second.rename(inbox_cur / (second.name.split(":2,")[0] + ":2,T"))  # deleted
    new_local = b"From: me@example.org\r\nSubject: written offline\r\nMessage-ID: <off@x>\r\n\r\nhi\r\n"
    (local / "Work" / "cur" / f"{int(time.time())}.1_1.host:2,S").write_bytes(new_local)
    ok(m.select("INBOX"))
    ok(m.store("5", "+FLAGS", "\\Answered"))
    ok(m.append("INBOX", None, None, message(6, subject="arrived later")))
    mbsync(imapd, rc, "-a")
    ok(m.select("Work"))
    typ, d = m.search(None, "SUBJECT", '"written offline"', "SEEN")
    assert d == [b"2"]
    ok(m.select("INBOX"))
    assert ok(m.search(None, "ALL")) == [b"1 2 3 4 5"]  # one expunged, one added
    assert ok(m.search(None, "SEEN")) == [b"1"]
    files = maildir_state(local)
    assert any(b"arrived later" in k[1] for k in files)
    assert any(b"Subject: test message 5" in k[1] and v == "R" for k, v in files.items())
    # a second sync with nothing new changes nothing on either side
    before_local, before_server = maildir_state(local), server_state(imapd)
    mbsync(imapd, rc, "-a")
    assert maildir_state(local) == before_local
    assert server_state(imapd) == before_server


def test_neomutt_reads_over_imap(imapd, tmp_path):
    if shutil.which("tmux") is None:
        pytest.fail("tmux is needed to drive neomutt (tools/install-deps.sh installs it)")
    m = imapd.login()
    for i in range(1, 4):
        ok(m.append("INBOX", None, None, message(i, subject=f"neomutt subject {i}",
                                                   body=f"neomutt body text {i}\r\n")))
    rc = tmp_path / "muttrc"
    rc.write_text(f"""set folder = "imaps://alice@127.0.0.1:{imapd.tls_port}/"
set imap_pass = "secret-alice"
set spoolfile = "+INBOX"
set certificate_file = "{tmp_path}/certs"
set ssl_verify_host = no
set header_cache = ""
set message_cachedir = ""
set imap_check_subscribed = no
set mail_check = 1
set timeout = 1
set imap_idle = yes
set sort = date
set wait_key = no
set pager_stop = yes
""")
    # trust the test certificate: neomutt keeps accepted ones in certificate_file
    (tmp_path / "certs").write_bytes(imapd.cert.read_bytes())
    sess = f"nm{os.getpid()}"
    env = dict(os.environ, TERM="xterm", HOME=str(tmp_path))
    subprocess.run(["tmux", "new-session", "-d", "-s", sess, "-x", "200", "-y", "50",
                    f"neomutt -n -F {rc}"], check=True, env=env)
    try:
        def screen():
            return subprocess.run(["tmux", "capture-pane", "-p", "-t", sess], capture_output=True,
                                  text=True).stdout

        def wait_for(text, timeout=20):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                s = screen()
                if text in s:
                    return s
                time.sleep(0.2)
            raise AssertionError(f"{text!r} not on screen:\n{screen()}")

        s = wait_for("neomutt subject 3")
        assert "neomutt subject 1" in s and "neomutt subject 2" in s
        # open the first message: its body comes over IMAP
        subprocess.run(["tmux", "send-keys", "-t", sess, "Enter"], check=True)
        wait_for("neomutt body text")
        subprocess.run(["tmux", "send-keys", "-t", sess, "q"], check=True)
        time.sleep(0.5)
        subprocess.run(["tmux", "send-keys", "-t", sess, "$"], check=True)  # sync-mailbox
        # reading marked it \Seen on the server
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ok(m.select("INBOX"))
            if ok(m.search(None, "SEEN")) != [b""]:
                break
            time.sleep(0.3)
        assert ok(m.search(None, "SEEN")) != [b""]
        # new mail shows up in the open index
        ok(m.append("INBOX", None, None, message(9, subject="neomutt late arrival")))
        wait_for("neomutt late arrival", timeout=30)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", sess], capture_output=True)


def test_libetpan_client(imapd):
    m = imapd.login()
    msgs = [message(i, subject=f"etpan {i}") for i in range(1, 8)]
    for raw in msgs:
        ok(m.append("INBOX", None, None, raw))
    cp = subprocess.run([str(imapd.helpers["etpan_check"]), str(imapd.port), "alice", "secret-alice", "INBOX",
                         str(len(msgs))], capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    import hashlib
    lines = cp.stdout.split("\n")[:-1]
    assert len(lines) == len(msgs)
    for i, (line, raw) in enumerate(zip(lines, msgs), 1):
        uid, size, digest, parts, env = line.split()
        assert (int(uid), int(size), digest, int(parts), int(env)) == (i, len(raw), hashlib.sha256(raw).hexdigest(), 1, 1)


def test_offlineimap_two_way(imapd, tmp_path):
    if shutil.which("offlineimap") is None:
        pytest.fail("offlineimap is not installed (tools/install-deps.sh installs offlineimap3)")
    m = imapd.login()
    ok(m.create("Projects"))
    for i in range(1, 4):
        ok(m.append("INBOX", None, None, message(i, subject=f"oi {i}")))
    ok(m.append("Projects", "(\\Seen)", None, message(7, subject="oi project")))
    local = tmp_path / "Maildir"
    rc = tmp_path / "offlineimaprc"
    rc.write_text(f"""[general]
accounts = test
metadata = {tmp_path}/meta
ui = basic

[Account test]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {local}

[Repository remote]
type = IMAP
remotehost = localhost
remoteport = {imapd.tls_port}
ssl = yes
sslcacertfile = {imapd.cert}
remoteuser = alice
remotepass = secret-alice
""")

    def run():
        cp = subprocess.run(["offlineimap", "-c", str(rc), "-o", "-u", "basic"], capture_output=True, text=True,
                            timeout=180)
        assert cp.returncode == 0 and "ERROR" not in cp.stdout + cp.stderr, cp.stdout + cp.stderr
        return cp.stdout + cp.stderr

    run()
    files = maildir_state(local)
    assert sum(1 for k in files if k[0] == "INBOX") == 3
    assert [v for k, v in files.items() if k[0] == "Projects"] == ["S"]
    # local change: mark an INBOX message flagged; remote change: a new message
    f = sorted(p for p in (local / "INBOX").rglob("*") if p.is_file() and b"oi 2" in p.read_bytes())[0]
    base, _, flags = f.name.partition(":2,")
    f.rename(local / "INBOX" / "cur" / (base + ":2," + "".join(sorted(flags + "F"))))
    ok(m.append("INBOX", None, None, message(4, subject="oi 4")))
    run()
    ok(m.select("INBOX"))
    assert ok(m.search(None, "FLAGGED", "SUBJECT", '"oi 2"')) == [b"2"]
    assert any(b"Subject: oi 4" in k[1] for k in maildir_state(local))
    before_local, before_server = maildir_state(local), server_state(imapd)
    run()
    assert maildir_state(local) == before_local and server_state(imapd) == before_server
