"""mptcp_net.lte_link.LteNetif on both interpreters: AT bring-up, dial, PPP, IP both ways, NO CARRIER
and re-dial with a second "up" event; a dead peer (echo timeout) hangs up and re-dials.

The serial line is an in-memory pair; the modem is a tiny AT responder in this file and, in
data mode, the network end of PPP is PppNetif's server mode (the lab's real network side is
scapy, tested in tests/host and tests/interop). Time is a fake clock.
"""
from mptcp_net.netif import ip_aton
from mptcp_net.lte_link import LteNetif, PacedSerial
from mptcp_net.ppp_netif import PppNetif
from mptcp import ticks

NEAR_WRAP = ticks.PERIOD - 1500   # 1.5 s before the 2**30 ms wrap: timers must cross it

# scenarios run from each start: the 2**30 ms wrap falls during the echoes (NEAR_WRAP), the
# Terminate-Requests after a dead peer (7 s before it) and the hang-up and re-dial (10.5 s)
STARTS = (1000, NEAR_WRAP, ticks.PERIOD - 7000, ticks.PERIOD - 10500)

DEV_ADDR = ip_aton("198.18.2.2")
NET_ADDR = ip_aton("198.18.2.1")


class Q:
    def __init__(self):
        self.q = bytearray()


class End:
    """One side of the line: what PppNetif/Modem expect (non-blocking, never short here)."""
    hup = False

    def __init__(self, rx, tx):
        self.rx = rx
        self.tx = tx
        self.closed = False

    def write(self, b):
        self.tx.q += bytes(b)
        return len(b)

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

    def close(self):
        self.closed = True


class Clock:
    """A fake clock of ticks (ms modulo 2**30)."""

    def __init__(self, t0=1000):
        self.t = t0

    def advance(self, ms):
        self.t = ticks.add(self.t, ms)

    def __call__(self):
        return self.t


class FakeModem:
    """AT responder; after CONNECT the network end of PPP on the same line."""

    def __init__(self, end, clock):
        self.end = end
        self.clock = clock
        self.mode = "cmd"
        self.line = bytearray()
        self.registered = True
        self.net = None
        self.dials = 0
        self.rx_ip = []
        self.buf = bytearray(2048)
        self.plus = 0
        self.answer_lcp = True

    def reply(self, *lines):
        for ln in lines:
            self.end.write(b"\r\n" + ln + b"\r\n")

    def pump(self):
        now = self.clock()
        if self.mode == "data":
            if not self.answer_lcp:          # a dead peer: swallow everything
                self.end.rx.q = bytearray()
                return
            self.net.poll(now)
            while True:
                n = self.net.recv_into(self.buf)
                if not n:
                    break
                self.rx_ip.append(bytes(self.buf[:n]))
            return
        tmp = bytearray(256)
        while True:
            n = self.end.readinto(tmp)
            if not n:
                return
            for i in range(n):
                c = tmp[i]
                if c == 13:
                    self.command(bytes(self.line), now)
                    self.line = bytearray()
                    if self.mode == "data":
                        return
                elif c != 10:
                    self.line.append(c)

    def command(self, line, now):
        if line.startswith(b"+++"):
            line = line[3:]
        if line.startswith(b"ATD"):
            if not self.registered:
                self.reply(b"NO CARRIER")
                return
            self.dials += 1
            self.reply(b"CONNECT 921600")
            self.mode = "data"
            self.net = PppNetif(self.end, name="net", server=True, local_addr=NET_ADDR,
                                peer_addr=DEV_ADDR, echo_interval_ms=0, clock=self.clock)
            self.net.start(now)
        elif line == b"AT+CPIN?":
            self.reply(b"+CPIN: READY", b"OK")
        elif line == b"AT+CSQ":
            self.reply(b"+CSQ: 20,99", b"OK")
        elif line == b"AT+CEREG?":
            self.reply(b"+CEREG: 0,%d" % (1 if self.registered else 2), b"OK")
        elif line:
            self.reply(b"OK")

    def drop(self):
        """The radio link went: back to command mode, NO CARRIER to the device."""
        self.mode = "cmd"
        self.net = None
        self.answer_lcp = True
        self.reply(b"NO CARRIER")


def make(t0=1000):
    clock = Clock(t0)
    a = Q()
    b = Q()
    dev = End(a, b)
    net = End(b, a)
    modem = FakeModem(net, clock)
    nif = LteNetif(dev, apn="test", echo_interval_ms=1000, echo_fails=3, clock=clock,
                   sleep_ms=clock.advance,
                   modem_kw={"guard_ms": 200, "backoff_min_ms": 500})
    events = []
    nif.on_event = lambda ev, n: events.append((ev, bytes(n.addr)))
    return clock, nif, modem, events


def run(clock, nif, modem, cond, ms, step=5, got=None):
    """Step the device and the modem until cond() (-> the packets the device received) or
    ms pass (-> None)."""
    buf = bytearray(2048)
    if got is None:
        got = []
    end = ticks.add(clock.t, ms)
    while ticks.diff(clock.t, end) < 0:
        nif.poll(clock.t)
        while True:
            n = nif.recv_into(buf)
            if not n:
                break
            got.append(bytes(buf[:n]))
        modem.pump()
        if cond():
            return got
        clock.advance(step)
    return None


def ip_packet(n, seed):
    p = bytearray(n)
    for i in range(n):
        p[i] = (i * 7 + seed) & 0xFF
    p[0] = 0x45
    p[2] = n >> 8
    p[3] = n & 0xFF
    p[12:16] = DEV_ADDR
    p[16:20] = NET_ADDR
    return p


def _dial_then_ip_both_ways(t0):
    clock, nif, modem, events = make(t0)
    assert not nif.up and nif.state.startswith("modem:")
    assert run(clock, nif, modem, lambda: nif.up, 10000) is not None
    assert events == [("up", DEV_ADDR)] and nif.addr == DEV_ADDR
    assert nif.state == "ppp:running" and modem.dials == 1
    assert nif.writable()
    p = ip_packet(1400, 3)
    assert nif.send(memoryview(p), len(p))
    assert run(clock, nif, modem, lambda: len(modem.rx_ip) == 1, 1000) is not None
    assert modem.rx_ip[0] == bytes(p)
    q = ip_packet(600, 9)
    q[12:16] = NET_ADDR
    q[16:20] = DEV_ADDR
    assert modem.net.send(memoryview(q), len(q))
    got = []
    assert run(clock, nif, modem, lambda: len(got) == 1, 1000, got=got) is not None
    assert got[0] == bytes(q)
    assert nif.rx_packets == 1 and nif.tx_packets == 1


def test_dial_then_ip_both_ways():
    for t0 in STARTS:
        _dial_then_ip_both_ways(t0)


def _no_carrier_redials_and_comes_back_up(t0):
    clock, nif, modem, events = make(t0)
    assert run(clock, nif, modem, lambda: nif.up, 10000) is not None
    modem.registered = False
    modem.drop()
    assert run(clock, nif, modem, lambda: not nif.up, 1000) is not None
    assert events[-1] == ("down", DEV_ADDR)
    assert nif.last_down == "no-carrier"
    assert not nif.send(memoryview(ip_packet(100, 1)), 100)   # link down: refused, counted
    # not registered: it keeps trying, never gives up
    run(clock, nif, modem, lambda: False, 5000)
    assert not nif.up and modem.dials == 1 and not nif.failed()
    modem.registered = True
    assert run(clock, nif, modem, lambda: nif.up, 30000) is not None
    assert [e[0] for e in events] == ["up", "down", "up"] and nif.addr == DEV_ADDR
    assert modem.dials == 2 and nif.ups == 2 and nif.downs == 1
    st = nif.stats()
    assert st["modem"]["no_carrier"] >= 1 and st["modem"]["redials"] >= 1
    p = ip_packet(500, 4)
    assert nif.send(memoryview(p), len(p))
    assert run(clock, nif, modem, lambda: len(modem.rx_ip) == 1, 1000) is not None


def test_no_carrier_redials_and_comes_back_up():
    for t0 in STARTS:
        _no_carrier_redials_and_comes_back_up(t0)


def _dead_peer_hangs_up_and_redials(t0):
    clock, nif, modem, events = make(t0)
    assert run(clock, nif, modem, lambda: nif.up, 10000) is not None
    modem.answer_lcp = False                 # the network stops answering LCP echoes
    assert run(clock, nif, modem, lambda: not nif.up, 10000) is not None
    assert events[-1][0] == "down"
    # LCP gives up (Terminate-Requests unanswered), then the modem driver takes over
    assert run(clock, nif, modem, lambda: nif.last_down is not None, 20000) is not None
    assert nif.last_down == "echo-timeout", nif.last_down
    # the driver escapes (+++), hangs up (ATH) and dials again
    modem.mode = "cmd"
    modem.net = None
    modem.answer_lcp = True
    assert run(clock, nif, modem, lambda: nif.up, 30000) is not None
    assert modem.dials == 2 and nif.ups == 2


def test_dead_peer_hangs_up_and_redials():
    for t0 in STARTS:
        _dead_peer_hangs_up_and_redials(t0)


def test_close_terminates_and_closes_serial():
    clock, nif, modem, events = make()
    assert run(clock, nif, modem, lambda: nif.up, 10000) is not None
    nif.close(linger_ms=0)
    assert not nif.up and nif.serial.closed


def test_paced_serial_keeps_to_the_line_rate():
    clock = Clock()
    line = Q()
    ser = PacedSerial(End(Q(), line), 921600, fifo=1024, clock=clock)
    data = bytearray(5000)
    assert ser.write(data) == 1024            # the FIFO's worth at once
    assert ser.write(data) == 0
    clock.t += 10                             # 10 ms at 92,160 B/s = 921.6 bytes
    assert ser.write(data) == 921
    total = 0
    for _ in range(1000):                     # 1 s in 1 ms steps: no rounding loss
        clock.t += 1
        total += ser.write(data)
    assert 92160 - 2 <= total <= 92160 + 1, total
    clock.t += 100000                         # idle: credit is capped at the FIFO
    assert ser.write(data) == 1024
    assert len(line.q) == 1024 + 921 + total + 1024


def test_paced_serial_across_the_ticks_wrap():
    clock = Clock(ticks.MASK - 4)
    line = Q()
    ser = PacedSerial(End(Q(), line), 921600, fifo=1024, clock=clock)
    data = bytearray(5000)
    assert ser.write(data) == 1024
    clock.advance(10)                         # past the wrap: 10 ms of credit, as anywhere
    assert clock.t == 5 and ser.write(data) == 921
    total = 0
    for _ in range(1000):
        clock.advance(1)
        total += ser.write(data)
    assert 92160 - 2 <= total <= 92160 + 1, total


def _needs_clock(make_it):
    """make_it() raises ValueError (the net layer has no clock of its own)."""
    try:
        make_it()
    except ValueError as e:
        return "clock" in str(e)
    return False


def test_the_clock_is_the_callers():
    c = Clock()
    assert _needs_clock(lambda: LteNetif(End(Q(), Q())))
    assert _needs_clock(lambda: LteNetif(End(Q(), Q()), clock=c))
    assert _needs_clock(lambda: LteNetif(End(Q(), Q()), sleep_ms=c.advance))
    assert _needs_clock(lambda: PacedSerial(End(Q(), Q()), 921600))
    assert _needs_clock(lambda: PppNetif(End(Q(), Q())))
    assert not _needs_clock(lambda: LteNetif(End(Q(), Q()), clock=c, sleep_ms=c.advance))
