"""Fixtures for the Sieve, ManageSieve and quota tests: the smtpin, imapd
and fs fixtures (loaded under other module names, so the conftest files do
not clash), and the sievehelp module's helpers."""
import importlib.util

import pytest
from pathlib import Path

_here = Path(__file__).resolve().parent


def _load(name, sub):
    spec = importlib.util.spec_from_file_location(name, _here.parent / sub / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


smconf = _load("mk_sieve_smtpin_conftest", "smtpin")
storetool = smconf.storetool
smtpin_factory = smconf.smtpin_factory
raw = smconf.raw

imconf = _load("mk_sieve_imapd_conftest", "imapd")
helpers = imconf.helpers

fsconf = _load("mk_sieve_fs_conftest", "fs")
mkstore_bin = fsconf.mkstore_bin


@pytest.fixture
def mnt(instance, mkstore_bin):
    """A store with bob (uid 2001), and the mount (not started)."""
    instance.data.mkdir(parents=True, exist_ok=True)
    m = fsconf.Mount(instance, mkstore_bin)
    m.user("bob", 2001, 2001)
    yield m
    m.stop()
