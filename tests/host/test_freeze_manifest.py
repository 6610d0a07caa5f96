"""contrib/freeze/manifest.py (a MicroPython firmware build freezing the stack) lists
exactly the modules package.json installs. The manifest is read the way MicroPython's
build reads it: executed with include/package/module, relative paths taken from the
manifest's folder, package() taking every .py under base_path/package. No firmware is
built here (that needs MicroPython's source tree and the board's toolchain)."""
import json
import os

from hostenv import ROOT

MANIFEST = os.path.join(ROOT, "contrib", "freeze", "manifest.py")


def frozen_modules(path):
    """{target path: source path} of what the manifest freezes, and the includes."""
    here = os.path.dirname(path)
    out, includes = {}, []

    def package(pkg, files=None, base_path=".", opt=None):
        assert files is None, "the manifest names whole packages"
        base = os.path.normpath(os.path.join(here, base_path))
        for dirpath, _dirs, names in os.walk(os.path.join(base, pkg)):
            for n in names:
                if n.endswith(".py"):
                    src = os.path.join(dirpath, n)
                    out[os.path.relpath(src, base)] = src

    def module(mod, base_path=".", opt=None):
        src = os.path.normpath(os.path.join(here, base_path, mod))
        out[mod] = src

    with open(path) as f:
        exec(f.read(), {"include": includes.append, "package": package, "module": module})
    return out, includes


def test_the_manifest_freezes_what_package_json_installs():
    frozen, includes = frozen_modules(MANIFEST)
    with open(os.path.join(ROOT, "package.json")) as f:
        listed = {dst: os.path.join(ROOT, src) for dst, src in json.load(f)["urls"]}
    assert frozen == listed
    assert all(os.path.isfile(p) for p in frozen.values())
    assert includes == ["$(BOARD_DIR)/manifest.py"]     # the board keeps its own modules
    assert not any(k.startswith("mptcp_board") for k in frozen)   # the config stays editable


def test_a_module_missing_from_the_manifest_is_seen(tmp_path):
    """The check above can fail: a manifest that forgets a package differs from package.json."""
    p = tmp_path / "manifest.py"
    p.write_text('package("mptcp", base_path=%r)\n' % os.path.join(ROOT, "firmware"))
    frozen, _ = frozen_modules(str(p))
    assert "mptcp/stack.py" in frozen and not any(k.startswith("mptcp_net/") for k in frozen)
