"""NewReno congestion control (RFC 5681, RFC 6582) and loss recovery for one subflow.

Byte-counted cwnd/ssthresh. The subflow calls `on_ack` for every ACK that
advances snd_una, `on_dupack` for duplicates (returns True when the third
one means "fast retransmit now"), `on_rto` on a retransmission timeout.
`recover` is the RFC 6582 recovery point (relative sequence).
`RttEstimator` is RFC 6298's SRTT/RTTVAR/RTO.
`Scoreboard` remembers the segments in flight and what the peer SACKed:
retransmissions re-send exactly an original segment (so its DSS mapping and
checksum are the original ones, as the kernel requires with checksums).
"""
from mptcp.compat import const
from mptcp.tcpwire import rel32

CWND_MAX = const(0x1000000)   # 16 MiB: far above any board's buffers, a small int for ever
RTO_INIT = const(1000)
RTO_FALLBACK = const(3000) # after a handshake without an RTT sample (RFC 6298 5.7, Linux)
RTO_MIN = const(200)       # like Linux
RTO_MAX = const(60000)


class RttEstimator:
    """RFC 6298: smoothed RTT, its variation and the retransmission timeout, in ms
    (srtt -1: no sample yet). Karn's rule is the caller's: it samples only
    unambiguous ACKs; the backed-off RTO stays until the next sample."""

    def __init__(self):
        self.srtt = -1
        self.rttvar = 0
        self.rto = RTO_INIT
        self.rtt_ms = 0            # the last SRTT, 0 before any sample (statistics)

    def sample(self, r):
        if r < 1:
            r = 1
        if self.srtt < 0:
            self.srtt = r
            self.rttvar = r >> 1
        else:
            d = self.srtt - r
            if d < 0:
                d = -d
            self.rttvar = (3 * self.rttvar + d) >> 2
            self.srtt = (7 * self.srtt + r) >> 3
        self.rtt_ms = self.srtt
        v = 4 * self.rttvar
        if v < 10:
            v = 10
        rto = self.srtt + v
        if rto < RTO_MIN:
            rto = RTO_MIN
        if rto > RTO_MAX:
            rto = RTO_MAX
        self.rto = rto

    def backoff(self):
        """A retransmission timeout: the RTO doubles (RFC 6298 5.5), up to RTO_MAX."""
        rto = self.rto * 2
        self.rto = rto if rto < RTO_MAX else RTO_MAX

    def fallback(self):
        """Established without an RTT sample from the handshake (RFC 6298 5.7)."""
        if self.srtt < 0:
            self.rto = RTO_FALLBACK


class NewReno:
    def __init__(self, mss):
        self.mss = mss
        self.cwnd = 10 * mss            # RFC 6928 initial window (Linux: 10)
        self.ssthresh = 0x3FFFFFFF    # "infinite", still a small int on 32-bit boards
        self.dupacks = 0
        self.in_recovery = False
        self.recover = 0

    def rebase(self, by):
        """The sequence space dropped by `by` (TcpEndpoint._rebase_snd)."""
        x = self.recover - by
        self.recover = x if x > 0 else 0        # behind snd_una: only "behind" matters

    def set_mss(self, mss):
        self.mss = mss
        self.cwnd = 10 * mss

    def on_ack(self, acked, snd_una, flight):
        """New data acked (snd_una already advanced). Returns True for a
        partial ACK during recovery (retransmit the next hole now)."""
        self.dupacks = 0
        mss = self.mss
        if self.in_recovery:
            if snd_una - self.recover >= 0:
                # full ACK: leave recovery, deflate (RFC 6582 3.2 step 3)
                self.in_recovery = False
                self.cwnd = self.ssthresh if self.ssthresh > mss else mss
                return False
            # partial ACK: deflate by the amount acked, add back one MSS
            self.cwnd -= acked
            if acked >= mss:
                self.cwnd += mss
            if self.cwnd < mss:
                self.cwnd = mss
            return True
        # the window grows only while it limits the sender (Linux's tcp_is_cwnd_limited,
        # RFC 7661): a sender held back by its send ring or by the scheduler keeps a cwnd
        # that says what the path really carries (the scheduler's rate estimate uses it)
        used = flight + acked
        if self.cwnd < self.ssthresh:
            if self.cwnd < 2 * used:
                self.cwnd += acked if acked < mss else mss
        elif used + mss > self.cwnd:
            inc = (mss * mss) // self.cwnd
            self.cwnd += inc if inc > 0 else 1
        if self.cwnd > CWND_MAX:
            self.cwnd = CWND_MAX    # the receive window limits the sender: cwnd stays bounded
        return False

    def on_dupack(self, snd_una, snd_max, flight):
        """A duplicate ACK. True when fast retransmit must happen now."""
        if self.in_recovery:
            if self.cwnd < CWND_MAX:
                self.cwnd += self.mss   # inflate
            return False
        self.dupacks += 1
        if self.dupacks == 3 and snd_una > self.recover:
            self.enter_recovery(snd_max, flight)
            return True
        return False

    def enter_recovery(self, snd_max, flight):
        """Fast retransmit: halve (RFC 5681 3.2), remember the recovery point.
        FlightSize without what limited transmit added (RFC 5681 3.2 / RFC 3042): no more
        than cwnd, as Linux's cwnd/2."""
        if flight > self.cwnd:
            flight = self.cwnd
        half = flight // 2
        m2 = 2 * self.mss
        self.ssthresh = half if half > m2 else m2
        self.cwnd = self.ssthresh + 3 * self.mss
        self.in_recovery = True
        self.recover = snd_max

    def limited(self):
        """Extra bytes allowed beyond cwnd: RFC 3042 limited transmit."""
        if not self.in_recovery and 0 < self.dupacks < 3:
            return self.dupacks * self.mss
        return 0

    def on_rto(self, flight, snd_max):
        half = flight // 2
        m2 = 2 * self.mss
        self.ssthresh = half if half > m2 else m2
        self.cwnd = self.mss
        self.dupacks = 0
        self.in_recovery = False
        self.recover = snd_max


class Scoreboard:
    """Ends (relative seq) of the segments in flight, oldest first, in a ring,
    with a SACKed flag each and the segment's mapping: DSN - seq (relative DSN of
    its bytes minus their relative subflow seq), so that a retransmission carries
    the original data and mapping. A segment starts where the previous one ended
    (the first at snd_una)."""

    def __init__(self, slots):
        self.cap = slots
        self.end = [0] * slots
        self.delta = [0] * slots
        self.sacked = bytearray(slots)
        self.head = 0
        self.n = 0

    def rebase(self, by):
        """The subflow's sequence space dropped by `by` (TcpEndpoint._rebase_snd)."""
        for i in range(self.cap):
            self.end[i] -= by
            self.delta[i] += by

    def rebase_dsn(self, by):
        """The connection's data sequence space dropped by `by` (Connection.rebase_snd)."""
        for i in range(self.cap):
            self.delta[i] -= by

    def push(self, end, delta=0):
        i = (self.head + self.n) % self.cap
        self.end[i] = end
        self.delta[i] = delta
        self.sacked[i] = 0
        self.n += 1

    def max_dsn_end(self):
        """Highest relative DSN + 1 of the data in flight (-1 if none)."""
        cap = self.cap
        hi = -1
        for i in range(self.n):
            j = (self.head + i) % cap
            e = self.end[j] + self.delta[j]
            if e > hi:
                hi = e
        return hi

    def delta_at(self, seq, dflt):
        """DSN - seq of the segment holding seq (dflt if none does)."""
        cap = self.cap
        for i in range(self.n):
            j = (self.head + i) % cap
            if self.end[j] > seq:
                return self.delta[j]
        return dflt

    def pop(self, una):
        """Forget the segments the cumulative ACK covers."""
        while self.n and self.end[self.head] <= una:
            self.head = (self.head + 1) % self.cap
            self.n -= 1

    def end_after(self, seq):
        """End of the segment containing seq (-1 if none)."""
        cap = self.cap
        for i in range(self.n):
            e = self.end[(self.head + i) % cap]
            if e > seq:
                return e
        return -1

    def on_sack(self, seg, iss_h, iss_l, una, snd_max):
        """Mark the segments that the SACK blocks of `seg` cover entirely
        (edges relative to the ISS, given as 16-bit halves)."""
        sh = seg.sack_h
        sl = seg.sack_l
        cap = self.cap
        for k in range(seg.sack_n):
            left = rel32(sh[2 * k], sl[2 * k], iss_h, iss_l, una)
            right = rel32(sh[2 * k + 1], sl[2 * k + 1], iss_h, iss_l, una)
            if right <= left or right > snd_max or left <= una:
                continue        # not above the cumulative ACK: D-SACK or bogus (RFC 2018 8)
            start = una
            for i in range(self.n):
                j = (self.head + i) % cap
                e = self.end[j]
                if start >= left and e <= right:
                    self.sacked[j] = 1
                if e >= right:
                    break
                start = e

    def sacked_count(self):
        k = 0
        for i in range(self.n):
            if self.sacked[(self.head + i) % self.cap]:
                k += 1
        return k

    def next_hole(self, una, rx_hi):
        """RFC 6675-style: start of the first un-SACKed segment at or above
        rx_hi that has a SACKed segment above it (-1 if none)."""
        cap = self.cap
        start = una
        hole = -1
        for i in range(self.n):
            j = (self.head + i) % cap
            if self.sacked[j]:
                if hole >= 0:
                    return hole
            elif hole < 0 and start >= rx_hi:
                hole = start
            start = self.end[j]
        return -1

    def skip_sacked(self, nxt, una):
        """Go-back-N after an RTO: step over segments the peer already has."""
        cap = self.cap
        start = una
        for i in range(self.n):
            j = (self.head + i) % cap
            e = self.end[j]
            if e > nxt:
                # the segment at snd_una is always resent (RFC 2018 8: the peer may renege)
                if start >= nxt and start > una and self.sacked[j]:
                    nxt = e
                else:
                    break
            start = e
        return nxt
