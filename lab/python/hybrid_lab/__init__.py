"""A hybrid identity lab for tests, from Python: `Lab()` starts `lab up --json` and reads its
one JSON line (endpoints, credentials, seeded users); `stop()` ends it with SIGTERM.

The `lab` binary: $HYBRID_LAB_BIN, else the one this package was installed with (the wheel
puts it in the environment's scripts directory), else `lab` on PATH. Linux only.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile

__all__ = ["Lab", "lab_binary"]

ANY_PORT = "127.0.0.1:0"


def lab_binary():
    """The `lab` command this package runs."""
    named = os.environ.get("HYBRID_LAB_BIN")
    if named:
        return named
    exe = "lab.exe" if sys.platform == "win32" else "lab"
    installed = os.path.join(sysconfig.get_path("scripts"), exe)
    if os.path.isfile(installed) and os.access(installed, os.X_OK):
        return installed
    found = shutil.which("lab")
    if found:
        return found
    raise RuntimeError("no `lab` command: install the hybrid-lab wheel, or set HYBRID_LAB_BIN")


class Lab:
    """A running lab. `info` is the parsed JSON line of `lab up --json`."""

    def __init__(self, *flags):
        if not sys.platform.startswith("linux"):
            raise RuntimeError(f"hybrid-lab runs on Linux only (this is {sys.platform})")
        self.state_dir = tempfile.mkdtemp(prefix="hybrid-lab-")
        # --json: the lab also ends if this process dies without stopping it
        argv = [lab_binary(), "up", "--json", "--ldap", ANY_PORT, "--ldaps", ANY_PORT,
                "--https", ANY_PORT, "--http", ANY_PORT, "--state-dir", self.state_dir, *flags]
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
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
        """A seeded account by sAMAccountName (User1 … User5, cloud-only accounts)."""
        return next(u for u in self.info["users"] if u["sam"] == sam)

    def stop(self):
        """SIGTERM, then wait: a lab exits 0 on it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=10)
        self.process.stdout.close()
        shutil.rmtree(self.state_dir, ignore_errors=True)
        if code != 0:
            raise RuntimeError(f"lab up exited with {code} on SIGTERM")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
