"""Bring the lab up and down: namespaces, the link emulator process, the control channel.

Everything the lab makes is either a namespace (mplab, mplab-ref), a process recorded under
/run/mptcp-lab/ (the emulator, peers, devices) or a process inside a lab namespace, or a TUN
owned by the emulator (it vanishes with it).  `down` removes all of these.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import time

from . import common
from .common import (LabError, NAMESPACES, NS_PEER, RUN_DIR, PIDFILE, LOGFILE,
                     CONTROL_SOCK, PEERS_DIR, STATE_FILE, run, ns_exists, pid_alive, read_pid,
                     require_root)
from .impair import PROFILES
from .modem_emu import PROFILES as LTE_PROFILES

NOT_UP = "lab not up: run mptcp-lab up"


# --- control channel --------------------------------------------------------------------------

def control(req, timeout=5.0):
    """Send one JSON request to the emulator; return its reply (raises LabError if down)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(CONTROL_SOCK)
    except (FileNotFoundError, ConnectionRefusedError) as e:
        s.close()
        raise LabError(NOT_UP) from e
    try:
        s.sendall((json.dumps(req) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            d = s.recv(65536)
            if not d:
                break
            buf += d
    except socket.timeout as e:
        raise LabError("emulator did not answer within %.0f s (see %s)" % (timeout, LOGFILE)) from e
    finally:
        s.close()
    if not buf:
        raise LabError("emulator closed the control connection (see %s)" % LOGFILE)
    rep = json.loads(buf)
    if not rep.get("ok"):
        raise LabError("emulator: %s" % rep.get("error"))
    return rep


def emulator_pid():
    pid = read_pid(PIDFILE)
    if pid and pid_alive(pid) and _is_ours(pid, "mptcp_lab.emulator"):
        return pid
    return None


def _is_ours(pid, marker):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return marker.encode() in f.read()
    except OSError:
        return False


def is_up():
    if not all(ns_exists(ns) for ns in NAMESPACES) or not emulator_pid():
        return False
    try:
        control({"cmd": "status"}, timeout=2.0)
    except LabError:
        return False
    return True


def require_up():
    if not is_up():
        raise LabError(NOT_UP)


# --- up ---------------------------------------------------------------------------------------

def _setup_ns(ns):
    run(["ip", "netns", "add", ns])
    run(["ip", "-n", ns, "link", "set", "lo", "up"])
    if ns == NS_PEER:
        for a in (common.SERVER_ADDR, common.SERVER_ADDR2):
            run(["ip", "-n", ns, "addr", "add", a + "/32", "dev", "lo"])
    run(["sysctl", "-qw", "net.mptcp.enabled=1", "net.ipv4.conf.all.rp_filter=0",
         "net.ipv4.conf.default.rp_filter=0"], ns=ns)
    # IPv4-only lab: keep IPv6 autoconf traffic off the emulated links.
    run(["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
         "net.ipv6.conf.default.disable_ipv6=1"], ns=ns, check=False)
    run(["ip", "-n", ns, "mptcp", "limits", "set", "subflows", "8", "add_addr_accepted", "8"])


def _save_state(state):
    with open(STATE_FILE, "w") as f:
        json.dump(state, f)


def load_state():
    try:
        with open(STATE_FILE) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def up(wifi=None, lte=None, wait=10.0):
    """Bring the lab up (idempotent).  On an already-up lab only the given profiles change."""
    require_root()
    if wifi is not None and wifi not in PROFILES:
        raise LabError("unknown wifi profile %r (use %s)" % (wifi, ", ".join(PROFILES)))
    if lte is not None and lte not in LTE_PROFILES:
        raise LabError("unknown lte profile %r (use %s)" % (lte, ", ".join(LTE_PROFILES)))
    if is_up():
        st = load_state()
        if wifi is not None:
            control({"cmd": "profile", "link": "wifi", "profile": wifi})
            st["wifi"] = wifi
        if lte is not None:
            control({"cmd": "profile", "link": "lte", "profile": lte})
            st["lte"] = lte
        _save_state(st)
        return status()
    down()   # clear any half-made state first
    wifi = wifi or "clean"
    lte = lte or common.LTE_DEFAULT_PROFILE
    try:
        os.makedirs(PEERS_DIR, exist_ok=True)
        for ns in NAMESPACES:
            _setup_ns(ns)
        _save_state({"wifi": wifi, "lte": lte})
        args = [common.python(), "-m", "mptcp_lab.emulator", "--wifi", wifi, "--lte", lte]
        with open(LOGFILE, "ab") as log:
            p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                 start_new_session=True, cwd="/", close_fds=True)
        deadline = time.monotonic() + wait
        while True:
            if p.poll() is not None:
                raise LabError("link emulator exited (rc %s):\n%s" % (p.returncode, log_tail()))
            try:
                control({"cmd": "status"}, timeout=1.0)
                break
            except LabError:
                if time.monotonic() > deadline:
                    raise LabError("link emulator not ready after %.0f s:\n%s"
                                   % (wait, log_tail()))
                time.sleep(0.05)
    except BaseException:
        try:
            down()
        except LabError:
            pass
        raise
    return status()


def log_tail(n=20):
    try:
        with open(LOGFILE, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no emulator log)"


# --- down -------------------------------------------------------------------------------------

def _kill(pids, grace=3.0):
    pids = [p for p in pids if p and p != os.getpid() and pid_alive(p)]
    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    for p in pids:
        if pid_alive(p):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 2.0
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    return pids


def register_process(pid):
    """Remember a process started by the lab (peer, device) so that `down` ends it."""
    try:
        os.makedirs(PEERS_DIR, exist_ok=True)
        with open(os.path.join(PEERS_DIR, str(pid)), "w") as f:
            f.write("%d\n" % pid)
    except OSError:
        pass


def unregister_process(pid):
    try:
        os.unlink(os.path.join(PEERS_DIR, str(pid)))
    except OSError:
        pass


def _registered():
    try:
        names = os.listdir(PEERS_DIR)
    except OSError:
        return []
    return [int(n) for n in names if n.isdigit()]


def _ns_pids(ns):
    if not ns_exists(ns):
        return []
    p = run(["ip", "netns", "pids", ns], check=False)
    return [int(x) for x in p.stdout.split() if x.isdigit()]


def down():
    """Remove everything the lab made (idempotent).  Returns a list of what was removed."""
    require_root()
    removed = []
    pid = emulator_pid()
    if pid:
        _kill([pid])
        removed.append("emulator pid %d" % pid)
    # Processes the lab started (peers, device apps: perf, trial) and anything still inside
    # the namespaces.
    regs = [p for p in _registered() if _is_ours(p, "mptcp_lab") or _is_ours(p, "mptcp_apps.")]
    inside = []
    for ns in NAMESPACES:
        inside += _ns_pids(ns)
    killed = _kill(sorted(set(regs + inside)))
    removed += ["process %d" % p for p in killed]
    for ns in NAMESPACES:
        if ns_exists(ns):
            run(["ip", "netns", "del", ns], check=False)
            removed.append("namespace %s" % ns)
    if os.path.isdir(RUN_DIR):
        shutil.rmtree(RUN_DIR, ignore_errors=True)
        removed.append(RUN_DIR)
    return removed


# --- status -----------------------------------------------------------------------------------

def status():
    """Lab state as a dict (works whether the lab is up or not)."""
    st = {"up": False, "namespaces": {ns: ns_exists(ns) for ns in NAMESPACES},
          "emulator_pid": emulator_pid(), "run_dir": RUN_DIR, "profiles": load_state()}
    if st["emulator_pid"]:
        try:
            st["emulator"] = control({"cmd": "status"}, timeout=3.0)["status"]
            st["links"] = st["emulator"].pop("links")
            st["schedule"] = st["emulator"].pop("schedule", None)
        except LabError as e:
            st["error"] = str(e)
    st["up"] = all(st["namespaces"].values()) and "links" in st
    st["processes"] = [p for p in _registered() if pid_alive(p)]
    return st


def lte_serial():
    """The pty slave the device opens as its LTE modem's UART (None if the lab is not up)."""
    try:
        with open(common.LTE_SERIAL_FILE) as f:
            return f.read().strip() or None
    except OSError:
        return None


def link_state(name, state):
    require_up()
    return control({"cmd": "link", "link": name, "state": state})["status"]


def link_set(name, settings, direction="both"):
    require_up()
    return control({"cmd": "set", "link": name, "settings": settings, "dir": direction})["status"]


def reset_counters(name=None):
    require_up()
    control({"cmd": "reset", "link": name})


def schedule(entries, clear=False):
    """Hand timed link actions to the emulator (see schedule.py); returns its schedule
    status {"pending": [...], "done": [...]}."""
    require_up()
    return control({"cmd": "schedule", "entries": entries, "clear": clear})["schedule"]
