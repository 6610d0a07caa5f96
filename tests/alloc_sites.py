"""Which core functions allocate on the bulk data path, and how much (a diagnostic, not a test).

    node tests/wasm_run.mjs --script tests/alloc_sites.py          # 32-bit MicroPython
    MICROPYPATH=firmware:tests micropython tests/alloc_sites.py     # 64-bit unix port

heap_lock says THAT the path allocates (tests/unit/test_noalloc.py) and coreprof says how
much per phase; neither says where (a MemoryError raised under heap_lock has no traceback).
This runs test_noalloc's bulk transfer to steady state, then wraps every function and method
of the mptcp.* modules with a gc.mem_alloc() probe (gc off) and prints, per function, the
bytes it allocated itself (its callees' bytes subtracted) per data segment. Calls made
through a name bound by `from x import f` are not wrapped: they count for their caller.
"""
import sys
import gc

sys.path.insert(0, "tests/unit")
from test_noalloc import _Bulk  # noqa: E402
import mptcp.stack  # noqa: E402,F401  (imports the whole core)

if sys.implementation.name != "micropython":
    print("alloc_sites: MicroPython only (gc.mem_alloc)")
    sys.exit(2)

_mem = gc.mem_alloc
NAMES = []
SELF = []
CALLS = []
CHILD = [0] * 100       # per call depth: the callees' bytes (plus the probes' argument tuples)
DEPTH = [0]
ON = [False]
WORD = 8 if sys.maxsize > 2 ** 32 else 4


BLOCK = 4 * WORD        # MicroPython's GC block: 4 words


def _tuple_bytes(n):
    """Heap bytes of the probe's own *args tuple (base, len, n items; () is shared)."""
    return 0 if n == 0 else ((2 * WORD + WORD * n + BLOCK - 1) // BLOCK) * BLOCK


def _probe(i, f):
    def w(*a):
        if not ON[0]:
            return f(*a)
        d = DEPTH[0]
        CHILD[d + 1] = 0
        DEPTH[0] = d + 1
        m0 = _mem()
        r = f(*a)
        inc = _mem() - m0
        DEPTH[0] = d
        SELF[i] += inc - CHILD[d + 1]
        CALLS[i] += 1
        CHILD[d] += inc + _tuple_bytes(len(a))
        return r
    return w


def _wrap(prefix, ns, put):
    for k in list(ns):
        v = ns[k]
        if type(v).__name__ in ("function", "closure") and not k.startswith("__"):
            NAMES.append(prefix + k)
            SELF.append(0)
            CALLS.append(0)
            put(k, _probe(len(NAMES) - 1, v))


def _instrument():
    for name in sorted(n for n in sys.modules if n.startswith("mptcp.")):
        m = sys.modules[name]
        d = m.__dict__
        for k in list(d):
            v = d[k]
            if isinstance(v, type) and getattr(v, "__module__", name) == name:
                _wrap(name + "." + k + ".", dict(v.__dict__), lambda kk, ww, c=v: setattr(c, kk, ww))
        _wrap(name + ".", dict(d), lambda kk, ww, mm=m: setattr(mm, kk, ww))


def run(csum, warm=300, steps=50):
    for i in range(len(SELF)):
        SELF[i] = 0
        CALLS[i] = 0
    t = _Bulk(csum, 11)
    for _ in range(warm):
        t.step()
    segs0 = t.segs
    gc.collect()
    gc.disable()
    ON[0] = True
    try:
        for _ in range(steps):
            t.step()
    finally:
        ON[0] = False
        gc.enable()
    segs = t.segs - segs0
    print("DSS checksums %s: %d data segments, %.1f B/segment in the core" % (
        "on" if csum else "off", segs, sum(SELF) / segs))
    rows = sorted([(SELF[i], NAMES[i], CALLS[i]) for i in range(len(NAMES)) if SELF[i]])
    for b, n, c in reversed(rows):
        print("  %7.1f B/segment  %5d B/call  %6d calls  %s" % (b / segs, b // c, c, n))


_instrument()
run(False)
run(True)
