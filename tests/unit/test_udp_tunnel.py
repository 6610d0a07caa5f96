"""mptcp_net.udp_tunnel's link-state control messages over a real UDP socket pair on
127.0.0.1 (the emulator's side is a plain socket here): a CTL_DOWN frame takes the netif
down (one "down" event, never handed to the stack, send refused and counted), repeats are
silent, CTL_UP or any IPv4 packet brings it back, junk control frames are counted, and the
poll loop forwards the events to the stack (netif_down / add_netif).

Not applicable (tutil.NotApplicable) where the interpreter has no `socket` module.
"""
import os

from mptcp_runtime import clock
from mptcp_net.netif import ip_aton
import tutil

ADDR = ip_aton("198.18.1.2")
FRAME = 1500


def _frame(msg):
    b = bytearray(FRAME)
    b[0:len(msg)] = msg
    return b


def _ip_packet(n, seed):
    p = bytearray(n)
    for i in range(n):
        p[i] = (i * 5 + seed) & 0xFF
    p[0] = 0x45
    p[2] = n >> 8
    p[3] = n & 0xFF
    return p


def _pair():
    """(device UdpTunnel, emulator socket), each connected to the other."""
    socket = tutil.require_module("socket")
    from mptcp_net.udp_tunnel import UdpTunnel
    r = os.urandom(2)
    dev_port = 30000 + (((r[0] << 8) | r[1]) % 5000) * 2
    emu_port = dev_port + 1
    emu = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    emu.bind(socket.getaddrinfo("127.0.0.1", emu_port)[0][-1])
    emu.connect(socket.getaddrinfo("127.0.0.1", dev_port)[0][-1])
    nif = UdpTunnel("wifi", 4, ADDR, "127.0.0.1", emu_port, local_port=dev_port)
    emu.settimeout(2.0)
    emu.recv(2048)            # the device's hello (an empty datagram)
    emu.setblocking(False)
    return nif, emu


def _pump(nif, cond, got=None):
    """Call recv_into until cond() (-> the lengths it returned) or ~2 s pass (-> None)."""
    buf = bytearray(2048)
    if got is None:
        got = []
    for _ in range(400):
        n = nif.recv_into(buf)
        if n:
            got.append(n)
        if cond():
            return got
        clock.sleep_ms(5)
    return None


def _nothing_waiting(emu):
    try:
        d = emu.recv(2048)
    except OSError:
        return True
    return d is None


def test_control_messages_flip_the_link_and_never_reach_the_stack():
    nif, emu = _pair()
    from mptcp_net.udp_tunnel import CTL_DOWN, CTL_UP
    events = []
    nif.on_event = lambda ev, n: events.append((ev, n.name))
    try:
        assert nif.up
        emu.send(_frame(CTL_DOWN))
        got = _pump(nif, lambda: nif.ctl_rx == 1)
        assert got == [], got                    # consumed, nothing for the stack
        assert events == [("down", "wifi")] and not nif.up and nif.downs == 1
        p = _ip_packet(200, 1)
        assert nif.send(memoryview(p), len(p)) is False
        assert nif.tx_down == 1 and nif.tx_packets == 0 and nif.tx_errors == 0
        assert _nothing_waiting(emu), "a packet left a down link"
        emu.send(_frame(CTL_DOWN))               # the emulator's repeat: no new event
        assert _pump(nif, lambda: nif.ctl_rx == 2) == []
        assert events == [("down", "wifi")]
        q = _ip_packet(300, 2)
        emu.send(_frame(CTL_UP))
        emu.send(_frame(q))
        got = _pump(nif, lambda: nif.rx_packets == 1)
        assert got == [300], got                 # the packet after the control message
        assert events == [("down", "wifi"), ("up", "wifi")] and nif.up and nif.ups == 1
        assert nif.send(memoryview(p), len(p)) is True
        emu.setblocking(True)
        emu.settimeout(2.0)
        assert emu.recv(2048) == bytes(p)
    finally:
        nif.close()
        emu.close()


def test_a_packet_on_a_down_link_means_up_and_junk_is_counted():
    nif, emu = _pair()
    from mptcp_net.udp_tunnel import CTL_DOWN
    events = []
    nif.on_event = lambda ev, n: events.append(ev)
    try:
        emu.send(_frame(CTL_DOWN))
        assert _pump(nif, lambda: not nif.up) is not None
        emu.send(_frame(b"\x00MPLAB LINK SIDEWAYS"))
        assert _pump(nif, lambda: nif.rx_errors == 1) == []
        assert not nif.up and events == ["down"]
        emu.send(_frame(_ip_packet(100, 3)))     # the "up" message was lost
        assert _pump(nif, lambda: nif.rx_packets == 1) == [100]
        assert nif.up and events == ["down", "up"]
        assert nif.ctl_rx == 2
    finally:
        nif.close()
        emu.close()


def test_loop_forwards_the_link_state_to_the_stack():
    nif, emu = _pair()
    from mptcp_net.udp_tunnel import CTL_DOWN, CTL_UP
    from mptcp_runtime.loop import Loop
    from mptcp.stack import Stack
    st = Stack(snd_buf=4096, rcv_buf=4096, max_conns=1)
    loop = Loop(st, [nif])
    seen = []
    loop.on_link_event = lambda ev, n: seen.append(ev)
    try:
        assert st.netifs == [[4, ADDR, True, False]]
        emu.send(_frame(CTL_DOWN))
        for _ in range(400):
            loop.run_once(5)
            if seen:
                break
        assert seen == ["down"] and st.netifs == [[4, ADDR, False, False]]
        emu.send(_frame(CTL_UP))
        for _ in range(400):
            loop.run_once(5)
            if len(seen) == 2:
                break
        assert seen == ["down", "up"] and st.netifs == [[4, ADDR, True, False]]
    finally:
        loop.close()
        emu.close()
