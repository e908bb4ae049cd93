"""TLS to the LDAP server: STARTTLS and ldaps:// with the server's CA, and a
server certificate that does not verify refused (a temporary failure)."""
import pytest

from ldaptest import Probe, Slapd, cf_text


@pytest.fixture
def tls_slapd(tmp_path):
    s = Slapd(tmp_path / "slapd", tls=True)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def open_probe(probe_bin, tmp_path):
    made = []

    def open_(slapd, **over):
        cf = tmp_path / f"tls-{len(made)}.cf"
        cf.write_text(cf_text(slapd, **over))
        p = Probe(probe_bin, f"ldap:{cf}", cf.with_suffix(".log"))
        made.append(p)
        return p

    yield open_
    for p in made:
        p.close()


def test_start_tls(tls_slapd, open_probe):
    p = open_probe(tls_slapd, start_tls="yes", tls_ca_cert_file=tls_slapd.ca)
    assert p("lookup", "bob@example.org").startswith("OK name=bob ")
    assert p("auth", "bob", "bobs-secret").startswith("OK name=bob ")
    assert p("auth", "bob", "wrong") == "BADPASS"


def test_ldaps(tls_slapd, open_probe):
    p = open_probe(tls_slapd, server_host=f"ldaps://127.0.0.1:{tls_slapd.tls_port}",
                   tls_ca_cert_file=tls_slapd.ca)
    assert p("lookup", "robert@example.org").startswith("OK name=bob ")
    assert p("auth", "alice", "wonder land!").startswith("OK name=alice ")


def test_unverified_certificate_refused(tls_slapd, open_probe, tmp_path):
    # a CA that did not sign the server's certificate
    other = Slapd(tmp_path / "other", tls=True)
    p = open_probe(tls_slapd, start_tls="yes", tls_ca_cert_file=other.ca)
    assert p("lookup", "bob@example.org").startswith("TEMPFAIL ")
    q = open_probe(tls_slapd, server_host=f"ldaps://127.0.0.1:{tls_slapd.tls_port}", tls_ca_cert_file=other.ca)
    assert q("auth", "bob", "bobs-secret").startswith("TEMPFAIL ")
    # unless the admin says so
    r = open_probe(tls_slapd, start_tls="yes", tls_ca_cert_file=other.ca, tls_require_cert="no")
    assert r("lookup", "bob@example.org").startswith("OK name=bob ")


def test_start_tls_refused_by_plain_server(slapd, open_probe):
    # the server has no TLS: never fall back to plaintext
    p = open_probe(slapd, start_tls="yes")
    assert p("lookup", "bob@example.org").startswith("TEMPFAIL ")


def test_missing_ca_file(tls_slapd, open_probe, tmp_path):
    p = open_probe(tls_slapd, start_tls="yes", tls_ca_cert_file=tmp_path / "no-such-ca.pem")
    assert p("lookup", "bob@example.org").startswith("TEMPFAIL ")
