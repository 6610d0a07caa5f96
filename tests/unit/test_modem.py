"""Modem state machine (mptcp_net.modem) against a scripted fake modem and a fake clock."""
from mptcp_net.modem import Modem, csq_to_dbm, DATA, ERROR, BACKOFF, IDLE, REGISTERING, POWER_ON
from mptcp_net.pins import NullPins
from mptcp import ticks

NEAR_WRAP = ticks.PERIOD - 1500   # 1.5 s before the 2**30 ms wrap: timers must cross it


class FakeSerial:
    """A scripted modem: answers each CR-terminated command via `answer(cmd)`."""

    def __init__(self, answer, echo=True):
        self.answer = answer
        self.echo = echo
        self.rx = b""          # modem -> device, waiting
        self.cmds = []
        self.raw = b""
        self._line = b""
        self.accept = 1000     # bytes write() takes per call
        self.data_mode = False

    def push(self, data):
        self.rx += data

    def write(self, buf):
        buf = bytes(buf[:self.accept])
        self.raw += buf
        for c in buf:
            if c == 13:
                cmd = self._line.decode()
                self._line = b""
                self.cmds.append(cmd)
                if self.echo:
                    self.rx += cmd.encode() + b"\r"
                if cmd.upper() == "ATE0":
                    self.echo = False
                r = self.answer(cmd)
                if r:
                    self.rx += r
            else:
                self._line += bytes([c])
                if self._line.endswith(b"+++"):
                    self._line = b""
                    self.rx += b"\r\nOK\r\n"
        return len(buf)

    def readinto(self, buf):
        n = min(len(buf), len(self.rx))
        buf[:n] = self.rx[:n]
        self.rx = self.rx[n:]
        return n


def _ok(x=""):
    return (("\r\n" + x + "\r\n") if x else "").encode() + b"\r\nOK\r\n"


class Script:
    def __init__(self, **kw):
        self.pin = kw.get("pin")
        self.unlocked = self.pin is None
        self.reg_after = kw.get("reg_after", 0)   # number of +CEREG? polls answered "searching"
        self.errors = dict(kw.get("errors", {}))  # command prefix -> list of replies to use first
        self.dial = list(kw.get("dial", []))      # replies to ATD before CONNECT
        self.silent = kw.get("silent", 0)         # first N commands unanswered
        self.noise = kw.get("noise", False)
        self.polls = 0

    def __call__(self, cmd):
        if self.silent:
            self.silent -= 1
            return b""
        pre = b""
        if self.noise:
            pre = b"\r\n\x00\xff\x13garbage\x7e\r\n" + b"z" * 400 + b"\r\n\r\n+CEREG: 2\r\n"
        for k in self.errors:
            if cmd.startswith(k) and self.errors[k]:
                return pre + self.errors[k].pop(0)
        return pre + self.reply(cmd)

    def reply(self, cmd):
        if cmd in ("AT", "ATE0", "AT+CMEE=1", "ATH"):
            return _ok()
        if cmd == "AT+CPIN?":
            return _ok("+CPIN: READY" if self.unlocked else "+CPIN: SIM PIN")
        if cmd.startswith("AT+CPIN="):
            if cmd[8:].strip('"') == self.pin:
                self.unlocked = True
                return _ok()
            return b"\r\n+CME ERROR: 16\r\n"
        if cmd == "AT+CSQ":
            return _ok("+CSQ: 20,99")
        if cmd == "AT+CEREG?":
            self.polls += 1
            if self.polls > self.reg_after:
                return _ok('+CEREG: 0,1,"00C3","0A1B2C3D",7')
            return _ok("+CEREG: 0,2")
        if cmd.startswith("AT+CGDCONT=1,"):
            return _ok()
        if cmd == "ATD*99#":
            if self.dial:
                return self.dial.pop(0)
            return b"\r\nCONNECT 921600\r\n~\xff\x7d\x23\xc0!~"
        return b"\r\nERROR\r\n"


def _run(m, ser, t0, until, step=100, stop=None):
    """Advance the fake clock (ticks) in steps, polling the modem; returns the time it stopped."""
    t = t0
    while ticks.diff(t, until) < 0:
        m.poll(t)
        if stop is not None and stop(m):
            return t
        t = ticks.add(t, step)
    return t


def _modem(script, **kw):
    ser = FakeSerial(script)
    events = []
    m = Modem(ser, apn="lab", on_data_mode=lambda mm: events.append("data"),
              on_link_down=lambda mm: events.append("down"), **kw)
    return m, ser, events


def _is_data(m):
    return m.state == DATA


def test_happy_path_to_data_mode():
    m, ser, ev = _modem(Script())
    m.start(0)
    t = _run(m, ser, 0, 10000, stop=_is_data)
    assert m.state == DATA and ev == ["data"], (m.state, m.quality.last_error)
    assert ser.cmds == ["AT", "ATE0", "AT+CMEE=1", "AT+CPIN?", "AT+CSQ", "AT+CEREG?",
                        'AT+CGDCONT=1,"IP","lab"', "ATD*99#"]
    assert m.leftover == b"~\xff\x7d\x23\xc0!~"
    q = m.quality
    assert q.registered and q.rssi_dbm == -73 and q.technology == "LTE" and q.reg_stat == 1
    assert m.stats()["dials"] == 1
    assert t < 2000
    # data mode: the modem leaves the serial line alone
    ser.push(b"~PPP~")
    m.poll(t + 100)
    assert ser.rx == b"~PPP~"


def test_csq_dbm():
    assert csq_to_dbm(0) == -113 and csq_to_dbm(31) == -51
    assert csq_to_dbm(99) is None and csq_to_dbm(None) is None


def test_sim_pin_entered():
    m, ser, ev = _modem(Script(pin="1234"), pin="1234")
    m.start(0)
    _run(m, ser, 0, 20000, stop=_is_data)
    assert m.state == DATA
    assert 'AT+CPIN="1234"' in ser.cmds
    assert ser.cmds.count("AT+CPIN?") == 2


def test_sim_pin_missing_is_a_clear_error():
    m, ser, ev = _modem(Script(pin="1234"))
    m.start(0)
    _run(m, ser, 0, 20000)
    assert m.state == ERROR and "SIM PIN required" in m.quality.last_error
    assert not any(c.startswith("AT+CPIN=") for c in ser.cmds)


def test_wrong_pin_not_retried():
    m, ser, ev = _modem(Script(pin="1234"), pin="0000")
    m.start(0)
    _run(m, ser, 0, 200000)
    assert m.state == ERROR and "rejected" in m.quality.last_error
    assert sum(1 for c in ser.cmds if c.startswith("AT+CPIN=")) == 1


def test_slow_registration_polls_then_dials():
    m, ser, ev = _modem(Script(reg_after=5), reg_poll_ms=1000)
    m.start(0)
    t = _run(m, ser, 0, 60000, stop=_is_data)
    assert m.state == DATA
    assert ser.cmds.count("AT+CEREG?") == 6
    assert 5000 <= t < 8000


def test_registration_timeout_backs_off():
    m, ser, ev = _modem(Script(reg_after=10 ** 6), reg_timeout_ms=5000)
    m.start(0)
    _run(m, ser, 0, 5600, stop=lambda mm: mm.state == BACKOFF)
    assert m.state == BACKOFF and "not registered" in m.quality.last_error
    assert m.quality.reg_stat == 2 and not m.quality.registered


def test_error_to_cgdcont_retried_with_backoff():
    m, ser, ev = _modem(Script(errors={"AT+CGDCONT": [b"\r\nERROR\r\n"]}))
    m.start(0)
    t = _run(m, ser, 0, 30000, stop=_is_data)
    assert m.state == DATA
    assert ser.cmds.count('AT+CGDCONT=1,"IP","lab"') == 2
    st = m.stats()
    assert st["errors"] == 1 and st["redials"] == 1
    assert t >= 1000


def test_cme_error_on_cpin_retries():
    m, ser, ev = _modem(Script(errors={"AT+CPIN?": [b"\r\n+CME ERROR: 14\r\n"]}))
    m.start(0)
    _run(m, ser, 0, 30000, stop=_is_data)
    assert m.state == DATA
    assert m.stats()["cme_errors"] == 1


def test_cereg_unsupported_falls_back_to_creg():
    sc = Script(errors={"AT+CEREG?": [b"\r\nERROR\r\n"]})
    base = sc.reply

    def reply(cmd):
        if cmd == "AT+CREG?":
            return _ok("+CREG: 0,5")
        return base(cmd)
    sc.reply = reply
    m, ser, ev = _modem(sc)
    m.start(0)
    _run(m, ser, 0, 10000, stop=_is_data)
    assert m.state == DATA and "AT+CREG?" in ser.cmds
    assert m.quality.roaming and m.quality.technology == "2G/3G"


def test_garbage_noise_tolerated():
    m, ser, ev = _modem(Script(noise=True))
    m.start(0)
    _run(m, ser, 0, 10000, stop=_is_data)
    assert m.state == DATA
    st = m.stats()
    assert st["garbage_lines"] >= 8


def test_unanswered_commands_time_out_then_recover():
    m, ser, ev = _modem(Script(silent=3))
    m.start(0)
    t = _run(m, ser, 0, 20000, stop=_is_data)
    assert m.state == DATA
    assert m.stats()["timeouts"] == 3
    assert t >= 3000


def test_modem_never_answers_backs_off():
    m, ser, ev = _modem(Script(silent=10 ** 6))
    m.start(0)
    _run(m, ser, 0, 25000, stop=lambda mm: mm.state == BACKOFF)
    assert m.state == BACKOFF and "not answering" in m.quality.last_error


def test_dial_failures_backoff_doubles():
    dial = [b"\r\nNO CARRIER\r\n", b"\r\nBUSY\r\n", b"\r\nERROR\r\n"]
    m, ser, ev = _modem(Script(dial=dial))
    m.start(0)
    starts = []
    t = 0
    while t < 60000 and m.state != DATA:
        prev = m.state
        m.poll(t)
        if m.state == BACKOFF and prev != BACKOFF:
            starts.append((t, m._timer - t))
        t += 50
    assert m.state == DATA
    assert [d for _, d in starts] == [1000, 2000, 4000]
    st = m.stats()
    assert st["dial_failures"] == 3 and st["redials"] == 3 and st["dials"] == 1


def test_no_carrier_mid_session_redials_with_backoff():
    m, ser, ev = _modem(Script())
    m.start(0)
    t = _run(m, ser, 0, 10000, stop=_is_data)
    # the PPP side saw NO CARRIER
    ser.push(b"\r\nNO CARRIER\r\n")
    m.carrier_lost(t)
    assert m.state == BACKOFF and ev == ["data", "down"]
    assert m.quality.last_error == "no carrier"
    t2 = _run(m, ser, t, t + 20000, stop=_is_data)
    assert m.state == DATA and ev == ["data", "down", "data"]
    assert 1000 <= t2 - t < 3000
    st = m.stats()
    assert st["no_carrier"] >= 1 and st["redials"] == 1 and st["dials"] == 2
    # the backoff was reset by the successful CONNECT
    m.carrier_lost(t2)
    assert m._timer - t2 == 1000
    # and the max is 60 s
    for _ in range(10):
        m._fail(t2, "x")
    assert m._timer - t2 == 60000


def test_hangup_guard_escape_ath():
    m, ser, ev = _modem(Script(), guard_ms=1000)
    m.start(0)
    t = _run(m, ser, 0, 10000, stop=_is_data)
    ser.raw = b""
    m.hangup(t)
    assert ev[-1] == "down"
    m.poll(t + 500)
    assert ser.raw == b""                 # first guard: silence
    m.poll(t + 1000)
    assert ser.raw == b"+++"
    m.poll(t + 2000)
    assert ser.raw == b"+++"              # second guard (+25% margin)
    m.poll(t + 2250)
    assert ser.raw == b"+++ATH\r"
    m.poll(t + 2300)
    assert m.state == IDLE


def test_link_lost_hangs_up_then_redials():
    m, ser, ev = _modem(Script(), guard_ms=1000)
    m.start(0)
    t = _run(m, ser, 0, 10000, stop=_is_data)
    m.link_lost(t)
    t2 = _run(m, ser, t, t + 30000, stop=_is_data)
    assert m.state == DATA and ser.cmds.count("ATH") == 1
    assert t2 - t >= 3000


def test_power_on_pulse_and_rdy():
    pins = NullPins()
    m, ser, ev = _modem(Script(), pins=pins, power_on=True, pwrkey_ms=1000)
    m.start(0)
    assert m.state == POWER_ON and pins.log == [("pwrkey", True)]
    m.poll(500)
    assert pins.log == [("pwrkey", True)]
    m.poll(1000)
    assert pins.log == [("pwrkey", True), ("pwrkey", False)]
    assert ser.cmds == []                 # waiting for RDY
    m.poll(3000)
    assert ser.cmds == []
    ser.push(b"\r\nRDY\r\n")
    _run(m, ser, 3100, 10000, stop=_is_data)
    assert m.state == DATA


def test_power_on_without_rdy_probes_after_timeout():
    pins = NullPins()
    m, ser, ev = _modem(Script(), pins=pins, power_on=True, rdy_timeout_ms=20000)
    m.start(0)
    _run(m, ser, 0, 20500)
    assert ser.cmds == []
    _run(m, ser, 21000, 30000, stop=_is_data)
    assert m.state == DATA


def test_partial_writes():
    m, ser, ev = _modem(Script())
    ser.accept = 3
    m.start(0)
    _run(m, ser, 0, 10000, step=10, stop=_is_data)
    assert m.state == DATA


def test_deadline_reported():
    m, ser, ev = _modem(Script(reg_after=2), reg_poll_ms=1000)
    m.start(0)
    d = m.poll(0)
    assert d == 1000                      # AT timeout (answered on the next read)
    t = _run(m, ser, 0, 2000, step=100, stop=lambda mm: mm.step == "reg_wait")
    assert m.state == REGISTERING and m.poll(t) == t + 1000


def test_modem_left_in_data_mode_is_escaped():
    """A previous run crashed in data mode: AT goes unanswered until +++ and ATH."""
    sc = Script()
    ser = FakeSerial(sc)
    online = [True]
    base_write = ser.write

    def write(buf):
        data = bytes(buf)
        if online[0]:
            if b"+++" in data:
                online[0] = False
                ser.rx += b"\r\nOK\r\n"
            return len(data)      # swallowed as PPP garbage
        return base_write(buf)
    ser.write = write
    m = Modem(ser, guard_ms=1000)
    m.start(0)
    t = _run(m, ser, 0, 20000, stop=_is_data)
    assert m.state == DATA, (m.state, m.step, m.quality.last_error)
    assert m.stats()["escapes"] == 1 and "ATH" in ser.cmds
    assert t >= 3000


class _FakePinMod:
    """Stands in for `machine` (Pin, UART) so the board classes can be exercised here."""

    class Pin:
        OUT = 1
        log = []

        def __init__(self, pid, mode=None, value=None):
            self.pid = pid
            if value is not None:
                _FakePinMod.Pin.log.append((pid, value))

        def value(self, v):
            _FakePinMod.Pin.log.append((self.pid, v))

    class UART:
        RTS = 1
        CTS = 2

        def __init__(self, uid, baud, **kw):
            self.kw = kw
            self.baud = baud
            self.rx = b"OK"
            self.tx = b""

        def init(self, baud, **kw):
            self.baud = baud

        def any(self):
            return len(self.rx)

        def readinto(self, buf):
            n = min(len(buf), len(self.rx))
            buf[:n] = self.rx[:n]
            self.rx = self.rx[n:]
            return n

        def write(self, b):
            self.tx += bytes(b)
            return len(b)

        def deinit(self):
            pass


class _FakeGpio:
    BCM = 11
    OUT = 0
    HIGH = 1
    LOW = 0
    log = []

    def setwarnings(self, x):
        pass

    def setmode(self, m):
        pass

    def setup(self, p, mode, initial=0):
        _FakeGpio.log.append(("setup", p, initial))

    def output(self, p, v):
        _FakeGpio.log.append((p, v))

    def cleanup(self, p):
        pass


def test_board_pins_and_uart_with_fake_modules():
    import sys
    from mptcp_net import pins
    from mptcp_net.serial_port import UartSerial
    sys.modules["machine"] = _FakePinMod
    try:
        p = pins.make_pins("machine", pwrkey=14, reset=15, invert=False)
        p.set_pwrkey(True)
        p.set_pwrkey(False)
        p.set_reset(True)
        assert _FakePinMod.Pin.log == [(14, 0), (15, 0), (14, 1), (14, 0), (15, 1)]
        u = UartSerial(1, 921600, tx=4, rx=5, rts=7, cts=6)
        assert u.uart.kw["flow"] == 3 and u.uart.kw["timeout"] == 0
        b = bytearray(8)
        assert u.readinto(b) == 2 and bytes(b[:2]) == b"OK"
        assert u.readinto(b) == 0
        assert u.write(b"AT\r") == 3 and u.uart.tx == b"AT\r"
        u.set_baud(115200)
        assert u.uart.baud == 115200
    finally:
        del sys.modules["machine"]
    class rpi:
        GPIO = _FakeGpio()
    sys.modules["RPi"] = rpi
    sys.modules["RPi.GPIO"] = rpi.GPIO
    try:
        g = pins.make_pins("rpi", pwrkey=17, invert=True)
        g.set_pwrkey(True)
        assert _FakeGpio.log == [("setup", 17, 1), (17, 0)]
        g.close()
    finally:
        del sys.modules["RPi"]
        del sys.modules["RPi.GPIO"]
    assert isinstance(pins.make_pins("null"), pins.NullPins)


def _timeline(base, script, until_ms, step=50, **kw):
    """What the modem does, as (ms since base, what) with the clock starting at tick `base`:
    each command written, each pin change, each state change; until data mode."""
    pins = NullPins()
    m, ser, ev = _modem(script, pins=pins, **kw)
    out = []
    m.start(base)
    state = None
    for k in range(0, until_ms, step):
        nc = len(ser.cmds)
        npins = len(pins.log)
        m.poll(ticks.add(base, k))
        for c in ser.cmds[nc:]:
            out.append((k, c))
        for p in pins.log[npins:]:
            out.append((k, p))
        if m.state != state:
            state = m.state
            out.append((k, state))
        if state == DATA:
            break
    return out


def test_timers_across_the_ticks_wrap():
    """The same scenarios started at tick 0 and 1.5 s before the 2**30 ms wrap do the same
    things at the same times: AT timeouts, registration polls, dial backoff, PWRKEY and the
    RDY wait all cross the wrap (nothing early, nothing never)."""
    cases = [
        (lambda: Script(silent=3), 20000, {}),
        (lambda: Script(reg_after=3), 20000, {"reg_poll_ms": 1000}),
        (lambda: Script(dial=[b"\r\nNO CARRIER\r\n", b"\r\nBUSY\r\n"]), 20000, {}),
        (lambda: Script(), 30000, {"power_on": True, "pwrkey_ms": 1000, "rdy_timeout_ms": 5000}),
    ]
    for make, until, kw in cases:
        ref = _timeline(0, make(), until, **kw)
        assert ref[-1][1] == DATA and ref[-1][0] > 1500, ref
        got = _timeline(NEAR_WRAP, make(), until, **kw)
        assert got == ref, (kw, ref, got)
    # the exact times of one: AT (1 s timeout) + 500 ms -> AT (1 s) + guard 1 s, +++,
    # guard 1.25 s -> ATH (3 s timeout) -> AT answered
    ref = _timeline(NEAR_WRAP, Script(silent=3), 20000)
    assert [x for x in ref if x[1] in ("AT", "ATH")] == [
        (0, "AT"), (1500, "AT"), (4750, "ATH"), (7750, "AT")]


def test_pwrkey_and_rdy_wait_across_the_ticks_wrap():
    pins = NullPins()
    m, ser, ev = _modem(Script(), pins=pins, power_on=True, pwrkey_ms=1000,
                        rdy_timeout_ms=20000)
    t0 = ticks.PERIOD - 700                 # the pulse ends at tick 300, after the wrap
    assert m.start(t0) == 300
    for now in (t0 + 1, ticks.MASK, 0, 299):
        assert m.poll(now) == 300, now
        assert pins.log == [("pwrkey", True)]
    assert m.poll(300) == 20300             # released; waiting for RDY up to 20 s
    assert pins.log == [("pwrkey", True), ("pwrkey", False)]
    m.poll(20299)
    assert ser.cmds == [] and m.state == POWER_ON
    m.poll(20300)                           # no RDY: probe anyway, exactly at the deadline
    assert ser.cmds == ["AT"]
    # RDY inside the wait, across the wrap
    pins = NullPins()
    m, ser, ev = _modem(Script(), pins=pins, power_on=True, pwrkey_ms=500)
    m.start(ticks.MASK - 499)
    m.poll(0)
    assert pins.log[-1] == ("pwrkey", False) and ser.cmds == []
    ser.push(b"\r\nRDY\r\n")
    assert _run(m, ser, 100, 5000, stop=_is_data) < 2000 and m.state == DATA


def test_backoff_and_hangup_guards_across_the_ticks_wrap():
    m, ser, ev = _modem(Script(), guard_ms=1000)
    m.start(NEAR_WRAP)
    t = _run(m, ser, NEAR_WRAP, ticks.add(NEAR_WRAP, 1000), step=10, stop=_is_data)
    assert m.state == DATA and ticks.diff(t, NEAR_WRAP) < 1000
    ser.raw = b""
    m.hangup(t)                             # guard, +++, guard + 25 %, ATH: all across the wrap
    m.poll(ticks.add(t, 999))
    assert ser.raw == b""
    m.poll(ticks.add(t, 1000))
    assert ser.raw == b"+++"
    m.poll(ticks.add(t, 2249))
    assert ser.raw == b"+++"
    m.poll(ticks.add(t, 2250))
    assert ser.raw == b"+++ATH\r"
    m.poll(ticks.add(t, 2260))
    assert m.state == IDLE
    m.start(ticks.MASK - 100)
    m.carrier_lost(ticks.MASK - 100)        # backoff 1 s: due at tick 899
    assert m.state == BACKOFF and m.next_deadline() == 899
    m.poll(898)
    assert m.state == BACKOFF
    m.poll(899)
    assert m.state != BACKOFF


def test_deadline_reported_across_the_ticks_wrap():
    m, ser, ev = _modem(Script())
    ser.accept = 0                          # the line takes nothing: come back in 10 ms
    m.start(ticks.MASK - 4)
    assert m.poll(ticks.MASK - 4) == 5
    ser.accept = 1000
    m2, ser2, ev2 = _modem(Script(silent=1))
    m2.start(ticks.MASK - 499)
    assert m2.poll(ticks.MASK - 499) == 500  # the AT timeout, as a tick
