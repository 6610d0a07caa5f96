"""Helpers shared by unit tests; must work on MicroPython and CPython."""
import sys

IS_MPY = sys.implementation.name == "micropython"


def raises(exc, fn, *args, **kw):
    """Assert that fn(*args, **kw) raises exc; return the exception."""
    try:
        fn(*args, **kw)
    except exc as e:
        return e
    raise AssertionError("%r did not raise %r" % (fn, exc))


def hexb(s):
    """bytes from a hex string with optional spaces (MicroPython lacks bytes.fromhex args)."""
    s = s.replace(" ", "").replace("\n", "")
    return bytes(int(s[i:i + 2], 16) for i in range(0, len(s), 2))


VECTORS = "../shared/vectors"
