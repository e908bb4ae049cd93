"""Every daemon starts through one skeleton (lib/daemon.c): the same flags,
the same answers to --help, --version and a bad flag, the same message for a
configuration that cannot be read."""
import subprocess

import pytest

from mkhelpers import BIN

DAEMONS = ["smtpin", "imapd", "fs"]


def run(name, *args):
    return subprocess.run([str(BIN / f"mailkeep-{name}"), *map(str, args)],
                          capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("name", DAEMONS)
def test_help(name):
    for flag in ("--help", "-h"):
        cp = run(name, flag)
        assert cp.returncode == 0, cp.stderr
        assert cp.stdout.startswith(f"usage: mailkeep-{name} [-c CONF] [-f] [-v]"), cp.stdout
        for opt in ("-c CONF", "-f ", "-v ", "--help", "--version"):
            assert opt in cp.stdout, (flag, opt)
        assert "invalid option" not in cp.stderr


@pytest.mark.parametrize("name", DAEMONS)
def test_version(name):
    cp = run(name, "--version")
    assert cp.returncode == 0
    assert cp.stdout.startswith(f"mailkeep-{name} ") and cp.stdout.strip().split()[-1][0].isdigit()


@pytest.mark.parametrize("name", DAEMONS)
def test_bad_flag_and_missing_config(name, tmp_path):
    cp = run(name, "--frobnicate")
    assert cp.returncode == 2
    assert f"usage: mailkeep-{name}" in cp.stderr and f"mailkeep-{name} --help" in cp.stderr
    cp = run(name, "-c", tmp_path / "nope.conf", "-f")
    assert cp.returncode == 1
    assert cp.stderr.startswith(f"mailkeep-{name}: ") and "nope.conf" in cp.stderr


def test_too_many_arguments():
    cp = run("smtpin", "extra")
    assert cp.returncode == 2 and "usage: mailkeep-smtpin" in cp.stderr
    cp = run("fs", "/a", "/b")  # fs takes one MOUNTPOINT
    assert cp.returncode == 2 and "usage: mailkeep-fs" in cp.stderr
