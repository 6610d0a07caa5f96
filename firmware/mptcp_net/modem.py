"""LTE modem driver: power-on, AT bring-up, dial, hang-up and re-dial, link quality.

A sans-IO-ish state machine over a serial object (mptcp_net.serial_port) and an AtEngine
(mptcp_net.at): the runtime calls `poll(now)` when the serial line is readable or the returned
deadline (a tick, mptcp.ticks; -1 = none) has passed. Nothing in here sleeps. Times are
ticks compared by ticks.diff, so timers work across the 2**30 ms wrap.

After `CONNECT` the state is "data": the modem stops reading the serial line and the
runtime builds the PPP netif on `modem.serial` (`on_data_mode(modem)` is called; bytes
that followed CONNECT in the same read are in `modem.leftover`). Leaving data mode:
  * deliberately: PPP sends LCP Terminate, then the runtime calls `hangup(now)`
    (1 s guard, `+++`, 1 s guard, `ATH`) -> state "idle";
  * `NO CARRIER` seen by the PPP side: `carrier_lost(now)` -> re-dial with backoff;
  * PPP dead peer (LCP echo timeout) while the modem may still be online:
    `link_lost(now)` -> escape and hang up, then re-dial with backoff.
Backoff doubles from 1 s to 60 s and resets on CONNECT.

Runtime wiring (PppNetif's `reason` when its state is "dead"): "no-carrier" ->
`carrier_lost(now)`; "echo-timeout" or "hangup" -> `link_lost(now)`; "closed" after our own
LCP Terminate -> `hangup(now)`. Before CONNECT, poll `serial.pollable()` for the modem.
"""
from mptcp import ticks
from mptcp_net.at import AtEngine, parse_ints, OK, CONNECT, CME_ERROR
TYPE_CHECKING = False
if TYPE_CHECKING:           # type checkers only: MicroPython has no typing module
    from typing import Any

# public states
OFF = "off"
POWER_ON = "power_on"
INIT = "init"
REGISTERING = "registering"
DIALING = "dialing"
DATA = "data"
HANGUP = "hangup"
BACKOFF = "backoff"
IDLE = "idle"          # hung up on request; start() or dial() to go again
ERROR = "error"        # needs a person (SIM PIN missing/wrong, PUK)

_TECH = {0: "GSM", 1: "GSM", 2: "UMTS", 3: "EDGE", 4: "HSDPA", 5: "HSUPA", 6: "HSPA",
         7: "LTE", 8: "LTE-M", 9: "NB-IoT", 10: "LTE", 11: "NR", 12: "NR", 13: "LTE+NR"}


def csq_to_dbm(rssi):
    """27.007 +CSQ rssi (0..31, 99 = unknown) -> dBm or None."""
    if rssi is None or rssi < 0 or rssi > 31:
        return None
    return -113 + 2 * rssi


class LinkQuality:
    """What the path manager reads about the LTE link."""

    def __init__(self):
        self.rssi_dbm = None        # type: Any
        self.csq = None             # type: Any
        self.registered = False
        self.reg_stat = None        # type: Any
        # 0 not searching, 1 home, 2 searching, 3 denied, 5 roaming
        self.roaming = False
        self.technology = None      # type: Any
        self.last_error = None      # type: Any

    def as_dict(self):
        return {"rssi_dbm": self.rssi_dbm, "registered": self.registered,
                "reg_stat": self.reg_stat, "roaming": self.roaming,
                "technology": self.technology, "last_error": self.last_error}


class Modem:
    PROBE_TRIES = 10

    def __init__(self, serial, apn="internet", pin=None, pins=None, power_on=False,
                 on_data_mode=None, on_link_down=None, dial="ATD*99#",
                 reg_timeout_ms=120000, reg_poll_ms=1000, dial_timeout_ms=30000,
                 rdy_timeout_ms=20000, pwrkey_ms=1000, guard_ms=1000,
                 backoff_min_ms=1000, backoff_max_ms=60000, rx_buf=256):
        self.serial = serial
        self.apn = apn
        self.pin = pin
        self.pins = pins
        self.power_on = power_on
        self.on_data_mode = on_data_mode
        self.on_link_down = on_link_down
        self.dial_cmd = dial
        self.reg_timeout_ms = reg_timeout_ms
        self.reg_poll_ms = reg_poll_ms
        self.dial_timeout_ms = dial_timeout_ms
        self.rdy_timeout_ms = rdy_timeout_ms
        self.pwrkey_ms = max(500, min(2000, pwrkey_ms))
        self.guard_ms = guard_ms
        self.backoff_min_ms = backoff_min_ms
        self.backoff_max_ms = backoff_max_ms
        self.at = AtEngine(self._urc)
        self.quality = LinkQuality()
        self.state = OFF
        self.step = None
        self.leftover = b""
        self._rx = bytearray(rx_buf)
        self._timer = -1
        self._tries = 0
        self._rdy = False
        self._pin_tried = False
        self._use_creg = False
        self._reg_deadline = 0
        self._backoff = backoff_min_ms
        self._redial_after_hangup = False
        self.counters = {"dials": 0, "dial_failures": 0, "no_carrier": 0, "cme_errors": 0,
                         "errors": 0, "timeouts": 0, "garbage_lines": 0, "redials": 0,
                         "hangups": 0, "urcs": 0, "power_ons": 0, "link_lost": 0,
                         "escapes": 0}

    # --- runtime API ------------------------------------------------------------------------

    def start(self, now):
        """Begin (or restart) bring-up; powers the modem first if configured."""
        self.at.cancel()
        self.at.reset_parser()
        self.quality.last_error = None
        self._pin_tried = False
        self._backoff = self.backoff_min_ms
        if self.power_on and self.pins is not None:
            self.counters["power_ons"] += 1
            self.pins.set_pwrkey(True)
            self._rdy = False
            self._set(POWER_ON, "pwrkey", ticks.add(now, self.pwrkey_ms))
        else:
            self._begin_probe(now)
        return self.next_deadline()

    def hangup(self, now, redial=False):
        """Leave data mode on purpose: guard, +++, guard, ATH (then idle, or re-dial)."""
        was_data = self.state == DATA
        self._redial_after_hangup = redial
        self.at.cancel()
        self.at.reset_parser()
        self.counters["hangups"] += 1
        if was_data:
            self._link_down()
            self._set(HANGUP, "guard1", ticks.add(now, self.guard_ms))
        else:
            self._set(HANGUP, "ath", -1)
            self._cmd("ATH", now, 5000)
        return self.next_deadline()

    def carrier_lost(self, now):
        """NO CARRIER while in data mode: the modem is back in command mode; re-dial."""
        self.counters["no_carrier"] += 1
        if self.state == DATA:
            self._link_down()
        self.at.cancel()
        self.at.reset_parser()
        self._fail(now, "no carrier")
        return self.next_deadline()

    def link_lost(self, now):
        """PPP gave up on the peer (echo timeout); the modem may still be online."""
        self.counters["link_lost"] += 1
        if self.state == DATA:
            self.quality.last_error = "ppp dead peer"
            return self.hangup(now, redial=True)
        return self.carrier_lost(now)

    @property
    def in_data_mode(self):
        return self.state == DATA

    def next_deadline(self):
        return ticks.earlier(self._timer, self.at.next_deadline())

    def stats(self):
        c = dict(self.counters)  # type: dict
        at = self.at
        c["cme_errors"] = at.cme_errors
        c["errors"] = at.errors
        c["timeouts"] = at.timeouts
        c["garbage_lines"] = at.garbage_lines + at.overlong_lines
        c["urcs"] = at.urcs
        c["at_commands"] = at.commands
        c["state"] = self.state
        return c

    def poll(self, now):
        """Read the modem, run timers and the state machine, write commands; -> deadline."""
        if self.state != DATA:
            rx = self._rx
            for _ in range(8):       # bounded: a chatty modem cannot starve the loop
                n = self.serial.readinto(rx)
                if n <= 0:
                    break
                self.at.feed(rx, n, now)
                if self.at.data_mode:
                    break
            self.at.poll(now)
            self._run(now)
        if self.state != DATA:       # in data mode the line belongs to PPP
            self._flush()
        d = self.next_deadline()
        if self.at._out and self.state != DATA:
            d = ticks.earlier(d, ticks.add(now, 10))
        return d

    # --- internals --------------------------------------------------------------------------

    def _flush(self):
        out = self.at.data_to_send()
        if out:
            n = self.serial.write(out)
            if n < len(out):
                self.at.unsend(out[n:] if n > 0 else out)

    def _set(self, state, step, timer):
        self.state = state
        self.step = step
        self._timer = timer

    def _cmd(self, cmd, now, timeout_ms=1000):
        self.at.cancel()
        self.at.send(cmd, now, timeout_ms)

    def _begin_probe(self, now):
        self._tries = 0
        self._set(INIT, "probe", -1)
        self._cmd("AT", now, 1000)

    def _fail(self, now, reason):
        """A recoverable failure: remember why, wait, then start over from AT."""
        self.quality.last_error = reason
        self.quality.registered = False
        self._set(BACKOFF, "wait", ticks.add(now, self._backoff))
        self._backoff = min(self._backoff * 2, self.backoff_max_ms)

    def _fatal(self, reason):
        self.quality.last_error = reason
        self.at.cancel()
        self._set(ERROR, None, -1)

    def _link_down(self):
        h = self.on_link_down
        if h is not None:
            h(self)

    def _urc(self, line):
        q = self.quality
        if line.startswith("RDY"):
            self._rdy = True
        elif line.startswith("+CEREG:") or line.startswith("+CREG:") or line.startswith("+CGREG:"):
            v = parse_ints(line)        # URC form: stat[,tac,ci[,act]]
            if v and v[0] is not None:
                self._reg(v[0], v[3] if len(v) > 3 else None, line.startswith("+CEREG"))
        elif line.startswith("NO CARRIER"):
            self.counters["no_carrier"] += 1
        elif line.startswith("POWERED DOWN") or line.startswith("NORMAL POWER DOWN"):
            q.registered = False
            q.last_error = "modem powered down"

    def _reg(self, stat, act, lte):
        q = self.quality
        q.reg_stat = stat
        q.registered = stat == 1 or stat == 5
        q.roaming = stat == 5
        if act is not None:
            q.technology = _TECH.get(act, str(act))
        elif q.registered and q.technology is None:
            q.technology = "LTE" if lte else "2G/3G"

    def _run(self, now):
        st = self.state
        timer_due = ticks.due(now, self._timer)
        if st == POWER_ON:
            if self.step == "pwrkey":
                if timer_due:
                    self.pins.set_pwrkey(False)
                    self._set(POWER_ON, "rdy", ticks.add(now, self.rdy_timeout_ms))
            elif self._rdy or timer_due:     # no RDY (autobaud modems): probe anyway
                self._begin_probe(now)
            return
        if st == BACKOFF:
            if timer_due:
                self.counters["redials"] += 1
                self._begin_probe(now)
            return
        if st == HANGUP:
            self._run_hangup(now, timer_due)
            return
        if st in (INIT, REGISTERING, DIALING):
            if self.step == "reg_wait":
                if timer_due:
                    self._timer = -1
                    self.step = "csq"
                    self._cmd("AT+CSQ", now, 2000)
                return
            if self.step == "pin_wait":
                if timer_due:
                    self._timer = -1
                    self.step = "cpin"
                    self._cmd("AT+CPIN?", now, 5000)
                return
            if self.step == "probe_wait":
                if timer_due:
                    self._timer = -1
                    self.step = "probe"
                    self._cmd("AT", now, 1000)
                return
            if self.step == "esc_guard1":       # a modem left in data mode: escape it
                if timer_due:
                    self.at.send_raw(b"+++")
                    g = self.guard_ms + self.guard_ms // 4
                    self._set(INIT, "esc_guard2", ticks.add(now, g))
                return
            if self.step == "esc_guard2":
                if timer_due:
                    self._timer = -1
                    self.at.reset_parser()
                    self.step = "esc_ath"
                    self._cmd("ATH", now, 3000)
                return
            if self.at.done and not self.at.busy():
                self.at.done = False
                self._result(now, self.step, self.at.final, self.at.lines, self.at.code)

    def _run_hangup(self, now, timer_due):
        step = self.step
        if step == "guard1":
            if timer_due:
                self.at.send_raw(b"+++")
                # a little over the guard: the modem's own timer starts when '+++' lands
                self._set(HANGUP, "guard2", ticks.add(now, self.guard_ms + self.guard_ms // 4))
        elif step == "guard2":
            if timer_due:
                self._set(HANGUP, "ath", -1)
                self.at.reset_parser()
                self._cmd("ATH", now, 5000)
        elif step == "ath":
            if self.at.done and not self.at.busy():
                self.at.done = False
                if self._redial_after_hangup:
                    self._redial_after_hangup = False
                    self._fail(now, self.quality.last_error or "hung up")
                else:
                    self._set(IDLE, None, -1)

    def _result(self, now, step, final, lines, code):
        ok = final == OK
        if final == CME_ERROR:
            self.quality.last_error = "+CME ERROR: %s" % code
        if step == "probe":
            if ok:
                self.step = "ate0"
                self._cmd("ATE0", now, 1000)
            else:
                self._tries += 1
                if self._tries >= self.PROBE_TRIES:
                    self._fail(now, "modem not answering AT")
                elif self._tries == 2:
                    # maybe still online from an earlier run: guard, +++, guard, ATH
                    self.counters["escapes"] += 1
                    self._set(INIT, "esc_guard1", ticks.add(now, self.guard_ms))
                else:
                    self._set(INIT, "probe_wait", ticks.add(now, 500))
        elif step == "esc_ath":
            self._set(INIT, "probe", -1)
            self._cmd("AT", now, 1000)
        elif step == "ate0":
            self.step = "cmee"
            self._cmd("AT+CMEE=1", now, 1000)
        elif step == "cmee":     # ERROR tolerated: plain ERROR instead of +CME ERROR
            self.step = "cpin"
            self._cmd("AT+CPIN?", now, 5000)
        elif step == "cpin":
            self._on_cpin(now, ok, lines, final, code)
        elif step == "cpin_enter":
            if ok:
                self._set(INIT, "pin_wait", ticks.add(now, 1000))
            elif final == CME_ERROR and code in (12, 16):
                self._fatal("SIM PIN rejected (+CME ERROR: %d)" % code)
            else:
                self._fail(now, "AT+CPIN=<pin>: %s" % final)
        elif step == "csq":
            if ok:
                for ln in lines:
                    if ln.startswith("+CSQ:"):
                        v = parse_ints(ln)
                        self.quality.csq = v[0]
                        self.quality.rssi_dbm = csq_to_dbm(v[0])
            self.step = "reg"
            self._cmd("AT+CREG?" if self._use_creg else "AT+CEREG?", now, 2000)
        elif step == "reg":
            self._on_reg(now, ok, lines, final)
        elif step == "cgdcont":
            if ok:
                self._set(DIALING, "dial", -1)
                self._cmd(self.dial_cmd, now, self.dial_timeout_ms)
            else:
                self._fail(now, "AT+CGDCONT: %s" % final)
        elif step == "dial":
            if final == CONNECT:
                self.counters["dials"] += 1
                self._backoff = self.backoff_min_ms
                self.leftover = self.at.leftover
                self.at.leftover = b""
                self.quality.last_error = None
                self._set(DATA, None, -1)
                h = self.on_data_mode
                if h is not None:
                    h(self)
            else:
                self.counters["dial_failures"] += 1
                self._fail(now, "dial: %s" % final)

    def _on_cpin(self, now, ok, lines, final, code):
        status = None
        for ln in lines:
            if ln.startswith("+CPIN:"):
                status = ln[6:].strip()
        if ok and status == "READY":
            self._set(REGISTERING, "csq", -1)
            self._reg_deadline = ticks.add(now, self.reg_timeout_ms)
            self._cmd("AT+CSQ", now, 2000)
        elif ok and status == "SIM PIN":
            if self.pin is None:
                self._fatal("SIM PIN required (no PIN configured)")
            elif self._pin_tried:
                self._fatal("SIM PIN rejected")
            else:
                self._pin_tried = True
                self.step = "cpin_enter"
                self._cmd('AT+CPIN="%s"' % self.pin, now, 5000)
        elif ok and status is not None and "PUK" in status:
            self._fatal("SIM %s required" % status)
        elif ok:
            self._fail(now, "SIM not ready: %s" % status)
        else:
            # +CME ERROR: 10 not inserted, 13 failure, 14 busy: retry later
            self._fail(now, "AT+CPIN?: %s%s" % (final, "" if code is None else " %d" % code))

    def _on_reg(self, now, ok, lines, final):
        if not ok:
            if not self._use_creg:
                self._use_creg = True     # a 2G/3G-only modem: fall back to +CREG
                self.step = "reg"
                self._cmd("AT+CREG?", now, 2000)
                return
            self._fail(now, "registration query: %s" % final)
            return
        for ln in lines:
            if ln.startswith("+CEREG:") or ln.startswith("+CREG:"):
                v = parse_ints(ln)       # answer form: n,stat[,tac,ci[,act]]
                if len(v) > 1 and v[1] is not None:
                    self._reg(v[1], v[4] if len(v) > 4 else None, ln.startswith("+CEREG"))
        if self.quality.registered:
            self._set(REGISTERING, "cgdcont", -1)
            self._cmd('AT+CGDCONT=1,"IP","%s"' % self.apn, now, 5000)
        elif ticks.diff(now, self._reg_deadline) >= 0:
            self._fail(now, "not registered (stat %s)" % self.quality.reg_stat)
        else:
            self._set(REGISTERING, "reg_wait", ticks.add(now, self.reg_poll_ms))
