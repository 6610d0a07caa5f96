"""The emulator's link-state control frames to a UDP device (no root: the Wi-Fi link's
device socket is a plain UDP pair on 127.0.0.1, no TUN): sent on `link wifi up|down`,
repeated while down, a hello on a down link is answered, loss=100 stays silent, and the
frames are what mptcp_net/udp_tunnel.py parses."""

import random
import socket

import hostenv  # noqa: F401  (sys.path for host_tools and firmware)

from mptcp_lab import common
from mptcp_lab.emulator import TunUdpLink


class _Emu:
    def wake(self, d, link):
        pass


def _link():
    """A Wi-Fi link whose device side is a UDP socket pair; returns (link, device socket)."""
    link = TunUdpLink("wifi", "clean", random.Random(1), _Emu())
    emu = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    emu.bind(("127.0.0.1", 0))
    emu.setblocking(False)
    dev = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dev.bind(("127.0.0.1", 0))
    dev.settimeout(2.0)
    link.sock = emu
    dev.sendto(b"", emu.getsockname())          # hello
    for _ in range(200):
        link.on_udp(0.0)
        if link.dest is not None:
            break
        dev.settimeout(0.01)
        try:
            dev.recv(1)
        except socket.timeout:
            pass
        dev.settimeout(2.0)
    assert link.dest == ("udp", dev.getsockname())
    return link, dev


def _recv(dev):
    d = dev.recv(4096)
    assert len(d) == 1500, len(d)
    return d


def _silent(dev):
    dev.settimeout(0.05)
    try:
        dev.recv(4096)
    except socket.timeout:
        return True
    finally:
        dev.settimeout(2.0)
    return False


def test_down_up_frames_repeats_and_hello():
    link, dev = _link()
    try:
        link.set_state(False)
        d = _recv(dev)
        assert d.startswith(common.CTL_DOWN) and d[len(common.CTL_DOWN):] == bytes(1500 - len(common.CTL_DOWN))
        t = link.next_deadline()
        assert t is not None
        link.on_timer(t - 0.5)                   # not due yet: nothing
        assert _silent(dev)
        link.on_timer(t)                         # repeated while down
        assert _recv(dev).startswith(common.CTL_DOWN)
        assert link.next_deadline() == t + link.CTL_REPEAT_S
        # a device that (re)starts says hello on the down link: it is told at once
        dev.sendto(b"", link.sock.getsockname())
        for _ in range(100):
            link.on_udp(0.0)
            if link.ctl_sent == 3:
                break
        assert link.ctl_sent == 3
        assert _recv(dev).startswith(common.CTL_DOWN)
        link.set_state(True)
        assert _recv(dev).startswith(common.CTL_UP)
        for _ in range(link.CTL_UP_REPEATS):     # a few repeats of "up", then quiet
            t = link.next_deadline()
            link.on_timer(t)
            assert _recv(dev).startswith(common.CTL_UP)
        assert link.next_deadline() is None
        st = link.status()
        assert st["state"] == "up" and st["state_changes"] == 2
        assert st["ctl_sent"] == 4 + link.CTL_UP_REPEATS
    finally:
        dev.close()
        link.sock.close()


def test_loss_100_is_silent_and_ref_gets_no_frames():
    link, dev = _link()
    try:
        for d in link.directions():
            d.set(loss=100.0)
        assert _silent(dev) and link.next_deadline() is None
        link.dest = ("ref", None)                 # the kernel reference device: no frames
        link.set_state(False)
        assert _silent(dev) and link.ctl_sent == 0
    finally:
        dev.close()
        link.sock.close()


def test_firmware_uses_the_same_frames():
    from mptcp_net import udp_tunnel
    assert udp_tunnel.CTL_DOWN == common.CTL_DOWN and udp_tunnel.CTL_UP == common.CTL_UP
    assert common.CTL_DOWN[0] == 0 and common.CTL_UP[0] == 0     # never an IPv4 header
