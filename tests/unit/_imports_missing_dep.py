"""Exists but imports a module that does not: tutil.require_module must let that
ImportError through instead of calling the test "not applicable" (test_tutil.py)."""
import no_such_dep_y7  # noqa: F401
