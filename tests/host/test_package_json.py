"""package.json (mip): current with firmware/, and installable with the real mpremote onto the
virtual board from a local checkout; the installed stack imports and runs on the board."""
import hashlib
import os
import subprocess
import sys

from hostenv import ROOT
from vboardenv import env, vboard

sys.path.insert(0, os.path.join(ROOT, "host_tools"))
from mptcp_tools import pkgjson          # noqa: E402


def mpremote():
    exe = os.path.join(os.path.dirname(sys.executable), "mpremote")
    assert os.path.exists(exe), "mpremote is not in the venv (make setup installs it)"
    return exe


def test_package_json_lists_every_firmware_module():
    r = subprocess.run([sys.executable, "-m", "mptcp_tools.pkgjson", "--check"],
                       capture_output=True, text=True, env=env())
    assert r.returncode == 0, r.stderr
    listed = [u[0] for u in pkgjson.package()["urls"]]
    for layer in pkgjson.LAYERS:
        for fn in os.listdir(os.path.join(ROOT, "firmware", layer)):
            if fn.endswith(".py"):
                assert layer + "/" + fn in listed, fn
    assert "mptcp/stack.py" in listed and "mptcp_net/ppp.py" in listed and "mptcp_apps/perf.py" in listed


def test_mip_install_from_a_local_checkout_onto_the_virtual_board(tmp_path):
    root = tmp_path / "board"
    with vboard(root) as port:
        r = subprocess.run([mpremote(), "connect", port, "mip", "install", "--target", "/lib",
                            os.path.join(ROOT, "package.json")],
                           capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert r.returncode == 0, r.stdout + r.stderr
        code = ("import sys\nsys.path.insert(0, '/lib')\nimport mptcp, mptcp.stack, mptcp_net.ppp, "
                "mptcp_runtime.loop, mptcp_apps.perf\ns = mptcp.stack.Stack(snd_buf=4096, rcv_buf=4096)\n"
                "print('MIP-OK', mptcp.VERSION, len(s.counters.items()))")
        r = subprocess.run([mpremote(), "connect", port, "exec", code],
                           capture_output=True, text=True, timeout=120)
        assert "MIP-OK %s" % pkgjson.version() in r.stdout, r.stdout + r.stderr
    # every file arrived intact, where package.json says
    for dest, src in pkgjson.package()["urls"]:
        with open(os.path.join(ROOT, src), "rb") as f:
            want = hashlib.sha256(f.read()).hexdigest()
        with open(os.path.join(str(root), "lib", dest), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == want, dest
