"""SIGHUP loads the TLS certificate again (renewal, e.g. certbot's deploy hook):
new connections (imaps and STARTTLS) get the new certificate, sessions that
are open go on with the old one, and files that cannot be used leave the
daemon running on what it had."""
import grp
import imaplib
import os
import pwd
import shutil
import signal
import ssl
import tempfile
from pathlib import Path

import pytest

from imapdutil import Imapd
from mkhelpers import Instance, client_ctx, make_cert, wait_for
from mkhelpers import wait_log as mk_wait_log


def imaps(imapd):
    return imaplib.IMAP4_SSL("127.0.0.1", imapd.tls_port, ssl_context=client_ctx(), timeout=15)


def starttls(imapd):
    m = imaplib.IMAP4("127.0.0.1", imapd.port, timeout=15)
    assert m.starttls(ssl_context=client_ctx())[0] == "OK"
    return m


def peer(m):
    return m.sock.getpeercert(binary_form=True)


def wait_log(imapd, pattern, timeout=10):
    return mk_wait_log(imapd.log, pattern, timeout)


def test_sighup_reloads_the_certificate(imapd, instance):
    tls = instance.root / "tls"
    cert_file, key_file = tls / "cert.pem", tls / "key.pem"
    a_der = ssl.PEM_cert_to_DER_cert(cert_file.read_text())
    b_cert, b_key = make_cert(tls / "new", "b.example.org")
    b_der = ssl.PEM_cert_to_DER_cert(b_cert)
    pid = imapd.proc.pid

    old_imaps, old_starttls = imaps(imapd), starttls(imapd)
    assert peer(old_imaps) == a_der and peer(old_starttls) == a_der
    old_imaps.login("alice", "secret-alice")
    assert old_imaps.select("INBOX")[0] == "OK"

    # renewal: new files under the configured names, then SIGHUP to the daemon
    cert_file.write_text(b_cert)
    key_file.write_text(b_key)
    os.kill(pid, signal.SIGHUP)
    wait_log(imapd, r"TLS certificate reloaded from \S*cert\.pem and \S*key\.pem: subject CN=b\.example\.org, "
                    r"issuer CN=b\.example\.org, notAfter \w+ +\d+ [\d:]+ \d{4} GMT; new connections use it")
    for m in (imaps(imapd), starttls(imapd)):
        assert peer(m) == b_der
        m.login("bob", "secret-bob")
        m.logout()
    # the sessions opened before go on, on the certificate they started with
    assert old_imaps.noop()[0] == "OK"
    assert old_imaps.append("INBOX", None, None, b"Subject: old session\r\n\r\nstill here\r\n")[0] == "OK"
    assert old_imaps.select("INBOX")[1] == [b"1"]
    assert peer(old_imaps) == a_der
    assert old_starttls.noop()[0] == "OK"
    old_starttls.login("bob", "secret-bob")
    assert imapd.proc.poll() is None

    # garbage in the certificate file: a warning that says why, B is still served
    cert_file.write_text("garbage\n")
    os.kill(pid, signal.SIGHUP)
    m = wait_log(imapd, r"warning: TLS certificate not reloaded: (\S+): cannot load certificate: .*no start line; "
                        r"still serving the one loaded before \(subject CN=b\.example\.org")
    assert m.group(1) == str(cert_file)
    # garbage in the key file, with B's certificate back
    cert_file.write_text(b_cert)
    key_file.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    os.kill(pid, signal.SIGHUP)
    wait_log(imapd, r"warning: TLS certificate not reloaded: \S*key\.pem: cannot load private key: ")
    assert imapd.proc.poll() is None and imapd.proc.pid == pid
    for m in (imaps(imapd), starttls(imapd)):
        assert peer(m) == b_der
        m.logout()
    for m in (old_imaps, old_starttls):
        assert m.noop()[0] == "OK"
        m.logout()
    assert imapd.proc.poll() is None
    assert "daemon stopping" not in imapd.log()


def test_many_sighups_while_sessions_come_and_go(imapd, instance):
    """Twenty renewals in a row, with clients in between: each connection made
    after a SIGHUP gets the certificate just written (the main thread takes
    the signal before it accepts again), none fails, the daemon keeps running."""
    tls = instance.root / "tls"
    a = (tls / "cert.pem").read_text(), (tls / "key.pem").read_text()
    b = make_cert(tls / "new", "b.example.org")
    ders = {ssl.PEM_cert_to_DER_cert(a[0]), ssl.PEM_cert_to_DER_cert(b[0])}
    seen = set()
    for i in range(20):
        cert, key = (a, b)[i % 2]
        (tls / "cert.pem").write_text(cert)
        (tls / "key.pem").write_text(key)
        os.kill(imapd.proc.pid, signal.SIGHUP)
        for _ in range(3):
            m = imaps(imapd)
            assert peer(m) == ssl.PEM_cert_to_DER_cert(cert)
            seen.add(peer(m))
            assert m.noop()[0] == "OK"
            m.logout()
    assert seen <= ders and len(seen) == 2
    wait_for(lambda: imapd.log().count("TLS certificate reloaded") == 20, what="20 reloads in the log")
    assert imapd.proc.poll() is None
    assert "not reloaded" not in imapd.log()


def test_reload_after_dropping_privileges(helpers, tmp_path_factory):
    """As root with mail_owner = nobody: the key, mode 0600 root, is read at
    start (as root) but not on SIGHUP (as nobody): the warning says why and
    the old certificate stays; the key given to nobody's group, mode 0640, is
    read on the next SIGHUP (the Debian ssl-cert way)."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the daemon drops privileges only when started as root")
    nobody = pwd.getpwnam("nobody")
    group = grp.getgrgid(nobody.pw_gid).gr_name
    # pytest's own directories are root's alone: nobody could not reach the store
    root = Path(tempfile.mkdtemp(prefix="mk-tls-drop-"))
    inst = None
    try:
        root.chmod(0o755)
        inst = Instance(root)
        d = Imapd(inst, helpers)
        inst.write_conf(mail_owner="nobody")
        d.add_user("alice")
        for p in [inst.data, *inst.data.rglob("*")]:
            os.chown(p, nobody.pw_uid, nobody.pw_gid)
        tls = root / "tls"
        cert_file, key_file = tls / "cert.pem", tls / "key.pem"
        key_file.chmod(0o600)
        a_der = ssl.PEM_cert_to_DER_cert(cert_file.read_text())
        b_cert, b_key = make_cert(tls / "new", "b.example.org")
        d.start()
        m = imaps(d)
        assert peer(m) == a_der
        m.login("alice", "secret-alice")

        cert_file.write_text(b_cert)
        key_file.write_text(b_key)  # still 0600 root
        os.kill(d.proc.pid, signal.SIGHUP)
        w = wait_log(d, r"warning: TLS certificate not reloaded: (\S+): cannot read the private key: "
                        r"Permission denied; this process runs as user nobody \(group (\S+)\) since it dropped "
                        r"privileges, .*ssl-cert.*; still serving the one loaded before \(subject CN=localhost")
        assert w.group(1) == str(key_file) and w.group(2) == group
        n = imaps(d)
        assert peer(n) == a_der
        n.logout()

        os.chown(key_file, 0, nobody.pw_gid)
        key_file.chmod(0o640)
        os.kill(d.proc.pid, signal.SIGHUP)
        wait_log(d, r"TLS certificate reloaded from .*subject CN=b\.example\.org")
        n = imaps(d)
        assert peer(n) == ssl.PEM_cert_to_DER_cert(b_cert)
        n.login("alice", "secret-alice")
        n.logout()
        assert m.noop()[0] == "OK"
        m.logout()
        assert d.proc.poll() is None
    finally:
        if inst is not None:
            inst.close()
        shutil.rmtree(root, ignore_errors=True)
