"""ManageSieve (RFC 5804) on a listener of mailkeep-imapd, with real clients:
sieve-connect (Debian's, Perl) and Python's sievelib, over STARTTLS; the
plaintext rule, the login penalty's log line, bounded input (a 1 MB
literal, 10,000-deep nesting), and a script put over ManageSieve running at
delivery."""
import base64
import os
import socket
import ssl
import subprocess

import pytest

from mkhelpers import free_port, wait_for
from sievehelp import Mail, message

GOOD = 'require ["fileinto", "mailbox"];\nif header :contains "subject" "report" { fileinto :create "Reports"; }\n'
BAD = 'require "fileinto";\nif header :contains "subject" "x" {\n  fileint "X";\n}\n'


@pytest.fixture
def ms(smtpin_factory, helpers):
    import imapdutil
    m = Mail(smtpin_factory(), imapdutil.Imapd, helpers)
    m.ms_port = free_port()
    # ManageSieve on its own port; only 127.0.0.1 may log in without TLS
    m.inst.write_conf(managesieve_listen=f"127.0.0.1:{m.ms_port}", imapd_plaintext_networks="127.0.0.1/32")
    return m


def sieve_connect(ms, user, *args, password=None):
    r, w = os.pipe()
    os.write(w, ((password or ms.passwords[user]) + "\n").encode())
    os.close(w)
    try:
        return subprocess.run(["sieve-connect", "--server", "127.0.0.1", "--port", str(ms.ms_port), "--user", user,
                               "--passwordfd", str(r), "--notlsverify", *args],
                              capture_output=True, text=True, timeout=60, pass_fds=(r,))
    finally:
        os.close(r)


def test_sieve_connect_upload_check_activate_list_delete(ms, tmp_path):
    ms.start("bob")
    good, bad = tmp_path / "good.sieve", tmp_path / "bad.sieve"
    good.write_text(GOOD)
    bad.write_text(BAD)
    cp = sieve_connect(ms, "bob", "--upload", "--localsieve", str(good), "--remotesieve", "reports")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    cp = sieve_connect(ms, "bob", "--checkscript", "--localsieve", str(bad))
    assert cp.returncode != 0 and "line 3, column 3: unknown command 'fileint'" in cp.stdout + cp.stderr
    cp = sieve_connect(ms, "bob", "--upload", "--localsieve", str(bad), "--remotesieve", "bad")
    assert cp.returncode != 0 and "line 3, column 3" in cp.stdout + cp.stderr
    assert sieve_connect(ms, "bob", "--activate", "--remotesieve", "reports").returncode == 0
    cp = sieve_connect(ms, "bob", "--list")
    assert cp.stdout.split() == ['"reports"', "ACTIVE"], cp.stdout
    out = tmp_path / "down.sieve"
    assert sieve_connect(ms, "bob", "--download", "--remotesieve", "reports", "--localsieve", str(out)).returncode == 0
    assert out.read_text() == GOOD
    # the uploaded script runs at delivery
    assert ms.send("bob@example.org", message(subject="weekly report")).returncode == 0
    assert len(ms.mailboxes("bob")["Reports"]) == 1
    # the active script cannot be deleted; deactivated, it can
    cp = sieve_connect(ms, "bob", "--delete", "--remotesieve", "reports")
    assert cp.returncode != 0 and "ACTIVE" in cp.stdout + cp.stderr
    assert sieve_connect(ms, "bob", "--deactivate").returncode == 0
    assert sieve_connect(ms, "bob", "--delete", "--remotesieve", "reports").returncode == 0
    assert sieve_connect(ms, "bob", "--list").stdout.strip() == ""
    log = ms.imap.log()
    assert "managesieve login: user=<bob>, method=PLAIN" in log and ", TLS" in log


def test_sievelib_client(ms):
    from sievelib.managesieve import Client
    ms.start("bob")
    c = Client("127.0.0.1", ms.ms_port)
    assert c.connect("bob", ms.passwords["bob"], starttls=True, authmech="PLAIN")
    assert "fileinto" in c.get_sieve_capabilities() and "vacation" in c.get_sieve_capabilities()
    assert c.get_implementation() == "mailkeep ManageSieve"
    assert c.havespace("one", 1000)
    assert not c.havespace("one", 10 * 1024 * 1024)
    assert not c.checkscript(BAD)
    assert "line 3, column 3" in c.errmsg.decode()
    assert c.putscript("one", GOOD)
    assert c.putscript("two", 'keep;\n')
    assert c.setactive("two")
    active, others = c.listscripts()
    assert active == "two" and others == ["one"]
    assert c.getscript("one") == GOOD
    assert c.renamescript("one", "uno")
    assert not c.renamescript("uno", "two")     # ALREADYEXISTS
    assert not c.deletescript("two")            # ACTIVE
    assert c.setactive("")
    assert c.deletescript("two") and c.deletescript("uno")
    assert c.listscripts() == (None, [])
    c.logout()


class Raw:
    def __init__(self, port, source="127.0.0.1"):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20, source_address=(source, 0))
        self.f = self.s.makefile("rb")

    def until_status(self):
        lines = []
        while True:
            line = self.f.readline().decode()
            assert line, lines
            lines.append(line)
            m = line.split(" ", 1)[0]
            if m in ("OK", "NO", "BYE"):
                return lines

    def cmd(self, data):
        self.s.sendall(data if isinstance(data, bytes) else data.encode())
        return self.until_status()


def test_plaintext_and_bounds(ms):
    ms.start("bob")
    # a client that is not local: no PLAIN before STARTTLS
    r = Raw(ms.ms_port, source="127.0.0.2")
    greeting = "".join(r.until_status())
    assert '"SASL" ""' in greeting and '"STARTTLS"' in greeting
    pw = base64.b64encode(b"\0bob\0" + ms.passwords["bob"].encode()).decode()
    assert r.cmd(f'AUTHENTICATE "PLAIN" "{pw}"\r\n')[-1].startswith("NO (ENCRYPT-NEEDED)")
    assert r.cmd("STARTTLS\r\n")[-1].startswith("OK")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    tls = ctx.wrap_socket(r.s)
    r.s, r.f = tls, tls.makefile("rb")
    caps = "".join(r.until_status())           # the capabilities again, under TLS
    assert '"SASL" "PLAIN"' in caps and '"STARTTLS"' not in caps
    assert r.cmd(f'AUTHENTICATE "PLAIN" "{pw}"\r\n')[-1].startswith("OK")
    # a 1 MB script: refused by size, and the session stays in step
    big = b"# " + b"x" * (1024 * 1024) + b"\r\nkeep;\r\n"
    out = r.cmd(b'PUTSCRIPT "big" {%d+}\r\n' % len(big) + big + b"\r\n")
    assert out[-1].startswith("NO (QUOTA/MAXSIZE)"), out
    assert r.cmd("NOOP\r\n")[-1].startswith("OK")
    # 10,000-deep nesting: refused with its line and column
    deep = ("if true {" * 10000 + "}" * 10000).encode()
    out = r.cmd(b'CHECKSCRIPT {%d+}\r\n' % len(deep) + deep + b"\r\n")
    assert out[-1].startswith('NO "line 1, column 292: nested too deeply'), out
    assert r.cmd("LISTSCRIPTS\r\n") == ["OK \"Listscripts completed\"\r\n"]
    assert r.cmd("LOGOUT\r\n")[-1].startswith("OK")


def test_wrong_password_is_penalised_and_logged(ms):
    ms.start("bob")
    from sievelib.managesieve import Client
    c = Client("127.0.0.1", ms.ms_port)
    assert not c.connect("bob", "wrong", starttls=True, authmech="PLAIN")
    wait_for(lambda: "ManageSieve authentication failed: method=PLAIN, user=<bob>, failures=1" in ms.imap.log(),
             what="the failure's log line")
    # fail2ban's filter matches it
    conf = (os.path.dirname(__file__) + "/../../../doc/fail2ban/mailkeep-imapd.conf")
    log = ms.inst.root / "imapd.log"
    log.write_text(ms.imap.log())
    cp = subprocess.run(["fail2ban-regex", str(log), conf], capture_output=True, text=True, timeout=60)
    assert "Failregex: 1 total" in cp.stdout, cp.stdout[-1500:]
