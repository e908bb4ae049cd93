"""Mount ownership from LDAP: mail delivered by smtpin to LDAP users shows on
the FUSE mount owned by their uidNumber/gidNumber (the store's record of the
user is kept in step with LDAP by index/dir_sync.c), also after a change of
uidNumber in LDAP."""
import importlib.util
import os
import time

import pytest

from ldaptest import BIN, HERE, PEOPLE, cf_text

if not (BIN / "mailkeep-smtpin").exists() or not (BIN / "mailkeep-fs").exists():
    pytest.skip("mailkeep-smtpin or mailkeep-fs is not built", allow_module_level=True)


def _load(area):
    spec = importlib.util.spec_from_file_location(f"mk_{area}_conftest", HERE.parent / area / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_smtpin = _load("smtpin")
_fs = _load("fs")

from test_smtpin import storetool  # noqa: E402,F401  (the fixture)


@pytest.fixture
def mx(instance, storetool, slapd):  # noqa: F811
    cf = instance.root / "ldap-users.cf"
    cf.write_text(cf_text(slapd, cache_ttl="1s", negative_cache_ttl="1s"))
    s = _smtpin.Smtpin(instance, storetool, {"user_directory": f"ldap:{cf}"})
    s.slapd = slapd
    s.start()
    yield s
    s.stop()


def mounted(instance):
    m = _fs.Mount(instance, None)
    m.start()
    return m


def messages(userdir):
    return list((userdir / "new").iterdir()) + list((userdir / "cur").iterdir())


def owners(path):
    st = os.stat(path)
    return st.st_uid, st.st_gid


def test_mount_owner_is_uidnumber(mx, instance):
    for to in ("bob@example.org", "robert@example.org", "alice@example.org"):
        cp = mx.swaks("--to", to, "--from", "someone@example.com")
        assert cp.returncode == 0, cp.stdout
    m = mounted(instance)
    try:
        assert owners(m.path / "bob") == (10001, 10001)
        assert owners(m.path / "alice") == (10002, 10002)
        files = messages(m.path / "bob")
        assert len(files) == 2
        assert all(owners(f) == (10001, 10001) for f in files)
        assert [owners(f) for f in messages(m.path / "alice")] == [(10002, 10002)]
    finally:
        m.stop()


def test_uidnumber_change_follows(mx, instance):
    assert mx.swaks("--to", "dave@example.org", "--from", "someone@example.com").returncode == 0
    mx.slapd.modify(f"dn: cn=Dave Bowman,{PEOPLE}\nchangetype: modify\nreplace: uidNumber\nuidNumber: 20003\n"
                    "-\nreplace: gidNumber\ngidNumber: 20004\n")
    time.sleep(1.3)  # past cache_ttl
    assert mx.swaks("--to", "dave@example.org", "--from", "someone@example.com").returncode == 0
    m = mounted(instance)
    try:
        assert owners(m.path / "dave") == (20003, 20004)
        assert [owners(f) for f in messages(m.path / "dave")] == [(20003, 20004)] * 2
    finally:
        m.stop()
