"""PPP over a real pty: the device's PppNetif under MicroPython (source and x64 .mpy)
on the pty's slave through mptcp_net.serial_port.TtySerial; the network side is a CPython
PppNetif in server mode on the master. CHAP, IPCP, then IP packets echoed back by
the device, compared byte for byte. Also NO CARRIER mid-session.
"""
import json
import os
import random
import subprocess
import sys
import time
import tty

import pytest

import hostenv

from mptcp_net.ppp_netif import PppNetif
from mptcp_net.netif import ip_aton

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FW = os.path.join(ROOT, "firmware")
BIN = os.path.dirname(sys.executable)
MPY = os.path.join(BIN, "micropython")
DEVICE = r"""
import sys, json
from mptcp_net.serial_port import TtySerial
from mptcp_net.ppp_netif import PppNetif
from mptcp_net import hdlc
from mptcp_runtime import clock
from mptcp.ticks import add, diff
path, count, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ser = TtySerial(path)
nif = PppNetif(ser, auth=("chap", "dev", "s3cret"), echo_interval_ms=1000, clock=clock.now_ms)
ev = []
nif.on_event = lambda e, n: ev.append(e)
nif.start(clock.now_ms())
buf = bytearray(2048)
t_end = add(clock.now_ms(), 20000)
echoed = 0
while diff(clock.now_ms(), t_end) < 0:
    now = clock.now_ms()
    nif.poll(now)
    n = nif.recv_into(buf)
    if n:
        # swap source and destination and send it back
        for i in range(4):
            buf[12 + i], buf[16 + i] = buf[16 + i], buf[12 + i]
        while not nif.writable():
            nif.poll(clock.now_ms())
        nif.send(memoryview(buf), n)
        echoed += 1
        if echoed == count and mode == "echo":
            break
    if nif.state == "dead" and mode == "carrier":
        break
t = add(clock.now_ms(), 300)
while diff(clock.now_ms(), t) < 0 and nif.tx_pending():
    nif.poll(clock.now_ms())
st = nif.stats()
print(json.dumps({"impl": hdlc.IMPL, "echoed": echoed, "events": ev, "state": nif.state,
                  "reason": nif.reason, "addr": list(nif.addr), "dns": [list(d) for d in nif.dns],
                  "stats": st}))
"""


class MasterSerial:
    """The pty master as the serial interface (CPython, non-blocking fd)."""

    def __init__(self, fd):
        self.fd = fd
        os.set_blocking(fd, False)

    def write(self, b):
        try:
            return os.write(self.fd, b)
        except BlockingIOError:
            return 0

    def readinto(self, b):
        try:
            data = os.read(self.fd, len(b))
        except (BlockingIOError, OSError):
            return 0
        b[:len(data)] = data
        return len(data)

    def pollable(self):
        return self.fd


def _bundle(tmp):
    """x64 .mpy of the modules the device script needs."""
    out = os.path.join(tmp, "bundle")
    for rel in ("mptcp/__init__", "mptcp/compat", "mptcp/ticks", "mptcp_net/__init__", "mptcp_net/hdlc",
                "mptcp_net/_hdlc_viper", "mptcp_net/ppp_fsm", "mptcp_net/lcp", "mptcp_net/ipcp", "mptcp_net/ppp_auth", "mptcp_net/ppp",
                "mptcp_net/ppp_netif",
                "mptcp_net/serial_port", "mptcp_runtime/__init__", "mptcp_net/netif", "mptcp_runtime/clock"):
        dst = os.path.join(out, rel + ".mpy")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        subprocess.run([os.path.join(BIN, "mpy-cross"), "-march=x64", "-o", dst,
                        os.path.join(FW, rel + ".py")], check=True)
    return out


def _run(tmp_path, path_env, count, mode, net_action):
    master, slave = os.openpty()
    tty.setraw(slave)        # no echo before the device opens it (it would look looped back)
    slave_path = os.ttyname(slave)
    script = tmp_path / "dev.py"
    script.write_text(DEVICE)
    proc = subprocess.Popen([MPY, str(script), slave_path, str(count), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, MICROPYPATH=path_env))
    t0 = time.monotonic()
    clock = lambda: int((time.monotonic() - t0) * 1000)
    net = PppNetif(MasterSerial(master), name="net", server=True,
                   auth=("chap", "dev", "s3cret"), local_addr=ip_aton("198.18.2.1"),
                   peer_addr=ip_aton("198.18.2.2"), dns=[ip_aton("198.18.0.53")],
                   echo_interval_ms=0, clock=clock)
    try:
        net.start(clock())
        got = net_action(net, clock)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        os.close(slave)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1]), got


def _pump(net, clock, cond, timeout_s, rx=None):
    buf = bytearray(2048)
    end = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > end:
            return False
        net.poll(clock())
        n = net.recv_into(buf)
        if n and rx is not None:
            rx.append(bytes(buf[:n]))
        if not n:
            time.sleep(0.0005)
    return True


def _service(net, clock, rx):
    """One turn of the network side: timers, transmit queue, everything received."""
    buf = bytearray(2048)
    net.poll(clock())
    while True:
        n = net.recv_into(buf)
        if not n:
            return
        rx.append(bytes(buf[:n]))


def _echo_action(count):
    def action(net, clock):
        assert _pump(net, clock, lambda: net.up, 10)
        rng = random.Random(5)
        sent = []
        rx = []
        for k in range(count):
            size = rng.choice([20, 40, 576, 1000, 1500])
            p = bytearray(rng.randbytes(size))
            p[0] = 0x45
            p[2:4] = size.to_bytes(2, "big")
            p[12:16] = ip_aton("198.18.0.1")
            p[16:20] = ip_aton("198.18.2.2")
            sent.append(bytes(p))
            end = time.monotonic() + 10
            while not net.writable() and time.monotonic() < end:
                _service(net, clock, rx)
            assert net.send(memoryview(p), size)
            _service(net, clock, rx)
        assert _pump(net, clock, lambda: len(rx) >= count, 15, rx)
        return sent, rx
    return action


@pytest.mark.parametrize("build", ["source", "mpy"])
def test_pty_chap_ipcp_echo(tmp_path, build):
    hostenv.micropython()      # fails (never skips) without it
    hostenv.mpy_cross()
    path_env = FW if build == "source" else _bundle(str(tmp_path))
    count = 150
    res, (sent, rx) = _run(tmp_path, path_env, count, "echo", _echo_action(count))
    assert res["impl"] == "viper-native"
    assert res["echoed"] == count
    assert res["events"] == ["up"]
    assert res["addr"] == [198, 18, 2, 2] and res["dns"] == [[198, 18, 0, 53]]
    for a, b in zip(sent, rx):
        assert b[12:16] == a[16:20] and b[16:20] == a[12:16] and b[20:] == a[20:]
    st = res["stats"]
    assert st["rx_bad_fcs"] == 0 and st["rx_bad_escape"] == 0 and st["rx_packets"] == count


def test_pty_no_carrier(tmp_path):
    hostenv.micropython()
    def action(net, clock):
        assert _pump(net, clock, lambda: net.up, 10)
        time.sleep(0.2)
        net.serial.write(b"\r\nNO CARRIER\r\n")       # what the modem says when the call drops
        return None
    res, _ = _run(tmp_path, FW, 0, "carrier", action)
    assert res["state"] == "dead" and res["reason"] == "no-carrier"
    assert res["events"] == ["up", "down"]
