"""pytest fixtures for hybrid-lab (registered through the `pytest11` entry point):

- `hybrid_lab`: a fresh lab for one test (frozen clock: nothing moves unless the test moves it);
- `hybrid_lab_session`: one lab for the whole session, for tests that only read.

`--hybrid-lab-flag=FLAG` (repeatable) passes a flag to every `lab up`, e.g. `--no-engine`.
"""
import pytest

from . import Lab


def pytest_addoption(parser):
    parser.getgroup("hybrid-lab").addoption(
        "--hybrid-lab-flag", action="append", default=[], metavar="FLAG",
        help="a flag for `lab up` (repeatable), e.g. --hybrid-lab-flag=--no-engine",
    )


def _flags(config):
    return ["--frozen-clock", *config.getoption("--hybrid-lab-flag")]


@pytest.fixture
def hybrid_lab(request):
    """A fresh lab for one test."""
    lab = Lab(*_flags(request.config))
    yield lab
    lab.stop()


@pytest.fixture(scope="session")
def hybrid_lab_session(request):
    """One lab for the whole session."""
    lab = Lab(*_flags(request.config))
    yield lab
    lab.stop()
