"""Shared fixtures for the integration tests.

Every test gets its own instance directory (config, store, run dir) under
pytest's tmp_path, its own free ports on 127.0.0.1, and the daemons it starts
are ended by pid when it finishes. Area-specific fixtures live in the
conftest.py of each sub-folder (smtpin/, fs/, imapd/, ...).

Tests never `from conftest import ...`: pytest keeps only one module named
conftest at a time, so the name means a different file in each run. Shared
helpers are in mkhelpers.py (`from mkhelpers import BIN, wait_for, ...`);
an area's own helpers go in a module with its own name.
"""
from pathlib import Path
import sys

import pytest

from mkhelpers import BIN, BUILD, CORPUS, REPO, Instance, free_port, wait_for, wait_port  # noqa: F401

@pytest.fixture
def instance(tmp_path):
    inst = Instance(tmp_path)
    yield inst
    inst.close()


@pytest.fixture(scope="session")
def corpus_files():
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name != "README.md")
    assert files, f"no corpus under {CORPUS}"
    return files


def pytest_collectstart(collector):
    """Safety net for `from conftest import ...` in a test module: just before
    pytest imports a test module, make `conftest` mean the nearest conftest.py
    of that module's folder (pytest itself leaves the last one loaded there)."""
    if not isinstance(collector, pytest.Module):
        return
    by_file = {}
    for plugin in collector.config.pluginmanager.get_plugins():
        f = getattr(plugin, "__file__", None)
        if f and Path(f).name == "conftest.py":
            by_file[Path(f).resolve()] = plugin
    d = Path(str(collector.path)).resolve().parent
    here = Path(__file__).resolve().parent
    while True:
        mod = by_file.get(d / "conftest.py")
        if mod is not None:
            sys.modules["conftest"] = mod
            return
        if d == here or d == d.parent:
            return
        d = d.parent
