"""The LTE netif: IPv4 over PPP over a serial line (the modem in data mode).

Only this object touches the serial object (write(buf) -> n, may be short;
readinto(buf) -> n or 0/None; pollable(); all non-blocking) that the modem
driver hands over after CONNECT. Framing is mptcp_net.hdlc, the protocol is
mptcp_net.ppp.PppSession; both sans-IO. The poll loop must call poll(now) (timers,
keepalive, draining the transmit queue) and wait no longer than the deadline it
returns; recv_into() handles control frames itself and returns only IPv4 packets.

Events for the path manager: on_event("up" | "down", netif) when IPCP opens or
leaves Opened. `addr` is the address IPCP gave (0.0.0.0 before; kept after
"down" until the next start). `mtu` is the peer's MRU: send() refuses larger
packets. Errors are counted, never raised (see stats()).

Leaving data mode is the modem driver's job; this netif tells it why the link
died (`state` "dead", `reason`): the modem's "NO CARRIER" text seen on an idle
line instead of a frame ("no-carrier"; also `no_carrier` = True), the serial
object's `hup` flag ("hangup"), or PPP's own reasons ("echo-timeout",
"peer-terminated", "closed", "auth-failed", ...).
"""
from mptcp import ticks
from mptcp.compat import const
from mptcp_net.netif import Netif
from mptcp_net import hdlc
from mptcp_net.ppp import PppSession
from mptcp_net.lcp import PROTO_LCP
from mptcp_net.ipcp import PROTO_IP
TYPE_CHECKING = False
if TYPE_CHECKING:           # type checkers only: MicroPython has no typing module
    from typing import Any

ZERO4 = b"\x00\x00\x00\x00"
RX_CHUNK = const(512)
TX_QUEUE = const(8192)
MAX_READS = const(16)      # serial reads per recv_into call without an IPv4 packet


class PppNetif(Netif):
    """One PPP link. Memory: the frame buffer (mru + 6), the transmit queue
    (tx_queue, at least two worst-case frames), one read chunk (rx_chunk), and about
    2 KB of tables and control-packet scratch."""

    def __init__(self, serial, ifindex=1, name="lte", auth=None, mru=1500, accm=0,
                 echo_interval_ms=10000, echo_fails=3, server=False, local_addr=None,
                 peer_addr=None, dns=None, clock=None, tx_queue=TX_QUEUE, rx_chunk=RX_CHUNK,
                 restart_ms=3000, rand=None, impl=None):
        """clock (required): callable -> now (a tick, mptcp.ticks) for control frames handled
        inside recv_into(); the runtime gives its clock (mptcp_runtime.clock.now_ms), tests a
        fake one.
        server/local_addr/peer_addr/dns: the network side, for back-to-back tests only."""
        self.serial = serial
        self.ifindex = ifindex
        self.name = name
        self.addr = ZERO4
        self.up = False
        self.on_event = None            # type: Any
        if clock is None:
            raise ValueError("PppNetif needs clock=: a callable returning now (ms ticks)")
        self._clock = clock
        self.mru = mru
        self.dec = hdlc.Decoder(mru + 6, impl)
        if tx_queue < 2 * (mru + 8) + 4:
            tx_queue = 2 * (mru + 8) + 4
        self.enc = hdlc.Encoder(tx_queue, impl)
        self.rchunk = bytearray(rx_chunk)
        self.rpos = 0
        self.rend = 0
        self._h = bytearray(4)
        self._iph = bytearray(4)
        self._iphl = 4
        self.ses = PppSession(self._emit, auth=auth, mru=mru, accm=accm,
                              echo_interval_ms=echo_interval_ms, echo_fails=echo_fails,
                              server=server, local_addr=local_addr, peer_addr=peer_addr,
                              dns=dns, rand=rand, restart_ms=restart_ms)
        self.ses.on_change = self._changed
        self._defaults()
        self.dec.set_accm(hdlc.ACCM_ALL)
        self.rx_packets = 0
        self.tx_packets = 0
        self.rx_bytes = 0
        self.tx_bytes = 0
        self.tx_errors = 0
        self.rx_errors = 0
        self.rx_dropped = 0
        self.rx_bad_header = 0
        self.tx_serial_errors = 0
        self.no_carrier = False
        self._nobuf = bytearray(0)

    # ---- link parameters ----
    def _defaults(self):
        """Link parameters when LCP is not opened. The receive ACCM is left as it was
        (as pppd does): the peer may still send with the negotiated one, e.g. the
        Terminate-Ack after our Terminate-Request; start() resets it."""
        self.enc.set_accm(hdlc.ACCM_ALL)
        self.tx_acfc = False
        self.tx_pfc = False
        self.mtu = 1500
        self._set_iph()

    def _set_iph(self):
        h = self._iph
        k = 0
        if not self.tx_acfc:
            h[0] = 0xFF
            h[1] = 0x03
            k = 2
        if self.tx_pfc:
            h[k] = PROTO_IP
            k += 1
        else:
            h[k] = 0
            h[k + 1] = PROTO_IP
            k += 2
        self._iphl = k

    def _changed(self, ev, now):
        ses = self.ses
        if ev == "lcp-up":
            lcp = ses.lcp
            self.enc.set_accm(lcp.tx_accm)
            self.dec.set_accm(lcp.rx_accm)
            self.tx_acfc = lcp.tx_acfc
            self.tx_pfc = lcp.tx_pfc
            self.mtu = lcp.peer_mru
            self._set_iph()
        elif ev == "lcp-down" or ev == "dead":
            self._defaults()
        elif ev == "ip-up":
            self.addr = ses.ipcp.addr
            self.up = True
            if self.on_event is not None:
                self.on_event("up", self)
        elif ev == "ip-down":
            was = self.up
            self.up = False
            if was and self.on_event is not None:
                self.on_event("down", self)
        if ev == "dead" and self.up:
            self.up = False
            if self.on_event is not None:
                self.on_event("down", self)

    # ---- output ----
    def _emit(self, proto, a, aoff, alen, b, boff, blen):
        """Frame one control packet (the session's output hook)."""
        h = self._h
        k = 0
        lcp = proto == PROTO_LCP
        if lcp or not self.tx_acfc:
            h[0] = 0xFF
            h[1] = 0x03
            k = 2
        h[k] = proto >> 8
        h[k + 1] = proto & 0xFF
        # LCP codes 1..7 go out with every control character escaped (as Linux does)
        self.enc.frame(h, k + 2, a, aoff, alen, b, boff, blen,
                       lcp and alen > 0 and 1 <= a[aoff] <= 7)
        self._flush()

    def _flush(self):
        enc = self.enc
        ser = self.serial
        while enc.tail > enc.head:
            try:
                w = ser.write(enc.mv[enc.head:enc.tail])
            except OSError:
                self.tx_serial_errors += 1
                return
            if not w:
                return
            enc.consumed(w)

    def send(self, mv, n):
        if not self.up or n > self.mtu:
            self.tx_errors += 1
            return False
        if not self.enc.frame(self._iph, self._iphl, mv, 0, n):
            self.tx_errors += 1
            self._flush()
            return False
        self.tx_packets += 1
        self.tx_bytes += n
        self._flush()
        return True

    def tx_pending(self):
        """Bytes framed but not yet taken by the serial line."""
        return self.enc.tail - self.enc.head

    def writable(self):
        """Room in the transmit queue for one more full-size packet (with typical
        escaping): a loop that stops handing packets over when this is False keeps
        them in TCP's send buffer instead of having send() drop them."""
        enc = self.enc
        return len(enc.buf) - (enc.tail - enc.head) >= self.mtu + (self.mtu >> 4) + 16

    # ---- input ----
    def pollable(self):
        return self.serial.pollable()

    def recv_into(self, buf):
        """One whole IPv4 packet into buf (its length) or 0; control frames are handled."""
        if self.enc.tail > self.enc.head:
            self._flush()
        dec = self.dec
        chunk = self.rchunk
        reads = 0
        while True:
            if self.rpos >= self.rend:
                if reads >= MAX_READS:
                    return 0
                reads += 1
                try:
                    n = self.serial.readinto(chunk)
                except OSError:
                    self.rx_errors += 1
                    return 0
                if not n:
                    if self.ses.phase != "dead":
                        self._idle_checks()
                    return 0
                self.rpos = 0
                self.rend = n
            self.rpos = dec.feed(chunk, self.rpos, self.rend)
            if dec.flen:
                m = self._frame(buf)
                if m:
                    return m

    def _frame(self, buf):
        f = self.dec.frame
        n = self.dec.flen
        i = 0
        if f[0] == 0xFF:
            if f[1] != 0x03:
                self.rx_bad_header += 1
                return 0
            i = 2
            if n < 3:
                self.rx_bad_header += 1
                return 0
        p = f[i]
        if p & 1:
            proto = p
            i += 1
        else:
            if i + 1 >= n or not (f[i + 1] & 1):
                self.rx_bad_header += 1
                return 0
            proto = (p << 8) | f[i + 1]
            i += 2
        m = n - i
        if proto == PROTO_IP:
            if not self.up or m < 20 or (f[i] >> 4) != 4 or m > len(buf):
                self.rx_dropped += 1
                return 0
            buf[0:m] = memoryview(f)[i:n]
            self.rx_packets += 1
            self.rx_bytes += m
            return m
        self.ses.input(proto, f, i, m, self._clock())
        self._flush()
        return 0

    def _idle_checks(self):
        """The line is quiet: did the modem leave data mode under us?"""
        st = self.dec.st
        k = st[0]
        if k >= 10 and not st[1]:
            # the modem's "\r\nNO CARRIER\r\n" after the last flag (or cutting a frame
            # short) sits at the end of the unfinished frame; CR/LF may have been removed
            # by the receive ACCM
            f = self.dec.frame
            while k > 10 and (f[k - 1] == 13 or f[k - 1] == 10):
                k -= 1
            if f[k - 10:k] == b"NO CARRIER":
                self.no_carrier = True
                self.lower_down(self._clock(), "no-carrier")
                return
        if getattr(self.serial, "hup", False):
            self.lower_down(self._clock(), "hangup")

    # ---- control ----
    def start(self, now, leftover=None):
        """The serial line is in data mode: begin LCP. leftover: bytes the modem
        driver read after CONNECT (they may already hold the network's first LCP frame)."""
        self.dec.reset()
        self.enc.clear()
        self.rpos = 0
        self.rend = 0
        self.addr = ZERO4
        self.no_carrier = False
        self._defaults()
        self.dec.set_accm(hdlc.ACCM_ALL)
        self.ses.start(now)
        if leftover:
            dec = self.dec
            i = 0
            n = len(leftover)
            while i < n:
                i = dec.feed(leftover, i, n)
                if dec.flen:
                    self._frame(self._nobuf)
        self._flush()

    def poll(self, now):
        """Drive timers and the transmit queue; return the next deadline (a tick) or -1."""
        dl = self.ses.poll(now)
        self._flush()
        if self.enc.tail > self.enc.head:
            return ticks.add(now, 1)   # the line is backed up: come back soon
        return dl

    def close(self, now=None):
        """LCP Terminate-Request; keep polling until state == "dead" (Terminate-Ack or
        Max-Terminate timeouts) before leaving data mode."""
        if now is None:
            now = self._clock()
        self.ses.close(now)
        self._flush()

    def lower_down(self, now=None, reason="lower-down"):
        """The modem left data mode (NO CARRIER, hang-up): drop the link at once."""
        if now is None:
            now = self._clock()
        self.ses.lower_down(now, reason)
        self.dec.reset()
        self.enc.clear()
        self.rpos = 0
        self.rend = 0

    @property
    def state(self):
        return self.ses.phase

    @property
    def reason(self):
        """Why the link went (or is going) down; None while it is up or negotiating."""
        return self.ses.reason

    @property
    def dns(self):
        return self.ses.ipcp.dns if self.up else []

    # ---- counters ----
    @property
    def rx_frames(self):
        return self.dec.frames

    @property
    def rx_bad_fcs(self):
        return self.dec.bad_fcs

    @property
    def rx_bad_escape(self):
        return self.dec.bad_escape

    @property
    def rx_too_long(self):
        return self.dec.too_long

    @property
    def rx_short(self):
        return self.dec.short

    @property
    def rx_proto_reject(self):
        return self.ses.rx_proto_reject

    @property
    def tx_frames(self):
        return self.enc.frames

    @property
    def tx_dropped(self):
        return self.enc.dropped

    @property
    def lcp_echo_tx(self):
        return self.ses.lcp.echo_tx

    @property
    def lcp_echo_rx(self):
        return self.ses.lcp.echo_rx

    def stats(self):
        """Every counter by name (for the trial tools and the perf app)."""
        s = self.ses
        lcp = s.lcp
        return {
            "rx_packets": self.rx_packets, "tx_packets": self.tx_packets,
            "rx_bytes": self.rx_bytes, "tx_bytes": self.tx_bytes,
            "rx_frames": self.dec.frames, "tx_frames": self.enc.frames,
            "rx_bad_fcs": self.dec.bad_fcs, "rx_bad_escape": self.dec.bad_escape,
            "rx_too_long": self.dec.too_long, "rx_short": self.dec.short,
            "rx_bad_header": self.rx_bad_header, "rx_dropped": self.rx_dropped,
            "rx_errors": self.rx_errors, "rx_proto_reject": s.rx_proto_reject,
            "rx_unexpected": s.rx_unexpected, "rx_lcp_proto_reject": lcp.proto_reject_rx,
            "rx_code_reject": lcp.rx_code_reject + s.ipcp.rx_code_reject,
            "rx_ctl_bad": lcp.rx_bad + s.ipcp.rx_bad,
            "tx_errors": self.tx_errors, "tx_dropped": self.enc.dropped,
            "tx_serial_errors": self.tx_serial_errors,
            "lcp_echo_tx": lcp.echo_tx, "lcp_echo_rx": lcp.echo_rx,
            "lcp_echo_req_rx": lcp.echo_req_rx, "lcp_echo_fail": s.echo_fail,
            "lcp_echo_loop": lcp.echo_loop, "lcp_loopback": s.loopback,
            "lcp_discard_rx": lcp.discard_rx, "lcp_confreq_tx": lcp.tx_confreq,
            "lcp_termreq_tx": lcp.tx_termreq, "ipcp_confreq_tx": s.ipcp.tx_confreq,
            "auth_fail": s.auth_fail,
        }
