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
    """Builds tests/integration/ldap/ldap-probe.c against build/'s libraries.
    LDAP_PROBE_SANITIZE=1: against build/asan's, under ASan+UBSan (make asan first);
    LDAP_PROBE_SANITIZE=thread: with the LDAP backend's sources, under TSan."""
    out = tmp_path_factory.mktemp("probe") / "ldap-probe"
    sanitize = os.environ.get("LDAP_PROBE_SANITIZE", "")
    pkgs = "lmdb libcrypto libssl ldap lber libcrypt zlib".split()
    pc = subprocess.run(["pkg-config", "--cflags", "--libs", *pkgs], capture_output=True, text=True, check=True)
    if sanitize == "thread":
        # every file on the path of a call, instrumented (TSan misses races in uninstrumented code)
        sources = [REPO / f for f in ("lib/directory_ldap.c", "lib/buf.c", "lib/log.c", "lib/util.c", "lib/password.c",
                                      "lib/directory.c", "lib/config.c", "index/dir_ldap_config.c")]
        sources += sorted((REPO / "index").glob("params*.c"))
        inputs, flags = [str(x) for x in sources], ["-fsanitize=thread"]
    else:
        build = BUILD / "asan" if sanitize == "1" else BUILD
        inputs = [str(build / "index" / "libindex.a"), str(build / "lib" / "libmk.a")]
        for lib in inputs:
            assert Path(lib).exists(), f"{lib} missing: run make (or make asan) first"
        flags = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"] if sanitize == "1" else []
    cmd = ["cc", "-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Wshadow", "-Werror", "-pthread", *flags,
           f"-I{REPO}", str(HERE / "ldap-probe.c"), *inputs, "-o", str(out), *pc.stdout.split(), "-lm"]
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
