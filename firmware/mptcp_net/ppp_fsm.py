"""The RFC 1661 §4 option negotiation automaton, shared by LCP and IPCP.

Sans-IO: events come in as method calls with `now` (a tick) and received control
packets as (buf, off, n); packets go out through `out(proto, a, aoff, alen, b,
boff, blen)` (two pieces, so an Ack can echo the peer's options without a copy).
The protocol-specific parts (which options, how to judge them) are the hooks a
subclass overrides: reset_request, build_request, check_request, on_ack, on_nak,
on_reject, other_code, layer_up/down/started/finished.

Options on the RFC's table: "restart" (Open in Stopped restarts negotiation),
no "passive" mode. Malformed packets are counted (`rx_bad`) and discarded.
"""
from mptcp import ticks
from mptcp.compat import const

INITIAL = const(0)
STARTING = const(1)
CLOSED = const(2)
STOPPED = const(3)
CLOSING = const(4)
STOPPING = const(5)
REQSENT = const(6)
ACKRCVD = const(7)
ACKSENT = const(8)
OPENED = const(9)
STATE_NAMES = ("Initial", "Starting", "Closed", "Stopped", "Closing", "Stopping",
               "Req-Sent", "Ack-Rcvd", "Ack-Sent", "Opened")

CONFREQ = const(1)
CONFACK = const(2)
CONFNAK = const(3)
CONFREJ = const(4)
TERMREQ = const(5)
TERMACK = const(6)
CODEREJ = const(7)

CTL = const(256)      # scratch for one side's option list



def opt_len(buf, i, end):
    """Length of the configuration option at buf[i], or -1 if it runs past `end` or is shorter
    than its own header (RFC 1661 §6: such a packet is malformed and silently dropped)."""
    if i + 2 > end:
        return -1
    ln = buf[i + 1]
    if ln < 2 or i + ln > end:
        return -1
    return ln

class Fsm:
    name = "?"

    def __init__(self, proto, out, restart_ms=3000, max_configure=10, max_terminate=2,
                 max_failure=5):
        self.proto = proto
        self.out = out
        self.restart_ms = restart_ms
        self.max_configure = max_configure
        self.max_terminate = max_terminate
        self.max_failure = max_failure
        self.state = INITIAL
        self.deadline = -1
        self.count = 0
        self.ident = 0
        self.req_id = -1
        self.naks_sent = 0
        self.max_data = 1496          # peer MRU - 4: bound for echoed data in replies
        self.hdr = bytearray(4)
        self.req = bytearray(CTL)
        self.req_len = 0
        self.nbuf = bytearray(CTL)
        self.nlen = 0
        self.rbuf = bytearray(CTL)
        self.rlen = 0
        self.rx_bad = 0
        self.rx_code_reject = 0
        self.tx_confreq = 0
        self.tx_termreq = 0
        self.rx_termreq = 0

    # ---- hooks (overridden by LCP / IPCP) ----
    def reset_request(self):
        """A fresh negotiation starts: our wanted options back to their configured values."""

    def build_request(self, buf):
        """Write our Configure-Request options into buf; return their length."""
        return 0

    def check_request(self, buf, off, n):
        """Judge the peer's options buf[off:off+n]: fill nak/rej lists (add_nak*, add_rej)
        and remember the values; return CONFACK/CONFNAK/CONFREJ, or -1 if malformed."""
        return CONFACK

    def on_ack(self, buf, off, n):
        """Our request was acknowledged (already checked identical to what we sent)."""

    def on_nak(self, buf, off, n):
        """Adjust our request to the peer's suggestions; False if malformed."""
        return True

    def on_reject(self, buf, off, n):
        """Stop asking for the rejected options; False if malformed."""
        return True

    def other_code(self, code, ident, buf, off, n, now):
        """Codes beyond 1..7; return False to send Code-Reject."""
        return False

    def layer_up(self, now):
        pass

    def layer_down(self, now):
        pass

    def layer_started(self, now):
        pass

    def layer_finished(self, now):
        pass

    # ---- helpers for check_request ----
    def add_rej(self, buf, off, olen):
        n = self.rlen
        if n + olen <= CTL:
            self.rbuf[n:n + olen] = buf[off:off + olen]
            self.rlen = n + olen

    def add_nak_int(self, typ, value, vlen):
        n = self.nlen
        if n + 2 + vlen > CTL:
            return
        b = self.nbuf
        b[n] = typ
        b[n + 1] = 2 + vlen
        for i in range(vlen):
            b[n + 2 + i] = (value >> (8 * (vlen - 1 - i))) & 0xFF
        self.nlen = n + 2 + vlen

    def add_nak_bytes(self, typ, data, vlen):
        n = self.nlen
        if n + 2 + vlen > CTL:
            return
        b = self.nbuf
        b[n] = typ
        b[n + 1] = 2 + vlen
        for i in range(vlen):
            b[n + 2 + i] = data[i]
        self.nlen = n + 2 + vlen

    def can_nak(self):
        """False once Max-Failure Naks were sent: then reject instead (RFC 1661 §4.6)."""
        return self.naks_sent < self.max_failure

    # ---- state helpers ----
    @property
    def state_name(self):
        return STATE_NAMES[self.state]

    def opened(self):
        return self.state == OPENED

    def _set(self, s):
        self.state = s
        if s < CLOSING or s == OPENED:
            self.deadline = -1

    def _send(self, code, ident, b=None, boff=0, blen=0):
        h = self.hdr
        ln = 4 + blen
        h[0] = code
        h[1] = ident
        h[2] = ln >> 8
        h[3] = ln & 0xFF
        self.out(self.proto, h, 0, 4, b, boff, blen)

    def next_id(self):
        self.ident = (self.ident + 1) & 0xFF
        return self.ident

    def _irc(self, term=False):
        self.count = self.max_terminate if term else self.max_configure
        if not term:
            self.naks_sent = 0

    def _scr(self, now):
        self.req_len = self.build_request(self.req)
        self.req_id = self.next_id()
        self.count -= 1
        self.deadline = ticks.add(now, self.restart_ms)
        self.tx_confreq += 1
        self._send(CONFREQ, self.req_id, self.req, 0, self.req_len)

    def _str(self, now):
        self.count -= 1
        self.deadline = ticks.add(now, self.restart_ms)
        self.tx_termreq += 1
        self._send(TERMREQ, self.next_id())

    def _sta(self, ident):
        self._send(TERMACK, ident)

    def _fresh(self, now):
        self._irc()
        self.reset_request()
        self._scr(now)

    # ---- events from the layer below and the administrator ----
    def up(self, now):
        s = self.state
        if s == INITIAL:
            self._set(CLOSED)
        elif s == STARTING:
            self._fresh(now)
            self._set(REQSENT)

    def down(self, now):
        s = self.state
        if s == CLOSED or s == CLOSING:
            self._set(INITIAL)
        elif s == STOPPED:
            self._set(STARTING)
            self.layer_started(now)
        elif s == OPENED:
            self._set(STARTING)
            self.layer_down(now)
        elif s >= STOPPING:
            self._set(STARTING)

    def open(self, now):
        s = self.state
        if s == INITIAL:
            self._set(STARTING)
            self.layer_started(now)
        elif s == CLOSED or s == STOPPED:
            self._fresh(now)
            self._set(REQSENT)
        elif s == CLOSING:
            self._set(STOPPING)

    def close(self, now):
        s = self.state
        if s == STARTING:
            self._set(INITIAL)
            self.layer_finished(now)
        elif s == STOPPED:
            self._set(CLOSED)
        elif s == STOPPING:
            self._set(CLOSING)
        elif s >= REQSENT:
            if s == OPENED:
                self._set(CLOSING)      # before layer_down, so it sees the link going
                self.layer_down(now)
            self._irc(True)
            self._str(now)
            self._set(CLOSING)

    def timer(self, now):
        """Run the restart timer if it expired (TO+ / TO-)."""
        if not ticks.due(now, self.deadline):
            return
        s = self.state
        self.deadline = -1
        if self.count > 0:
            if s == CLOSING or s == STOPPING:
                self._str(now)
            elif s == REQSENT or s == ACKRCVD:
                self._scr(now)
                self._set(REQSENT)
            elif s == ACKSENT:
                self._scr(now)
        else:
            if s == CLOSING:
                self._set(CLOSED)
                self.layer_finished(now)
            elif s >= STOPPING and s <= ACKSENT:
                self._set(STOPPED)
                self.layer_finished(now)

    # ---- received packets ----
    def input(self, buf, off, n, now):
        """One control packet buf[off:off+n] (code, id, length, data); never raises."""
        if n < 4:
            self.rx_bad += 1
            return
        code = buf[off]
        ident = buf[off + 1]
        ln = (buf[off + 2] << 8) | buf[off + 3]
        if ln < 4 or ln > n:
            self.rx_bad += 1
            return
        s = self.state
        if s < CLOSED:
            return                      # lower layer not up: silently discard
        if code == CONFREQ:
            self._rcr(buf, off, ident, ln, now)
        elif code == CONFACK:
            if ident != self.req_id or ln - 4 != self.req_len or not self._same(buf, off + 4):
                self.rx_bad += 1
                return
            if REQSENT <= s <= OPENED:
                self.on_ack(buf, off + 4, ln - 4)
            self._rca(ident, now)
        elif code == CONFNAK or code == CONFREJ:
            if ident != self.req_id:
                self.rx_bad += 1
                return
            if REQSENT <= s <= OPENED:
                if code == CONFNAK:
                    ok = self.on_nak(buf, off + 4, ln - 4)
                else:
                    ok = self.on_reject(buf, off + 4, ln - 4)
                if not ok:
                    self.rx_bad += 1
                    return
            self._rcn(ident, now)
        elif code == TERMREQ:
            self.rx_termreq += 1
            self._rtr(ident, now)
        elif code == TERMACK:
            self._rta(now)
        elif code == CODEREJ:
            self.rx_code_reject += 1
            rc = buf[off + 4] if ln >= 5 else 0
            self._rxj(1 <= rc <= 7, now)
        elif not self.other_code(code, ident, buf, off, ln, now):
            self.send_code_reject(buf, off, ln)

    def _same(self, buf, off):
        r = self.req
        for i in range(self.req_len):
            if buf[off + i] != r[i]:
                return False
        return True

    def send_code_reject(self, buf, off, n):
        if n > self.max_data:
            n = self.max_data
        self._send(CODEREJ, self.next_id(), buf, off, n)

    def _rcr(self, buf, off, ident, ln, now):
        s = self.state
        if s == CLOSED:
            self._sta(ident)
            return
        if s == CLOSING or s == STOPPING:
            return
        self.nlen = 0
        self.rlen = 0
        code = self.check_request(buf, off + 4, ln - 4)
        if code < 0:
            self.rx_bad += 1
            return
        if s == OPENED:
            self._set(REQSENT)
            self.layer_down(now)
            self._fresh(now)
        elif s == STOPPED:
            self._fresh(now)
        if code == CONFACK:
            self.naks_sent = 0
            self._send(CONFACK, ident, buf, off + 4, ln - 4)
        elif code == CONFREJ:
            self._send(CONFREJ, ident, self.rbuf, 0, self.rlen)
        else:
            self.naks_sent += 1
            self._send(CONFNAK, ident, self.nbuf, 0, self.nlen)
        good = code == CONFACK
        s = self.state
        if s == ACKRCVD:
            if good:
                self._set(OPENED)
                self.layer_up(now)
        else:
            self._set(ACKSENT if good else REQSENT)

    def _rca(self, ident, now):
        s = self.state
        if s == CLOSED or s == STOPPED:
            self._sta(ident)
        elif s == REQSENT:
            self._irc()
            self._set(ACKRCVD)
        elif s == ACKRCVD:
            self._scr(now)
            self._set(REQSENT)
        elif s == ACKSENT:
            self._irc()
            self._set(OPENED)
            self.layer_up(now)
        elif s == OPENED:
            self._set(REQSENT)
            self.layer_down(now)
            self._scr(now)

    def _rcn(self, ident, now):
        s = self.state
        if s == CLOSED or s == STOPPED:
            self._sta(ident)
        elif s == REQSENT or s == ACKSENT:
            self._irc()
            self._scr(now)
        elif s == ACKRCVD:
            self._scr(now)
            self._set(REQSENT)
        elif s == OPENED:
            self._set(REQSENT)
            self.layer_down(now)
            self._scr(now)

    def _rtr(self, ident, now):
        s = self.state
        if s == OPENED:
            self._set(STOPPING)
            self.layer_down(now)
            self.count = 0
            self.deadline = ticks.add(now, self.restart_ms)
            self._sta(ident)
            return
        self._sta(ident)
        if s == ACKRCVD or s == ACKSENT:
            self._set(REQSENT)

    def _rta(self, now):
        s = self.state
        if s == CLOSING:
            self._set(CLOSED)
            self.layer_finished(now)
        elif s == STOPPING:
            self._set(STOPPED)
            self.layer_finished(now)
        elif s == ACKRCVD:
            self._set(REQSENT)
        elif s == OPENED:
            self._set(REQSENT)
            self.layer_down(now)
            self._scr(now)

    def _rxj(self, catastrophic, now):
        """RXJ+ (permitted) or RXJ- (catastrophic: a Code-Reject of codes 1..7, or a
        Protocol-Reject of this protocol)."""
        s = self.state
        if not catastrophic:
            if s == ACKRCVD:
                self._set(REQSENT)
            return
        if s == CLOSED or s == CLOSING:
            self._set(CLOSED)
            self.layer_finished(now)
        elif s == OPENED:
            self._set(STOPPING)
            self.layer_down(now)
            self._irc(True)
            self._str(now)
        elif s >= STOPPED:
            self._set(STOPPED)
            self.layer_finished(now)

    def protocol_rejected(self, now):
        """The peer Protocol-Rejected this protocol (RXJ-)."""
        self._rxj(True, now)
