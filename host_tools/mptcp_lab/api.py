"""Python API of the lab for tests and tools.

    from mptcp_lab.api import Lab
    with Lab(wifi="lossy") as lab:                  # up on enter, down on exit (always)
        srv = lab.start_peer("server", port=5001, recv=True, once=True)
        rc, res, err = lab.run_ref(["--connect", "198.18.0.1:5001", "--send", "8M"])
        assert srv.wait(30)["sha256"] == res["sha256"]

Module-level functions work on whatever lab is up; `Lab` only adds up/down and baselines.
"""

import json
import subprocess
import tempfile
import time

from . import capture as _capture
from . import common, device, lab, nstat as _nstat
from .common import LabError, LINKS, NS_PEER, NS_REF

capture = _capture.capture
mptcp_expert_warnings = _capture.mptcp_expert_warnings
expert_rows = _capture.expert_rows
nstat_delta = _nstat.delta


def last_json(text):
    """The last line of `text` that parses as a JSON object, or None."""
    for line in reversed((text or "").splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def sysctl(name, value=None, ns=NS_PEER):
    """Read (value None) or set a sysctl inside `ns`; returns the value before the change."""
    old = common.run(["sysctl", "-n", name], ns=ns).stdout.strip()
    if value is not None:
        common.run(["sysctl", "-qw", "%s=%s" % (name, value)], ns=ns)
    return old


def nstat(ns=NS_PEER, prefixes=("MPTcpExt", "Tcp")):
    """Absolute MPTcpExt*/Tcp* counters of `ns` (see nstat.read)."""
    return _nstat.read(ns, prefixes)


def _flags(kw):
    out = []
    for k, v in kw.items():
        if v is None or v is False:
            continue
        out.append("--" + k.replace("_", "-"))
        if v is not True:
            out.append(str(v))
    return out


class PeerHandle:
    """A kernel helper (peer server/client or ref) running in a namespace."""

    def __init__(self, ns, args, wait_listen):
        self.ns, self.args = ns, args
        self.out = tempfile.TemporaryFile()
        self.err = tempfile.TemporaryFile()
        argv = ["ip", "netns", "exec", ns, common.python(), "-m", "mptcp_lab.peer"] + args
        self.proc = subprocess.Popen(argv, stdout=self.out, stderr=self.err,
                                     stdin=subprocess.DEVNULL)
        lab.register_process(self.proc.pid)
        if wait_listen:
            self._wait_listening()

    def _read(self, f):
        f.seek(0)
        return f.read().decode(errors="replace")

    @property
    def stdout(self):
        return self._read(self.out)

    @property
    def stderr(self):
        return self._read(self.err)

    def _wait_listening(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while "listening" not in self.stderr:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise LabError("peer %s in %s did not start listening: %s"
                               % (" ".join(self.args), self.ns, self.stderr.strip()))
            time.sleep(0.01)

    def results(self):
        """Every JSON line printed so far."""
        return [json.loads(l) for l in self.stdout.splitlines() if l.startswith("{")]

    def wait(self, timeout=60.0):
        """Wait for the first JSON result line (or the end of the process); return it as a
        dict.  A server without once keeps running after its first result (see results())."""
        deadline = time.monotonic() + timeout
        while True:
            res = last_json(self.stdout)
            done = self.proc.poll() is not None
            if res is not None or done:
                break
            if time.monotonic() > deadline:
                self.stop()
                raise LabError("peer %s in %s timed out after %.0f s; stderr: %s"
                               % (" ".join(self.args), self.ns, timeout, self.stderr.strip()))
            time.sleep(0.01)
        if done:
            lab.unregister_process(self.proc.pid)
        res = last_json(self.stdout) if res is None else res
        if res is None:
            raise LabError("peer %s in %s printed no result (rc %s); stderr: %s"
                           % (" ".join(self.args), self.ns, self.proc.returncode,
                              self.stderr.strip()))
        return res

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        lab.unregister_process(self.proc.pid)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start_peer(role="server", *args, ns=NS_PEER, mode=None, nbytes=None, **kw):
    """Start `mptcp_lab.peer ROLE ARGS` in `ns`.

        start_peer("server", port=5001, mode="recv")             # --recv (--once by default)
        start_peer("server", port=5001, mode="send", nbytes=N)   # or send=N
        start_peer("client", connect="198.18.1.2:5001", mode="send", nbytes=N)
        start_peer("server", port=5001, mode="echo", once=False, tcp=True)

    Keyword arguments become --flags (True = bare flag).  Servers handle one connection
    unless once=False, and are listening when this returns."""
    lab.require_up()
    if mode is not None:
        if mode not in ("recv", "send", "echo"):
            raise LabError("mode must be recv, send or echo, not %r" % mode)
        if mode == "send":
            if nbytes is None:
                raise LabError("mode='send' needs nbytes")
            kw["send"] = nbytes
        else:
            kw[mode] = True
    elif nbytes is not None:
        kw["send"] = nbytes
    if role == "server":
        kw.setdefault("once", True)
    argv = [role] + [str(a) for a in args] + _flags(kw)
    return PeerHandle(ns, argv, wait_listen=(role == "server" or "--listen" in argv))


def start_ref(args):
    """Start the reference device (kernel MPTCP in mplab-ref) with perf-app ARGS.

    The emulator sends downlink packets to the device side that last sent uplink, so a
    listening reference device first sends one packet (a UDP datagram to its gateway's
    discard port) to claim it."""
    sargs = [str(a) for a in args]
    if "--listen" in sargs:
        links = ["wifi"]
        if "--links" in sargs and sargs.index("--links") + 1 < len(sargs):
            links = [n for n in sargs[sargs.index("--links") + 1].split(",") if n in LINKS]
        for name in links:       # each link's downlink comes to the ref from now on
            cfg = LINKS[name]
            common.run([common.python(), "-c",
                        "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                        "s.bind((%r, 0)); s.sendto(b'claim', (%r, 9))"
                        % (cfg["dev_addr"], cfg["peer_addr"])], ns=NS_REF, check=False)
        time.sleep(0.05)
    return start_peer("ref", *args, ns=NS_REF)


def run_ref(args, timeout=120.0):
    """Run the reference device to completion: (rc, result dict or None, stderr)."""
    h = start_ref(args)
    try:
        h.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        h.stop()
        return None, last_json(h.stdout), h.stderr + "\n[mptcp-lab: timed out]"
    finally:
        lab.unregister_process(h.proc.pid)
    return h.proc.returncode, last_json(h.stdout), h.stderr


class DeviceHandle:
    """The device perf app running in the background (see start_device)."""

    def __init__(self, args, runtime, app="perf"):
        self.args = list(args)
        self.out = tempfile.TemporaryFile()
        self.err = tempfile.TemporaryFile()
        w = lab.status().get("links", {}).get("wifi", {})
        self._changes0 = w.get("device_changes", 0)
        self.proc = device.start(self.args, runtime, stdout=self.out, stderr=self.err, app=app)

    def _read(self, f):
        f.seek(0)
        return f.read().decode(errors="replace")

    @property
    def stdout(self):
        return self._read(self.out)

    @property
    def stderr(self):
        return self._read(self.err)

    def wait(self, timeout=120.0):
        """(rc, result dict or None, stderr); rc None on timeout (the app is then killed)."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            rc = None
        lab.unregister_process(self.proc.pid)
        err = self.stderr
        if rc is None:
            err += "\n[mptcp-lab: device timed out after %.0f s]" % timeout
        return rc, last_json(self.stdout), err

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        lab.unregister_process(self.proc.pid)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start_device(args, runtime="mpy", app="perf"):
    """Start the device app (mptcp_apps.perf, or mptcp_apps.trial) in the background; a
    DeviceHandle."""
    return DeviceHandle(args, runtime, app)


def wait_device_listening(handle, port=None, timeout=30.0, settle=0.3):
    """Wait until a device started with --listen is ready for a kernel client.

    Ready = it logged "listening on port P" (perf -v), or the emulator heard the device's
    "hello" datagram (its UDP netif exists) and `settle` seconds passed (listen() follows
    the netif set-up immediately).  Raises LabError if the app exits or time runs out."""
    deadline = time.monotonic() + timeout
    mark = "listening on port %d" % port if port is not None else "listening on port"
    while True:
        if mark in handle.stderr:
            return
        if handle.proc.poll() is not None:
            raise LabError("device exited (rc %s) before listening: %s"
                           % (handle.proc.returncode, handle.stderr.strip()[-2000:]))
        w = lab.status().get("links", {}).get("wifi", {})
        if (w.get("device_changes", 0) > handle._changes0
                and (w.get("device_side") or "").startswith("udp:")):
            time.sleep(settle)
            if handle.proc.poll() is None:
                return
            continue
        if time.monotonic() > deadline:
            raise LabError("device not listening after %.0f s: %s"
                           % (timeout, handle.stderr.strip()[-2000:]))
        time.sleep(0.02)


def lte_status():
    """The LTE link's emulator status: mode (command/data), ppp (dead/establish/.../network),
    up, registered, sessions, counters (no_carrier, dials, ...), serial."""
    return lab.status().get("links", {}).get("lte", {})


def wait_lte(cond, timeout=30.0):
    """Wait until cond(lte_status()) is true; returns the status (LabError on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        st = lte_status()
        if cond(st):
            return st
        if time.monotonic() > deadline:
            raise LabError("LTE link condition not met after %.0f s: %s" % (timeout, st))
        time.sleep(0.05)


def run_device(args, runtime="mpy", timeout=120.0):
    """Run the device perf app: (rc, result dict or None, stderr).  rc None on timeout."""
    return start_device(args, runtime).wait(timeout)


def status():
    return lab.status()


def link(name, state):
    """Take link `name` "up" or "down"."""
    return lab.link_state(name, state)


def link_set(name, direction="both", **settings):
    """link_set("wifi", rate="20mbit", delay="20ms", loss=2): values as on the command line.
    direction: "both" (default), "up" (device -> peer) or "down" (peer -> device).
    link_set("wifi", direction="down", corrupt=1): corrupt the next TCP packet with payload
    towards the device (see impair.corrupt_tcp_payload; Wi-Fi only).
    LTE: link_set("lte", baud=115200, delay="30ms")."""
    from .impair import parse_settings
    if name == "lte":
        from .cli import parse_lte_settings
        return lab.link_set("lte", parse_lte_settings(["%s=%s" % kv for kv in settings.items()]))
    parsed = parse_settings(["%s=%s" % kv for kv in settings.items()])
    return lab.link_set(name, parsed, direction)


def schedule(entries, clear=False):
    """Timed link actions run by the emulator: entries from schedule.parse(text) or
    schedule.outage("wifi", at=5, duration=10); returns {"pending": [...], "done": [...]}."""
    return lab.schedule(entries, clear)


class Lab:
    """Context manager: lab up (with profiles) on enter, down on exit even on failure."""

    def __init__(self, wifi="clean", lte=None, fresh=True):   # lte None: "clean"
        self.wifi, self.lte, self.fresh = wifi, lte, fresh
        self._baselines = {}

    def up(self):
        """Bring the lab up with this object's profiles (a fresh lab unless fresh=False)."""
        common.require_root()
        if self.fresh:
            lab.down()
        try:
            lab.up(self.wifi, self.lte)
        except BaseException:
            lab.down()
            raise
        return self

    def down(self):
        """Remove everything the lab made (idempotent)."""
        return lab.down()

    def __enter__(self):
        return self.up()

    def __exit__(self, *exc):
        lab.down()

    # Convenience wrappers so a test only needs the Lab object.
    sysctl = staticmethod(sysctl)
    start_peer = staticmethod(start_peer)
    start_ref = staticmethod(start_ref)
    run_ref = staticmethod(run_ref)
    run_device = staticmethod(run_device)
    start_device = staticmethod(start_device)
    wait_device_listening = staticmethod(wait_device_listening)
    capture = staticmethod(capture)
    mptcp_expert_warnings = staticmethod(mptcp_expert_warnings)
    status = staticmethod(status)
    link = staticmethod(link)
    link_set = staticmethod(link_set)
    schedule = staticmethod(schedule)
    lte_status = staticmethod(lte_status)
    wait_lte = staticmethod(wait_lte)

    def nstat(self, ns=NS_PEER, relative=False, prefixes=("MPTcpExt", "Tcp")):
        """Counters of `ns`: absolute, or since the last nstat_reset(ns) if relative."""
        now = _nstat.read(ns, prefixes)
        if relative:
            return _nstat.delta(self._baselines.get(ns, {}), now)
        return now

    def nstat_reset(self, ns=NS_PEER):
        """Take a baseline for nstat(ns, relative=True) (kernel counters cannot be reset)."""
        self._baselines[ns] = _nstat.read(ns, None)
        return self._baselines[ns]
