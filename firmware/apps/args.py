"""Command-line helpers shared by the device apps (MicroPython has no argparse)."""


class UsageError(Exception):
    """A bad command line: the app prints the message and its usage, exits 2."""


def parse_size(s):
    """'8M' -> 8388608: bytes with optional K/M/G (powers of 1024, 'iB'/'B' ignored)."""
    s = s.strip().upper().replace("IB", "").replace("B", "")
    mult = 1
    if s and s[-1] in "KMG":
        mult = {"K": 1024, "M": 1024 * 1024, "G": 1024 * 1024 * 1024}[s[-1]]
        s = s[:-1]
    try:
        v = int(s) * mult
    except ValueError:
        raise UsageError("bad size: %r" % s)
    if v < 0:
        raise UsageError("size must be >= 0")
    return v
