"""Lab contract constants (DESIGN.md §4) and small shell helpers shared by the lab modules.

The names and addresses here are relied on by checks outside the repo: do not change them.
"""

import os
import subprocess
import sys

NS_PEER = "mplab"
NS_REF = "mplab-ref"
NAMESPACES = (NS_PEER, NS_REF)

SERVER_ADDR = "198.18.0.1"
SERVER_ADDR2 = "198.18.0.2"
LAB_NET = "198.18.0.0/15"

# One entry per link: TUN name inside the namespaces, peer-side and device-side addresses,
# the UDP port the device uses to reach the emulator (None: not a UDP link).
LINKS = {
# `table`: the routing table (and metric) of the link in mplab-ref's source routing.
    "wifi": {"ifname": "wifi0", "peer_addr": "198.18.1.1", "dev_addr": "198.18.1.2",
             "prefix": 24, "udp_port": 47001, "table": 101},
    "lte": {"ifname": "lte0", "peer_addr": "198.18.2.1", "dev_addr": "198.18.2.2",
            "prefix": 24, "udp_port": None, "table": 102},
}

# Link-state control messages to the device over the Wi-Fi link's UDP framing (a downlink
# datagram starting 0x00 instead of an IPv4 header; zero-padded to 1500 like every frame;
# firmware/mptcp_net/udp_tunnel.py has the same constants).
CTL_DOWN = b"\x00MPLAB LINK DOWN"
CTL_UP = b"\x00MPLAB LINK UP"

RUN_DIR = "/run/mptcp-lab"
PIDFILE = RUN_DIR + "/emulator.pid"
LOGFILE = RUN_DIR + "/emulator.log"
CONTROL_SOCK = RUN_DIR + "/control.sock"
PEERS_DIR = RUN_DIR + "/peers"
STATE_FILE = RUN_DIR + "/state.json"
LTE_SERIAL_FILE = RUN_DIR + "/lte.serial"   # the modem emulator's pty slave path (one line)
LTE_DEFAULT_PROFILE = "clean"               # 921600 baud, 30 ms each way (60 ms RTT)

IPPROTO_MPTCP = 262
SOL_MPTCP = 284
MPTCP_INFO = 1
MPTCP_TCPINFO = 2
MPTCP_SUBFLOW_ADDRS = 3

# host_tools/mptcp_lab/common.py -> repo root (editable install keeps the source path).
REPO = os.environ.get("MPTCP_REPO") or os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))


class LabError(Exception):
    """A lab operation failed; the message is meant for the user as is."""


def require_root():
    if os.geteuid() != 0:
        raise LabError("not root: the lab needs root (network namespaces, TUN devices)")


def run(args, check=True, ns=None, capture=True, timeout=30, input=None):
    """Run a command (optionally inside a namespace); raise LabError with its stderr on failure."""
    if ns:
        args = ["ip", "netns", "exec", ns] + list(args)
    try:
        p = subprocess.run(args, capture_output=capture, text=True, timeout=timeout, input=input)
    except FileNotFoundError as e:
        raise LabError("command not found: %s" % args[0]) from e
    except subprocess.TimeoutExpired as e:
        raise LabError("timed out: %s" % " ".join(args)) from e
    if check and p.returncode != 0:
        err = (p.stderr or p.stdout or "").strip()
        raise LabError("command failed (%d): %s: %s" % (p.returncode, " ".join(args), err))
    return p


def ns_exists(ns):
    return os.path.exists("/run/netns/" + ns)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still "exists": treat it as dead.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0) or None
    except (OSError, ValueError):
        return None


def python():
    """The interpreter to run lab sub-processes with (the venv's, which has mptcp_lab)."""
    return sys.executable
