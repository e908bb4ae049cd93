"""SIGHUP is harmless to the mount, and `mailkeep run` passes it on to the
services (TLS certificate renewal) instead of stopping them."""
import imaplib
import os
import signal
import smtplib
import ssl
import subprocess
from pathlib import Path

from mkhelpers import BIN, client_ctx, free_port, make_cert, wait_for, wait_port


def test_sighup_leaves_the_mount_alone(mount):
    """libfuse unmounts on SIGHUP by default; mailkeep-fs ignores it."""
    mount.deliver("bob", "Subject: hello\r\n\r\nbody\r\n")
    before = sorted(os.listdir(mount.path / "bob" / "cur") + os.listdir(mount.path / "bob" / "new"))
    assert len(before) == 1
    os.kill(mount.proc.pid, signal.SIGHUP)
    os.kill(mount.proc.pid, signal.SIGHUP)
    # the mount still answers, from the same process, after the signals were handled
    mount.deliver("bob", "Subject: second\r\n\r\nbody\r\n")
    wait_for(lambda: len(os.listdir(mount.path / "bob" / "new") + os.listdir(mount.path / "bob" / "cur")) == 2,
             what="the second message in the mount")
    assert os.path.ismount(mount.path)
    assert mount.proc.poll() is None
    assert "unmounting" not in mount.log()


def children(pid):
    """{program name: pid} of the processes run started."""
    out = {}
    for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        out[Path(f"/proc/{c}/comm").read_text().strip()] = int(c)
    return out


def test_run_passes_sighup_on(instance):
    """`mailkeep run` with the real smtpin, smtpout, imapd and mount: SIGHUP to run
    (as a certbot deploy hook sends it, by the pid file) reloads the
    certificates of smtpin and imapd; every service keeps its pid, the mount
    stays, an IMAP session opened before keeps working."""
    smtp, imap, imaps_port = free_port(), free_port(), free_port()
    instance.write_conf(smtpd_listen=f"127.0.0.1:{smtp}", lmtp_listen=f"unix:{instance.data}/run/lmtp",
                        imapd_listen=f"127.0.0.1:{imap}", imapd_tls_listen=f"127.0.0.1:{imaps_port}")
    instance.mk("user", "add", "bob", "--password-file", "-", input="secret-bob\n")
    tls = instance.root / "tls"
    a_cert, a_key = make_cert(tls / "new", "a.example.org")
    b_cert, b_key = make_cert(tls / "new", "b.example.org")
    (tls / "cert.pem").write_text(a_cert)
    (tls / "key.pem").write_text(a_key)
    a_der, b_der = ssl.PEM_cert_to_DER_cert(a_cert), ssl.PEM_cert_to_DER_cert(b_cert)
    mnt = instance.root / "mail"
    p = instance.spawn(BIN / "mailkeep", "-c", instance.conf, "run")
    try:
        for port in (smtp, imap, imaps_port):
            wait_port(port, proc=p, timeout=20)
        wait_for(lambda: os.path.ismount(mnt), timeout=20, what="the mount")
        before = children(p.pid)
        # the kernel's comm is cut at 15 bytes: mailkeep-smtpout is "mailkeep-smtpou"
        assert set(before) == {"mailkeep-smtpin", "mailkeep-smtpou", "mailkeep-imapd", "mailkeep-fs"}, before
        old = imaplib.IMAP4_SSL("127.0.0.1", imaps_port, ssl_context=client_ctx(), timeout=15)
        assert old.sock.getpeercert(True) == a_der
        old.login("bob", "secret-bob")

        (tls / "cert.pem").write_text(b_cert)
        (tls / "key.pem").write_text(b_key)
        pidfile = instance.data / "run" / "mailkeep.pid"
        assert int(pidfile.read_text()) == p.pid
        # the deploy hook of doc/imapd.md, with this instance's run_directory
        subprocess.run(["sh", "-c", f'kill -HUP "$(cat {pidfile})"'], check=True)
        log = Path(p.logfile)
        wait_for(lambda: log.read_text().count("TLS certificate reloaded") == 2, timeout=10,
                 what="smtpin and imapd reloaded")
        text = log.read_text()
        for name, comm in (("smtpin", "smtpin"), ("smtpout", "smtpou"), ("imapd", "imapd"), ("mount", "fs")):
            assert f"SIGHUP passed on to {name} (pid {before['mailkeep-' + comm]})" in text
        assert "subject CN=b.example.org" in text
        assert "stopping the services" not in text and "restart in" not in text

        assert children(p.pid) == before
        assert os.path.ismount(mnt) and "bob" in os.listdir(mnt)
        new = imaplib.IMAP4_SSL("127.0.0.1", imaps_port, ssl_context=client_ctx(), timeout=15)
        assert new.sock.getpeercert(True) == b_der
        new.logout()
        with smtplib.SMTP("127.0.0.1", smtp, timeout=15) as c:
            c.ehlo("client.example.net")
            assert c.starttls(context=client_ctx())[0] == 220
            assert c.sock.getpeercert(True) == b_der
        assert old.noop()[0] == "OK" and old.select("INBOX")[0] == "OK"
        old.logout()
        assert p.poll() is None
    finally:
        instance.stop(p)
        if os.path.ismount(mnt):
            subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
    assert p.returncode == 0
