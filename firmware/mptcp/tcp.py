"""One subflow's TCP (RFC 9293) carrying MPTCP v1 options (RFC 8684).

Sequence numbers are relative to ISS/IRS (SYN = 0, first data byte = 1) and
are turned into 32-bit wire values only when a segment is read or written.
The subflow handles the TCP state machine, retransmission (RFC 6298 RTO with
Karn and backoff, fast retransmit + NewReno from mptcp.cc), delayed ACKs, the
persist timer, RFC 5961 challenge ACKs and TIME-WAIT; everything about data
sequence numbers is delegated to its Connection (mptcp.connection).

Output is pulled: `output(now, buf)` writes at most one IPv4 packet into buf.
"""
from mptcp.compat import const
from mptcp import tcpwire as T
from mptcp import mpopts as MP
from mptcp import ipv4
from mptcp import checksum
from mptcp import ringbuf
from mptcp import counters as C
from mptcp.cc import NewReno, Scoreboard, RttEstimator, RTO_MAX
from mptcp.connection import M64
from mptcp import crypto
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
# IDSN limbs, DSS SSN offset) grows by as much. A multiple of 2**16: only high halves move.
REBASE_AT = const(0x20000000)
REBASE_BY = const(0x10000000)
MIB = const(0x100000)      # byte statistics are kept as MiB + bytes (small ints for ever)
OOW_RATE_MS = const(500)   # out-of-window ACK answers, like net.ipv4.tcp_invalid_ratelimit
STALE_RTOS = const(4)      # RTOs in a row that make a subflow stale (Linux's stale_loss_cnt)


class Subflow:
    def __init__(self, conn, stack, ifindex, laddr, raddr, lport, rport, iss, mss, client):
        self.conn = conn
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
        # to the relative SSN written in / read from a DSS
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
        self.oow_time = -1         # when we last answered an out-of-window pure ACK
        self.adv_data = 0          # data-level right edge last advertised (relative DSN)
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
        self.fastclose = False
        self.cc = NewReno(DEFAULT_MSS)
        self.last_wnd = -1
        # stats (Subflow API)
        self.tx_mib = 0            # bytes sent/received = mib * MIB + b (see bytes_tx)
        self.tx_b = 0
        self.rx_mib = 0
        self.rx_b = 0
        self.retrans = 0
        # current receive mapping (relative): used for segments without a DSS
        self.map_ssn = 0
        self.map_dsn = 0
        self.map_len = 0
        self.ooo = None            # subflow-level out-of-order tracking (set by stack)
        # ends of the segments in flight: a retransmission re-sends exactly one
        # of them, so its DSS mapping (and checksum) is the original one
        self.sb = Scoreboard(SEG_SLOTS)
        self.sack_ok = False       # both SYNs carried SACK_PERM: we send SACK blocks
        self.dupacks_owed = 0      # one immediate ACK per out-of-order segment
        self.ws_ok = False         # the peer's SYN carried a window scale
        self.ts_ok = False         # RFC 7323 timestamps on every segment
        self.tsr_h = 0             # TS.Recent (RFC 7323) as 16-bit halves
        self.tsr_l = 0
        self.ts_h = 0              # our TS clock (ms, 32 bits) as 16-bit halves ...
        self.ts_l = 0
        self.ts_now = 0            # ... at this tick
        # multipath
        self.tx_delta = 0          # DSN - seq of the last segment sent (mapping of new data)
        self.released = False      # its data was reinjected: it no longer holds the send ring
        self.stale = False         # STALE_RTOS RTOs without progress
        self.link_up = True
        self.blocked = False       # its link's transmit queue is full (Stack.set_blocked)
        self.join = False          # an MP_JOIN subflow (not the MP_CAPABLE one)
        self.join_acked = True     # MP_JOIN initiator: the third ACK was acknowledged
        self.addr_id = 0           # our address id on this subflow
        self.peer_addr_id = 0
        self.backup = False        # we asked the peer to use it as backup (B flag)
        self.peer_backup = False   # the peer asked us to (its B flag / MP_PRIO)
        self.lnonce = None
        self.rnonce = None
        self.jhmac = None          # MP_JOIN HMAC this side sends (SYN/ACK: 8, third ACK: 20)
        self.rst_reason = -1       # MP_TCPRST reason on our next RST (-1: none)
        self.sub_close = False     # close this subflow alone (FIN) when its data is out
        self.prio_tx = False       # send MP_PRIO with our backup flag on the next pure ACK

    # ------------------------------------------------------------ helpers
    @property
    def bytes_tx(self):
        """Payload bytes sent (retransmissions included); may be a big int: not for the data path."""
        return self.tx_mib * MIB + self.tx_b

    @property
    def bytes_rx(self):
        return self.rx_mib * MIB + self.rx_b

    def _rebase_snd(self, by):
        """Our sequence space (this subflow's and the connection's data-level send side,
        which moves with it) drops by `by` (a multiple of 2**16; negative in tests to jump
        ahead). Wire values do not change."""
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
        c = self.conn
        if c.inf_seq >= 0 and c.sf is self:
            x = c.inf_seq - by
            c.inf_seq = x if x >= 0 else -1

    def _rebase_rcv(self, by):
        """The peer's sequence space on this subflow drops by `by` (see _rebase_snd)."""
        h = by >> 16
        self.irs_h = (self.irs_h + h) & 0xFFFF
        self.roff_h = (self.roff_h + h) & 0xFFFF
        self.rcv_nxt -= by
        self.rcv_adv -= by
        self.rcv_wup -= by
        x = self.map_ssn - by
        if x < 0:
            self.map_len = 0                    # a mapping that far behind is stale
            x = 0
        self.map_ssn = x
        self.conn.rebase_sf_rcv(self, by)

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
        if not self.join:
            self.conn.wnd_end = 1 + seg.window

    def state_name(self):
        return STATE_NAMES[self.state]

    # ------------------------------------------------------------ multipath
    def hold(self):
        """DSN of the oldest byte this subflow may still retransmit, -1 if none."""
        if self.released or self.state == CLOSED or self.snd_una >= self.snd_max \
                or self.sb.n == 0:
            return -1           # (no data in flight: a SYN or a FIN holds nothing)
        return self.snd_una + self.sb.delta_at(self.snd_una, self.tx_delta)

    def can_carry(self):
        """Established, joined, on a live link: the scheduler may give it data."""
        st = self.state
        return (st == ESTABLISHED or st == CLOSE_WAIT) and self.join_acked and self.link_up \
            and not self.rst_pending and not self.fin_sent

    def has_room(self):
        """Congestion window (with limited transmit) and scoreboard have room for a new
        segment. (The send window is the connection's, the same for every subflow.)"""
        return self.snd_max - self.snd_una < self.cc.cwnd + self.cc.limited() \
            and self.sb.n < SEG_SLOTS and not self.blocked

    def lost(self, now, send_rst):
        """This subflow is gone (link down, reset, too many RTOs); the connection is not:
        its data goes to the other subflows."""
        c = self.conn
        self.ctr[C.RmSubflow] += 1
        c.reinject(self)
        self._to_closed()
        self.rst_pending = send_rst
        c.subflow_gone(self, now)

    def _join_hmac(self, n):
        """Our MP_JOIN HMAC (RFC 8684 3.2): HMAC(our key || peer key, our nonce || its nonce)."""
        c = self.conn
        return crypto.join_hmac(c.local_key, c.peer_key, self.lnonce, self.rnonce)[:n]

    def _peer_join_hmac(self, n):
        c = self.conn
        return crypto.join_hmac(c.peer_key, c.local_key, self.rnonce, self.lnonce)[:n]

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

    def window_opened(self, grew):
        """The app read data: send a window update when it matters (SWS avoidance)."""
        if self.fin_rcvd or self.state >= TIME_WAIT:
            return      # the peer has ended its stream: a window update would only draw a RST
        c = self.conn
        grow = c.rcv_nxt + c.rcv_window() - self.adv_data
        if grow >= 2 * self.mss or grow >= (c.rcv.size >> 1):
            self.ack_now = True

    def abort(self):
        c = self.conn
        if self.state == CLOSED:
            return
        if c.error is None:
            c.error = "aborted"
        if self.state == SYN_SENT and not self.syn_sent:
            self._to_closed()
            return
        self.rst_pending = True
        self.fastclose = c.mptcp and c.peer_key is not None and self.state >= ESTABLISHED

    def _to_closed(self):
        self.state = CLOSED
        self.rto_deadline = -1
        self.ack_deadline = -1
        self.persist_deadline = -1
        self.tw_deadline = -1
        c = self.conn
        if c.live() is None:
            c.dfin_deadline = -1
            if c.dfin_sent and not c.dfin_acked:
                c.dfin_sent = False     # the next subflow (break-before-make) sends it again

    def _reset_by_peer(self, fatal=False):
        """A RST (fatal: with MP_FASTCLOSE, the whole connection) from the peer."""
        c = self.conn
        self.ctr[C.TcpInRsts] += 1
        if self.state == TIME_WAIT or (self.fin_rcvd and self.fin_seq >= 0
                                       and self.snd_una >= self.fin_seq) \
                or (c.mptcp and c.dfin_acked and c.fin_rcvd):
            # both streams ended and all our data was acknowledged: the peer may have
            # left TIME-WAIT before our FIN's retransmission (its ACK lost) and answers
            # it with a RST. That ends the subflow, but it is not an error (RFC 1337;
            # Linux kills TIME-WAIT; a LAST_ACK socket is already closed by its app).
            self.ctr[C.TcpRstIgnored] += 1
            self._to_closed()
            return
        if self.state >= ESTABLISHED:
            self.ctr[C.TcpEstabResets] += 1
        if not fatal and (self.join or (c.mptcp and c.peer_key is not None
                                        and self.state >= ESTABLISHED and c.error is None)):
            # a subflow reset: as Linux, the connection goes on (other subflows, or a
            # new one within close_timeout); MP_FASTCLOSE ends it (_parse_mp)
            self.lost(self.stack.now, False)
            return
        if c.error is None:
            c.error = "refused" if self.state == SYN_SENT else "reset"
        self._to_closed()
        for sf in c.subflows:
            if sf is not self and sf.state != CLOSED:
                sf.rst_pending = True

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
        c = self.conn
        if self.tries > limit:
            if self.state == SYN_SENT:
                self.ctr[C.TcpAttemptFails] += 1
            if self.join or (c.mptcp and c.peer_key is not None and self.state >= ESTABLISHED
                             and c.error is None):
                self.lost(now, self.state != SYN_SENT)
                return
            if c.error is None:
                c.error = "timeout"
            if self.state == SYN_SENT:
                self._to_closed()
            else:
                self.rst_pending = True
            return
        self.ctr[C.TcpRTOs] += 1
        if self.state == ESTABLISHED and c.mptcp and len(c.subflows) > 1:
            # a silent failure: the others take its data now, not after more backoff
            if not self.released and self.snd_max > self.snd_una and c.usable_other(self):
                c.reinject(self)
            if self.tries >= STALE_RTOS and not self.stale:
                self.stale = True
                self.ctr[C.SubflowStale] += 1
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
        if not self.join_acked:
            self.ack_now = True         # resend the MP_JOIN third ACK (RFC 8684 3.2)
            return
        flight = self.snd_max - self.snd_una
        self.cc.on_rto(flight, self.snd_max)
        self.snd_nxt = self.snd_una
        self.rtt_seq = -1
        self.rexmit = False
        self.rx_hi = self.snd_una
        if self.fin_sent and self.snd_una <= self.fin_seq:
            self.fin_sent = False

    # ------------------------------------------------------------ input
    def input(self, buf, mv, seg, now):
        """Process one validated segment addressed to this subflow."""
        st = self.state
        flags = seg.flags
        if st == CLOSED:
            return
        if st == SYN_SENT:
            self._input_syn_sent(buf, seg, now)
            return
        ctr = self.ctr
        c = self.conn
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
                if c.mptcp and dlen > 0 and seg.mp_n:
                    self._infinite_map_in(buf, seg)     # it may carry the infinite mapping
            else:
                ctr[C.TcpInErrsOutOfWindow] += 1
            self._oow_ack(now, dlen)
            return
        if wnd == 0:
            flags &= ~T.FIN        # as Linux: nothing, not even a FIN, into a zero window
        # 2. RST (RFC 5961 3.2)
        if flags & T.RST:
            if seq == self.rcv_nxt:
                self._reset_by_peer(self._rst_opts(buf, seg))
            else:
                self.stack.challenge_ack(self, now)
            return
        # 3. SYN in a synchronized state (RFC 5961 4.2)
        if flags & T.SYN:
            self.stack.challenge_ack(self, now)
            return
        if not (flags & T.ACK):
            return
        # 4. the ACK field is validated before any option acts (an MP_FASTCLOSE or
        #    DATA_ACK on a segment acknowledging unsent data is not believed)
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
        # MPTCP options of interest
        mo = self.stack.mo
        have_dss = False
        have_mpc = False
        if c.mptcp and seg.mp_n:
            r = self._parse_mp(buf, seg, mo)     # bits, not a tuple: no allocation
            have_dss = (r & 1) != 0
            have_mpc = (r & 2) != 0
            if c.error is not None and self.state == CLOSED:
                return
        # SYN_RCVD -> ESTABLISHED
        if self.state == SYN_RCVD:
            if self.join:
                if not self._join_third_ack(buf, seg):
                    return
            elif c.mptcp:
                if have_mpc and mo.skey is not None and mo.rkey is not None:
                    if mo.rkey != c.local_key:
                        ctr[C.TcpInErrsBadMptcp] += 1
                    ctr[C.MPCapableACKRX] += 1
                    self.stack.set_peer_key(c, mo.skey)
                else:
                    # the third ACK carries no MP_CAPABLE: plain TCP from now on (through
                    # fall_back: a checksum negotiated in the SYNs no longer applies)
                    c.fall_back(0, self.rcv_nxt)
                    ctr[C.MPCapableFallbackACK] += 1
            self._established(now)
            self.snd_wnd = seg.window << self.snd_wscale
            self.snd_right = ack + self.snd_wnd
        elif not self.join_acked:
            self.join_acked = True      # the peer answered our MP_JOIN third ACK
            if self.snd_max == self.snd_una:
                self.rto_deadline = -1
                self.tries = 0
        # 5. ACK processing
        if c.mptcp and have_dss and (mo.dss_flags & MP.DSS_ACK):
            self._data_ack(buf, mo)
        elif c.mptcp and self.client and not have_dss and not have_mpc and not c.dss_seen \
                and ack > self.snd_una and ack > 1:
            # our data is acked without any DSS from the peer: options are being
            # stripped; fall back to plain TCP (RFC 8684 3.7). Only the client: a server
            # that got the MP_CAPABLE third ACK is fully established (Linux's
            # check_fully_established) and one stripped ACK must not make it fall back
            # alone while the client, having seen DATA_ACKs, never does.
            c.fall_back(self._peer_delta(), self.rcv_nxt)
            ctr[C.DSSFallback] += 1
        self._process_ack(seg, ack, dlen, flags, have_dss, now)
        if self.state == CLOSED:
            return
        # 6. data
        if dlen > 0 and ESTABLISHED <= self.state <= FIN_WAIT_2:
            self._input_data(buf, mv, seg, seq, dlen, have_dss, have_mpc, mo, now)
        elif c.mptcp and have_dss and (mo.dss_flags & MP.DSS_FIN):
            self._data_fin_only(buf, mo)
        # 7. FIN
        if flags & T.FIN:
            if seq + dlen == self.rcv_nxt and not self.fin_rcvd:
                self.fin_rcvd = True
                self.rcv_nxt += 1
                self.ack_now = True
                if not c.mptcp or not c.established:
                    c.fin_rcvd = True
                elif c.peer_fin < 0:
                    if self._others_live():
                        # the peer closes this subflow only: its data goes to the others,
                        # and we close our side of it
                        c.reinject(self)
                        self.ctr[C.RmSubflow] += 1
                        self.sub_close = True
                    else:
                        # the only subflow closed without DATA_FIN: nothing more can come
                        c.fin_rcvd = True
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
        if c.rcv_nxt >= REBASE_AT:
            c.rebase_rcv(REBASE_BY)
        if c.snd_base >= REBASE_AT:
            c.rebase_snd(REBASE_BY)

    def _others_live(self):
        for sf in self.conn.subflows:
            if sf is not self and not sf.is_closed():
                return True
        return False

    def _find_join(self, buf, seg, ln, mo):
        """Parse the MP_JOIN option of length ln into mo; False if there is none."""
        for i in range(seg.mp_n):
            off = seg.mp_off[i]
            if seg.mp_len[i] == ln and buf[off + 2] >> 4 == MP.MP_JOIN:
                return MP.parse(buf, off, ln, mo) == 0
        return False

    def _join_third_ack(self, buf, seg):
        """Passive MP_JOIN: the third ACK must carry the initiator's 160-bit HMAC."""
        mo = self.stack.mo2
        if not self._find_join(buf, seg, 24, mo) or mo.hmac != self._peer_join_hmac(20):
            self.ctr[C.MPJoinAckHMacFailure] += 1
            self.rst_reason = MP.RST_MPTCP
            self.rst_pending = True
            self._to_closed()
            return False
        self.ctr[C.MPJoinAckRx] += 1
        self.ack_now = True             # the fourth ACK: the initiator may send data
        self.conn.subflow_up(self)
        return True

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

    def _infinite_map_in(self, buf, seg):
        """An old (duplicate) data segment may carry the peer's infinite mapping (RFC 8684
        3.7): the sender fell back when it sent it, so the receiver must follow even
        though the data itself is not needed."""
        mo = self.stack.mo2
        for i in range(seg.mp_n):
            off = seg.mp_off[i]
            if seg.mp_len[i] >= 4 and buf[off + 2] >> 4 == MP.DSS:
                if MP.parse_dss_fast(buf, off, seg.mp_len[i], mo) == 0:
                    self._check_infinite(buf, mo)
                return

    def _peer_ssn(self, mo):
        """The relative subflow sequence number of the mapping in `mo` (a parsed DSS)."""
        return T.rel32(mo.ssn_h, mo.ssn_l, self.roff_h, 0, self.rcv_nxt)

    def _peer_dsn(self, buf, mo):
        """The relative DSN of the mapping in `mo`: 8-byte from the packet, 4-byte from its
        halves, both against the peer's IDSN base (small ints only)."""
        c = self.conn
        if mo.dsn8:
            return MP.get_rel64(buf, mo.dsn_off, c.pidsn4)
        return T.rel32(mo.dsn_h, mo.dsn_l, c.pidsn4[2], c.pidsn4[3], c.rcv_nxt)

    def _check_infinite(self, buf, mo):
        """Fall back if `mo` (a parsed DSS) is an infinite mapping (RFC 8684 3.7)."""
        c = self.conn
        if not c.mptcp or not (mo.dss_flags & MP.DSS_MAP) or mo.dll != 0:
            return
        self.ctr[C.InfiniteMapRx] += 1
        if not c.allow_fallback:
            self._broken()              # a subflow joined once: no fallback (RFC 8684 3.7)
            return
        c.fall_back(self._peer_dsn(buf, mo) - self._peer_ssn(mo), self.rcv_nxt)

    def _broken(self):
        """The subflow's mapping is broken and the connection may not fall back: reset this
        subflow (MP_TCPRST); its data goes to the others (Linux's MAPPING_INVALID)."""
        self.rst_reason = MP.RST_MPTCP
        self.lost(self.stack.now, True)

    def _rst_opts(self, buf, seg):
        """Count the MPTCP options of a RST; True if it carries MP_FASTCLOSE with our key
        (the connection ends, not only this subflow)."""
        mo = self.stack.mo2
        fatal = False
        for i in range(seg.mp_n):
            if MP.parse(buf, seg.mp_off[i], seg.mp_len[i], mo) == 0:
                if mo.subtype == MP.MP_FASTCLOSE:
                    self.ctr[C.MPFastcloseRx] += 1
                    fatal = mo.rkey == self.conn.local_key
                elif mo.subtype == MP.MP_TCPRST:
                    self.ctr[C.MPRstRx] += 1
        return fatal

    def _parse_mp(self, buf, seg, mo):
        """Parse the MPTCP options; DSS / MP_CAPABLE land in `mo`.
        Returns bit 0: a DSS was found, bit 1: an MP_CAPABLE with keys."""
        have_dss = False
        have_mpc = False
        for i in range(seg.mp_n):
            off = seg.mp_off[i]
            ln = seg.mp_len[i]
            if ln < 3:
                continue
            st = buf[off + 2] >> 4
            if st == MP.DSS or st == MP.MP_CAPABLE:
                if have_dss or have_mpc:
                    continue
                if st == MP.DSS:
                    err = MP.parse_dss_fast(buf, off, ln, mo)
                else:
                    err = MP.parse(buf, off, ln, mo)
                if err != 0:
                    self.ctr[C.TcpInErrsBadMptcp] += 1
                    continue
                if st == MP.DSS:
                    have_dss = True
                elif ln >= 20:
                    have_mpc = True
            elif st == MP.MP_FASTCLOSE:
                mo2 = self.stack.mo2
                if MP.parse(buf, off, ln, mo2) == 0 and mo2.rkey == self.conn.local_key:
                    self.ctr[C.MPFastcloseRx] += 1
                    self._reset_by_peer(True)
                    self.rst_pending = True     # answer with a RST (RFC 8684 3.5)
                    self.fastclose = False
                    return 0
            elif st == MP.ADD_ADDR or st == MP.REMOVE_ADDR or st == MP.MP_PRIO:
                mo2 = self.stack.mo2
                if MP.parse(buf, off, ln, mo2) != 0:
                    self.ctr[C.TcpInErrsBadMptcp] += 1
                elif st == MP.ADD_ADDR:
                    self._add_addr_in(mo2)
                elif st == MP.REMOVE_ADDR:
                    self._rm_addr_in(mo2)
                else:
                    self.ctr[C.MPPrioRx] += 1
                    self.peer_backup = mo2.backup
            elif st == MP.MP_FAIL:
                if ln != 12:            # RFC 8684 3.7: kind, len 12, subtype, DSN 64
                    self.ctr[C.TcpInErrsBadMptcp] += 1
                    continue
                self.ctr[C.MPFailRx] += 1
                self.conn.on_mp_fail()
        return (1 if have_dss else 0) | (2 if have_mpc else 0)

    def _add_addr_in(self, mo):
        """The peer announces an address (or echoes ours): HMAC checked (RFC 8684 3.4.1),
        remembered, echoed, and joined by the path manager."""
        c = self.conn
        ctr = self.ctr
        if mo.echo:
            ctr[C.EchoAdd] += 1
            c.addrs.echoed(mo.addr_id)
            return
        if mo.ipver != 4 or c.peer_key is None or \
                mo.hmac != crypto.add_addr_hmac(c.peer_key, c.local_key, mo.addr_id, mo.addr, mo.port):
            ctr[C.AddAddrDrop] += 1
            return
        if c.addrs.add_remote(mo.addr_id, mo.addr, mo.port) < 0:
            ctr[C.AddAddrDrop] += 1
            return
        ctr[C.AddAddr] += 1
        self.ack_now = True                 # the echo
        self.stack.pm.addr_added(c, self.stack.now)

    def _rm_addr_in(self, mo):
        """The peer withdraws addresses: their subflows close, their data goes elsewhere."""
        c = self.conn
        now = self.stack.now
        ids = mo.ids
        for k in range(len(ids)):
            self.ctr[C.RmAddr] += 1
            c.addrs.remove_remote(ids[k])
            for sf in c.subflows:
                if sf.peer_addr_id == ids[k] and sf.state != CLOSED and sf.join:
                    sf.lost(now, True)

    def set_backup(self, flag):
        """Our B flag for this subflow changes: MP_PRIO tells the peer (RFC 8684 3.3.8)."""
        if self.backup != flag:
            self.backup = flag
            self.prio_tx = True
            self.ack_now = True

    def _data_ack(self, buf, mo):
        c = self.conn
        if mo.data_ack8:
            rel = MP.get_rel64(buf, mo.data_ack_off, c.lidsn4)
        else:
            rel = T.rel32(mo.data_ack_h, mo.data_ack_l, c.lidsn4[2], c.lidsn4[3], c.data_ack)
        if not c.confirmed:
            c.confirmed = True
            self.stack.pm.confirmed(c, self.stack.now)
        c.dss_seen = True
        c.on_data_ack(rel, self.snd_una)

    def _process_ack(self, seg, ack, dlen, flags, have_dss, now):
        c = self.conn
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
                    r = x & 0xFFFF
                    if r < RTO_MAX:
                        self.rtt.sample(r)
                self.rtt_seq = -1
            elif self.rtt_seq >= 0 and ack >= self.rtt_seq:
                self.rtt.sample((now - self.rtt_time) & TMASK)
                self.rtt_seq = -1
            self.tries = 0
            if self.stale:
                self.stale = False
                ctr[C.SubflowRecover] += 1
            # (the RTO is recomputed only from an RTT sample: Karn keeps the backoff)
            if self.snd_una >= self.snd_max:
                self.rto_deadline = -1
            else:
                self.rto_deadline = tadd(now, self.rtt.rto)
            flight = self.snd_max - self.snd_una
            c.release()
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
                    if c.app_closed:    # like tcp_fin_timeout: only for a closed socket,
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
            if c.mptcp and have_dss:
                c.wnd_end = c.data_ack + self.snd_wnd   # MPTCP: relative to DATA_ACK
            elif not self.join:
                c.wnd_end = ack + self.sb.delta_at(ack, self.tx_delta) + self.snd_wnd
            if self.snd_wnd > 0:
                self.persist_deadline = -1

    def _established(self, now):
        c = self.conn
        self.state = ESTABLISHED
        self.rtt.fallback()             # no RTT sample from the handshake (RFC 6298 5.7)
        self.tries = 0
        self.rto_deadline = -1
        if not c.established:
            c.established = True
            if not self.client:
                self.stack.conn_ready(c)

    def _time_wait(self, now):
        self.state = TIME_WAIT
        self.rto_deadline = -1
        self.persist_deadline = -1
        self.tw_deadline = tadd(now, TIME_WAIT_MS)

    def _input_syn_sent(self, buf, seg, now):
        flags = seg.flags
        c = self.conn
        ctr = self.ctr
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
        if self.join:
            mo = self.stack.mo
            ok = self._find_join(buf, seg, 16, mo)
            if ok:
                self.rnonce = mo.nonce
                ok = mo.hmac == self._peer_join_hmac(8)
                if not ok:
                    ctr[C.MPJoinSynAckHMacFailure] += 1
            if not ok:
                # no MP_JOIN or a wrong HMAC: this subflow cannot be (RFC 8684 3.2)
                self.rst_reason = MP.RST_MPTCP
                self.lost(now, True)
                return
            ctr[C.MPJoinSynAckRx] += 1
            self.peer_addr_id = mo.addr_id
            self.peer_backup = mo.backup
            self.jhmac = self._join_hmac(20)
            self.join_acked = False
            self._established(now)
            self.ack_now = True
            c.subflow_up(self)
            return
        if c.mptcp:
            mo = self.stack.mo
            got = False
            for i in range(seg.mp_n):
                off = seg.mp_off[i]
                if seg.mp_len[i] == 12 and buf[off + 2] >> 4 == MP.MP_CAPABLE:
                    if MP.parse(buf, off, 12, mo) == 0 and mo.version == 1 and (mo.flags & MP.CAP_H):
                        got = True
                    break
            if got:
                ctr[C.MPCapableSYNACKRX] += 1
                self.stack.set_peer_key(c, mo.skey)
                c.csum = c.want_csum or (mo.flags & MP.CAP_A) != 0
            else:
                c.mptcp = False
                ctr[C.MPCapableFallbackSYNACK] += 1
        self._established(now)
        self.ack_now = True

    def _input_data(self, buf, mv, seg, seq, dlen, have_dss, have_mpc, mo, now):
        c = self.conn
        ctr = self.ctr
        s = seg.data_off
        # trim what we already have at the subflow level
        if seq < self.rcv_nxt:
            k = self.rcv_nxt - seq
            if k >= dlen:
                self.ack_now = True
                if have_dss:
                    self._check_infinite(buf, mo)   # a duplicate may bring the fallback
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
        # find the mapping of this data (relative ssn -> relative dsn)
        if c.mptcp:
            m_ssn = 0
            m_dsn = 0
            m_len = 0
            m_dll = 0
            m_csum = 0
            fin = False
            if have_mpc:
                if c.peer_key is None and mo.skey is not None:
                    self.stack.set_peer_key(c, mo.skey)
                if mo.dll is not None:
                    m_ssn = 1
                    m_dsn = 1
                    m_len = mo.dll
                    m_dll = mo.dll
                    m_csum = mo.csum if mo.csum is not None else 0
                    have_dss = True
                if not c.confirmed and not self.client:
                    c.confirmed = True
            elif have_dss and (mo.dss_flags & MP.DSS_MAP):
                m_ssn = self._peer_ssn(mo)
                m_dsn = self._peer_dsn(buf, mo)
                m_dll = mo.dll
                m_len = mo.dll
                m_csum = mo.csum if mo.csum is not None else 0
                if mo.dss_flags & MP.DSS_FIN:
                    fin = True
                    m_len -= 1
                if m_dll == 0:
                    self._check_infinite(buf, mo)
                    if self.state == CLOSED:
                        return          # (reset: no fallback after a join)
            else:
                have_dss = False
            if c.mptcp:
                if have_dss:
                    if c.csum and mo.csum is None and not have_mpc:
                        ctr[C.DataCsumErr] += 1
                        return
                    if seq < m_ssn or seq + dlen > m_ssn + m_len:
                        ctr[C.DSSNotMatching] += 1
                        return
                    c.peer_map_seen = True
                    self.map_ssn = m_ssn
                    self.map_dsn = m_dsn
                    self.map_len = m_len
                    if fin:
                        c.peer_fin = m_dsn + m_len
                    if c.csum and not c.add_pending_map(self, m_ssn, m_dsn, m_len, m_dll, m_csum,
                                                       m_ssn <= self.rcv_nxt):
                        ctr[C.TcpOFODrop] += 1
                        return
                elif not c.peer_map_seen:
                    # first data without a mapping: fall back (RFC 8684 3.7)
                    c.fall_back(0, self.rcv_nxt)
                    ctr[C.DSSFallback] += 1
                elif self.map_ssn <= seq and seq + dlen <= self.map_ssn + self.map_len:
                    m_ssn = self.map_ssn
                    m_dsn = self.map_dsn
                elif seq == self.rcv_nxt and not c.allow_fallback:
                    ctr[C.DSSNoMatchTCP] += 1
                    self._broken()
                    return
                elif seq == self.rcv_nxt:
                    # in-order data outside every mapping: the peer fell back (e.g. its
                    # data was acked without a DATA_ACK, RFC 8684 3.7). As Linux on a
                    # single subflow (MAPPING_INVALID -> fallback), follow it: the data
                    # continues the data stream where it stands
                    ctr[C.DSSNoMatchTCP] += 1
                    ctr[C.DSSFallback] += 1
                    c.fall_back(0, seq)
                    c.map_delta = c.rcv_nxt - seq
                else:
                    ctr[C.DSSNoMatchTCP] += 1   # out of order: wait until it is in order
                    return
        if c.mptcp:
            dsn = m_dsn + (seq - m_ssn)
        else:
            dsn = seq + c.map_delta
        if c.app_closed and dsn + dlen > c.rcv_nxt:
            # new data after close(): nobody will read it; reset as Linux does (tcp_reset
            # on data after RCV_SHUTDOWN) rather than let the peer believe it was delivered.
            # (Data the connection already has, reinjected on a new subflow, is no news.)
            self.abort()
            return
        # the receive ring bounds the data level (window relative to DATA_ACK)
        lim = c.rcv_read + c.rcv.size - dsn
        if dlen > lim:
            dlen = lim
            if dlen <= 0:
                self.ack_now = True
                return
        # subflow-level in-order tracking
        off = seq - self.rcv_nxt
        if off > 0 and not self.ooo.can_add(off, dlen):
            ctr[C.TcpOFODrop] += 1
            self.ack_now = True
            return
        if not c.place(dsn, mv, s, dlen):
            self.ack_now = True
            return
        x = self.rx_b + dlen
        if x >= MIB:
            self.rx_mib += 1
            x -= MIB
        self.rx_b = x
        if off == 0:
            ooo = self.ooo
            if ooo.n:
                ooo.shift(dlen)
                adv = dlen + ooo.take_front()
            else:
                adv = dlen
            self.rcv_nxt += adv
            if adv > dlen and not c.mptcp:
                # fallen back: the subflow's out-of-order data (maybe checksummed and
                # never delivered) becomes data-level data as the hole closes
                c.deliver(seq + dlen + c.map_delta, adv - dlen)
            if ooo.n or adv > dlen:
                self.ack_now = True       # a hole was filled: ACK at once
            else:
                self.unacked_segs += 1
                if self.unacked_segs >= 2:
                    self.ack_now = True
                elif self.ack_deadline < 0:
                    self.ack_deadline = tadd(now, DELACK_MS)
            if c.csum and c.mptcp:
                c.verify_maps(self, self.rcv_nxt, now)
                if c.fail_tx:
                    self.ack_now = True
        else:
            self.ooo.add(off, dlen)
            ctr[C.TcpOFOQueue] += 1
            if self.ack_now and self.dupacks_owed < MAX_DUPACKS_OWED:
                self.dupacks_owed += 1    # one duplicate ACK per segment
            self.ack_now = True
        if c.peer_fin >= 0:
            c.check_fin()
            if c.fin_rcvd:
                self.ack_now = True

    def _data_fin_only(self, buf, mo):
        c = self.conn
        if not (mo.dss_flags & MP.DSS_MAP) or mo.dll != 1:
            return
        d = self._peer_dsn(buf, mo)
        if c.peer_fin < 0 and d >= c.rcv_nxt - 1:
            c.peer_fin = d
        c.check_fin()
        self.ack_now = True

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
        c = self.conn
        if st == SYN_SENT and self.join and (c.error is not None or (c.dfin_acked and c.fin_rcvd)):
            self._to_closed()       # a join still trying when the connection is over: drop it
            return 0
        if st == SYN_SENT or st == SYN_RCVD:
            if not self.syn_sent:
                return self._out_syn(now, buf)
            if st == SYN_SENT:
                return 0
        c = self.conn
        if st == FIN_WAIT_2 and self.tw_deadline < 0 and c.app_closed:
            self.tw_deadline = tadd(now, FIN_WAIT_2_MS)     # closed after the half-close
        if st == TIME_WAIT:
            if self.ack_now:
                return self._out_seg(now, buf, self.snd_max, 0, T.ACK)
            return 0
        if st == SYN_RCVD:
            if self.ack_now:
                self.ack_now = False
            return 0
        if not self.join_acked:
            # MP_JOIN initiator: only the third ACK until the peer acknowledges it
            if self.ack_now:
                if self.rto_deadline < 0:
                    self.rto_deadline = tadd(now, self.rtt.rto)
                return self._out_seg(now, buf, self.snd_max, 0, T.ACK)
            return 0
        if c.fail_tx and c.mptcp and c.established and (c.confirmed or not self.client):
            return self._out_seg(now, buf, self.snd_max, 0, T.ACK)    # carries MP_FAIL
        if (self.prio_tx or c.addrs.pending()) and c.mptcp and c.established \
                and (c.confirmed or not self.client) and self.can_carry():
            # signalling goes on a pure ACK of its own (data segments have no room for it)
            return self._out_seg(now, buf, self.snd_max, 0, T.ACK)
        # retransmission at snd_una (fast retransmit / partial ACK)
        if self.rexmit:
            self.rexmit = False
            at = self.rexmit_at
            if at < self.snd_una:
                at = self.snd_una
            n = self._data_len_at(at)
            if n > 0:
                dsn = at + self.sb.delta_at(at, self.tx_delta)
                if dsn < c.snd_base:
                    return self._give_up(now, buf)
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
            # go-back-N after an RTO: the original segments with their mappings
            n = self._data_len_at(nxt)
            if n > 0:
                wnd = self.snd_right - nxt
                cw = self.snd_una + self.cc.cwnd - nxt
                if cw < wnd:
                    wnd = cw
                if n <= wnd or nxt == self.snd_una:
                    dsn = nxt + self.sb.delta_at(nxt, self.tx_delta)
                    if dsn < c.snd_base:
                        return self._give_up(now, buf)
                    self.retrans += 1
                    self.ctr[C.TcpRetransSegs] += 1
                    return self._out_seg(now, buf, nxt, n, T.ACK, dsn)
        elif self.can_carry() and (not c.mptcp or not self.client or c.confirmed
                                   or self.snd_max <= 1):
            # new data (an MP_CAPABLE client sends one segment until the peer confirms)
            avail = c.chunk(self)
            if avail > 0:
                dsn = c.ch_dsn
                if len(c.subflows) == 1 or c.sched is None or c.sched.allows(c, self):
                    n = self._send_room(nxt, dsn, avail)
                    if n > 0:
                        c.took(dsn, n, self)
                        return self._out_seg(now, buf, nxt, n, T.ACK, dsn)
                    if self.snd_max == self.snd_una and self.persist_deadline < 0 \
                            and (self.snd_right <= nxt or c.wnd_end <= dsn):
                        b = self.persist_backoff
                        t = self.rtt.rto << b
                        if t > RTO_MAX:
                            t = RTO_MAX
                        self.persist_deadline = tadd(now, t)
                        if b < 6:
                            self.persist_backoff = b + 1
        # FIN (fallen back: after the data; MPTCP: when both DATA_FINs are done)
        if not self.fin_sent and nxt == self.snd_max and st != LAST_ACK \
                and st != FIN_WAIT_2 and st != CLOSING:
            if self.sub_close:
                return self._out_fin(now, buf, nxt)
            if c.fin_queued and c.all_handed_out() and (not c.mptcp or (c.dfin_acked and c.fin_rcvd)):
                return self._out_fin(now, buf, nxt)
        if not self.fin_sent and self.fin_seq >= 0 and nxt == self.fin_seq:
            return self._out_fin(now, buf, self.fin_seq)
        if c.mptcp and c.fin_queued and not c.dfin_sent and c.all_handed_out() and c.established \
                and self.can_carry():
            c.dfin_sent = True
            b = c.dfin_tries if c.dfin_tries < 8 else 8
            t = self.rtt.rto << b
            c.dfin_deadline = tadd(now, (t if t < RTO_MAX else RTO_MAX))
            self.ctr[C.DataFinTx] += 1
            return self._out_seg(now, buf, self.snd_max, 0, T.ACK)
        if self.ack_now:
            return self._out_seg(now, buf, self.snd_max, 0, T.ACK)
        if self.rto_deadline < 0 and self.snd_max > self.snd_una:
            # whatever could not be sent (window, SACKed at SND.UNA, ...), data in
            # flight always has a retransmission timer: no connection waits for ever
            self.rto_deadline = tadd(now, self.rtt.rto)
        return 0

    def _give_up(self, now, buf):
        """A retransmission needs data the ring no longer holds (it was reinjected and
        DATA_ACKed on another subflow): this subflow cannot go on; reset it alone."""
        self.rst_reason = MP.RST_UNSPEC
        self.lost(now, True)
        return self._out_rst(buf)

    def _next_hole(self):
        h = self.sb.next_hole(self.snd_una, self.rx_hi)
        if h >= 0:
            self.rexmit_at = h
            self.rexmit = True

    def _peer_delta(self):
        """DSN - SSN of the peer's data (its last mapping), for a fallback we start."""
        return self.map_dsn - self.map_ssn if self.conn.peer_map_seen else 0

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
        mss = self.mss - self._mp_room(seq)
        if n > mss:
            n = mss
        return n

    def _send_room(self, nxt, dsn, avail):
        """Bytes of new data (avail from DSN dsn) a segment at nxt may carry now: MSS,
        congestion window, the subflow's and the connection's send windows, SWS."""
        c = self.conn
        mss = self.mss - self._mp_room(nxt)
        if self.sb.n >= SEG_SLOTS:
            return 0
        n = avail
        if n > mss:
            n = mss
        wnd = self.snd_right - nxt
        w2 = c.wnd_end - dsn
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

    def _mp_room(self, seq):
        """Option bytes a data segment at seq will carry (for the payload size)."""
        c = self.conn
        t = 12 if self.ts_ok else 0
        if not c.established or not c.mptcp:
            return t
        # 28: DSS with 8-byte DATA_ACK and DSN and a checksum; the first segment
        # (MP_CAPABLE+data, 24) is sized the same so that its retransmission
        # with a DSS still fits the MSS
        return t + 28

    def _out_syn(self, now, buf):
        c = self.conn
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
        if self.join:
            if self.client:
                o += MP.put_mp_join_syn(buf, o, self.addr_id, c.peer_token, self.lnonce,
                                        self.backup)
                self.ctr[C.MPJoinSynTx] += 1
            else:
                o += MP.put_mp_join_synack(buf, o, self.addr_id, self.jhmac, self.lnonce,
                                           self.backup)
        elif c.mptcp:
            if self.client:
                f = MP.CAP_H | (MP.CAP_A if c.want_csum else 0)
                o += MP.put_mp_capable(buf, o, f)
                self.ctr[C.MPCapableSYNTX] += 1
            else:
                f = MP.CAP_H | (MP.CAP_A if c.csum else 0)
                o += MP.put_mp_capable(buf, o, f, c.local_key)
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
        wnd = c.rcv_window()
        if wnd > 0xFFFF:
            wnd = 0xFFFF
        self.rcv_adv = self.rcv_nxt + wnd
        self.adv_data = c.rcv_nxt + wnd
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
        c = self.conn
        o = _OPT
        if self.fastclose and c.peer_key is not None:
            o += MP.put_mp_fastclose(buf, o, c.peer_key)
            self.ctr[C.MPFastcloseTx] += 1
        elif self.rst_reason >= 0:
            o += MP.put_mp_tcprst(buf, o, self.rst_reason)
            self.ctr[C.MPRstTx] += 1
        self.fastclose = False
        self.rst_reason = -1
        self.ctr[C.TcpOutRsts] += 1
        n = self._finish(buf, o, self.snd_max, T.RST | T.ACK, 0, 0)   # (as Linux: SND.NXT is its snd_max)
        self._to_closed()
        return n

    def _out_seg(self, now, buf, seq, n, flags, dsn=0):
        """A segment in a synchronized state: n payload bytes from seq (relative) carrying
        the data of DSN dsn (relative).

        Segments without data or FIN go out with seq = SND.MAX, the highest sequence
        sent (Linux's snd_nxt): after an RTO rewound snd_nxt, a pure ACK carrying
        it would start below the peer's RCV.WUP and be dropped with its ACK field."""
        c = self.conn
        o = _OPT
        dss = 0
        psum = -1
        fb = False
        again = False
        if self.ts_ok:
            o += T.put_nops(buf, o, 2)
            self._ts_at(now)
            o += T.put_ts_hh(buf, o, self.ts_h, self.ts_l, self.tsr_h, self.tsr_l)
        # the segment that carried our infinite mapping is resent with it (it may have been
        # lost: the peer falls back only when it sees it), even though we fell back
        reinf = n > 0 and seq == c.inf_seq
        if not self.join_acked:
            o += MP.put_mp_join_ack(buf, o, self.jhmac)    # the MP_JOIN third ACK
        elif (c.mptcp and c.established) or reinf:
            if self.client and not c.confirmed and not (n == 0 and c.dfin_sent) and not reinf \
                    and not self.join:
                if n > 0:
                    # first data: MP_CAPABLE with both keys and the data-level length
                    mpc_len = 24 if c.csum else 22
                    pay = o + 24
                    c.snd.copy_out(dsn - c.snd_base, buf, n, pay)
                    cs = None
                    if c.csum:
                        cs = checksum.dss_checksum((c.local_idsn + dsn) & M64, seq, n, buf, pay, pay + n)
                    MP.put_mp_capable(buf, o, MP.CAP_H | (MP.CAP_A if c.csum else 0),
                                      c.local_key, c.peer_key, n, cs)
                    o += mpc_len
                    if mpc_len == 22:
                        o += T.put_nops(buf, o, 2)
                else:
                    o += MP.put_mp_capable(buf, o, MP.CAP_H | (MP.CAP_A if c.csum else 0),
                                           c.local_key, c.peer_key)
            else:
                dss = MP.DSS_ACK | MP.DSS_ACK8
                if n > 0:
                    dss |= MP.DSS_MAP | MP.DSS_DSN8
                elif c.fin_queued and c.dfin_sent and not c.dfin_acked and not c.fail_tx:
                    dss |= MP.DSS_MAP | MP.DSS_DSN8 | MP.DSS_FIN
                # 64-bit DATA_ACK/DSN from the IDSN limbs + relative values (no big ints)
                csum = (c.inf_csum if reinf else c.csum) and (dss & MP.DSS_MAP)
                ln = MP.dss_len(dss, csum)
                pad = (4 - (ln & 3)) & 3
                pay = o + ln + pad
                if n > 0:
                    c.snd.copy_out(dsn - c.snd_base, buf, n, pay)
                drel = 0
                ssn_h = 0
                ssn_l = 0
                dll = 0
                cs = -1
                if dss & MP.DSS_MAP:
                    if dss & MP.DSS_FIN:
                        drel = c.data_end()
                        dll = 1
                    else:
                        drel = dsn
                        # the DSS's relative SSN: seq + what rebasing took off, in halves
                        ssn_h = (self.soff_h + (seq >> 16)) & 0xFFFF
                        ssn_l = seq & 0xFFFF
                        dll = n
                        if c.infinite_tx or reinf:
                            dll = 0     # infinite mapping (RFC 8684 3.7): plain TCP after it
                    if csum:
                        # sum the payload once: it serves the DSS and the TCP checksum
                        psum = checksum.ones_sum(buf, pay, pay + n, 0)
                        x = MP.dss_pseudo_rel(c.lidsn4, drel, ssn_h, ssn_l, dll) + psum
                        x = (x & 0xFFFF) + (x >> 16)
                        cs = ~((x & 0xFFFF) + (x >> 16)) & 0xFFFF
                o += MP.put_dss_rel(buf, o, dss, c.pidsn4, c.rcv_nxt, c.lidsn4, drel, ssn_h, ssn_l, dll,
                                  cs)
                if pad:
                    o += T.put_nops(buf, o, pad)
                if c.fail_tx and n == 0:
                    # MP_FAIL next to the DATA_ACK (room: TS 12 + DSS 12 + 12 <= 40)
                    o += MP.put_mp_fail_rel(buf, o, c.pidsn4, c.fail_dsn)
                    c.fail_tx = False
                    self.ctr[C.MPFailTx] += 1
                elif n == 0 and not (flags & T.FIN):
                    if self.prio_tx and o + 4 <= _OPT + 40:
                        o += MP.put_mp_prio(buf, o, self.backup)
                        o += T.put_nops(buf, o, 1)
                        self.prio_tx = False
                        self.ctr[C.MPPrioTx] += 1
                    elif c.addrs.pending():
                        o0 = o
                        o = c.addrs.put(c, buf, o, _OPT + 40, now)
                        again = o > o0 and c.addrs.pending()    # one per segment
                if n > 0 and c.infinite_tx:
                    self.ctr[C.InfiniteMapTx] += 1
                    c.inf_seq = seq
                    c.inf_csum = c.csum
                    fb = True       # (after the segment is in the scoreboard: it holds the ring)
        elif n > 0:
            c.snd.copy_out(dsn - c.snd_base, buf, n, o)
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
            flags |= T.PSH if dsn + n == c.data_end() else 0
        if fb:
            c.fall_back(self._peer_delta(), self.rcv_nxt)
        if flags & T.FIN:
            e = seq + 1
            if e > self.snd_max:
                self.snd_max = e
            self.snd_nxt = e
            if self.rto_deadline < 0:
                self.rto_deadline = tadd(now, self.rtt.rto)
        wnd = c.rcv_window()
        w = wnd >> self.rcv_wscale
        if w > 0xFFFF:
            w = 0xFFFF
        adv = self.rcv_nxt + (w << self.rcv_wscale)
        if adv > self.rcv_adv:
            self.rcv_adv = adv
        self.adv_data = c.rcv_nxt + (w << self.rcv_wscale)
        self.rcv_wup = self.rcv_nxt
        self.ack_now = again
        if n == 0 and self.dupacks_owed:
            self.dupacks_owed -= 1
            self.ack_now = True
        self.unacked_segs = 0
        self.ack_deadline = -1
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
