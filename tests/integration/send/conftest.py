"""Fixtures of the sending tests (submission, the queue, mailkeep-smtpout):
a mailkeep instance factory, smtp-sink far ends and a local DNS server, each
ended by pid when the test ends. Helpers are in sendhelp.py."""
import pytest

from sendhelp import Dns, Mk, Sink, build_storetool


@pytest.fixture(scope="session")
def storetool(tmp_path_factory):
    return build_storetool(tmp_path_factory.mktemp("storetool") / "storetool")


@pytest.fixture
def mk_factory(tmp_path, storetool):
    made = []

    def make(name="mk", **settings):
        m = Mk(tmp_path / name, storetool, **settings)
        made.append(m)
        return m

    yield make
    for m in reversed(made):
        m.close()


@pytest.fixture
def mk(mk_factory):
    """smtpin with submission, users alice and bob (alias al@example.org ->
    alice), not started."""
    m = mk_factory()
    m.useradd("alice")
    m.useradd("bob")
    m.alias("al@example.org", "alice")
    return m


@pytest.fixture
def sink_factory(tmp_path):
    made = []

    def make(name="sink", **kw):
        s = Sink(tmp_path / name, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.remove()


@pytest.fixture
def dns_factory(tmp_path):
    made = []

    def make(records):
        d = Dns(tmp_path, records)
        made.append(d)
        return d.start()

    yield make
    for d in made:
        d.stop()
