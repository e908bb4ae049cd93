"""Fixtures for the spam tests: the fixtures of tests/integration/fs, imapd and
smtpin (loaded under other module names, so the conftest files do not clash)."""
import importlib.util
from pathlib import Path

from mkhelpers import CORPUS  # noqa: E402,F401

_fs = Path(__file__).resolve().parents[1] / "fs" / "conftest.py"
_spec = importlib.util.spec_from_file_location("mk_fs_conftest", _fs)
fsconf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fsconf)

_im = Path(__file__).resolve().parents[1] / "imapd" / "conftest.py"
_spec = importlib.util.spec_from_file_location("mk_imapd_conftest", _im)
imconf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(imconf)
helpers = imconf.helpers
imapd = imconf.imapd

_sm = Path(__file__).resolve().parents[1] / "smtpin" / "conftest.py"
_spec = importlib.util.spec_from_file_location("mk_smtpin_conftest", _sm)
smconf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(smconf)
storetool = smconf.storetool
smtpin_factory = smconf.smtpin_factory

mkstore_bin = fsconf.mkstore_bin
store_users = fsconf.store_users
mount = fsconf.mount
wait_for = fsconf.wait_for


from spamhelp import spam_stats  # noqa: E402,F401  (tests import it from spamhelp)
