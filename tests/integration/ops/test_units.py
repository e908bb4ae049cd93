"""The service as installed (issue 19): `make install` puts the programs, the
systemd units, the sysusers and tmpfiles entries and the configuration in
place; systemd's own tools accept them: `systemd-analyze verify` (and catches
a mistake), `systemd-analyze security --offline` rates mailkeep.service's
sandbox OK, systemd-sysusers makes the user mailkeep and systemd-tmpfiles its
directories with the owners and modes the units expect. What needs systemd
as PID 1 (starting the units) is tools/test-deb.sh's part (doc/ops.md)."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mkhelpers import BUILD, REPO


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("prefix")
    cp = subprocess.run(["make", "-s", "-C", str(REPO), "install", f"BUILD={BUILD}", f"PREFIX={root}",
                         f"SYSCONFDIR={root}/etc"], capture_output=True, text=True, timeout=600)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    return root


def verify(*units, env=None):
    return subprocess.run(["systemd-analyze", "verify", *map(str, units)], capture_output=True, text=True,
                          env=env, timeout=120)


def test_make_install_puts_everything_in_place(installed):
    for f in ("bin/mailkeep", "lib/mailkeep/mailkeep-smtpin", "lib/mailkeep/mailkeep-imapd",
              "lib/mailkeep/mailkeep-fs", "lib/systemd/system/mailkeep.service",
              "lib/systemd/system/mailkeep-mount.service", "lib/sysusers.d/mailkeep.conf",
              "lib/tmpfiles.d/mailkeep.conf", "etc/mailkeep/mailkeep.conf", "share/man/man1/mailkeep.1",
              "share/man/man5/mailkeep.conf.5"):
        assert (installed / f).exists(), f
    unit = (installed / "lib/systemd/system/mailkeep.service").read_text()
    assert f"ExecStart={installed}/bin/mailkeep run --without mount" in unit
    assert f"Environment=MAILKEEP_CONF={installed}/etc/mailkeep/mailkeep.conf" in unit
    assert "@BINDIR@" not in unit and "@SYSCONFDIR@" not in unit
    # the installed mailkeep finds its services in PREFIX/lib/mailkeep, and the
    # shipped configuration passes its own check
    cp = subprocess.run([str(installed / "bin/mailkeep"), "-c", str(installed / "etc/mailkeep/mailkeep.conf"),
                         "check"], capture_output=True, text=True)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    # a second install keeps an edited configuration
    conf = installed / "etc/mailkeep/mailkeep.conf"
    conf.write_text(conf.read_text() + "myhostname = mx.example.org\n")
    subprocess.run(["make", "-s", "-C", str(REPO), "install", f"BUILD={BUILD}", f"PREFIX={installed}",
                    f"SYSCONFDIR={installed}/etc"], capture_output=True, check=True, timeout=600)
    assert "myhostname = mx.example.org" in conf.read_text()


def test_systemd_analyze_verify_accepts_the_units_and_catches_a_mistake(installed, tmp_path):
    units = installed / "lib/systemd/system"
    env = dict(os.environ, MANPATH=str(installed / "share/man"))
    cp = verify(units / "mailkeep.service", units / "mailkeep-mount.service", env=env)
    assert cp.returncode == 0 and cp.stdout + cp.stderr == "", cp.stdout + cp.stderr
    broken = tmp_path / "mailkeep.service"
    broken.write_text((units / "mailkeep.service").read_text().replace("ProtectSystem=strict", "ProtectSystem=strcit")
                      .replace("NoNewPrivileges=yes", "NoNewPrivilege=yes"))
    cp = verify(broken, env=env)
    out = cp.stdout + cp.stderr
    assert "Unknown key 'NoNewPrivilege'" in out and "protect system value, ignoring: strcit" in out, out


def test_the_sandbox_is_rated(installed):
    out = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager",
                          str(installed / "lib/systemd/system/mailkeep.service")],
                         capture_output=True, text=True, timeout=120).stdout
    m = re.search(r"Overall exposure level for mailkeep.service: ([0-9.]+) (\w+)", out)
    assert m, out[-1500:]
    assert float(m.group(1)) <= 3.0 and m.group(2) == "OK", m.group(0)
    unit = (installed / "lib/systemd/system/mailkeep.service").read_text()
    caps = re.search(r"^CapabilityBoundingSet=(.*)$", unit, re.M).group(1).split()
    assert set(caps) == {"CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_KILL"}
    for line in ("Type=notify", "ProtectSystem=strict", "PrivateTmp=yes", "NoNewPrivileges=yes",
                 "ReadWritePaths=/var/lib/mailkeep /run/mailkeep", "ExecReload=/bin/kill -HUP $MAINPID"):
        assert line in unit.splitlines(), line


def test_sysusers_and_tmpfiles_make_the_user_and_its_directories(installed, tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    for f in ("passwd", "group", "shadow", "gshadow"):
        if Path(f"/etc/{f}").exists():
            shutil.copy(f"/etc/{f}", root / "etc" / f)
    cp = subprocess.run(["systemd-sysusers", f"--root={root}", str(installed / "lib/sysusers.d/mailkeep.conf")],
                        capture_output=True, text=True)
    assert cp.returncode == 0, cp.stderr
    passwd = {ln.split(":")[0]: ln.split(":") for ln in (root / "etc/passwd").read_text().splitlines()}
    assert "mailkeep" in passwd and passwd["mailkeep"][5] == "/var/lib/mailkeep"
    groups = {ln.split(":")[0]: ln.split(":") for ln in (root / "etc/group").read_text().splitlines()}
    assert "mailkeep" in groups["ssl-cert"][3].split(",")
    cp = subprocess.run(["systemd-tmpfiles", f"--root={root}", "--create",
                         str(installed / "lib/tmpfiles.d/mailkeep.conf")], capture_output=True, text=True)
    assert cp.returncode == 0, cp.stderr
    uid, gid = int(passwd["mailkeep"][2]), int(groups["mailkeep"][2])
    want = {"var/lib/mailkeep": (0, gid, 0o770), "var/lib/mailkeep/store": (0, gid, 0o770),
            "var/lib/mailkeep/stats": (0, 0, 0o755), "run/mailkeep": (0, gid, 0o775),
            "var/lib/mailkeep/store/data.mdb": (uid, gid, 0o600), "mail": (0, 0, 0o755)}
    for path, (u, g, mode) in want.items():
        st = (root / path).stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (u, g, mode), path
