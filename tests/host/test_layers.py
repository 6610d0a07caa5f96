"""The firmware's layers import only downwards (DESIGN §1): mptcp (sans-IO core) imports no
other layer; mptcp_net (link drivers: DESIGN's net/) imports mptcp only; mptcp_runtime (the
poll loop binding core and netifs) imports mptcp and mptcp_net, never mptcp_apps. Imports inside functions count too."""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FW = os.path.join(ROOT, "firmware")
LAYERS = ("mptcp", "mptcp_net", "mptcp_runtime", "mptcp_apps")
# layer -> the firmware layers it must not import
FORBIDDEN = {"mptcp": ("mptcp_net", "mptcp_runtime", "mptcp_apps"),
             "mptcp_net": ("mptcp_runtime", "mptcp_apps"), "mptcp_runtime": ("mptcp_apps",)}


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
    src = "import os\nfrom mptcp_runtime import clock\ndef f():\n    import mptcp_apps.perf\n"
    assert imported_layers(src) == [(1, "os"), (2, "mptcp_runtime"), (4, "mptcp_apps")]


def test_net_imports_no_runtime_and_no_apps():
    assert os.path.exists(os.path.join(FW, "mptcp_net", "netif.py"))
    assert violations("mptcp_net") == []


def test_mptcp_imports_no_other_layer():
    assert violations("mptcp") == []


def test_runtime_imports_no_apps():
    assert violations("mptcp_runtime") == []


def test_every_top_level_name_on_the_board_starts_with_mptcp():
    """One namespace on the board (issue 9): /lib holds the user's libraries too, so the
    stack installs no generic name (net, runtime, apps, board) that could shadow one."""
    names = sorted(os.listdir(FW))
    assert names == sorted(LAYERS), names
    for board in os.listdir(os.path.join(ROOT, "boards")):
        files = [f for f in os.listdir(os.path.join(ROOT, "boards", board)) if f.endswith(".py")]
        assert files == ["mptcp_board.py"], (board, files)
    bad = [n for n in names if n != "mptcp" and not n.startswith("mptcp_")]
    assert bad == []
