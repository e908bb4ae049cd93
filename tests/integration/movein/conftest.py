"""Fixtures for the moving-in tests (issue 20): a real Dovecot as the old
server, filled once per module over IMAPS; mailkeep instances with a user
bob; mailkeep-imapd to read back what was imported with a real client."""
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mkhelpers import BIN, Instance, free_port, wait_port  # noqa: E402
from moveinlib import Dovecot  # noqa: E402


@pytest.fixture(scope="module")
def dovecot():
    if shutil.which("dovecot") is None:
        pytest.skip("Dovecot is not installed (tools/install-deps.sh installs dovecot-imapd)")
    d = Dovecot({"src": "pw-src", "odd": "pw-odd", "grow": "pw-grow", "courier-a": "pw-courier"}, tokens={"token-of-odd": "odd"})
    yield d
    d.close()


class Target:
    """A mailkeep instance with user bob and the helpers to import into it."""

    def __init__(self, inst, dovecot):
        self.inst = inst
        self.dovecot = dovecot
        inst.mk("user", "add", "bob", "--password-file", "-", input="secret-bob\n")
        self.imapd_port = None
        self.imapd = None

    def pwfile(self, user):
        p = self.inst.root / f"{user}.pw"
        p.write_text(self.dovecot.users[user] + "\n")
        return p

    def import_args(self, user, *extra, port=None, ca=True):
        args = ["import", "--password-file", self.pwfile(user)]
        if ca:
            args += ["--ca-file", self.dovecot.ca]
        return [*args, *extra, "bob", self.dovecot.url(user, port)]

    def run_import(self, user, *extra, check=True, port=None, ca=True, timeout=600):
        return self.inst.mk(*self.import_args(user, *extra, port=port, ca=ca), check=check,
                            timeout=timeout)

    def start_imapd(self):
        if self.imapd is None:
            self.imapd_port = free_port()
            self.inst.write_conf(imapd_listen=f"127.0.0.1:{self.imapd_port}", imapd_tls_listen="")
            self.imapd = self.inst.spawn(BIN / "mailkeep-imapd", "-c", self.inst.conf, "-f")
            wait_port(self.imapd_port, proc=self.imapd)
        import imaplib
        m = imaplib.IMAP4("127.0.0.1", self.imapd_port, timeout=120)
        m.login("bob", "secret-bob")
        return m


@pytest.fixture
def target(tmp_path, dovecot):
    inst = Instance(tmp_path)
    t = Target(inst, dovecot)
    yield t
    inst.close()


@pytest.fixture
def local(tmp_path):
    """As target, for sources that need no server."""
    inst = Instance(tmp_path)
    t = Target(inst, None)
    yield t
    inst.close()
