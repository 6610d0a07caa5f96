"""Command-line helpers shared by the device apps (MicroPython has no argparse)."""
import sys

try:
    import json
except ImportError:  # pragma: no cover
    import ujson as json


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


def main(name, usage, parse_args, run, argv=None):
    """The apps' common main: parse (usage on -h: exit 0; a bad command line: message and
    usage, exit 2), run -> (ok, result), print the result as ONE JSON line, exit 0 if ok."""
    if argv is None:
        argv = sys.argv[1:]
    try:
        o = parse_args(argv)
        ok, res = run(o)
    except UsageError as e:
        msg = str(e)
        if msg:
            print(name + ": " + msg, file=sys.stderr)
        print(usage, file=sys.stderr if msg else sys.stdout)
        return 2 if msg else 0
    print(json.dumps(res))
    if not ok:
        print("%s: failed: %s" % (name, res.get("error")), file=sys.stderr)
    return 0 if ok else 1
