"""Quota limits from LDAP attributes (ldap quota_storage_attribute,
quota_messages_attribute): smtpin refuses a recipient over the limit the
directory gives (452 4.2.2), a changed attribute takes effect after the
cache's TTL, and an entry without the attribute falls back to the default."""
import importlib.util
import subprocess
import time

import pytest

from ldaptest import BIN, BUILD, HERE, PEOPLE, REPO, cf_text

if not (BIN / "mailkeep-smtpin").exists():
    pytest.skip("mailkeep-smtpin is not built", allow_module_level=True)

_spec = importlib.util.spec_from_file_location("mk_smtpin_conftest_q", HERE.parent / "smtpin" / "conftest.py")
_smtpin = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_smtpin)


@pytest.fixture(scope="session")
def storetool(tmp_path_factory):
    out = tmp_path_factory.mktemp("storetool") / "storetool"
    libs = subprocess.run(["pkg-config", "--libs", "lmdb", "libcrypto", "libssl", "libcrypt"],
                          capture_output=True, text=True, check=True).stdout.split()
    subprocess.run(["cc", "-std=gnu11", "-I", str(REPO), "-o", str(out), str(HERE.parent / "smtpin" / "storetool.c"),
                    str(BUILD / "index" / "libindex.a"), str(BUILD / "lib" / "libmk.a"), *libs, "-lpthread"],
                   check=True)
    return out


def test_quota_from_ldap_attributes(instance, storetool, slapd):
    dn = slapd.search("(uid=bob)", "dn").split("\n")[0][4:]
    slapd.modify(f"dn: {dn}\nchangetype: modify\nadd: employeeNumber\nemployeeNumber: 6k\n")
    cf = instance.root / "ldap-users.cf"
    cf.write_text(cf_text(slapd, cache_ttl="1s", negative_cache_ttl="1s",
                          quota_storage_attribute="employeeNumber", quota_messages_attribute="roomNumber"))
    mx = _smtpin.Smtpin(instance, storetool, {"user_directory": f"ldap:{cf}", "quota_message_limit": "2"})
    mx.start()
    try:
        body = "x" * 2500
        def send(to):
            return mx.swaks("--to", to, "--from", "someone@example.com", "--body", body)
        for _ in range(2):
            assert send("bob@example.org").returncode == 0
        cp = send("bob@example.org")            # 6 KB: the directory's limit
        assert "452 4.2.2 <bob@example.org>: Mailbox full: over quota" in cp.stdout, cp.stdout[-600:]
        # alice has no attribute: the default (2 messages) holds for her
        for _ in range(2):
            assert send("alice@example.org").returncode == 0
        assert "452 4.2.2" in send("alice@example.org").stdout
        # a bigger limit in LDAP: taken once the cache's TTL has passed
        slapd.modify(f"dn: {dn}\nchangetype: modify\nreplace: employeeNumber\nemployeeNumber: 1m\n"
                     f"-\nadd: roomNumber\nroomNumber: 10\n")
        time.sleep(1.3)
        assert send("bob@example.org").returncode == 0
        mine = [m for m in mx.messages("bob") if "from=<someone@example.com>" in m[3]]
        assert len(mine) == 3   # (beside the quota warning the 95% crossing put in INBOX)
    finally:
        mx.stop()
