"""doc/ldap.md's examples work: its LDIF loads into slapd with slapadd, and its
ldap-users.cf (with the test slapd's port) finds, aliases and logs in Bob."""
import re

from ldaptest import REPO, Probe, Slapd, base_ldif

DOC = REPO / "doc" / "ldap.md"


def example(name):
    text = DOC.read_text()
    m = re.search(r"<!-- example: " + re.escape(name) + r" -->\n```\n(.*?)```\n", text, re.S)
    assert m, f"no example {name} in {DOC}"
    return m.group(1)


def test_doc_example_works(probe_bin, tmp_path):
    slapd = Slapd(tmp_path / "slapd", ldif=base_ldif(people=False) + example("people.ldif"))
    slapd.start()
    try:
        cf_text = example("ldap-users.cf")
        assert "server_host = ldap://127.0.0.1:389\n" in cf_text
        cf = tmp_path / "ldap-users.cf"
        cf.write_text(cf_text.replace("127.0.0.1:389", f"127.0.0.1:{slapd.port}"))
        p = Probe(probe_bin, f"ldap:{cf}", tmp_path / "probe.log")
        try:
            assert p("lookup", "bob@example.org").startswith("OK name=bob mail=bob@example.org uid=10001 gid=10001")
            assert p("lookup", "robert@example.org").startswith("OK name=bob ")
            assert p("lookup", "alice@example.org") == "NOTFOUND"
            assert p("auth", "bob", "bobs-secret").startswith("OK name=bob ")
            assert p("auth", "bob", "") == "BADPASS"
            assert p("list") == "LIST bob"
        finally:
            p.close()
    finally:
        slapd.stop()


def test_every_setting_documented():
    names = re.findall(r'^PARAM\((\w+),', (REPO / "index" / "params_ldap.def").read_text(), re.M)
    assert len(names) >= 20
    guide = DOC.read_text()
    man = (REPO / "doc" / "man" / "mailkeep-ldap.5").read_text()
    for n in names:
        assert f"`{n}`" in guide, f"{n} missing in doc/ldap.md"
        assert re.search(r"^\.BR .*\b" + n + r"\b", man, re.M) or f".B {n}" in man, f"{n} missing in the man page"
