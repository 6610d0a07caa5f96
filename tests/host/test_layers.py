"""The firmware's layers import only downwards (DESIGN §1): mptcp (sans-IO core) imports no
other layer; net (link drivers) imports mptcp only; runtime (the poll loop binding core and
netifs) imports mptcp and net, never the apps. Imports inside functions count too."""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FW = os.path.join(ROOT, "firmware")
LAYERS = ("mptcp", "net", "runtime", "apps")
# layer -> the firmware layers it must not import
FORBIDDEN = {"mptcp": ("net", "runtime", "apps"), "net": ("runtime", "apps"),
             "runtime": ("apps",)}


def imported_layers(source):
    """(line, top-level package) of every import in a module's source, at any depth."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module.split(".")[0]))
    return out


def violations(layer):
    bad = []
    pdir = os.path.join(FW, layer)
    for fn in sorted(os.listdir(pdir)):
        if fn.endswith(".py"):
            with open(os.path.join(pdir, fn)) as f:
                for line, pkg in imported_layers(f.read()):
                    if pkg in FORBIDDEN[layer]:
                        bad.append("firmware/%s/%s:%d imports %s" % (layer, fn, line, pkg))
    return bad


def test_the_checker_sees_imports_at_any_depth():
    src = "import os\nfrom runtime import clock\ndef f():\n    import apps.perf\n"
    assert imported_layers(src) == [(1, "os"), (2, "runtime"), (4, "apps")]


def test_net_imports_no_runtime_and_no_apps():
    assert os.path.exists(os.path.join(FW, "net", "netif.py"))
    assert violations("net") == []


def test_mptcp_imports_no_other_layer():
    assert violations("mptcp") == []


def test_runtime_imports_no_apps():
    assert violations("runtime") == []
