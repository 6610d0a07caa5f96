"""tutil.require_module: NotApplicable only for a module that does not exist, so a
test cannot be declared "not applicable" by a broken import or a typo elsewhere."""
import tutil


def test_require_module_returns_present_module():
    import sys
    assert tutil.require_module("sys") is sys


def test_require_module_missing_is_not_applicable():
    e = tutil.raises(tutil.NotApplicable, tutil.require_module, "no_such_module_x9")
    assert "no_such_module_x9" in e.args[0]


def test_require_module_broken_import_propagates():
    """A module that exists but fails to import is a failure, not "not applicable"."""
    e = tutil.raises(ImportError, tutil.require_module, "_imports_missing_dep")
    assert not isinstance(e, tutil.NotApplicable)


def test_not_applicable_is_an_ordinary_exception():
    """pytest must count it as a failure, never as a skip: a plain Exception subclass."""
    assert issubclass(tutil.NotApplicable, Exception)
    assert not issubclass(tutil.NotApplicable, ImportError)
