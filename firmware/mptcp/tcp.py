"""One TCP endpoint (RFC 9293), the base of an MPTCP subflow (mptcp.subflow).

Sequence numbers are relative to ISS/IRS (SYN = 0, first data byte = 1) and
are turned into 32-bit wire values only when a segment is read or written.
The endpoint handles the TCP state machine, retransmission (RFC 6298 RTO with
Karn and backoff: mptcp.cc.RttEstimator; fast retransmit + NewReno and the SACK
scoreboard from mptcp.cc), delayed ACKs, the persist timer, RFC 5961 challenge
ACKs, TIME-WAIT and the TCP options (MSS, window scale, SACK, timestamps). It
knows nothing of MPTCP and never touches a Connection: what lies above TCP is
reached through the upcalls listed in TcpEndpoint's docstring.

Output is pulled: `output(now, buf)` writes at most one IPv4 packet into buf.
"""
from mptcp.compat import const
from mptcp import tcpwire as T
from mptcp import checksum
from mptcp import ringbuf
from mptcp import counters as C
from mptcp.cc import NewReno, Scoreboard, RttEstimator, RTO_MAX
from mptcp.ticks import MASK as TMASK, HALF as THALF, earlier, add as tadd

CLOSED = const(0)
SYN_SENT = const(1)
SYN_RCVD = const(2)
ESTABLISHED = const(3)
FIN_WAIT_1 = const(4)
FIN_WAIT_2 = const(5)
CLOSE_WAIT = const(6)
CLOSING = const(7)
LAST_ACK = const(8)
TIME_WAIT = const(9)

STATE_NAMES = ("CLOSED", "SYN_SENT", "SYN_RCVD", "ESTABLISHED", "FIN_WAIT_1",
               "FIN_WAIT_2", "CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT")

MAX_RETRIES = const(12)
SYN_RETRIES = const(6)
DELACK_MS = const(40)
TIME_WAIT_MS = const(1000)
FIN_WAIT_2_MS = const(60000)
DEFAULT_MSS = const(536)

_OPT = const(40)           # options start: 20 (IP) + 20 (TCP)
SEG_SLOTS = const(96)      # segments in flight remembered (retransmit them unchanged)
MAX_DUPACKS_OWED = const(3)
# Relative sequence numbers stay small ints for ever (DESIGN 2.3): when one passes
# REBASE_AT, every value of that space drops by REBASE_BY and the base (ISS/IRS halves,
# and what lies above: _rebased_snd/_rebased_rcv) grows by as much. A multiple of
# 2**16: only high halves move.
REBASE_AT = const(0x20000000)
REBASE_BY = const(0x10000000)
MIB = const(0x100000)      # byte statistics are kept as MiB + bytes (small ints for ever)
OOW_RATE_MS = const(500)   # out-of-window ACK answers, like net.ipv4.tcp_invalid_ratelimit


class TcpEndpoint:
    """RFC 9293 for one 4-tuple. The subclass (mptcp.subflow.Subflow) is what lies above
    TCP; the endpoint calls it only through these upcalls (one object per subflow: no
    indirection, no allocation).

    `r` below is the subclass's own bit set, returned by `_opts_in` and handed back;
    the endpoint reads only bit 2 (4: call `_data_fin_in`).

    input:
      _opts_in(buf, seg, now) -> r     extra options of an acceptable ACK; < 0: stop here
      _third_ack(buf, seg, r) -> bool  SYN-RCVD: may the handshake complete? (False: gone)
      _synack_in(buf, seg, now) -> bool  SYN-SENT got a valid SYN/ACK (False: gone)
      _handshake_done(now)             the endpoint just became ESTABLISHED
      _ack_in(buf, seg, ack, r)        before the ACK is processed (acknowledgements above)
      _acked()                         SND.UNA advanced
      _wnd_in(ack, r)                  the peer's window was updated (snd_wnd)
      _data_in(buf, mv, seg, seq, s, n, r, now) -> n   place payload buf[s:s+n] (seq);
                                       the bytes accepted (a prefix), 0: dropped
      _data_done(seq, n, adv, now)     after placing (adv: RCV.NXT advance, 0: out of order)
      _dup_in(buf, r)                  a segment whose data we already have
      _old_data_in(buf, seg)           an old (duplicate) segment outside the window
      _data_fin_in(buf)                no data, but `r` has bit 2
      _fin_in(now)                     the peer's FIN, in order (before the state moves)
      _rst_in(buf, seg) -> fatal       an acceptable RST: its options (True: fatal)
      _closed_above() -> bool          both streams above ended: a late RST is no error
      _reset_in(fatal)                 a RST that is an error (counted; not yet closed)
      _input_done()                    end of every segment in a synchronized state
      _rebased_snd(by), _rebased_rcv(by)   a sequence space dropped by `by`
    timers:
      _gave_up(now) -> bool            RTO limit reached (True: handled, nothing more)
      _rto_in(now) -> bool             an RTO (True: no go-back-N this time)
      _app_closed() -> bool            the application closed (FIN-WAIT-2 timeout applies)
      _closed()                        the endpoint went to CLOSED
    output:
      _unwanted() -> bool              SYN-SENT: give up the attempt silently
      _ctl_out(now, buf) -> len        a control segment first (> 0: sent, < 0: nothing)
      _dsn_gone(dsn, now) -> bool      a retransmission's data is gone (the subflow is)
      _new_data(now, nxt) -> n         new payload at nxt (stream position in tx_dsn)
      _close_out(now, buf, nxt, fin_ok) -> len   FIN (-1: send it) or a closing segment
      _syn_opts(buf, o) -> o           options of our SYN or SYN/ACK after TCP's
      _seg_opts(buf, o, seq, n, flags, dsn, now) -> o   options after TCP's and the
                                       payload (n bytes of stream position dsn); may set
                                       tx_psum (payload sum) and tx_again (ACK again)
      _sent(seq, n, dsn) -> flags      after a data segment is accounted: T.PSH or 0
      _rst_out(buf, o) -> o            options of our RST
      _rcv_window() -> bytes           the receive window to advertise
      _opt_room(seq) -> bytes          option bytes a data segment at seq carries
    """

    def __init__(self, stack, ifindex, laddr, raddr, lport, rport, iss, mss, client):
        self.stack = stack
        self.ctr = stack.counters.v
        self.ifindex = ifindex
        self.laddr = laddr
        self.raddr = raddr
        self.lport = lport
        self.rport = rport
        self.client = client
        self.state = SYN_SENT if client else SYN_RCVD
        self.iss = iss
        self.iss_h = (iss >> 16) & 0xFFFF     # halves: small ints on 32-bit boards
        self.iss_l = iss & 0xFFFF
        self.irs = 0
        self.irs_h = 0
        self.irs_l = 0
        # rebasing (see _rebase_snd/_rebase_rcv) keeps relative sequence numbers below
        # 2**29; what it took off, as the high half (a multiple of 2**16), is added back
        # to a relative sequence number written in / read from an option (DSS SSN)
        self.soff_h = 0
        self.roff_h = 0
        self.hdr = None                       # header template (built by _template)
        self.ip_sum0 = 0
        self.ps0 = 0
        self.snd_una = 0
        self.snd_nxt = 0
        self.snd_max = 0
        self.snd_right = 1         # relative right edge of the peer's window
        self.snd_wnd = 0
        self.snd_wscale = 0
        self.rcv_wscale = 0
        self.my_mss = mss
        self.mss = DEFAULT_MSS
        self.rcv_nxt = 0
        self.rcv_adv = 0           # subflow right edge last advertised (relative seq)
        self.rcv_wup = 0           # rcv_nxt when we last sent a window (Linux's rcv_wup)
        self.adv_wnd = 0           # the window (bytes) last advertised
        self.oow_time = -1         # when we last answered an out-of-window pure ACK
        self.syn_sent = False
        self.fin_sent = False
        self.fin_seq = -1
        self.fin_acked = False
        self.fin_rcvd = False
        # timers (-1 = off)
        self.rtt = RttEstimator()
        self.rto_deadline = -1
        self.tries = 0
        self.rtt_seq = -1
        self.rtt_time = 0
        self.ack_deadline = -1
        self.ack_now = False
        self.unacked_segs = 0
        self.persist_deadline = -1
        self.persist_backoff = 0
        self.force_one = False
        self.tw_deadline = -1
        self.rexmit = False        # fast retransmit / partial ACK / SACK hole: resend at rexmit_at
        self.rexmit_at = 0
        self.rx_hi = 0             # end of what this recovery has retransmitted
        self.rst_pending = False
        self.blocked = False       # its link's transmit queue is full (Stack.set_blocked)
        self.cc = NewReno(DEFAULT_MSS)
        self.last_wnd = -1
        # stats
        self.tx_mib = 0            # bytes sent/received = mib * MIB + b (see bytes_tx)
        self.tx_b = 0
        self.rx_mib = 0
        self.rx_b = 0
        self.retrans = 0
        self.ooo = None            # out-of-order tracking (an Assembler, set by the stack)
        # ends of the segments in flight, each with its stream position - seq: a
        # retransmission re-sends exactly one of them, with the same stream position
        self.sb = Scoreboard(SEG_SLOTS)
        self.tx_delta = 0          # stream position - seq of the last segment sent
        self.tx_dsn = 0            # _new_data's stream position
        self.tx_psum = -1          # _seg_opts: the payload's sum, if it computed it
        self.tx_again = False      # _seg_opts: more to say on another pure ACK
        self.sack_ok = False       # both SYNs carried SACK_PERM: we send SACK blocks
        self.dupacks_owed = 0      # one immediate ACK per out-of-order segment
        self.ws_ok = False         # the peer's SYN carried a window scale
        self.ts_ok = False         # RFC 7323 timestamps on every segment
        self.tsr_h = 0             # TS.Recent (RFC 7323) as 16-bit halves
        self.tsr_l = 0
        self.ts_h = 0              # our TS clock (ms, 32 bits) as 16-bit halves ...
        self.ts_l = 0
        self.ts_now = 0            # ... at this tick

    # ------------------------------------------------------------ upcalls (the subclass's)
    def _opts_in(self, buf, seg, now):
        raise NotImplementedError

    def _third_ack(self, buf, seg, r):
        raise NotImplementedError

    def _synack_in(self, buf, seg, now):
        raise NotImplementedError

    def _handshake_done(self, now):
        raise NotImplementedError

    def _ack_in(self, buf, seg, ack, r):
        raise NotImplementedError

    def _acked(self):
        raise NotImplementedError

    def _wnd_in(self, ack, r):
        raise NotImplementedError

    def _data_in(self, buf, mv, seg, seq, s, n, r, now):
        raise NotImplementedError

    def _data_done(self, seq, n, adv, now):
        raise NotImplementedError

    def _dup_in(self, buf, r):
        raise NotImplementedError

    def _old_data_in(self, buf, seg):
        raise NotImplementedError

    def _data_fin_in(self, buf):
        raise NotImplementedError

    def _fin_in(self, now):
        raise NotImplementedError

    def _rst_in(self, buf, seg):
        raise NotImplementedError

    def _closed_above(self):
        raise NotImplementedError

    def _reset_in(self, fatal):
        raise NotImplementedError

    def _input_done(self):
        raise NotImplementedError

    def _rebased_snd(self, by):
        raise NotImplementedError

    def _rebased_rcv(self, by):
        raise NotImplementedError

    def _gave_up(self, now):
        raise NotImplementedError

    def _rto_in(self, now):
        raise NotImplementedError

    def _app_closed(self):
        raise NotImplementedError

    def _closed(self):
        raise NotImplementedError

    def _unwanted(self):
        raise NotImplementedError

    def _ctl_out(self, now, buf):
        raise NotImplementedError

    def _dsn_gone(self, dsn, now):
        raise NotImplementedError

    def _new_data(self, now, nxt):
        raise NotImplementedError

    def _close_out(self, now, buf, nxt, fin_ok):
        raise NotImplementedError

    def _syn_opts(self, buf, o):
        raise NotImplementedError

    def _seg_opts(self, buf, o, seq, n, flags, dsn, now):
        raise NotImplementedError

    def _sent(self, seq, n, dsn):
        raise NotImplementedError

    def _rst_out(self, buf, o):
        raise NotImplementedError

    def _rcv_window(self):
        raise NotImplementedError

    # ------------------------------------------------------------ helpers
    # (methods, not properties: on MicroPython a property anywhere in the class hierarchy
    # makes every attribute store look through the classes, a third more per segment)
    def bytes_tx(self):
        """Payload bytes sent (retransmissions included); may be a big int: not for the data path."""
        return self.tx_mib * MIB + self.tx_b

    def bytes_rx(self):
        return self.rx_mib * MIB + self.rx_b

    def _rebase_snd(self, by):
        """Our sequence space (and the stream above it, which moves with it) drops by
        `by` (a multiple of 2**16; negative in tests to jump ahead). Wire values do not
        change."""
        h = by >> 16
        self.iss_h = (self.iss_h + h) & 0xFFFF
        self.soff_h = (self.soff_h + h) & 0xFFFF
        self.snd_una -= by
        self.snd_nxt -= by
        self.snd_max -= by
        self.snd_right -= by
        if self.fin_seq >= 0:
            self.fin_seq -= by
        if self.rtt_seq >= 0:
            self.rtt_seq -= by
        x = self.rx_hi - by
        self.rx_hi = x if x > 0 else 0          # behind snd_una: only "behind" matters
        x = self.rexmit_at - by
        self.rexmit_at = x if x > 0 else 0
        self.sb.rebase(by)
        self.cc.rebase(by)
        self.tx_delta += by
        self._rebased_snd(by)

    def _rebase_rcv(self, by):
        """The peer's sequence space drops by `by` (see _rebase_snd)."""
        h = by >> 16
        self.irs_h = (self.irs_h + h) & 0xFFFF
        self.roff_h = (self.roff_h + h) & 0xFFFF
        self.rcv_nxt -= by
        self.rcv_adv -= by
        self.rcv_wup -= by
        self._rebased_rcv(by)

    def set_irs(self, v):
        self.irs = v
        self.irs_h = (v >> 16) & 0xFFFF
        self.irs_l = v & 0xFFFF

    def take_syn(self, seg):
        """Adopt the peer's SYN (or SYN/ACK): IRS, MSS, window scale, SACK, timestamps, window.
        The same negotiation for both roles (RFC 9293 3.10.7, RFC 7323)."""
        self.set_irs(seg.seq)
        self.rcv_nxt = 1
        self.rcv_wup = 1
        mss = seg.mss if seg.mss else DEFAULT_MSS
        if mss > self.my_mss:
            mss = self.my_mss
        self.mss = mss if mss >= 64 else 64
        self.cc.set_mss(self.mss)
        if seg.wscale >= 0:
            self.snd_wscale = seg.wscale
            self.ws_ok = True
        else:
            self.rcv_wscale = 0
        self.sack_ok = seg.sackp
        if seg.ts_present:
            self.ts_ok = True
            self.tsr_h = seg.tsv_h
            self.tsr_l = seg.tsv_l
        self.snd_wnd = seg.window
        self.snd_right = 1 + seg.window

    def state_name(self):
        return STATE_NAMES[self.state]

    def is_closed(self):
        return self.state == CLOSED or self.state == TIME_WAIT

    def set_rcv_wscale(self, rcv_buf):
        s = 0
        while (rcv_buf >> s) > 0xFFFF and s < 14:
            s += 1
        self.rcv_wscale = s

    def _ts_at(self, now):
        """Advance our TS clock (32 bits, in 16-bit halves) to tick `now`: it keeps counting
        when `now` wraps (the peer's PAWS needs it monotonic)."""
        d = (now - self.ts_now) & TMASK
        x = self.ts_l + (d & 0xFFFF)      # (ts_l + d could pass the small-int range)
        self.ts_now = now
        self.ts_l = x & 0xFFFF
        self.ts_h = (self.ts_h + (d >> 16) + (x >> 16)) & 0xFFFF

    def _to_closed(self):
        self.state = CLOSED
        self.rto_deadline = -1
        self.ack_deadline = -1
        self.persist_deadline = -1
        self.tw_deadline = -1
        self._closed()

    def _reset_by_peer(self, fatal=False):
        """A RST (fatal: it ends what lies above too) from the peer."""
        self.ctr[C.TcpInRsts] += 1
        if self.state == TIME_WAIT or (self.fin_rcvd and self.fin_seq >= 0
                                       and self.snd_una >= self.fin_seq) \
                or self._closed_above():
            # both streams ended and all our data was acknowledged: the peer may have
            # left TIME-WAIT before our FIN's retransmission (its ACK lost) and answers
            # it with a RST. That ends the subflow, but it is not an error (RFC 1337;
            # Linux kills TIME-WAIT; a LAST_ACK socket is already closed by its app).
            self.ctr[C.TcpRstIgnored] += 1
            self._to_closed()
            return
        if self.state >= ESTABLISHED:
            self.ctr[C.TcpEstabResets] += 1
        self._reset_in(fatal)

    # ------------------------------------------------------------ timers
    def next_deadline(self, now):
        """The earliest timer (a tick), `now` when something is to be sent, -1 for none."""
        if self.ack_now or self.rst_pending or self.rexmit:
            return now
        d = earlier(self.rto_deadline, self.ack_deadline)
        d = earlier(d, self.persist_deadline)
        return earlier(d, self.tw_deadline)

    def timers(self, now):
        if self.tw_deadline >= 0 and ((now - self.tw_deadline) & TMASK) < THALF:
            self._to_closed()
            return
        if self.ack_deadline >= 0 and ((now - self.ack_deadline) & TMASK) < THALF:
            self.ack_deadline = -1
            self.ack_now = True
            self.ctr[C.TcpDelayedAcks] += 1
        if self.rto_deadline >= 0 and ((now - self.rto_deadline) & TMASK) < THALF:
            self._on_rto(now)
        if self.persist_deadline >= 0 and ((now - self.persist_deadline) & TMASK) < THALF:
            self.persist_deadline = -1
            self.force_one = True
            self.ctr[C.TcpZeroWindowProbes] += 1

    def _on_rto(self, now):
        self.rto_deadline = -1
        self.tries += 1
        limit = SYN_RETRIES if self.state <= SYN_RCVD else MAX_RETRIES
        if self.tries > limit:
            if self.state == SYN_SENT:
                self.ctr[C.TcpAttemptFails] += 1
            if self._gave_up(now):
                return
            if self.state == SYN_SENT:
                self._to_closed()
            else:
                self.rst_pending = True
            return
        self.ctr[C.TcpRTOs] += 1
        if self.snd_wnd == 0 and self.state > SYN_RCVD and self.persist_backoff:
            # an unanswered zero-window probe: the persist backoff grows (RFC 1122
            # 4.2.2.17, Linux's icsk_backoff), the RTO itself has no new information
            if self.persist_backoff < 6:
                self.persist_backoff += 1
        else:
            self.rtt.backoff()
        if self.state <= SYN_RCVD:
            self.syn_sent = False
            return
        if self._rto_in(now):
            return
        flight = self.snd_max - self.snd_una
        self.cc.on_rto(flight, self.snd_max)
        self.snd_nxt = self.snd_una
        self.rtt_seq = -1
        self.rexmit = False
        self.rx_hi = self.snd_una
        if self.fin_sent and self.snd_una <= self.fin_seq:
            self.fin_sent = False

    def _arm_persist(self, now):
        """Nothing may be sent and nothing is in flight: probe the window later."""
        b = self.persist_backoff
        t = self.rtt.rto << b
        if t > RTO_MAX:
            t = RTO_MAX
        self.persist_deadline = tadd(now, t)
        if b < 6:
            self.persist_backoff = b + 1

    # ------------------------------------------------------------ input
    def input(self, buf, mv, seg, now):
        """Process one validated segment addressed to this endpoint."""
        st = self.state
        flags = seg.flags
        if st == CLOSED:
            return
        if st == SYN_SENT:
            self._input_syn_sent(buf, seg, now)
            return
        ctr = self.ctr
        # relative seq nearest rcv_nxt, from 16-bit halves (no big ints on 32-bit boards)
        seq = T.rel32(seg.seq_h, seg.seq_l, self.irs_h, self.irs_l, self.rcv_nxt)
        dlen = seg.data_len
        if st == SYN_RCVD and (flags & T.SYN) and not (flags & T.ACK) and seq == 0:
            self.syn_sent = False         # retransmitted SYN: resend SYN/ACK
            return
        # 1. acceptability, as Linux's tcp_sequence(): the segment ends at or after
        #    RCV.WUP (RCV.NXT when we last sent a window) and starts inside the window.
        #    A pure ACK whose SEQ is behind RCV.NXT (the peer went back after an RTO)
        #    is acceptable: its ACK field is news (RFC 9293 3.10.7.4 would drop it).
        wnd = self.rcv_adv - self.rcv_nxt
        if wnd < 0:
            wnd = 0
        slen = dlen + (1 if flags & T.FIN else 0)
        right = self.rcv_nxt + wnd
        if seq + slen < self.rcv_wup or seq > right or (
                seq == right and wnd > 0 and (slen > 0 or (flags & T.RST))):
            # (data or a RST starting at the right edge is outside [RCV.NXT, RCV.NXT+WND))
            if flags & T.RST:
                return
            if seq + slen < self.rcv_wup:
                ctr[C.TcpInOldSegs] += 1
                if dlen > 0:
                    self._old_data_in(buf, seg)
            else:
                ctr[C.TcpInErrsOutOfWindow] += 1
            self._oow_ack(now, dlen)
            return
        if wnd == 0:
            flags &= ~T.FIN        # as Linux: nothing, not even a FIN, into a zero window
        # 2. RST (RFC 5961 3.2)
        if flags & T.RST:
            if seq == self.rcv_nxt:
                self._reset_by_peer(self._rst_in(buf, seg))
            else:
                self.stack.challenge_ack(self, now)
            return
        # 3. SYN in a synchronized state (RFC 5961 4.2)
        if flags & T.SYN:
            self.stack.challenge_ack(self, now)
            return
        if not (flags & T.ACK):
            return
        # 4. the ACK field is validated before any option acts (an option on a segment
        #    acknowledging unsent data is not believed)
        ack = T.rel32(seg.ack_h, seg.ack_l, self.iss_h, self.iss_l, self.snd_una)
        if self.state == SYN_RCVD:
            if ack < 1 or ack > self.snd_max:
                self.stack.send_rst_for(buf, seg, self)
                return
        elif ack > self.snd_max:
            ctr[C.TcpInErrsBadAck] += 1
            self._oow_ack(now, dlen)
            return
        if self.ts_ok and seg.ts_present and seq <= self.rcv_nxt:
            self.tsr_h = seg.tsv_h
            self.tsr_l = seg.tsv_l
        r = self._opts_in(buf, seg, now)
        if r < 0:
            return
        # SYN_RCVD -> ESTABLISHED
        if self.state == SYN_RCVD:
            if not self._third_ack(buf, seg, r):
                return
            self._established(now)
            self.snd_wnd = seg.window << self.snd_wscale
            self.snd_right = ack + self.snd_wnd
        # 5. ACK processing
        self._ack_in(buf, seg, ack, r)
        self._process_ack(seg, ack, dlen, flags, r, now)
        if self.state == CLOSED:
            return
        # 6. data
        if dlen > 0 and ESTABLISHED <= self.state <= FIN_WAIT_2:
            self._input_data(buf, mv, seg, seq, dlen, r, now)
        elif r & 4:
            self._data_fin_in(buf)
        # 7. FIN
        if flags & T.FIN:
            if seq + dlen == self.rcv_nxt and not self.fin_rcvd:
                self.fin_rcvd = True
                self.rcv_nxt += 1
                self.ack_now = True
                self._fin_in(now)
                st = self.state
                if st == ESTABLISHED or st == SYN_RCVD:
                    self.state = CLOSE_WAIT
                elif st == FIN_WAIT_1:
                    if self.fin_acked:
                        self._time_wait(now)
                    else:
                        self.state = CLOSING
                elif st == FIN_WAIT_2:
                    self._time_wait(now)
            elif self.fin_rcvd:
                self.ack_now = True
                if self.state == TIME_WAIT:
                    self.tw_deadline = tadd(now, TIME_WAIT_MS)
        # keep the relative sequence spaces small (one compare each per segment)
        if self.snd_una >= REBASE_AT:
            self._rebase_snd(REBASE_BY)
        if self.rcv_nxt >= REBASE_AT:
            self._rebase_rcv(REBASE_BY)
        self._input_done()

    def _oow_ack(self, now, dlen):
        """Answer an unacceptable segment or an ACK of unsent data with an ACK (RFC 9293),
        at most one per OOW_RATE_MS for segments without data (Linux's
        tcp_oow_rate_limited): two desynchronised ends must not ping-pong ACKs."""
        if dlen > 0:
            self.ack_now = True
            return
        t = self.oow_time
        if t >= 0 and ((now - t) & TMASK) < OOW_RATE_MS:
            self.ctr[C.TcpAckSkipped] += 1
            return
        self.oow_time = now
        self.ack_now = True

    def _process_ack(self, seg, ack, dlen, flags, r, now):
        ctr = self.ctr
        una = self.snd_una
        if ack > una:
            acked = ack - una
            self.snd_una = ack
            if self.snd_nxt < ack:
                self.snd_nxt = ack
            if self.fin_seq >= 0 and ack == self.fin_seq + 1:
                self.fin_acked = True   # also after an RTO cleared fin_sent for the resend
            if self.ts_ok and seg.ts_present and (seg.tse_h or seg.tse_l):
                # RTT = our TS clock now - the TSecr, in halves (RTO_MAX < 2**16)
                d = (now - self.ts_now) & TMASK
                x = self.ts_l + (d & 0xFFFF) - seg.tse_l
                if ((self.ts_h + (d >> 16) - seg.tse_h + (x >> 16)) & 0xFFFF) == 0:
                    x &= 0xFFFF
                    if x < RTO_MAX:
                        self.rtt.sample(x)
                self.rtt_seq = -1
            elif self.rtt_seq >= 0 and ack >= self.rtt_seq:
                self.rtt.sample((now - self.rtt_time) & TMASK)
                self.rtt_seq = -1
            self.tries = 0
            # (the RTO is recomputed only from an RTT sample: Karn keeps the backoff)
            if self.snd_una >= self.snd_max:
                self.rto_deadline = -1
            else:
                self.rto_deadline = tadd(now, self.rtt.rto)
            flight = self.snd_max - self.snd_una
            self._acked()
            self.sb.pop(self.snd_una)
            if seg.sack_n and self.sb.n:
                # the scoreboard is updated by every ACK carrying SACK blocks (RFC 6675 5),
                # not only by duplicates: loss detection must not wait one more ACK
                self.sb.on_sack(seg, self.iss_h, self.iss_l, self.snd_una, self.snd_max)
            if self.cc.on_ack(acked, self.snd_una, flight):
                ctr[C.TcpPartialAcks] += 1
                if self.snd_una >= self.rx_hi:
                    self.rexmit_at = self.snd_una
                    self.rexmit = True
                else:
                    self._next_hole()
            self.persist_backoff = 0
            st = self.state
            if self.fin_acked:
                if st == FIN_WAIT_1:
                    self.state = FIN_WAIT_2
                    if self._app_closed():    # like tcp_fin_timeout: only for a closed socket,
                        self.tw_deadline = tadd(now, FIN_WAIT_2_MS)   # not a half-close
                elif st == CLOSING:
                    self._time_wait(now)
                elif st == LAST_ACK:
                    self._to_closed()
                    return
        elif ack == una and dlen == 0 and not (flags & (T.FIN | T.SYN)) \
                and self.snd_max > una and (seg.sack_n or (seg.window << self.snd_wscale) == self.snd_wnd):
            ctr[C.TcpDupAcks] += 1
            if seg.sack_n and self.sb.n:
                self.sb.on_sack(seg, self.iss_h, self.iss_l, una, self.snd_max)
            if self.cc.on_dupack(una, self.snd_max, self.snd_max - una):
                ctr[C.TcpFastRetrans] += 1
                self.rexmit = True
                self.rexmit_at = una
                self.rx_hi = una
                self.rtt_seq = -1
            elif self.cc.in_recovery and seg.sack_n:
                self._next_hole()
        elif seg.sack_n and self.sb.n:
            self.sb.on_sack(seg, self.iss_h, self.iss_l, self.snd_una, self.snd_max)
        if seg.sack_n and not self.cc.in_recovery and self.snd_una > self.cc.recover \
                and self.snd_max > self.snd_una and self.sb.sacked_count() >= 3:
            # RFC 6675 IsLost: three segments SACKed above the first hole
            self.cc.enter_recovery(self.snd_max, self.snd_max - self.snd_una)
            ctr[C.TcpFastRetrans] += 1
            self.rexmit = True
            self.rexmit_at = self.snd_una
            self.rx_hi = self.snd_una
            self.rtt_seq = -1
        if ack == una and seg.window == 0:
            self.tries = 0          # zero-window probe answered: the peer is alive
        # window update (not from old ACKs)
        if ack >= una:
            self.snd_wnd = seg.window << self.snd_wscale
            self.snd_right = ack + self.snd_wnd
            self._wnd_in(ack, r)
            if self.snd_wnd > 0:
                self.persist_deadline = -1

    def _established(self, now):
        self.state = ESTABLISHED
        self.rtt.fallback()             # no RTT sample from the handshake (RFC 6298 5.7)
        self.tries = 0
        self.rto_deadline = -1
        self._handshake_done(now)

    def _time_wait(self, now):
        self.state = TIME_WAIT
        self.rto_deadline = -1
        self.persist_deadline = -1
        self.tw_deadline = tadd(now, TIME_WAIT_MS)

    def _input_syn_sent(self, buf, seg, now):
        flags = seg.flags
        if flags & T.ACK:
            if ((seg.ack - self.iss) & 0xFFFFFFFF) != 1:
                if not (flags & T.RST):
                    self.stack.send_rst_for(buf, seg, self)     # on this subflow's link
                return
        if flags & T.RST:
            if flags & T.ACK:
                self._reset_by_peer()
            return
        if not (flags & T.SYN) or not (flags & T.ACK):
            return      # simultaneous open is not supported
        self.take_syn(seg)
        self.snd_una = 1
        if self.snd_nxt < 1:
            self.snd_nxt = 1
        if self.rtt_seq >= 0:
            self.rtt.sample((now - self.rtt_time) & TMASK)
            self.rtt_seq = -1
        if not self._synack_in(buf, seg, now):
            return
        self._established(now)
        self.ack_now = True

    def _input_data(self, buf, mv, seg, seq, dlen, r, now):
        s = seg.data_off
        # trim what we already have
        if seq < self.rcv_nxt:
            k = self.rcv_nxt - seq
            if k >= dlen:
                self.ack_now = True
                self._dup_in(buf, r)
                return
            s += k
            seq += k
            dlen -= k
        wnd_end = self.rcv_adv if self.rcv_adv > self.rcv_nxt else self.rcv_nxt
        if seq + dlen > wnd_end:
            dlen = wnd_end - seq
            if dlen <= 0:
                self.ack_now = True
                return
        dlen = self._data_in(buf, mv, seg, seq, s, dlen, r, now)
        if dlen <= 0:
            return
        x = self.rx_b + dlen
        if x >= MIB:
            self.rx_mib += 1
            x -= MIB
        self.rx_b = x
        ooo = self.ooo
        if seq == self.rcv_nxt:
            if ooo.n:
                ooo.shift(dlen)
                adv = dlen + ooo.take_front()
            else:
                adv = dlen
            self.rcv_nxt += adv
            if ooo.n or adv > dlen:
                self.ack_now = True       # a hole was filled: ACK at once
            else:
                self.unacked_segs += 1
                if self.unacked_segs >= 2:
                    self.ack_now = True
                elif self.ack_deadline < 0:
                    self.ack_deadline = tadd(now, DELACK_MS)
        else:
            adv = 0
            ooo.add(seq - self.rcv_nxt, dlen)
            self.ctr[C.TcpOFOQueue] += 1
            if self.ack_now and self.dupacks_owed < MAX_DUPACKS_OWED:
                self.dupacks_owed += 1    # one duplicate ACK per segment
            self.ack_now = True
        self._data_done(seq, dlen, adv, now)

    # ------------------------------------------------------------ output
    def output(self, now, buf):
        """Write at most one packet into buf; return its length (0 = nothing)."""
        if self.blocked:
            return 0
        st = self.state
        if self.rst_pending:
            return self._out_rst(buf)
        if st == CLOSED:
            return 0
        if st == SYN_SENT and self._unwanted():
            self._to_closed()       # e.g. a join still trying when the connection is over
            return 0
        if st == SYN_SENT or st == SYN_RCVD:
            if not self.syn_sent:
                return self._out_syn(now, buf)
            if st == SYN_SENT:
                return 0
        if st == FIN_WAIT_2 and self.tw_deadline < 0 and self._app_closed():
            self.tw_deadline = tadd(now, FIN_WAIT_2_MS)     # closed after the half-close
        if st == TIME_WAIT:
            if self.ack_now:
                return self._out_seg(now, buf, self.snd_max, 0, T.ACK)
            return 0
        if st == SYN_RCVD:
            if self.ack_now:
                self.ack_now = False
            return 0
        n = self._ctl_out(now, buf)
        if n:
            return n if n > 0 else 0
        # retransmission at snd_una (fast retransmit / partial ACK)
        if self.rexmit:
            self.rexmit = False
            at = self.rexmit_at
            if at < self.snd_una:
                at = self.snd_una
            n = self._data_len_at(at)
            if n > 0:
                dsn = at + self.sb.delta_at(at, self.tx_delta)
                if self._dsn_gone(dsn, now):
                    return self._out_rst(buf)
                self.retrans += 1
                self.ctr[C.TcpRetransSegs] += 1
                if at + n > self.rx_hi:
                    self.rx_hi = at + n
                nxt = self.snd_nxt
                r = self._out_seg(now, buf, at, n, T.ACK, dsn)
                if nxt > self.snd_nxt:
                    self.snd_nxt = nxt      # one segment resent; new data goes on from nxt
                return r
        nxt = self.snd_nxt
        if nxt < self.snd_max and self.sb.n:
            nxt = self.sb.skip_sacked(nxt, self.snd_una)
            self.snd_nxt = nxt
        if nxt < self.snd_max:
            # go-back-N after an RTO: the original segments with their stream positions
            n = self._data_len_at(nxt)
            if n > 0:
                wnd = self.snd_right - nxt
                cw = self.snd_una + self.cc.cwnd - nxt
                if cw < wnd:
                    wnd = cw
                if n <= wnd or nxt == self.snd_una:
                    dsn = nxt + self.sb.delta_at(nxt, self.tx_delta)
                    if self._dsn_gone(dsn, now):
                        return self._out_rst(buf)
                    self.retrans += 1
                    self.ctr[C.TcpRetransSegs] += 1
                    return self._out_seg(now, buf, nxt, n, T.ACK, dsn)
        else:
            n = self._new_data(now, nxt)
            if n > 0:
                return self._out_seg(now, buf, nxt, n, T.ACK, self.tx_dsn)
        # FIN (a FIN rewound by an RTO at fin_seq; a new one when what lies above says)
        if not self.fin_sent and self.fin_seq >= 0 and nxt == self.fin_seq:
            return self._out_fin(now, buf, self.fin_seq)
        n = self._close_out(now, buf, nxt, not self.fin_sent and nxt == self.snd_max
                            and st != LAST_ACK and st != FIN_WAIT_2 and st != CLOSING)
        if n:
            return n if n > 0 else self._out_fin(now, buf, nxt)
        if self.ack_now:
            return self._out_seg(now, buf, self.snd_max, 0, T.ACK)
        if self.rto_deadline < 0 and self.snd_max > self.snd_una:
            # whatever could not be sent (window, SACKed at SND.UNA, ...), data in
            # flight always has a retransmission timer: no connection waits for ever
            self.rto_deadline = tadd(now, self.rtt.rto)
        return 0

    def _next_hole(self):
        h = self.sb.next_hole(self.snd_una, self.rx_hi)
        if h >= 0:
            self.rexmit_at = h
            self.rexmit = True

    def _data_len_at(self, seq):
        """Length of a retransmission starting at seq: to the end of the original
        segment (never past what was sent) and never more than one MSS; 0 when no
        segment in flight holds seq (e.g. a fast retransmit was armed and a full ACK
        came in the same batch, or only a FIN is left)."""
        e = self.sb.end_after(seq)
        if e < 0:
            return 0
        if e > self.snd_max:
            e = self.snd_max
        n = e - seq
        mss = self.mss - self._opt_room(seq)
        if n > mss:
            n = mss
        return n

    def _send_room(self, nxt, avail, w2):
        """Bytes of new data (avail) a segment at nxt may carry now: MSS, congestion
        window, the peer's window and w2 (a window above TCP's), SWS avoidance."""
        mss = self.mss - self._opt_room(nxt)
        if self.sb.n >= SEG_SLOTS:
            return 0
        n = avail
        if n > mss:
            n = mss
        wnd = self.snd_right - nxt
        if w2 < wnd:
            wnd = w2
        cw = self.snd_una + self.cc.cwnd + self.cc.limited() - nxt
        if cw < wnd:
            wnd = cw
        if self.force_one and self.snd_max == self.snd_una:
            self.force_one = False
            return 1 if n > 0 else 0
        self.force_one = False
        if n > wnd:
            # SWS avoidance: only a full segment, or everything in flight acked
            if wnd >= mss or (wnd > 0 and self.snd_max == self.snd_una):
                n = wnd
            else:
                return 0
        return n

    def _opt_room(self, seq):
        """Option bytes a data segment at seq will carry (for the payload size)."""
        return 12 if self.ts_ok else 0

    def _out_syn(self, now, buf):
        o = _OPT
        o += T.put_mss(buf, o, self.my_mss)
        if self.client or self.ws_ok:
            o += T.put_nop(buf, o)
            o += T.put_wscale(buf, o, self.rcv_wscale)
        if self.client or self.sack_ok:
            o += T.put_nops(buf, o, 2)
            o += T.put_sackp(buf, o)
        if self.client or self.ts_ok:
            o += T.put_nops(buf, o, 2)
            self._ts_at(now)
            if self.client:
                o += T.put_ts_hh(buf, o, self.ts_h, self.ts_l, 0, 0)
            else:
                o += T.put_ts_hh(buf, o, self.ts_h, self.ts_l, self.tsr_h, self.tsr_l)
        o = self._syn_opts(buf, o)
        flags = T.SYN if self.client else (T.SYN | T.ACK)
        self.syn_sent = True
        if self.snd_max < 1:
            self.snd_max = 1
        self.snd_nxt = 1
        if self.tries == 0:
            self.rtt_seq = 1
            self.rtt_time = now
        else:
            self.rtt_seq = -1
        self.rto_deadline = tadd(now, self.rtt.rto)
        wnd = self._rcv_window()
        if wnd > 0xFFFF:
            wnd = 0xFFFF
        self.rcv_adv = self.rcv_nxt + wnd
        self.adv_wnd = wnd
        return self._finish(buf, o, 0, flags, 0, wnd)

    def _out_fin(self, now, buf, seq):
        self.fin_seq = seq
        self.fin_sent = True
        self.fin_acked = False
        st = self.state
        if st == ESTABLISHED:
            self.state = FIN_WAIT_1
        elif st == CLOSE_WAIT:
            self.state = LAST_ACK
        return self._out_seg(now, buf, seq, 0, T.ACK | T.FIN)

    def _out_rst(self, buf):
        self.rst_pending = False
        o = self._rst_out(buf, _OPT)
        self.ctr[C.TcpOutRsts] += 1
        n = self._finish(buf, o, self.snd_max, T.RST | T.ACK, 0, 0)   # (as Linux: SND.NXT is its snd_max)
        self._to_closed()
        return n

    def _out_seg(self, now, buf, seq, n, flags, dsn=0):
        """A segment in a synchronized state: n payload bytes from seq (relative) carrying
        the bytes at stream position dsn (relative).

        Segments without data or FIN go out with seq = SND.MAX, the highest sequence
        sent (Linux's snd_nxt): after an RTO rewound snd_nxt, a pure ACK carrying
        it would start below the peer's RCV.WUP and be dropped with its ACK field."""
        o = _OPT
        if self.ts_ok:
            o += T.put_nops(buf, o, 2)
            self._ts_at(now)
            o += T.put_ts_hh(buf, o, self.ts_h, self.ts_l, self.tsr_h, self.tsr_l)
        o = self._seg_opts(buf, o, seq, n, flags, dsn, now)
        if n == 0 and self.sack_ok and self.ooo.n and not (flags & T.FIN):
            room = (_OPT + 40 - o - 4) >> 3
            k = self.ooo.n
            if k > room:
                k = room
            if k > 0:
                o += T.put_nops(buf, o, 2)
                buf[o] = T.OPT_SACK
                buf[o + 1] = 2 + 8 * k
                o += 2
                r = self.rcv_nxt
                ooo = self.ooo
                for i in range(k):       # edges = IRS + relative, written from halves
                    T.put_seq(buf, o, self.irs_h, self.irs_l, r + ooo.start[i])
                    T.put_seq(buf, o + 4, self.irs_h, self.irs_l, r + ooo.end[i])
                    o += 8
        if n > 0:
            end = seq + n
            if seq >= self.snd_max:
                self.tx_delta = dsn - seq
                self.sb.push(end, self.tx_delta)
            if end > self.snd_max:
                if self.rtt_seq < 0 and seq >= self.snd_max:
                    self.rtt_seq = end
                    self.rtt_time = now
                self.snd_max = end
            elif self.rtt_seq >= 0 and seq < self.rtt_seq:
                self.rtt_seq = -1      # Karn: no sample from retransmitted data
            self.snd_nxt = end
            x = self.tx_b + n
            if x >= MIB:
                self.tx_mib += 1
                x -= MIB
            self.tx_b = x
            if self.rto_deadline < 0:
                t = self.rtt.rto
                if self.snd_wnd == 0 and self.persist_backoff:
                    t = t << self.persist_backoff     # a zero-window probe: persist backoff
                    if t > RTO_MAX:
                        t = RTO_MAX
                self.rto_deadline = tadd(now, t)
            flags |= self._sent(seq, n, dsn)
        if flags & T.FIN:
            e = seq + 1
            if e > self.snd_max:
                self.snd_max = e
            self.snd_nxt = e
            if self.rto_deadline < 0:
                self.rto_deadline = tadd(now, self.rtt.rto)
        w = self._rcv_window() >> self.rcv_wscale
        if w > 0xFFFF:
            w = 0xFFFF
        wnd = w << self.rcv_wscale
        adv = self.rcv_nxt + wnd
        if adv > self.rcv_adv:
            self.rcv_adv = adv
        self.adv_wnd = wnd
        self.rcv_wup = self.rcv_nxt
        self.ack_now = self.tx_again
        self.tx_again = False
        if n == 0 and self.dupacks_owed:
            self.dupacks_owed -= 1
            self.ack_now = True
        self.unacked_segs = 0
        self.ack_deadline = -1
        psum = self.tx_psum
        self.tx_psum = -1
        return self._finish(buf, o, seq, flags, n, w, psum)

    def _template(self):
        """The 40-byte IPv4 + TCP header of this subflow with the constant fields
        filled, and the constant parts of both checksums (built once)."""
        h = bytearray(40)
        la = self.laddr
        ra = self.raddr
        h[0] = 0x45
        h[6] = 0x40             # DF
        h[8] = 64               # TTL
        h[9] = 6
        for i in range(4):
            h[12 + i] = la[i]
            h[16 + i] = ra[i]
        h[20] = self.lport >> 8
        h[21] = self.lport & 0xFF
        h[22] = self.rport >> 8
        h[23] = self.rport & 0xFF
        a = ((la[0] << 8) | la[1]) + ((la[2] << 8) | la[3]) + ((ra[0] << 8) | ra[1]) \
            + ((ra[2] << 8) | ra[3])
        self.ip_sum0 = 0x4500 + 0x4000 + 0x4006 + a
        self.ps0 = a + 6
        self.hdr = h

    def _finish(self, buf, o, seq, flags, n, w, psum=-1):
        """TCP + IP headers and checksums around options buf[40:o] and n payload bytes.

        The headers come from the subflow's template; only the variable fields
        are written. psum >= 0: the payload's sum, already computed (DSS checksum)."""
        tcp_len = o - 20 + n
        tot = tcp_len + 20
        if self.hdr is None:
            self._template()
        ringbuf.copy(buf, 0, self.hdr, 0, 40)
        buf[2] = tot >> 8
        buf[3] = tot & 0xFF
        st = self.stack
        ident = (st.ident + 1) & 0xFFFF
        st.ident = ident
        buf[4] = ident >> 8
        buf[5] = ident & 0xFF
        x = self.ip_sum0 + tot + ident
        x = (x & 0xFFFF) + (x >> 16)
        x = ~((x & 0xFFFF) + (x >> 16)) & 0xFFFF
        buf[10] = x >> 8
        buf[11] = x & 0xFF
        # sequence numbers from ISS/IRS halves (no big ints); the template's ack is 0
        T.put_seq(buf, 24, self.iss_h, self.iss_l, seq)
        if flags & T.ACK:
            T.put_seq(buf, 28, self.irs_h, self.irs_l, self.rcv_nxt)
        buf[32] = (o - 20) << 2
        buf[33] = flags
        buf[34] = w >> 8
        buf[35] = w & 0xFF
        if psum >= 0:
            x = checksum.ones_sum(buf, 20, o, self.ps0 + tcp_len + psum)
        else:
            x = checksum.ones_sum(buf, 20, o + n, self.ps0 + tcp_len)
        x = ~x & 0xFFFF
        buf[36] = x >> 8
        buf[37] = x & 0xFF
        self.ctr[C.TcpOutSegs] += 1
        return tot
