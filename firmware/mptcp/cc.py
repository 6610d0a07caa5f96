"""NewReno congestion control (RFC 5681, RFC 6582) for one subflow.

Byte-counted cwnd/ssthresh. The subflow calls `on_ack` for every ACK that
advances snd_una, `on_dupack` for duplicates (returns True when the third
one means "fast retransmit now"), `on_rto` on a retransmission timeout.
`recover` is the RFC 6582 recovery point (relative sequence).
"""


class NewReno:
    def __init__(self, mss):
        self.mss = mss
        self.cwnd = 10 * mss            # RFC 6928 initial window (Linux: 10)
        self.ssthresh = 1 << 30
        self.dupacks = 0
        self.in_recovery = False
        self.recover = 0

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
                c = flight if flight < self.ssthresh else self.ssthresh
                self.cwnd = c if c > mss else mss
                return False
            # partial ACK: deflate by the amount acked, add back one MSS
            self.cwnd -= acked
            if acked >= mss:
                self.cwnd += mss
            if self.cwnd < mss:
                self.cwnd = mss
            return True
        if self.cwnd < self.ssthresh:
            self.cwnd += acked if acked < mss else mss
        else:
            inc = (mss * mss) // self.cwnd
            self.cwnd += inc if inc > 0 else 1
        return False

    def on_dupack(self, snd_una, snd_max, flight):
        """A duplicate ACK. True when fast retransmit must happen now."""
        if self.in_recovery:
            self.cwnd += self.mss       # inflate
            return False
        self.dupacks += 1
        if self.dupacks == 3 and snd_una > self.recover:
            half = flight // 2
            m2 = 2 * self.mss
            self.ssthresh = half if half > m2 else m2
            self.cwnd = self.ssthresh + 3 * self.mss
            self.in_recovery = True
            self.recover = snd_max
            return True
        return False

    def on_rto(self, flight, snd_max):
        half = flight // 2
        m2 = 2 * self.mss
        self.ssthresh = half if half > m2 else m2
        self.cwnd = self.mss
        self.dupacks = 0
        self.in_recovery = False
        self.recover = snd_max
