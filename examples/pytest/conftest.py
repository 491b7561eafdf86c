"""hybrid-lab as pytest fixtures of this project's own, on `hybrid_lab.Lab` (the package the
wheel installs, docs/embedding.md; or lab/python on PYTHONPATH beside a `lab` from `cargo
install`). `Lab` runs `lab up --json` and reads its one line: endpoints, credentials, seeded
users. The wheel's plugin gives the same as `hybrid_lab` and `hybrid_lab_session`; fixtures of
your own choose their flags and names.

The `lab` command: $HYBRID_LAB_BIN, else the wheel's, else `lab` on PATH.
"""
import pytest
from hybrid_lab import Lab


@pytest.fixture
def lab():
    """A fresh lab for one test (frozen clock: nothing moves unless the test moves it)."""
    with Lab("--frozen-clock") as lab:
        yield lab


@pytest.fixture(scope="session")
def session_lab():
    """One lab for the whole session, for tests that only read."""
    with Lab("--frozen-clock") as lab:
        yield lab
