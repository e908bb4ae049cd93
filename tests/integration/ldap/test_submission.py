"""Sending with users from LDAP (issue 15): submission on 587 with STARTTLS
authenticates against slapd, the envelope sender must be one of the user's
LDAP addresses (mail or mailAlternateAddress), local copies and the queue are
one write; and a backup MX with `relay_recipient_maps = directory` asks slapd
which recipients of the relayed domain exist.

The daemon is started with the smtpin area's Smtpin helper
(tests/integration/smtpin/conftest.py), with a submission listener added."""
import importlib.util
import re
import smtplib
import ssl
import subprocess

import pytest

from ldaptest import BIN, BUILD, HERE, REPO, cf_text
from mkhelpers import free_port

if not (BIN / "mailkeep-smtpin").exists():
    pytest.skip("mailkeep-smtpin is not built", allow_module_level=True)

_spec = importlib.util.spec_from_file_location("mk_smtpin_conftest_sub", HERE.parent / "smtpin" / "conftest.py")
_smtpin = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_smtpin)


@pytest.fixture(scope="session")
def storetool(tmp_path_factory):
    out = tmp_path_factory.mktemp("storetool") / "storetool"
    libs = subprocess.run(["pkg-config", "--libs", "lmdb", "libzstd", "libcrypto", "libssl", "libcrypt"],
                          capture_output=True, text=True, check=True).stdout.split()
    subprocess.run(["cc", "-std=gnu11", "-I", str(REPO), "-o", str(out), str(HERE.parent / "smtpin" / "storetool.c"),
                    str(BUILD / "index" / "libindex.a"), str(BUILD / "lib" / "libmk.a"), *libs, "-lpthread"],
                   check=True)
    return out


def ldap_smtpin(instance, storetool, slapd, **settings):
    cf = instance.root / "ldap-users.cf"
    cf.write_text(cf_text(slapd))
    sub_port = free_port()
    s = _smtpin.Smtpin(instance, storetool, {"user_directory": f"ldap:{cf}",
                                             "submission_listen": f"127.0.0.1:{sub_port}", **settings})
    s.sub_port = sub_port
    return s.start()


def queue_ids(instance):
    return re.findall(r"^([0-9A-F]{10,})[ !]", instance.mk("queue", "list").stdout, re.M)


def submit(s, login, password, frm, to):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", s.sub_port, timeout=20) as c:
        c.starttls(context=ctx)
        c.login(login, password)
        body = f"From: {frm}\r\nTo: {', '.join(to)}\r\nSubject: from ldap\r\n\r\nhello\r\n"
        return c.sendmail(frm, to, body)


def test_submission_with_ldap_users(instance, storetool, slapd):
    s = ldap_smtpin(instance, storetool, slapd)
    try:
        # bob's mailAlternateAddress is his; a local and a remote recipient in one write
        assert submit(s, "bob", "bobs-secret", "robert@example.org", ["alice@example.org", "carol@remote.test"]) == {}
        assert submit(s, "bob@example.org", "bobs-secret", "kelso@example.net", ["carol@remote.test"]) == {}
        inbox = s.messages("alice")
        assert len(inbox) == 1 and "sasl_username=bob" in inbox[0][3], inbox
        ids = queue_ids(instance)
        assert len(ids) == 2, instance.mk("queue", "list").stdout
        show = instance.mk("queue", "show", ids[0]).stdout + instance.mk("queue", "show", ids[1]).stdout
        assert "sender: robert@example.org" in show and "sender: kelso@example.net" in show
        assert show.count("sasl_username: bob") == 2
        # alice's address is not bob's: refused at MAIL, nothing queued
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            submit(s, "bob", "bobs-secret", "alice@example.org", ["carol@remote.test"])
        assert e.value.smtp_code == 553
        # a wrong LDAP password
        with pytest.raises(smtplib.SMTPAuthenticationError):
            submit(s, "bob", "not-bobs", "bob@example.org", ["carol@remote.test"])
        assert len(queue_ids(instance)) == 2
        assert s.fsck().returncode == 0
    finally:
        s.stop()


def test_backup_mx_recipients_from_ldap(instance, storetool, slapd):
    # this instance is a backup for example.org: not its destination, a relay domain
    s = ldap_smtpin(instance, storetool, slapd, mydestination="localhost", relay_domains="example.org",
                    relay_recipient_maps="directory")
    try:
        cp = s.swaks("--from", "someone@example.com", "--to", "robert@example.org", "--local-interface", "127.0.0.2")
        assert cp.returncode == 0, cp.stdout
        cp = s.swaks("--from", "someone@example.com", "--to", "ghost@example.org", "--local-interface", "127.0.0.2")
        assert "550 5.1.1 <ghost@example.org>" in cp.stdout, cp.stdout
        ids = queue_ids(instance)
        assert len(ids) == 1
        assert "recipient: robert@example.org" in instance.mk("queue", "show", ids[0]).stdout
        assert s.messages("bob") == []  # queued for the primary, not delivered here
    finally:
        s.stop()
