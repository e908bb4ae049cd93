"""imapd with users from LDAP: LOGIN with good, bad and empty passwords (the
empty one refused by mailkeep itself), logins by address and alias, and slapd
stopped (NO [UNAVAILABLE]) and started again (logins work)."""
import imaplib
import importlib.util
import time

import pytest

from ldaptest import BIN, HERE, cf_text

if not (BIN / "mailkeep-imapd").exists():
    pytest.skip("mailkeep-imapd is not built", allow_module_level=True)

_spec = importlib.util.spec_from_file_location("mk_imapd_conftest", HERE.parent / "imapd" / "conftest.py")
_imapd = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_imapd)


@pytest.fixture
def imap(instance, slapd, tmp_path):
    cf = instance.root / "ldap-users.cf"
    cf.write_text(cf_text(slapd, cache_ttl="1s", negative_cache_ttl="1s"))
    instance.data.mkdir(parents=True, exist_ok=True)
    d = _imapd.Imapd(instance, helpers=None)
    instance.write_conf(user_directory=f"ldap:{cf}")
    d.slapd = slapd
    d.start()
    return d


def login(d, user, password):
    """'OK' or the NO text."""
    m = d.connect_tls()
    try:
        m.login(user, password)
    except imaplib.IMAP4.error as e:
        return str(e)
    try:
        typ, _ = m.select("INBOX")
        assert typ == "OK"
    finally:
        m.logout()
    return "OK"


def test_imap_login(imap):
    assert login(imap, "bob", "bobs-secret") == "OK"
    assert login(imap, "bob@example.org", "bobs-secret") == "OK"
    assert login(imap, "robert@example.org", "bobs-secret") == "OK"
    assert login(imap, "alice", "wonder land!") == "OK"
    assert "AUTHENTICATIONFAILED" in login(imap, "bob", "wrong")
    assert "AUTHENTICATIONFAILED" in login(imap, "bob", "")
    assert "AUTHENTICATIONFAILED" in login(imap, "ghost", "x")
    assert "AUTHENTICATIONFAILED" in login(imap, "*", "bobs-secret")
    # quoted by hand: imaplib sends user names as atoms
    assert "AUTHENTICATIONFAILED" in login(imap, '"bob)(uid=*"', "bobs-secret")
    assert "AUTHENTICATIONFAILED" in login(imap, '"*)(|(uid=*"', "bobs-secret")


def test_imap_login_ldap_down(imap):
    assert login(imap, "dave", "open the pod bay doors") == "OK"
    imap.slapd.stop()
    time.sleep(1.3)
    for user, pw in (("dave", "open the pod bay doors"), ("dave", "wrong"), ("ghost", "x")):
        answer = login(imap, user, pw)
        assert "UNAVAILABLE" in answer, answer
    imap.slapd.start()
    assert login(imap, "dave", "open the pod bay doors") == "OK"
    assert "AUTHENTICATIONFAILED" in login(imap, "dave", "wrong")
