"""Start and stop a virtual board (mptcp-vboard) for a test: the pty path, and the
process killed (with its interpreter) at the end, even when the test fails."""
import contextlib
import os
import subprocess
import sys

from hostenv import ROOT, micropython

VBOARD = [sys.executable, "-m", "mptcp_tools.vboard"]


def env():
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([os.path.join(ROOT, "host_tools"), os.path.join(ROOT, "firmware")])
    return e


@contextlib.contextmanager
def vboard(root, *args):
    os.makedirs(root, exist_ok=True)
    p = subprocess.Popen(VBOARD + [str(root), "--micropython", micropython()] + list(args),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    try:
        port = p.stdout.readline().strip()
        assert port.startswith("/dev/"), "vboard printed no port: %r %s" % (port, p.stderr.read())
        yield port
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        assert p.returncode == 0, "vboard exited %s: %s" % (p.returncode, p.stderr.read())
