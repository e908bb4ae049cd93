"""SIGHUP loads the TLS certificate again (renewal, e.g. certbot's deploy hook):
new connections get the new certificate, open ones go on with the old one,
and files that cannot be used leave the daemon running on what it had."""
import os
import signal
import smtplib
import ssl

from mkhelpers import client_ctx, make_cert


def der(pem):
    return ssl.PEM_cert_to_DER_cert(pem)


def starttls(port):
    c = smtplib.SMTP("127.0.0.1", port, timeout=15)
    c.ehlo("client.example.net")
    code, _ = c.starttls(context=client_ctx())
    assert code == 220
    c.ehlo("client.example.net")
    return c


def smtps(port):
    return smtplib.SMTP_SSL("127.0.0.1", port, timeout=15, context=client_ctx())


def peer(c):
    return c.sock.getpeercert(binary_form=True)


def test_sighup_reloads_the_certificate(smtpin_factory):
    s = smtpin_factory()
    s.useradd("bob")
    cert_file, key_file = s.tls_dir / "cert.pem", s.tls_dir / "key.pem"
    a_cert, a_key = make_cert(s.tls_dir / "new", "a.example.org")
    b_cert, b_key = make_cert(s.tls_dir / "new", "b.example.org")
    cert_file.write_text(a_cert)
    key_file.write_text(a_key)
    s.start()
    pid = s.proc.pid

    old_starttls, old_smtps = starttls(s.port), smtps(s.smtps_port)
    assert peer(old_starttls) == der(a_cert) and peer(old_smtps) == der(a_cert)

    # renewal: new files under the configured names, then SIGHUP to the daemon
    cert_file.write_text(b_cert)
    key_file.write_text(b_key)
    os.kill(pid, signal.SIGHUP)
    m = s.wait_log(r"TLS certificate reloaded from \S*cert\.pem and \S*key\.pem: (subject CN=[^,]+), .*notAfter (\w+)")
    assert m.group(1) == "subject CN=b.example.org"
    for c in (starttls(s.port), smtps(s.smtps_port)):
        assert peer(c) == der(b_cert)
        c.quit()
    # the sessions opened before go on, on the certificate they started with
    for c in (old_starttls, old_smtps):
        assert c.noop()[0] == 250
        assert peer(c) == der(a_cert)
    old_starttls.sendmail("alice@example.net", ["bob@example.org"], b"Subject: before\r\n\r\nold session\r\n")
    assert len(s.messages("bob")) == 1
    assert s.proc.poll() is None and s.proc.pid == pid

    # garbage in the certificate file: a warning that says why, B is still served
    cert_file.write_text("garbage\n")
    os.kill(pid, signal.SIGHUP)
    m = s.wait_log(r"warning: TLS certificate not reloaded: (\S+): cannot load certificate: .*no start line.*"
                   r"still serving the one loaded before \(subject CN=b\.example\.org")
    assert m.group(1) == str(cert_file)
    # a key of another certificate: named as such
    cert_file.write_text(a_cert)
    os.kill(pid, signal.SIGHUP)
    s.wait_log(r"warning: TLS certificate not reloaded: \S*key\.pem does not match the certificate in \S*cert\.pem")
    # a missing key file
    key_file.unlink()
    os.kill(pid, signal.SIGHUP)
    s.wait_log(r"warning: TLS certificate not reloaded: \S*key\.pem: cannot read the private key: No such file")
    assert s.proc.poll() is None
    for c in (starttls(s.port), smtps(s.smtps_port)):
        assert peer(c) == der(b_cert)
        c.quit()
    for c in (old_starttls, old_smtps):
        assert c.noop()[0] == 250
        c.quit()
    assert s.proc.poll() is None and s.proc.pid == pid
    assert "terminating" not in s.log()


def test_sighup_loads_a_certificate_that_came_later(smtpin_factory):
    """Started without certificate files (STARTTLS not offered), the first
    certificate is served after SIGHUP, without a restart."""
    s = smtpin_factory()
    cert_file, key_file = s.tls_dir / "cert.pem", s.tls_dir / "key.pem"
    cert_file.unlink()
    key_file.unlink()
    s.start()
    with smtplib.SMTP("127.0.0.1", s.port, timeout=15) as c:
        c.ehlo("client.example.net")
        assert not c.has_extn("starttls")
    a_cert, a_key = make_cert(s.tls_dir / "new", "a.example.org")
    cert_file.write_text(a_cert)
    key_file.write_text(a_key)
    os.kill(s.proc.pid, signal.SIGHUP)
    s.wait_log(r"TLS certificate reloaded from .*subject CN=a\.example\.org")
    c = starttls(s.port)
    assert peer(c) == der(a_cert)
    c.quit()
    assert s.proc.poll() is None
