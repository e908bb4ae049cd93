"""Fixtures for the imapd tests: an instance with a TLS certificate, users
alice and bob (password "secret-<name>"), and mailkeep-imapd running on free
ports (plain+STARTTLS and implicit TLS)."""
import imaplib
import os
import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mkhelpers import BIN, BUILD, CORPUS, REPO, free_port, wait_port  # noqa: E402,F401
from imapdutil import Imapd  # noqa: E402  (tests/integration/ldap uses conftest.Imapd too)

HERE = Path(__file__).resolve().parent
PKGS = "lmdb libzstd libcrypto libssl libevent libevent_openssl libevent_pthreads ldap lber libetpan zlib libcrypt"


def build_helper(name, tmpdir):
    """Compiles a small C test helper from this folder against the built libraries."""
    out = Path(tmpdir) / name
    if out.exists():
        return out
    libs = subprocess.run(["pkg-config", "--libs", *PKGS.split()], capture_output=True, text=True,
                          check=True).stdout.split()
    subprocess.run(["cc", "-std=gnu11", "-O1", "-I", str(REPO), "-o", str(out), str(HERE / f"{name}.c"),
                    str(BUILD / "index" / "libindex.a"), str(BUILD / "lib" / "libmk.a"), *libs,
                    "-pthread", "-lm"], check=True)
    return out


@pytest.fixture(scope="session")
def helpers(tmp_path_factory):
    d = tmp_path_factory.mktemp("helpers")
    return {"mkuser": build_helper("mkuser", d), "etpan_check": build_helper("etpan_check", d)}


@pytest.fixture
def imapd(instance, helpers):
    d = Imapd(instance, helpers)
    d.add_user("alice")
    d.add_user("bob")
    d.start()
    yield d

