"""mptcp-concentrator in the lab: the device (MicroPython perf app, Wi-Fi + LTE) connects with
MPTCP to the concentrator in mplab (198.18.0.1), which relays to a plain TCP sink (the lab
peer with --tcp) in the same namespace. The sink's SHA-256 must equal the device's; the
kernel must count the device's join; the concentrator must count one MPTCP, multipath,
cleanly closed relay of exactly the bytes sent."""
import itertools
import json
import os
import queue
import signal
import subprocess
import threading

from device_checks import device_counter, kernel_counter
from kernel_checks import assert_kernel_clean
from mptcp_lab import common, lab as labmod
from mptcp_lab.nstat import delta as nstat_delta

_ports = itertools.count(6401)
GUARD = 60.0
HOST_TOOLS = os.path.join(common.REPO, "host_tools")


class Concentrator:
    """mptcp-concentrator (this checkout's) running in mplab; JSON lines via a queue."""

    def __init__(self, port, target):
        env = dict(os.environ, PYTHONPATH=HOST_TOOLS)
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", common.NS_PEER, common.python(), "-m",
             "mptcp_tools.concentrator", "--listen", "198.18.0.1:%d" % port,
             "--target", target, "--log-level", "debug"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        labmod.register_process(self.proc.pid)       # `mptcp-lab down` ends it whatever happens
        self.lines, self.err = queue.Queue(), []
        for f, put in ((self.proc.stdout, self.lines.put), (self.proc.stderr, self.err.append)):
            threading.Thread(target=self._pump, args=(f, put), daemon=True).start()
        self.ready = self._next("listening")

    @staticmethod
    def _pump(f, put):
        for line in f:
            put(line)
        put(None)

    def _next(self, event, reason=None):
        while True:
            try:
                line = self.lines.get(timeout=GUARD)
            except queue.Empty:
                line = None
            if line is None:
                self.kill()
                raise AssertionError("concentrator: no %s line (rc %s): %s"
                                     % (event, self.proc.poll(), "".join(self.err)[-3000:]))
            d = json.loads(line)
            if d["event"] == event and (reason is None or d["reason"] == reason):
                return d

    def stop(self):
        """SIGTERM; the exit counters (it must exit 0)."""
        os.kill(self.proc.pid, signal.SIGTERM)     # `ip netns exec` execs: this is python
        st = self._next("stats", "exit")
        assert self.proc.wait(GUARD) == 0, "".join(self.err)[-3000:]
        labmod.unregister_process(self.proc.pid)
        return st

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        labmod.unregister_process(self.proc.pid)


def _later(s, fn):
    t = threading.Timer(s, fn)
    t.daemon = True
    t.start()
    return t


def _relay_run(lab, nbytes, args, at=(), cleanup=(), wifi=("2mbit", "5ms"), down=False):
    """Sink (plain TCP) and concentrator in mplab, the device sends `nbytes` through them
    (down: the sink sends them to the device). Returns (rc, dev, err, sink result, concentrator exit stats, kernel counter delta)."""
    port, sink_port = next(_ports), next(_ports)
    lab.link_set("wifi", rate=wifi[0], delay=wifi[1])
    before = lab.nstat()
    sink = lab.start_peer("server", port=sink_port, mode="send" if down else "recv",
                          nbytes=nbytes if down else None, tcp=True)
    conc = None
    timers = []
    try:
        conc = Concentrator(port, "198.18.0.1:%d" % sink_port)
        assert conc.ready["fallback_detection"] == "MPTCP_INFO", conc.ready
        timers = [_later(when, fn) for when, fn in at]
        what = ["--recv"] if down else ["--send", str(nbytes)]
        rc, dev, err = lab.run_device(["--connect", "198.18.0.1:%d" % port] + what
                                      + list(args), timeout=300)
        res = sink.wait(60)
        st = conc.stop()
    finally:
        for t in timers:
            t.cancel()
        for fn in cleanup:
            fn()
        if conc is not None:
            conc.kill()
        sink.stop()
        lab.link_set("wifi", rate="0", delay="0ms")
    return rc, dev, err, res, st, nstat_delta(before, lab.nstat())


def _device_ok(rc, dev, err):
    assert rc == 0 and dev is not None, "device failed rc=%s: %s %s" % (rc, dev, err[-3000:])
    assert dev["ok"] and dev["error"] is None and dev["mptcp"], dev
    assert device_counter(dev, "InternalErrors") == 0, dev["counters"]


def _relayed_once(st, up, down=0):
    t = st["total"]
    assert (t["accepted"], t["closed"], t["active"]) == (1, 1, 0), t
    assert (t["bytes_up"], t["bytes_down"]) == (up, down), t
    assert (t["mptcp"], t["fallback_tcp"]) == (1, 0), t
    assert t["resets"] == t["target_connect_failures"] == t["internal_errors"] == 0, t


def test_device_through_concentrator_two_links(lab):
    """1 MiB from the device over Wi-Fi + LTE (joined) to a plain TCP sink."""
    n = 1024 * 1024
    rc, dev, err, res, st, d = _relay_run(lab, n, ["--links", "wifi,lte",
                                                   "--scheduler", "roundrobin"])
    _device_ok(rc, dev, err)
    assert res["mptcp"] is False, res                   # the sink is plain TCP
    assert res["bytes"] == n and res["sha256"] == dev["sha256"], (res, dev["sha256"])
    assert_kernel_clean(d)
    assert kernel_counter(d, "MPTcpExtMPJoinAckRx") >= 1
    assert kernel_counter(d, "MPTcpExtMPJoinAckHMacFailure") == 0
    assert sorted(s["link"] for s in dev["subflows"]) == ["lte", "wifi"], dev["subflows"]
    assert all(s["bytes_tx"] > 0 for s in dev["subflows"]), dev["subflows"]
    _relayed_once(st, n)
    assert st["total"]["multipath"] == 1, st["total"]


def test_wifi_down_mid_transfer_relay_completes(lab):
    """Wi-Fi goes down (signalled) 2 s into a 2 MiB transfer and stays down: the relayed
    connection moves to LTE and the sink still gets every byte."""
    n = 2 * 1024 * 1024
    rc, dev, err, res, st, d = _relay_run(
        lab, n, ["--links", "wifi,lte"],
        at=[(2.0, lambda: lab.link("wifi", "down"))],
        cleanup=[lambda: lab.link("wifi", "up")])
    _device_ok(rc, dev, err)
    assert res["bytes"] == n and res["sha256"] == dev["sha256"], (res, dev["sha256"])
    assert_kernel_clean(d)
    assert kernel_counter(d, "MPTcpExtMPJoinAckRx") >= 1
    # the cut happened while the connection had its Wi-Fi subflow, and LTE finished the job
    assert device_counter(dev, "LinkDown") == 1 and device_counter(dev, "RmSubflow") >= 1, \
        dev["counters"]
    wifi = [s for s in dev["subflows"] if s["link"] == "wifi"]
    lte = [s for s in dev["subflows"] if s["link"] == "lte"]
    assert wifi and lte and lte[0]["bytes_tx"] > 0, dev["subflows"]
    assert 0 < sum(s["bytes_tx"] for s in wifi) < n, dev["subflows"]
    _relayed_once(st, n)
    assert st["total"]["multipath"] == 1, st["total"]


def test_device_receives_through_concentrator_two_links(lab):
    """The other direction: the plain TCP server sends 1 MiB, the device receives it over
    Wi-Fi + LTE; its EOF reaches the device as a DATA_FIN through the relay."""
    n = 1024 * 1024
    rc, dev, err, res, st, d = _relay_run(lab, n, ["--links", "wifi,lte"], down=True)
    _device_ok(rc, dev, err)
    assert res["mptcp"] is False, res
    assert dev["bytes"] == n and res["sha256"] == dev["sha256"], (res, dev)
    assert_kernel_clean(d)
    assert kernel_counter(d, "MPTcpExtMPJoinAckRx") >= 1
    assert sorted(s["link"] for s in dev["subflows"]) == ["lte", "wifi"], dev["subflows"]
    _relayed_once(st, 0, n)
    assert st["total"]["multipath"] == 1, st["total"]
