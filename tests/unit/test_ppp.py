"""PPP (LCP, PAP/CHAP, IPCP) on both interpreters: two PppNetif back to back.

The serial line is an in-memory pair (the one fake allowed: no UART here); time is
a fake clock. The "network" end uses PppNetif's server mode (address hand-out),
which only exists for tests like these; the lab's network side is scapy.
"""
from mptcp_net.netif import ip_aton
from mptcp_net.ppp_netif import PppNetif
from mptcp_net import hdlc
from mptcp_net import ppp_fsm
from mptcp import ticks

NEAR_WRAP = ticks.PERIOD - 1500   # 1.5 s before the 2**30 ms wrap: timers must cross it

STARTS = (1000, NEAR_WRAP)    # scenarios marked "for t0 in STARTS" also run across the wrap

DEV_ADDR = ip_aton("198.18.2.2")
NET_ADDR = ip_aton("198.18.2.1")
DNS1 = ip_aton("198.18.0.53")
DNS2 = ip_aton("198.18.0.54")


class Wire:
    """One direction of the line: a byte queue, which can be cut or made noisy."""

    def __init__(self):
        self.q = bytearray()
        self.cut = False
        self.drop = None          # callable(bytes written) -> True to lose them
        self.total = 0

    def put(self, b):
        self.total += len(b)
        if self.drop is not None and self.drop(b):
            return
        if not self.cut:
            self.q += b


class End:
    """The serial interface PppNetif expects (write may be short; reads never block)."""

    def __init__(self, rx, tx, wmax=0):
        self.rx = rx
        self.tx = tx
        self.wmax = wmax          # bytes the line takes per step (0 = unlimited), like a pty
        self.budget = wmax

    def write(self, b):
        n = len(b)
        if self.wmax:
            if n > self.budget:
                n = self.budget
            self.budget -= n
        if n:
            self.tx.put(bytes(b[:n]))
        return n

    def readinto(self, b):
        q = self.rx.q
        n = min(len(b), len(q))
        if not n:
            return 0
        b[0:n] = q[:n]
        self.rx.q = q[n:]
        return n

    def pollable(self):
        return None


class Clock:
    """A fake clock of ticks (ms modulo 2**30), starting at t0."""

    def __init__(self, t0=1000):
        self.t = t0

    def __call__(self):
        return self.t


class Pair:
    def __init__(self, dev_kw=None, net_kw=None, wmax=0, t0=1000):
        self.t0 = t0
        self.clock = Clock(t0)
        self.up_w = Wire()        # device -> network
        self.down_w = Wire()      # network -> device
        dkw = {"echo_interval_ms": 0}
        dkw.update(dev_kw or {})
        nkw = {"server": True, "local_addr": NET_ADDR, "peer_addr": DEV_ADDR,
               "dns": [DNS1, DNS2], "echo_interval_ms": 0}
        nkw.update(net_kw or {})
        self.dev = PppNetif(End(self.down_w, self.up_w, wmax), clock=self.clock, **dkw)
        self.net = PppNetif(End(self.up_w, self.down_w, wmax), name="net", clock=self.clock,
                            **nkw)
        self.events = []
        self.dev.on_event = lambda ev, nif: self.events.append((ev, self.clock.t))
        self.rx = {self.dev: [], self.net: []}
        self.buf = bytearray(2048)

    def start(self):
        self.dev.start(self.clock.t)
        self.net.start(self.clock.t)

    def step(self, ms=10):
        self.clock.t = ticks.add(self.clock.t, ms)
        for x in (self.dev, self.net):
            x.serial.budget = x.serial.wmax
            x.poll(self.clock.t)
            while True:
                n = x.recv_into(self.buf)
                if not n:
                    break
                self.rx[x].append(bytes(self.buf[:n]))

    def run(self, cond, max_ms, ms=10):
        end = ticks.add(self.clock.t, max_ms)
        while not cond():
            if ticks.diff(self.clock.t, end) >= 0:
                return False
            self.step(ms)
        return True

    def since(self, t):
        """ms from tick t to now."""
        return ticks.diff(self.clock.t, t)

    def up(self, max_ms=2000):
        self.start()
        return self.run(lambda: self.dev.up and self.net.up, max_ms)


def ip_packet(n, seed=0, src=DEV_ADDR, dst=NET_ADDR):
    p = bytearray(n)
    p[0] = 0x45
    p[2] = n >> 8
    p[3] = n & 0xFF
    p[9] = 17
    p[12:16] = src
    p[16:20] = dst
    for i in range(20, n):
        p[i] = (i * 7 + seed) & 0xFF
    return p


def _lcp_ipcp_no_auth(t0):
    p = Pair(t0=t0)
    assert p.dev.state == "dead" and p.dev.addr == b"\x00\x00\x00\x00"
    assert p.up()
    d = p.dev
    assert d.state == "running" and p.net.state == "running"
    assert d.addr == DEV_ADDR
    assert p.net.addr == NET_ADDR
    assert d.dns == [DNS1, DNS2]
    assert p.events == [("up", p.events[0][1])]
    # negotiated: ACCM 0 both ways, ACFC and PFC, MRU 1500
    assert d.tx_acfc and d.tx_pfc and d.mtu == 1500
    assert d.enc.esc[0x01] == 0 and d.dec.cls[0x01] == 0
    assert d.ses.lcp.state == ppp_fsm.OPENED
    st = d.stats()
    assert st["rx_bad_fcs"] == 0 and st["rx_ctl_bad"] == 0 and st["auth_fail"] == 0


def test_lcp_ipcp_no_auth():
    for t0 in STARTS:
        _lcp_ipcp_no_auth(t0)


def _exchange(p):
    for n in (20, 21, 100, 576, 1499, 1500):
        pk = ip_packet(n, n)
        assert p.dev.send(memoryview(pk), n)
        back = ip_packet(n, n + 1, NET_ADDR, DEV_ADDR)
        assert p.net.send(memoryview(back), n)
    p.step()
    p.step()
    assert [len(x) for x in p.rx[p.net]] == [20, 21, 100, 576, 1499, 1500]
    for x in p.rx[p.net]:
        assert x == bytes(ip_packet(len(x), len(x)))
    for x in p.rx[p.dev]:
        assert x == bytes(ip_packet(len(x), len(x) + 1, NET_ADDR, DEV_ADDR))
    assert p.dev.rx_packets == 6 and p.dev.tx_packets == 6


def test_pap_then_data():
    p = Pair({"auth": ("pap", "user", "secret")}, {"auth": ("pap", "user", "secret")})
    assert p.up()
    assert p.dev.ses.lcp.auth_peer == 0xC023
    _exchange(p)


def _chap_then_data(t0):
    p = Pair({"auth": ("chap", "user", "secret")}, {"auth": ("chap", "user", "secret")}, t0=t0)
    assert p.up()
    assert p.dev.ses.lcp.auth_peer == 0xC223
    _exchange(p)


def test_chap_then_data():
    for t0 in STARTS:
        _chap_then_data(t0)


def test_no_credentials_accepts_either_method():
    for m in ("pap", "chap"):
        p = Pair({}, {"auth": (m, "", "")})
        assert p.up(), m


def test_method_mismatch_is_naked_to_ours():
    # the network asks CHAP, we only have PAP credentials: we Nak towards PAP, it agrees
    p = Pair({"auth": ("pap", "u", "pw")}, {"auth": ("chap", "u", "pw")})
    assert p.up()
    assert p.dev.ses.lcp.auth_peer == 0xC023


def _auth_failure_takes_link_down(t0):
    for m in ("pap", "chap"):
        p = Pair({"auth": (m, "user", "wrong")}, {"auth": (m, "user", "secret")}, t0=t0)
        p.start()
        assert p.run(lambda: p.dev.state == "dead", 20000), (m, p.dev.state)
        assert not p.dev.up and p.events == []
        assert p.dev.ses.auth_fail + p.net.ses.auth_fail >= 1


def test_auth_failure_takes_link_down():
    for t0 in STARTS:
        _auth_failure_takes_link_down(t0)


def test_pty_short_writes():
    p = Pair(wmax=300)
    assert p.up()
    pk = ip_packet(1500, 3)
    assert p.dev.send(memoryview(pk), 1500)
    assert p.dev.tx_pending() > 0
    assert p.dev.send(memoryview(pk), 1500)
    assert p.run(lambda: len(p.rx[p.net]) == 2, 2000)
    assert p.rx[p.net] == [bytes(pk), bytes(pk)]
    assert p.dev.tx_pending() == 0


def _lost_frames_restart_timer(t0):
    p = Pair(t0=t0)
    p.up_w.cut = True             # the device's first Configure-Requests vanish
    p.start()
    p.run(lambda: False, 2500)
    assert not p.dev.up
    p.up_w.cut = False
    t1 = p.clock.t
    assert p.run(lambda: p.dev.up and p.net.up, 8000)
    assert p.dev.ses.lcp.tx_confreq >= 2        # retransmitted by the restart timer
    assert p.since(t1) <= 3100


def test_lost_frames_restart_timer():
    for t0 in STARTS:
        _lost_frames_restart_timer(t0)


def _lcp_gives_up_after_max_configure(t0):
    p = Pair(t0=t0)
    p.down_w.cut = True
    p.up_w.cut = True
    p.start()
    assert p.run(lambda: p.dev.state == "dead", 40000)
    assert p.dev.ses.lcp.tx_confreq == 10       # Max-Configure
    assert p.dev.ses.lcp.state == ppp_fsm.STOPPED


def test_lcp_gives_up_after_max_configure():
    for t0 in STARTS:
        _lcp_gives_up_after_max_configure(t0)


def _echo_keepalive_and_dead_peer(t0):
    p = Pair({"echo_interval_ms": 1000, "echo_fails": 3}, t0=t0)
    assert p.up()
    p.run(lambda: False, 5500)
    d = p.dev
    assert d.lcp_echo_tx >= 5 and d.lcp_echo_rx == d.lcp_echo_tx and d.up
    p.down_w.cut = True           # the network stops answering
    t1 = p.clock.t
    assert p.run(lambda: not d.up, 10000)
    assert 3000 <= p.since(t1) <= 5000
    assert d.stats()["lcp_echo_fail"] == 1
    assert p.events[-1][0] == "down"
    assert p.run(lambda: d.state == "dead", 10000)   # Terminate-Requests time out


def test_echo_keepalive_and_dead_peer():
    for t0 in STARTS:
        _echo_keepalive_and_dead_peer(t0)


def _terminate_both_sides(t0):
    p = Pair(t0=t0)
    assert p.up()
    p.dev.close(p.clock.t)
    assert p.dev.state == "terminate" and not p.dev.up
    assert p.events[-1][0] == "down"
    assert p.run(lambda: p.dev.state == "dead", 1000)     # Terminate-Ack came back
    assert p.net.state == "terminate"                      # the peer waits one restart period
    assert p.run(lambda: p.net.state == "dead", 4000)
    # start again on the same line
    p.events[:] = []
    assert p.up()
    assert p.events[0][0] == "up"


def test_terminate_both_sides():
    for t0 in STARTS:
        _terminate_both_sides(t0)


def test_network_terminates():
    p = Pair()
    assert p.up()
    p.net.close(p.clock.t)
    assert p.run(lambda: p.dev.state == "dead", 5000)
    assert not p.dev.up


def test_lower_down():
    p = Pair()
    assert p.up()
    p.dev.lower_down(p.clock.t)
    assert p.dev.state == "dead" and not p.dev.up
    assert p.events[-1][0] == "down"
    assert not p.dev.send(memoryview(ip_packet(40)), 40)


def _inject(p, proto, payload, acfc=False):
    """The network sends a raw frame (our encoder; test_ppp_scapy does it independently)."""
    e = hdlc.Encoder(4096)
    e.set_accm(0 if p.dev.up else 0xFFFFFFFF)
    h = bytes((proto >> 8, proto & 0xFF)) if acfc else bytes((0xFF, 0x03, proto >> 8, proto & 0xFF))
    e.frame(h, len(h), payload, 0, len(payload))
    p.down_w.put(bytes(e.buf[e.head:e.tail]))


def test_protocol_reject_unknown_protocol():
    p = Pair()
    assert p.up()
    before = p.net.ses.lcp.proto_reject_rx
    _inject(p, 0x8057, b"\x01\x01\x00\x0e\x01\x0a\x00\x00\x00\x00\x00\x00\x00\x01")   # IPv6CP
    p.step()
    p.step()
    assert p.dev.rx_proto_reject == 1
    assert p.net.ses.lcp.proto_reject_rx == before + 1     # the network got our Protocol-Reject
    assert p.dev.up


def test_unknown_lcp_code_and_garbage_control():
    p = Pair()
    assert p.up()
    _inject(p, 0xC021, b"\x20\x01\x00\x04")          # unknown code: Code-Reject
    _inject(p, 0xC021, b"\x01\x01\x00\xff\x01")      # length beyond the packet: dropped
    _inject(p, 0xC021, b"\x0b\x05\x00\x08abcd")      # Discard-Request
    _inject(p, 0x8021, b"\x02\x09\x00\x04")          # IPCP Ack with a wrong id
    _inject(p, 0xC021, b"")
    p.step()
    p.step()
    st = p.dev.stats()
    assert st["lcp_discard_rx"] == 1
    assert st["rx_ctl_bad"] >= 3
    assert p.net.stats()["rx_code_reject"] == 1
    assert p.dev.up and p.net.up


def test_line_noise_during_transfer():
    p = Pair()
    assert p.up()
    sent = []
    for k in range(30):
        pk = ip_packet(200 + k, k)
        sent.append(bytes(pk))
        assert p.dev.send(memoryview(pk), len(pk))
        if k % 3 == 0:
            p.up_w.put(b"\x00\x7d\x7e\x99noise\x7e")      # abort and junk between frames
        if k % 5 == 0:
            p.up_w.put(b"\x7e\x21\x45" + bytes(100) + b"\x7e")  # bad FCS
        p.step()
    p.step()
    assert p.rx[p.net] == sent
    st = p.net.stats()
    assert st["rx_bad_escape"] >= 10 and st["rx_bad_fcs"] >= 6


def test_compressed_and_uncompressed_frames_accepted():
    p = Pair()
    assert p.up()
    pk = bytes(ip_packet(60, 5, NET_ADDR, DEV_ADDR))
    _inject(p, 0x0021, pk)                           # FF 03 00 21
    _inject(p, 0x0021, pk, acfc=True)                # 00 21
    e = hdlc.Encoder(512)
    e.set_accm(0)
    e.frame(b"\x21", 1, pk, 0, len(pk))              # ACFC + PFC: 21
    p.down_w.put(bytes(e.buf[e.head:e.tail]))
    e.clear()
    e.frame(b"\xff\x05\x00\x21", 4, pk, 0, len(pk))   # bad control field
    p.down_w.put(bytes(e.buf[e.head:e.tail]))
    p.step()
    assert p.rx[p.dev] == [pk, pk, pk]
    assert p.dev.rx_bad_header == 1


def test_ip_before_up_dropped_and_oversize_refused():
    p = Pair(net_kw={"mru": 576})
    assert not p.dev.send(memoryview(ip_packet(40)), 40)
    assert p.up()
    assert p.dev.mtu == 576
    assert not p.dev.send(memoryview(ip_packet(600)), 600)
    assert p.dev.send(memoryview(ip_packet(576)), 576)


def test_mru_and_accm_requests():
    # the device asks for a smaller MRU and an ACCM with XON/XOFF escaped
    p = Pair({"mru": 1000, "accm": 0x000A0000})
    assert p.up()
    assert p.net.mtu == 1000
    assert p.net.enc.esc[0x11] and p.net.enc.esc[0x13] and not p.net.enc.esc[0x01]
    assert p.dev.dec.cls[0x11] == 3


def test_looped_back_line():
    w = Wire()
    clock = Clock()
    d = PppNetif(End(w, w), clock=clock, echo_interval_ms=0)
    d.start(clock.t)
    buf = bytearray(2048)
    for _ in range(300):
        clock.t += 10
        d.poll(clock.t)
        d.recv_into(buf)
    assert d.stats()["lcp_loopback"] >= 1
    assert not d.up
    assert d.state in ("dead", "terminate")


def _renegotiation_from_opened(t0):
    p = Pair(t0=t0)
    assert p.up()
    # the network restarts LCP (e.g. after a handover in the modem): both sides come back up
    p.net.ses.lcp._fresh(p.clock.t)
    p.net.ses.lcp.state = ppp_fsm.REQSENT
    assert p.run(lambda: not p.dev.up, 100)
    assert p.events[-1][0] == "down"
    assert p.run(lambda: p.dev.up and p.net.up, 5000)
    assert p.events[-1][0] == "up"
    _exchange(p)


def test_renegotiation_from_opened():
    for t0 in STARTS:
        _renegotiation_from_opened(t0)


class _Probe(ppp_fsm.Fsm):
    """The bare automaton with no options, recording what it sends and its layer events."""

    def __init__(self):
        self.sent = []
        self.ev = []
        ppp_fsm.Fsm.__init__(self, 0x8021, self._out)

    def _out(self, proto, a, aoff, alen, b, boff, blen):
        pkt = bytes(a[aoff:aoff + alen]) + (bytes(b[boff:boff + blen]) if blen else b"")
        self.sent.append(pkt)

    def layer_up(self, now):
        self.ev.append("up")

    def layer_down(self, now):
        self.ev.append("down")

    def layer_started(self, now):
        self.ev.append("started")

    def layer_finished(self, now):
        self.ev.append("finished")


def test_fsm_transitions():
    f = _Probe()
    f.open(0)
    assert f.state == ppp_fsm.STARTING and f.ev == ["started"]
    f.up(0)
    assert f.state == ppp_fsm.REQSENT and f.sent[-1][0] == 1 and f.deadline == 3000
    rid = f.sent[-1][1]
    f.input(bytes([2, rid, 0, 4]), 0, 4, 10)               # Configure-Ack
    assert f.state == ppp_fsm.ACKRCVD
    f.input(bytes([2, rid, 0, 4]), 0, 4, 10)               # duplicate Ack: crossed, resend
    assert f.state == ppp_fsm.REQSENT
    rid = f.sent[-1][1]
    f.input(bytes([1, 77, 0, 4]), 0, 4, 20)                # peer's request (empty): Ack it
    assert f.sent[-1] == bytes([2, 77, 0, 4]) and f.state == ppp_fsm.ACKSENT
    f.input(bytes([2, rid ^ 1, 0, 4]), 0, 4, 20)           # Ack with a wrong id: ignored
    assert f.state == ppp_fsm.ACKSENT and f.rx_bad == 1
    f.input(bytes([2, rid, 0, 4]), 0, 4, 30)
    assert f.state == ppp_fsm.OPENED and f.ev[-1] == "up" and f.deadline == -1
    f.input(bytes([7, 1, 0, 8, 9, 0, 0, 4]), 0, 8, 40)     # Code-Reject of Echo: RXJ+
    assert f.state == ppp_fsm.OPENED
    f.input(bytes([12, 1, 0, 4]), 0, 4, 40)                # unknown code: Code-Reject it
    assert f.sent[-1][0] == 7 and f.sent[-1][4:] == bytes([12, 1, 0, 4])
    f.input(bytes([7, 2, 0, 8, 1, 0, 0, 4]), 0, 8, 50)     # Code-Reject of Configure: RXJ-
    assert f.state == ppp_fsm.STOPPING and f.ev[-1] == "down" and f.sent[-1][0] == 5
    f.timer(3049)
    assert f.state == ppp_fsm.STOPPING
    f.timer(3050)                                          # TO+: second Terminate-Request
    assert f.sent[-1][0] == 5 and f.tx_termreq == 2
    f.timer(6050)                                          # TO-: Max-Terminate reached
    assert f.state == ppp_fsm.STOPPED and f.ev[-1] == "finished"
    f.input(bytes([5, 9, 0, 4]), 0, 4, 7000)               # Terminate-Request in Stopped
    assert f.sent[-1] == bytes([6, 9, 0, 4])
    f.close(7000)
    assert f.state == ppp_fsm.CLOSED
    f.input(bytes([1, 78, 0, 4]), 0, 4, 7010)              # Closed answers Terminate-Ack
    assert f.sent[-1] == bytes([6, 78, 0, 4])
    f.down(7020)
    assert f.state == ppp_fsm.INITIAL
    f.input(bytes([1, 79, 0, 4]), 0, 4, 7030)              # lower layer down: silent
    assert f.sent[-1] == bytes([6, 78, 0, 4])


def test_fsm_malformed_packets_counted():
    f = _Probe()
    f.open(0)
    f.up(0)
    for pkt in (b"", b"\x01", b"\x01\x01\x00", b"\x01\x01\x00\x03", b"\x01\x01\x00\x09abc",
                b"\x02\x01\xff\xff"):
        f.input(pkt, 0, len(pkt), 1)
    assert f.rx_bad == 6 and f.state == ppp_fsm.REQSENT


def test_fsm_close_while_starting_and_peer_terminates():
    f = _Probe()
    f.open(0)
    f.close(0)
    assert f.state == ppp_fsm.INITIAL and f.ev == ["started", "finished"]
    f.open(0)
    f.up(0)
    rid = f.sent[-1][1]
    f.input(bytes([1, 5, 0, 4]), 0, 4, 1)
    f.input(bytes([2, rid, 0, 4]), 0, 4, 2)
    assert f.state == ppp_fsm.OPENED
    f.input(bytes([5, 6, 0, 4]), 0, 4, 3)                  # the peer terminates
    assert f.state == ppp_fsm.STOPPING and f.sent[-1] == bytes([6, 6, 0, 4])
    f.timer(3003)                                          # zrc: one period, then Stopped
    assert f.state == ppp_fsm.STOPPED and f.ev[-1] == "finished"
    f.open(4000)                                           # restart option: negotiate again
    assert f.state == ppp_fsm.REQSENT


def test_no_carrier_text_takes_link_down():
    for cut_frame in (False, True):
        p = Pair()
        assert p.up()
        if cut_frame:
            p.down_w.put(b"\x7e\x21\x45\x00\x00")            # the call drops mid-frame
        p.down_w.put(b"\r\nNO CARRIER\r\n")
        p.step()
        d = p.dev
        assert d.state == "dead" and not d.up
        assert d.no_carrier and d.reason == "no-carrier"
        assert p.events[-1][0] == "down"
        # the modem driver re-dials and starts PPP again; the network's first frame may
        # already be in the bytes it read after CONNECT
        p.net.lower_down(p.clock.t)
        p.net.start(p.clock.t)
        first = bytes(p.down_w.q)
        p.down_w.q = bytearray()
        d.start(p.clock.t, first)
        assert not d.no_carrier and d.reason is None
        assert p.run(lambda: d.up and p.net.up, 1000)


def test_no_carrier_text_inside_a_packet_is_data():
    p = Pair()
    assert p.up()
    pk = ip_packet(100, 0, NET_ADDR, DEV_ADDR)
    pk[86:100] = b"\r\nNO CARRIER\r\n"       # even at the very end of the packet
    assert p.net.send(memoryview(pk), 100)
    p.step()
    assert p.rx[p.dev] == [bytes(pk)] and p.dev.up


def test_serial_hangup_flag():
    p = Pair()
    assert p.up()
    p.dev.serial.hup = True
    p.step()
    assert p.dev.state == "dead" and p.dev.reason == "hangup"


def _down_reasons(t0):
    p = Pair({"echo_interval_ms": 1000}, t0=t0)
    assert p.up()
    p.down_w.cut = True
    assert p.run(lambda: p.dev.state == "dead", 20000)
    assert p.dev.reason == "echo-timeout"
    p = Pair(t0=t0)
    assert p.up()
    p.net.close(p.clock.t)
    assert p.run(lambda: p.dev.state == "dead", 5000)
    assert p.dev.reason == "peer-terminated" and p.net.reason == "closed"
    p = Pair(t0=t0)
    p.up_w.cut = True
    p.down_w.cut = True
    p.start()
    assert p.run(lambda: p.dev.state == "dead", 40000)
    assert p.dev.reason == "negotiation-failed"
    p = Pair({"auth": ("pap", "u", "bad")}, {"auth": ("pap", "u", "good")}, t0=t0)
    p.start()
    assert p.run(lambda: p.dev.state == "dead", 20000)
    assert p.dev.reason in ("auth-failed", "peer-terminated")


def test_down_reasons():
    for t0 in STARTS:
        _down_reasons(t0)


def test_writable_tracks_the_transmit_queue():
    p = Pair({"tx_queue": 4000})
    assert p.up()
    d = p.dev
    d.serial.wmax = 1                 # the line is nearly stuck from now on
    d.serial.budget = 0
    n = 0
    while d.writable():
        assert d.send(memoryview(ip_packet(1500, n)), 1500)
        n += 1
    assert n == 2 and d.tx_pending() > 3000
    d.serial.wmax = 0
    p.step()
    assert d.writable() and d.tx_pending() == 0
    assert len(p.rx[p.net]) == 2


def test_pure_python_framing_end_to_end():
    p = Pair({"impl": "pure-python", "auth": ("chap", "u", "p")}, {"auth": ("chap", "u", "p")})
    assert p.dev.dec.impl == "pure-python" and p.dev.enc.impl == "pure-python"
    assert p.up()
    _exchange(p)


def test_lcp_max_failure_turns_naks_into_rejects():
    from mptcp_net.lcp import Lcp
    sent = []

    def out(proto, a, aoff, alen, b, boff, blen):
        sent.append(bytes(a[aoff:aoff + alen]) + (bytes(b[boff:boff + blen]) if blen else b""))

    lcp = Lcp(out, lambda ev, now: None, lambda n: b"\x11\x22\x33\x44")
    lcp.open(0)
    lcp.up(0)
    codes = []
    for i in range(7):
        # the peer insists on a zero magic number (invalid) and an MRU below the minimum
        pkt = bytes([1, 100 + i, 0, 14, 5, 6, 0, 0, 0, 0, 1, 4, 0, 64])
        lcp.input(pkt, 0, len(pkt), i)
        codes.append(sent[-1][0])
    assert codes == [3, 3, 3, 3, 3, 4, 4]       # Max-Failure (5) Naks, then Configure-Reject
    assert sent[-1][4:] == bytes([5, 6, 0, 0, 0, 0, 1, 4, 0, 64])
    # an acceptable request is acked and resets the count
    ok = bytes([1, 120, 0, 10, 5, 6, 9, 9, 9, 9])
    lcp.input(ok, 0, len(ok), 10)
    assert sent[-1] == bytes([2, 120, 0, 10, 5, 6, 9, 9, 9, 9])
    assert lcp.naks_sent == 0


def test_chap_rechallenge_while_running():
    p = Pair({"auth": ("chap", "user", "pw")}, {"auth": ("chap", "user", "pw")})
    assert p.up()
    srv = p.net.ses.auths[0]
    client = p.dev.ses.auths[0]
    srv.start(p.clock.t)                         # the authenticator challenges again
    p.step()
    p.step()
    assert srv.done == 1 and client.done == 1 and p.dev.up
    _exchange(p)


def _pap_request_retransmitted(t0):
    p = Pair({"auth": ("pap", "user", "pw")}, {"auth": ("pap", "user", "pw")}, t0=t0)
    lost = []

    def drop_first_ack(b):                       # the first Authenticate-Ack is lost
        if not lost and b"\xc0\x23\x02" in b:
            lost.append(b)
            return True
        return False

    p.down_w.drop = drop_first_ack
    p.start()
    # the network's IPCP request that follows its Ack is discarded by the device while it
    # still authenticates (as pppd does): IPCP needs the network's next retransmission too
    assert p.run(lambda: p.dev.up, 8000)
    assert lost and p.dev.ses.auths[0].tries == 2
    assert p.dev.ses.rx_unexpected >= 1
    assert p.since(p.t0) >= 3000



def test_pap_request_retransmitted():
    for t0 in STARTS:
        _pap_request_retransmitted(t0)

def test_lcp_restart_timer_exact_ticks_across_the_wrap():
    """Configure-Requests into a dead line go out every restart_ms (3 s) from 1.5 s before
    the 2**30 ms wrap, exactly on their ticks; after Max-Configure (10) LCP gives up."""
    p = Pair(t0=NEAR_WRAP)
    p.up_w.cut = True
    p.down_w.cut = True
    lcp = p.dev.ses.lcp
    sent = []
    p.start()
    if lcp.tx_confreq:
        sent.append(p.clock.t)
    while p.dev.state != "dead" and p.since(NEAR_WRAP) < 40000:
        n = lcp.tx_confreq
        p.step()
        if lcp.tx_confreq != n:
            sent.append(p.clock.t)
    assert sent == [ticks.add(NEAR_WRAP, 3000 * i) for i in range(10)], sent
    assert sent[1] == 1500                        # the first retransmission is past the wrap
    assert p.dev.state == "dead" and p.since(NEAR_WRAP) == 30000
    assert lcp.state == ppp_fsm.STOPPED


def test_fsm_timer_across_the_wrap():
    f = _Probe()
    f.open(ticks.MASK - 999)
    f.up(ticks.MASK - 999)
    assert f.state == ppp_fsm.REQSENT and len(f.sent) == 1
    assert f.deadline == 2000                     # 3 s later, after the wrap
    f.timer(ticks.MASK)
    f.timer(1999)
    assert len(f.sent) == 1
    f.timer(2000)
    assert len(f.sent) == 2 and f.sent[-1][0] == 1 and f.deadline == 5000
    f.timer(5003)                                 # a late poll is still on time for the next
    assert len(f.sent) == 3 and f.deadline == 8003


def test_echo_and_deadline_across_the_wrap():
    """LCP echoes every 1000 ms across the wrap; poll() reports the next echo's tick."""
    p = Pair({"echo_interval_ms": 1000}, t0=NEAR_WRAP - 2500)
    assert p.up()
    d = p.dev
    echoes = []
    while p.since(NEAR_WRAP) < 5000:
        n = d.lcp_echo_tx
        p.step()
        if d.lcp_echo_tx != n:
            echoes.append(p.clock.t)
            assert d.poll(p.clock.t) == ticks.add(p.clock.t, 1000)
    assert len(echoes) >= 7 and d.up and d.lcp_echo_rx >= len(echoes) - 1
    assert [ticks.diff(b, a) for a, b in zip(echoes, echoes[1:])] == [1000] * (len(echoes) - 1)
    assert any(e < ticks.HALF for e in echoes) and any(e > ticks.HALF for e in echoes)
