"""Fixtures for the LDAP directory tests (helpers in ldaptest.py)."""
import os
import subprocess
from pathlib import Path

import pytest

from ldaptest import BUILD, HERE, REPO, Probe, Slapd, cf_text


@pytest.fixture
def slapd(tmp_path):
    s = Slapd(tmp_path / "slapd")
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def probe_bin(tmp_path_factory):
    """Builds tests/integration/ldap/ldap-probe.c against build/'s libraries
    (with LDAP_PROBE_SANITIZE=1: against build/asan's, under ASan+UBSan)."""
    out = tmp_path_factory.mktemp("probe") / "ldap-probe"
    sanitize = os.environ.get("LDAP_PROBE_SANITIZE") == "1"
    build = BUILD / "asan" if sanitize else BUILD
    libs = [str(build / "index" / "libindex.a"), str(build / "lib" / "libmk.a")]
    for lib in libs:
        assert Path(lib).exists(), f"{lib} missing: run make (or make asan) first"
    pkgs = "lmdb libcrypto libssl ldap lber libcrypt zlib".split()
    pc = subprocess.run(["pkg-config", "--cflags", "--libs", *pkgs], capture_output=True, text=True, check=True)
    flags = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"] if sanitize else []
    cmd = ["cc", "-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Wshadow", "-Werror", "-pthread", *flags,
           f"-I{REPO}", str(HERE / "ldap-probe.c"), "-o", str(out), *libs, *pc.stdout.split(), "-lm"]
    subprocess.run(cmd, check=True)
    return out


@pytest.fixture
def probe(probe_bin, slapd, tmp_path):
    """Opens the backend with an .cf file; probe.open(**settings) for variants."""
    made = []

    def open_(**over):
        cf = tmp_path / f"ldap-users-{len(made)}.cf"
        cf.write_text(cf_text(slapd, **over))
        p = Probe(probe_bin, f"ldap:{cf}", cf.with_suffix(".log"))
        made.append(p)
        return p

    open_.slapd = slapd
    yield open_
    for p in made:
        p.close()
