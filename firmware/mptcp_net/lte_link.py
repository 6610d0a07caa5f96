"""The LTE link: the modem driver and PPP glued into one netif.

One serial line, two owners in turn: before CONNECT the `Modem` (AT bring-up, dial) reads
and writes it; in data mode the `PppNetif` does. This object switches between them, so
the poll loop treats the LTE link like any netif (mptcp_net.netif: `pollable`, `recv_into`,
`send`, `poll(now)`, `writable`, `up`, `addr`, `on_event`). The clock (now and sleep) is
the caller's: the runtime passes its own, tests a fake one.

Link loss: PPP dies with a reason -> "no-carrier" (the modem said NO CARRIER) ->
`modem.carrier_lost` (re-dial with backoff); "closed" (our own LCP Terminate) ->
`modem.hangup`; anything else (echo timeout, peer terminated, serial hang-up) ->
`modem.link_lost` (escape, ATH, re-dial with backoff). Every new IPCP Opened raises
on_event("up") again, with the address IPCP gave.
"""
from mptcp import ticks
from mptcp.compat import const
from mptcp_net.netif import Netif
from mptcp_net.modem import Modem, DATA, IDLE, ERROR
from mptcp_net.ppp_netif import PppNetif

ZERO4 = b"\x00\x00\x00\x00"
TXQ_MS = const(40)
TXQ_MIN = const(3100)      # two 1500-byte frames with escapes, as PppNetif requires


class PacedSerial:
    """A serial line whose writes are limited to baud/10 bytes/s with a small transmit
    FIFO, as a UART with flow control does. For a pty (the lab), which otherwise takes
    ~64 KB at once: without pacing, TCP's window sits in the pty and the RTT the stack
    measures includes it, instead of PPP's own queue signalling back-pressure."""

    def __init__(self, serial, baud, fifo=1024, clock=None):
        """clock (required): callable -> now (a tick, mptcp.ticks)."""
        if clock is None:
            raise ValueError("PacedSerial needs clock=: a callable returning now (ms ticks)")
        self.s = serial
        self.rate = baud // 10              # bytes per second = milli-bytes per ms
        self.fifo_m = fifo * 1000
        self._clock = clock
        self._t = self._clock()
        self._credit_m = self.fifo_m        # in milli-bytes: no rounding loss per call

    @property
    def hup(self):
        return self.s.hup

    def write(self, buf):
        now = self._clock()
        dt = ticks.diff(now, self._t)
        if dt != 0:
            self._t = now
            if dt > 1000 or dt < 0:   # the FIFO is full long before (dt < 0: idle > 6 days);
                dt = 1000             # keeps the product a small int
            c = self._credit_m + dt * self.rate
            self._credit_m = c if c < self.fifo_m else self.fifo_m
        n = len(buf)
        k = self._credit_m // 1000
        if n > k:
            n = k
        if n <= 0:
            return 0
        w = self.s.write(buf if n == len(buf) else memoryview(buf)[:n])
        if w:
            self._credit_m -= w * 1000
        return w

    def readinto(self, buf):
        return self.s.readinto(buf)

    def pollable(self):
        return self.s.pollable()

    def set_baud(self, baud):
        self.rate = baud // 10
        self.s.set_baud(baud)

    def close(self):
        self.s.close()


class LteNetif(Netif):
    def __init__(self, serial, ifindex=1, name="lte", apn="internet", pin=None, pins=None,
                 power_on=False, auth=None, mru=1500, echo_interval_ms=10000, echo_fails=3,
                 clock=None, modem_kw=None, ppp_kw=None, sleep_ms=None):
        """serial: mptcp_net.serial_port object (TtySerial, UartSerial, PySerial). auth: None or
        (method, user, password) for PAP/CHAP. modem_kw/ppp_kw: extra Modem/PppNetif args.
        clock (required): callable -> now (a tick); sleep_ms (required): callable(ms) that
        blocks, for close()'s linger (the runtime's mptcp_runtime.clock.now_ms / sleep_ms)."""
        if clock is None or sleep_ms is None:
            raise ValueError("LteNetif needs clock= and sleep_ms= (the runtime's clock)")
        self.serial = serial
        self.ifindex = ifindex
        self.name = name
        self.addr = ZERO4
        self.up = False
        self.on_event = None
        self._clock = clock
        self._sleep_ms = sleep_ms
        kw = modem_kw or {}
        self.modem = Modem(serial, apn=apn, pin=pin, pins=pins, power_on=power_on,
                           on_data_mode=self._data_mode, **kw)
        kw = ppp_kw or {}
        self.ppp = PppNetif(serial, ifindex=ifindex, name=name, auth=auth, mru=mru,
                            echo_interval_ms=echo_interval_ms, echo_fails=echo_fails,
                            clock=self._clock, **kw)
        self.ppp.on_event = self._ppp_event
        self._now = 0
        self._started = False
        self._closing = False
        self.ups = 0            # times IPCP opened
        self.downs = 0          # times the link went down after being up
        self.last_down = None   # reason of the last PPP death
        self.rx_packets = self.tx_packets = self.rx_bytes = self.tx_bytes = 0
        self.tx_errors = 0

    # ---- state ----
    @property
    def state(self):
        """"modem:<state>" before CONNECT, "ppp:<phase>" in data mode."""
        if self.modem.state == DATA:
            return "ppp:" + self.ppp.state
        return "modem:" + self.modem.state

    @property
    def mtu(self):
        return self.ppp.mtu

    def failed(self):
        """The modem needs a person (SIM PIN missing or wrong): no point waiting."""
        return self.modem.state == ERROR

    def last_error(self):
        q = self.modem.quality
        if q.last_error or self.last_down:
            return q.last_error or self.last_down
        if q.reg_stat is not None and not q.registered:
            return "not registered (+CEREG stat %d)" % q.reg_stat
        return None

    def start(self, now=None):
        if now is None:
            now = self._clock()
        self._started = True
        self._now = now
        return self.modem.start(now)

    # ---- glue ----
    def _data_mode(self, modem):
        """CONNECT: the line is PPP's from now on (with what followed CONNECT)."""
        self.ppp.start(self._now, modem.leftover)
        modem.leftover = b""

    def _ppp_event(self, ev, nif):
        if ev == "up":
            self.addr = nif.addr
            self.up = True
            self.ups += 1
        elif ev == "down":
            if self.up:
                self.downs += 1
            self.up = False
        h = self.on_event
        if h is not None:
            h(ev, self)

    def _ppp_dead(self, now):
        """PPP reached "dead" while the modem is in data mode: act on why."""
        reason = self.ppp.reason
        self.last_down = reason
        m = self.modem
        if reason == "no-carrier":
            m.carrier_lost(now)
        elif reason == "closed":
            m.hangup(now, redial=not self._closing)
        else:
            m.link_lost(now)

    # ---- netif interface ----
    def pollable(self):
        return self.serial.pollable()

    def recv_into(self, buf):
        m = self.modem
        if m.state == DATA:
            ppp = self.ppp
            n = ppp.recv_into(buf)
            if ppp.state == "dead":
                self._ppp_dead(self._clock())
                return 0
            if n:
                self.rx_packets += 1
                self.rx_bytes += n
            return n
        if self._started:
            self._now = self._clock()
            m.poll(self._now)        # the modem reads its replies itself
        return 0

    def send(self, mv, n):
        if not self.up:
            self.tx_errors += 1
            return False
        if self.ppp.send(mv, n):
            self.tx_packets += 1
            self.tx_bytes += n
            return True
        self.tx_errors += 1
        return False

    def writable(self):
        return self.ppp.writable()

    def tx_pending(self):
        return self.ppp.tx_pending() if self.modem.state == DATA else 0

    def poll(self, now):
        """Timers of whichever owns the line; returns the next deadline (a tick) or -1."""
        if not self._started:
            self.start(now)
        self._now = now
        m = self.modem
        if m.state == DATA:
            ppp = self.ppp
            dl = ppp.poll(now)
            if ppp.state != "dead":
                return dl
            self._ppp_dead(now)
        dl = m.poll(now)
        if m.state == DATA:          # just connected: PPP's first timers
            dl = ticks.earlier(dl, self.ppp.poll(now))
        return dl

    def close(self, linger_ms=1500):
        """LCP Terminate, then leave data mode (a modem that answers Terminate with NO
        CARRIER, like the lab's, needs no +++/ATH, else guard/+++/guard/ATH); each stage is
        bounded by about linger_ms of real time; then the serial line is closed."""
        self._closing = True
        m = self.modem
        ppp = self.ppp
        steps = linger_ms // 5 + 1
        if m.state == DATA and ppp.state != "dead":
            ppp.close(self._clock())
            buf = bytearray(1600)
            for _ in range(steps):
                if ppp.state == "dead":
                    break
                ppp.poll(self._clock())
                ppp.recv_into(buf)
                self._sleep_ms(5)
        if m.state == DATA and linger_ms > 0 and not self._saw_no_carrier(min(300, linger_ms)):
            m.hangup(self._clock())
            for _ in range(steps + 600):     # the guard times need ~2.5 s
                if m.state in (IDLE, ERROR):
                    break
                m.poll(self._clock())
                self._sleep_ms(5)
        self.up = False
        self.serial.close()

    def _saw_no_carrier(self, ms):
        """Read the line for up to ms: did the modem hang up by itself?"""
        buf = bytearray(256)
        tail = b""
        for _ in range(ms // 5 + 1):
            n = self.serial.readinto(buf)
            if n:
                tail = (tail + bytes(buf[:n]))[-64:]
                if b"NO CARRIER" in tail:
                    return True
            else:
                self._sleep_ms(5)
        return False

    def stats(self):
        s = self.ppp.stats()
        s["modem"] = self.modem.stats()
        s["quality"] = self.modem.quality.as_dict()
        s["ups"] = self.ups
        s["downs"] = self.downs
        s["last_down"] = self.last_down
        s["state"] = self.state
        return s


def from_board(board, serial_path=None, ifindex=1, clock=None, baud=None, sleep_ms=None):
    """An LteNetif from the board config: LTE_SERIAL/SERIAL path (or serial_path), or
    UART_ID with UART_TX/RX/RTS/CTS pins on boards; LTE_PACE (a pty: pace writes to
    UART_BAUD, see PacedSerial); UART_BAUD, APN, SIM_PIN, PPP_AUTH,
    PIN_PWRKEY/PIN_RESET with PINS "machine"/"rpi" (power the modem on at start when
    LTE_POWER_ON). clock/sleep_ms (required): the runtime's (mptcp_runtime.clock)."""
    if clock is None or sleep_ms is None:
        raise ValueError("from_board needs clock= and sleep_ms= (the runtime's clock)")
    from mptcp_net import serial_port
    baud = baud or getattr(board, "UART_BAUD", 921600)
    path = serial_path or getattr(board, "LTE_SERIAL", None) or getattr(board, "SERIAL", None)
    if path:
        try:
            ser = serial_port.open_serial(path, baud)
        except OSError as e:
            raise ValueError("cannot open the modem's serial line %s: %s" % (path, e))
        if getattr(board, "LTE_PACE", False):
            ser = PacedSerial(ser, baud, clock=clock)
    elif getattr(board, "UART_ID", None) is not None:
        ser = serial_port.UartSerial(board.UART_ID, baud, getattr(board, "UART_TX", None),
                                     getattr(board, "UART_RX", None),
                                     getattr(board, "UART_RTS", None),
                                     getattr(board, "UART_CTS", None))
    else:
        raise ValueError("no LTE serial line: give the modem's tty path (the lab sets "
                         "MPTCP_LAB_LTE) or set LTE_SERIAL / UART_ID in the board config")
    pins = None
    power_on = bool(getattr(board, "LTE_POWER_ON", False))
    if power_on and getattr(board, "PIN_PWRKEY", None) is not None:
        from mptcp_net import pins as _pins
        pins = _pins.make_pins(getattr(board, "PINS", "machine"), board.PIN_PWRKEY,
                               getattr(board, "PIN_RESET", None))
    # PPP's transmit queue: about TXQ_MS of line time (at least two full frames), so that
    # back-pressure reaches TCP instead of a long queue inflating the RTT it measures
    txq = baud // 10 * getattr(board, "LTE_TXQ_MS", TXQ_MS) // 1000
    return LteNetif(ser, ifindex=ifindex, apn=getattr(board, "APN", "internet"),
                    pin=getattr(board, "SIM_PIN", None), pins=pins,
                    power_on=power_on and pins is not None,
                    auth=getattr(board, "PPP_AUTH", None), clock=clock, sleep_ms=sleep_ms,
                    ppp_kw={"tx_queue": txq if txq > TXQ_MIN else TXQ_MIN})
