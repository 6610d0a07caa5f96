"""`make typecheck` catches an API the Pico W lacks: a small file calling `time.monotonic`
(CPython's; the Pico's time module has ticks_ms) fails against the board's stubs, with the
same settings as pyrightconfig.json, and the same file written for the board passes. Needs
the tools `make setup` installs into .typecheck/ (a clear failure says so if they are not)."""
import json
import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TC = os.path.join(REPO, ".typecheck")
PYRIGHT = os.path.join(TC, "node", "node_modules", ".bin", "pyright")


def _check(tmp_path, source):
    assert os.path.exists(PYRIGHT) and os.path.isdir(os.path.join(TC, "stubs")), \
        "pyright / the Pico W stubs are not installed in %s: run make setup" % TC
    with open(os.path.join(REPO, "pyrightconfig.json")) as f:
        cfg = json.load(f)
    cfg.pop("executionEnvironments")
    cfg["include"] = ["app.py"]
    cfg["typeshedPath"] = cfg["stubPath"] = os.path.join(TC, "stubs")
    (tmp_path / "pyrightconfig.json").write_text(json.dumps(cfg))
    (tmp_path / "app.py").write_text(source)
    p = subprocess.run([PYRIGHT, "-p", str(tmp_path / "pyrightconfig.json"), "--outputjson"],
                       capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    return p.returncode, json.loads(p.stdout)["generalDiagnostics"]


def test_a_call_the_pico_lacks_is_an_error(tmp_path):
    rc, diags = _check(tmp_path, "import time\n\ndef now_ms():\n    return time.monotonic() * 1000\n")
    errors = [d for d in diags if d["severity"] == "error"]
    assert rc != 0, diags
    assert any("monotonic" in d["message"] and d["range"]["start"]["line"] == 3
               for d in errors), errors


def test_the_same_code_for_the_board_passes(tmp_path):
    rc, diags = _check(tmp_path, "import time\n\ndef now_ms():\n    return time.ticks_ms()\n")
    assert rc == 0 and not diags, diags
