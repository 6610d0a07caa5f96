"""Run the device perf app (firmware/mptcp_apps/perf.py) attached to the lab links.

runtime "mpy":     .venv/bin/micropython -X heapsize=H -m mptcp_apps.perf ARGS, MICROPYPATH=build/unix_lab
runtime "source":  the same with MICROPYPATH=firmware:boards/unix_lab (no compiled bundle)
runtime "cpython": .venv/bin/python -m mptcp_apps.perf ARGS, PYTHONPATH=firmware:boards/unix_lab
The app finds the Wi-Fi link through MPTCP_LAB_WIFI=127.0.0.1:47001 (IP-in-UDP to the emulator)
and the LTE modem's UART through MPTCP_LAB_LTE=/dev/pts/N (the modem emulator's pty slave;
MPTCP_LAB_LTE_BAUD = its current line rate, for the device's write pacing).
"""

import os
import re
import subprocess

from . import lab
from .common import LabError, LINKS, REPO

# 384k: the multipath code (path manager, schedulers, address signalling) and a second
# subflow left a Wi-Fi-only device at 91 % of 256k (x86-64: objects are twice a Pico's).
DEFAULT_HEAP = "384k"
# With the LTE link the device also loads the modem driver and PPP (about 80 KB of bytecode
# in RAM on the unix port, where modules are not frozen, plus ~21 KB of buffers).
DEFAULT_HEAP_LTE = "512k"
RUNTIMES = ("mpy", "source", "cpython")
APPS = ("perf", "trial")


def heap_of(args):
    """The value of --heap in the perf app's ARGS (it is also passed on to the app)."""
    heap = DEFAULT_HEAP
    for i, a in enumerate(args):
        if (a == "--links" and i + 1 < len(args) and "lte" in args[i + 1]) or \
                (a.startswith("--links=") and "lte" in a):
            heap = DEFAULT_HEAP_LTE
    for i, a in enumerate(args):
        if a == "--heap" and i + 1 < len(args):
            heap = args[i + 1]
        elif a.startswith("--heap="):
            heap = a.split("=", 1)[1]
    if not re.fullmatch(r"[0-9]+[kKmM]?", heap):
        raise LabError("bad --heap %r (bytes, optionally with k or m)" % heap)
    return heap


def command(args, runtime="mpy", app="perf"):
    """(argv, env) to run the device app `app` (mptcp_apps.perf, or mptcp_apps.trial for mptcp-trial)
    with `args` under `runtime`."""
    if app not in APPS:
        raise LabError("unknown device app %r (use %s)" % (app, ", ".join(APPS)))
    if runtime not in RUNTIMES:
        raise LabError("unknown runtime %r (use %s)" % (runtime, ", ".join(RUNTIMES)))
    env = dict(os.environ)
    env["MPTCP_LAB_WIFI"] = "127.0.0.1:%d" % LINKS["wifi"]["udp_port"]
    tty = lab.lte_serial()
    if tty:
        env["MPTCP_LAB_LTE"] = tty
        try:    # the line rate now (link lte set baud=...): the device paces its writes to it
            baud = lab.status().get("links", {}).get("lte", {}).get("baud")
        except LabError:
            baud = None
        if baud:
            env["MPTCP_LAB_LTE_BAUD"] = str(baud)
    venv = os.path.join(REPO, ".venv", "bin")
    args = list(args)
    if runtime == "cpython":
        src = os.path.join(REPO, "firmware")
        if not os.path.exists(os.path.join(src, "mptcp_apps", app + ".py")):
            raise LabError("device app not found: %s/mptcp_apps/%s.py (not written yet?)" % (src, app))
        env["PYTHONPATH"] = src + ":" + os.path.join(REPO, "boards", "unix_lab")
        return [os.path.join(venv, "python"), "-m", "mptcp_apps." + app] + args, env
    path = os.path.join(REPO, "build", "unix_lab") if runtime == "mpy" else \
        os.path.join(REPO, "firmware")
    if not any(os.path.exists(os.path.join(path, "mptcp_apps", app + ext)) for ext in (".mpy", ".py")):
        hint = "run make build" if runtime == "mpy" else "not written yet?"
        raise LabError("device %s app not found: %s/mptcp_apps/%s(.mpy|.py) (%s)" % (app, path, app, hint))
    if runtime == "source":     # the bundle carries mptcp_board.mpy; from source add the board dir
        path += ":" + os.path.join(REPO, "boards", "unix_lab")
    env["MICROPYPATH"] = path
    mpy = os.path.join(venv, "micropython")
    return [mpy, "-X", "heapsize=%s" % heap_of(args), "-m", "mptcp_apps." + app] + args, env


def start(args, runtime="mpy", stdout=None, stderr=None, app="perf"):
    """Start the device app (lab must be up); returns the Popen.  The lab's `down` ends it."""
    lab.require_up()
    argv, env = command(args, runtime, app)
    p = subprocess.Popen(argv, env=env, cwd=REPO, stdout=stdout, stderr=stderr,
                         stdin=subprocess.DEVNULL)
    lab.register_process(p.pid)
    return p


def run(args, runtime="mpy"):
    """Run the app with stdout/stderr passed through; return its exit code."""
    p = start(args, runtime)
    try:
        return p.wait()
    except KeyboardInterrupt:
        p.terminate()
        return p.wait()
    finally:
        lab.unregister_process(p.pid)
