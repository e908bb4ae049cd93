"""`mailkeep import` / `export` for users that live in LDAP (tools engineer):
the store learns a directory user at import; an unknown user is refused; a
directory that is down is a temporary failure."""
from ldaptest import cf_text

EXIT_TEMPFAIL = 75


def _ldap_instance(instance, slapd):
    cf = instance.root / "ldap-users.cf"
    cf.write_text(cf_text(slapd))
    instance.write_conf(user_directory=f"ldap:{cf}")
    return instance


def test_import_for_ldap_user(instance, slapd, tmp_path):
    inst = _ldap_instance(instance, slapd)
    box = tmp_path / "m.mbox"
    box.write_bytes(b"From a@b Thu Aug 22 12:36:23 2002\nSubject: old mail\n\nkept\n")
    cp = inst.mk("import", "bob", box)
    assert "imported 1 message " in cp.stdout
    out = tmp_path / "out"
    inst.mk("export", "--format", "files", "--no-from-line", "bob", out)
    (msg,) = list((out / "INBOX").iterdir())
    assert msg.read_bytes() == b"Subject: old mail\n\nkept\n"
    # again: nothing new
    assert "1 already there" in inst.mk("import", "bob", box).stdout
    nobody = inst.mk("import", "mallory", box, check=False)
    assert nobody.returncode == 1 and "no user 'mallory'" in nobody.stderr
    slapd.stop()
    down = inst.mk("import", "bob", box, check=False)
    assert down.returncode == EXIT_TEMPFAIL and "cannot answer now" in down.stderr
    slapd.start()
