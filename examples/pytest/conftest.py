"""hybrid-lab as a pytest fixture: `lab up --json` is the contract.

`lab up --json` prints one JSON line on stdout once every listener is ready (endpoints,
credentials, seeded users; docs/embedding.md lists the fields), nothing else on stdout,
and exits 0 on SIGTERM. Ports 0 let the system pick free ones, so labs never collide.

The `lab` command: $HYBRID_LAB_BIN, else `lab` on PATH (`cargo install --path lab`).
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile

import pytest

LAB = os.environ.get("HYBRID_LAB_BIN") or shutil.which("lab") or "lab"


class Lab:
    """A running lab: `info` is the parsed JSON line."""

    def __init__(self, *flags):
        self.state_dir = tempfile.mkdtemp(prefix="hybrid-lab-")
        any_port = "127.0.0.1:0"
        self.process = subprocess.Popen(
            [LAB, "up", "--json", "--ldap", any_port, "--ldaps", any_port, "--https", any_port,
             "--http", any_port, "--state-dir", self.state_dir, *flags],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            shutil.rmtree(self.state_dir, ignore_errors=True)
            raise RuntimeError(f"lab up exited with {code} before it was ready (its stderr says why)")
        self.info = json.loads(line)

    @property
    def ca_cert(self):
        """The CA file both LDAPS and HTTPS chain to."""
        return self.info["adds"]["ca_cert"]

    def user(self, sam):
        return next(u for u in self.info["users"] if u["sam"] == sam)

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=10)
        shutil.rmtree(self.state_dir, ignore_errors=True)
        assert code == 0, f"lab up exited with {code} on SIGTERM"


@pytest.fixture
def lab():
    """A fresh lab for one test (frozen clock: nothing moves unless the test moves it)."""
    lab = Lab("--frozen-clock")
    yield lab
    lab.stop()


@pytest.fixture(scope="session")
def session_lab():
    """One lab for the whole session, for tests that only read."""
    lab = Lab("--frozen-clock")
    yield lab
    lab.stop()
