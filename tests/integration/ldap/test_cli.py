"""`mailkeep user list|show|test-password` against the LDAP directory: read-only,
and saying so for add/del/passwd (tools/cmd_user.c hands them to
tools/cmd_user_ldap.c); `mailkeep check` of an ldap-users.cf."""
import re

import pytest

from ldaptest import PEOPLE, cf_text

EXIT_TEMPFAIL = 75


@pytest.fixture
def ldap_instance(instance, slapd):
    cf = instance.root / "ldap-users.cf"
    cf.write_text(cf_text(slapd))
    instance.write_conf(user_directory=f"ldap:{cf}")
    instance.slapd = slapd
    return instance


def test_user_list(ldap_instance):
    cp = ldap_instance.mk("user", "list")
    assert sorted(cp.stdout.split()) == sorted(["bob", "alice", "dave", "sam", "carol", "eve1", "eve2"])


def test_user_show(ldap_instance):
    out = ldap_instance.mk("user", "show", "bob").stdout
    assert "user bob\n" in out and "mail bob@example.org\n" in out
    assert "uid 10001\n" in out and "gid 10001\n" in out
    assert f"dn cn=Bob Kelso,{PEOPLE}\n" in out
    assert "read-only" in out
    # by alias address too
    assert "user bob\n" in ldap_instance.mk("user", "show", "robert@example.org").stdout
    cp = ldap_instance.mk("user", "show", "mallory", check=False)
    assert cp.returncode == 1 and "no user" in cp.stderr


def test_user_test_password(ldap_instance, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("bobs-secret\n")
    cp = ldap_instance.mk("user", "test-password", "bob", "--password-file", str(pw))
    assert "correct" in cp.stdout
    cp = ldap_instance.mk("user", "test-password", "bob@example.org", "--password-file", "-", input="nope\n",
                          check=False)
    assert cp.returncode == 1 and "wrong password" in cp.stderr


@pytest.mark.parametrize("args", [["add", "zoe", "--no-password"], ["del", "bob", "--yes"],
                                  ["passwd", "bob", "--password-file", "/dev/null"]])
def test_changes_refused_with_pointer_to_ldap_tools(ldap_instance, args):
    cp = ldap_instance.mk("user", *args, check=False)
    assert cp.returncode == 1
    assert "LDAP" in cp.stderr and "ldapmodify" in cp.stderr
    # nothing changed in the directory
    assert "uid: bob" in ldap_instance.slapd.search("(uid=bob)", "uid")


def test_ldap_down(ldap_instance, tmp_path):
    ldap_instance.slapd.stop()
    cp = ldap_instance.mk("user", "show", "bob", check=False)
    assert cp.returncode == EXIT_TEMPFAIL and "cannot answer now" in cp.stderr
    cp = ldap_instance.mk("user", "test-password", "bob", "--password-file", "-", input="bobs-secret\n",
                          check=False)
    assert cp.returncode == EXIT_TEMPFAIL
    ldap_instance.slapd.start()
    assert "user bob" in ldap_instance.mk("user", "show", "bob").stdout


def test_check_reads_the_cf_file(instance, slapd):
    cf = instance.root / "ldap-users.cf"
    instance.write_conf(user_directory=f"ldap:{cf}")
    cf.write_text(cf_text(slapd) + "scpoe = sub\ntimeout = 5 parsecs\n")
    cp = instance.mk("check", check=False)
    out = cp.stdout + cp.stderr
    assert cp.returncode == 1
    assert re.search(re.escape(str(cf)) + r":\d+: .*scpoe", out), out
    assert re.search(re.escape(str(cf)) + r":\d+: .*timeout", out), out
    # a word the backend would refuse: checked against the setting's words, at its line
    cf.write_text(cf_text(slapd, scope="deep"))
    cp = instance.mk("check", check=False)
    out = cp.stdout + cp.stderr
    assert cp.returncode == 1
    assert re.search(re.escape(str(cf)) + r":\d+: scope = deep: expected sub, one or base", out), out
    cf.write_text(cf_text(slapd))
    out = instance.mk("check", check=False)
    assert str(cf) not in out.stdout + out.stderr
