"""Run the unit suite under MicroPython (which has no unittest/pytest).

Usage: micropython tests/mpy_run.py tests/unit [name-substring]
Every module tests/unit/test_*.py is imported and each top-level function
named test_* is called with no arguments; a test fails by raising.
The same files run under CPython with pytest, so they use plain asserts and
the helpers in tests/unit/tutil.py only.

A test whose feature this interpreter really lacks raises tutil.NotApplicable
(e.g. no `socket` on the WebAssembly port): it is counted and listed apart as
"not applicable: name (reason)", neither passed nor failed. Under pytest the
same exception is a failure.
"""
import gc
import sys
import os


def _not_applicable_class():
    """tutil.NotApplicable (tutil sits in the test directory, already on sys.path)."""
    try:
        import tutil
        return tutil.NotApplicable
    except (ImportError, AttributeError):
        class _Never(Exception):
            pass
        return _Never


def main(argv):
    if len(argv) < 2:
        print("usage: mpy_run.py TESTDIR [FILTER]")
        return 2
    tdir = argv[1].rstrip("/")
    filt = argv[2] if len(argv) > 2 else None
    if tdir not in sys.path:
        sys.path.insert(0, tdir)
    if ".frozen" not in sys.path:
        # MICROPYPATH replaces the whole default path, frozen modules (asyncio) included
        sys.path.append(".frozen")
    import mptcp.stack      # strict mode: an internal exception fails the test
    mptcp.stack.Stack.strict = True
    not_applicable = _not_applicable_class()
    names = sorted(n for n in os.listdir(tdir) if n.startswith("test_") and n.endswith(".py"))
    passed = failed = 0
    failures = []
    na = []
    for fn in names:
        modname = fn[:-3]
        try:
            mod = __import__(modname)
        except Exception as e:  # import error counts as a failure of the file
            failed += 1
            failures.append((modname, "import", e))
            print("FAIL", modname, "(import)", repr(e))
            sys.print_exception(e) if hasattr(sys, "print_exception") else None
            continue
        for attr in sorted(dir(mod)):
            if not attr.startswith("test_"):
                continue
            full = modname + "." + attr
            if filt and filt not in full:
                continue
            f = getattr(mod, attr)
            if not callable(f):
                continue
            gc.collect()        # each test starts from a collected heap (less fragmentation)
            try:
                f()
                passed += 1
            except not_applicable as e:
                na.append((full, e.args[0] if e.args else ""))
                print("N/A ", full, na[-1][1])
            except Exception as e:
                failed += 1
                failures.append((modname, attr, e))
                print("FAIL", full, repr(e))
                if hasattr(sys, "print_exception"):
                    sys.print_exception(e)
    impl = sys.implementation.name
    for full, why in na:
        print("not applicable: %s (%s)" % (full, why))
    print("%s: %d passed, %d failed" % (impl, passed, failed)
          + (", %d not applicable" % len(na) if na else ""))
    if passed == 0 and failed == 0 and not na:
        print("no tests found in", tdir)
        return 1
    return 1 if failed else 0


sys.exit(main(sys.argv))
