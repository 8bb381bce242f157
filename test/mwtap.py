"""mwtap -- the skip rule of the test suite for python test scripts.

    import mwtap
    mwtap.skip_all("python3-foo missing")      # whole script: exits
    print(mwtap.skip_line(n, "desc", "why"))   # one TAP test line

automake's TAP driver counts "1..0 # SKIP" and "ok N # SKIP" as SKIP (never
PASS).  With CI=true (CI installs every dependency) a skip is a failure
instead, like skip/skip_all in t/lib.sh.
"""
import os
import sys


def in_ci():
    return os.environ.get("CI") == "true"


def skip_all(why):
    """Skip the whole script (before any test line); does not return."""
    if in_ci():
        print("not ok 1 - skipped, but CI=true: %s" % why)
        print("1..1")
        sys.exit(1)
    print("1..0 # SKIP %s" % why)
    sys.exit(0)


def skip_line(n, desc, why):
    """The TAP line for test N skipped because of WHY (a failure if CI)."""
    if in_ci():
        return "not ok %d - %s (skipped, but CI=true: %s)" % (n, desc, why)
    return "ok %d - %s # SKIP %s" % (n, desc, why)
