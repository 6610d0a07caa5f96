"""Helpers shared by unit tests; must work on MicroPython and CPython."""
import sys

IS_MPY = sys.implementation.name == "micropython"
# MicroPython's native-code architecture (sys.implementation._mpy bits 10 and up: 2 = x64,
# 0 = none, as on the WebAssembly port); 0 on CPython
NATIVE_ARCH = (getattr(sys.implementation, "_mpy", 0) >> 10) if IS_MPY else 0


def expected_impl(cpython_impl):
    """The hot-loop implementation a module must pick here: its C-backed path on CPython;
    viper on a MicroPython with native code (the unix port compiles viper from source, and the
    build/unix_lab bundle carries x64 .mpy for it); pure Python on one without (wasm)."""
    if not IS_MPY:
        return cpython_impl
    return "viper-native" if NATIVE_ARCH else "pure-python"


def heap_lock_works():
    """True if an allocation under heap_lock fails here (MicroPython), False on CPython."""
    from mptcp.compat import heap_lock, heap_unlock
    heap_lock()
    try:
        bytearray(64)
        locked = False
    except MemoryError:
        locked = True
    heap_unlock()
    return locked


class NotApplicable(Exception):
    """A test needs something this interpreter really lacks (the WebAssembly port has no
    `socket`). tests/mpy_run.py counts it apart as "not applicable"; under pytest it is an
    ordinary exception, so the test FAILS: CPython has every feature the suite needs."""


def require_module(name):
    """Import and return top-level module `name`; NotApplicable only if this interpreter
    has no such module at all (any other import error propagates)."""
    try:
        return __import__(name)
    except ImportError as e:
        # CPython names the missing module; MicroPython only says "no module named 'x'"
        missing = getattr(e, "name", None)
        if missing is None and e.args and isinstance(e.args[0], str):
            msg = e.args[0]
            missing = name if msg.endswith("'%s'" % name) else None
        if missing != name:
            raise
        raise NotApplicable("no %s module on this port" % name)


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


def gc_frees_inside_a_call():
    """True if gc.collect() frees garbage while Python code runs. The WebAssembly port's
    collector does not (measured: 1 MB of dropped bytearrays stays counted by mem_alloc),
    so a live-heap measurement there counts every allocation since the start."""
    import gc
    if not IS_MPY:
        return True
    gc.collect()
    m0 = gc.mem_alloc()
    for _ in range(64):
        bytearray(1024)
    gc.collect()
    return gc.mem_alloc() - m0 < 32 * 1024
