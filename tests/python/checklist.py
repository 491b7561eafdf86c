"""The checks a client script makes, one line each: `check(what, cond, detail)` prints `ok`
or `FAIL` and stops the script at the first failure; `done()` prints how many passed (the
Rust test that runs the script looks for that line)."""
import sys

_passed = 0


def check(what, cond, detail=""):
    global _passed
    if not cond:
        print(f"FAIL {what}: {detail}")
        sys.exit(1)
    _passed += 1
    print(f"ok   {what}")


def done():
    print(f"{_passed} checks passed")
