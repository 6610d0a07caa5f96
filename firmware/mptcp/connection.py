"""One MPTCP connection: data sequence space, DSS mappings, DATA_ACK, DATA_FIN.

The connection owns the send and receive rings (allocated once, here) and the
data-level state; its subflows (mptcp.subflow on mptcp.tcp) own the TCP state. All sequence
numbers are RELATIVE: data byte k of our stream has DSN IDSN+1+k, i.e. the
relative DSN 1+k. The send side hands chunks of the ring to the subflows the
scheduler picks (`chunk`/`took`); each subflow remembers the DSN of every
segment it has in flight, so a retransmission resends the original mapping. The
ring is released up to the DATA_ACK and no further than any subflow still needs
for a retransmission (`release`). A subflow that fails has its unacknowledged
data queued for reinjection on the others (`reinject`); when the last one fails
the connection waits CLOSE_TIMEOUT_MS for a new one (break-before-make).
Received mappings are arbitrary (the peer may re-inject), so the receive side
maps each segment through its mapping into the receive ring.

Checksums (RFC 8684 3.3): a received mapping is held in a small table until
the subflow has all of it in order; it is then summed in the ring and only
then becomes readable. A bad sum (counted DataCsumErr) is answered as Linux
does on its single subflow (RFC 8684 3.7): MP_FAIL with the mapping's DSN, the
data is delivered, and the peer's MP_FAIL echo and infinite mapping switch the
connection to plain TCP; no answer within FAIL_TIMEOUT_MS resets it. Receiving
MP_FAIL, we echo it and send an infinite mapping on the next data segment.
"""
from mptcp.compat import const
from mptcp.ringbuf import RingBuf
from mptcp.assembler import Assembler
from mptcp.addrs import Addrs
from mptcp import checksum
from mptcp import counters as C
from mptcp import crypto
from mptcp import mpopts as MP
from mptcp.ticks import add as tadd, due, earlier

M64 = 0xFFFFFFFFFFFFFFFF
MAP_SLOTS = const(8)     # pending (checksummed) mappings per connection
FAIL_TIMEOUT_MS = const(120000)   # wait for the MP_FAIL response (Linux: TCP_RTO_MAX)
OOO_SLOTS = const(4)     # out-of-order islands per connection
CLOSE_TIMEOUT_MS = const(60000)   # without any subflow, wait this long (Linux's close_timeout)
MAX_RETRIES = const(12)
_ESTABLISHED = const(3)  # mptcp.tcp.ESTABLISHED (subflow imports this module, not the reverse)
RTO_MAX = const(60000)


class Connection:
    """Application-facing object; see docs/ARCHITECTURE.md (Connection API)."""

    def __init__(self, stack, snd_buf, rcv_buf, mptcp, csum, client=False, sched=None):
        self.stack = stack
        self.ctr = stack.counters.v
        self.snd = RingBuf(snd_buf)
        self.rcv = RingBuf(rcv_buf)
        self.asm = Assembler(OOO_SLOTS)
        self.mptcp = mptcp          # False once fallen back (never reverts)
        self.want_csum = csum
        self.csum = False           # negotiated: either side set A
        self.local_key = None
        self.peer_key = None
        self.local_idsn = 0
        self.peer_idsn = 0
        # the IDSNs as 16-bit limbs (mpopts.get_rel64/put_rel64): the bases of the relative
        # DSNs (a rebase adds to them, so they are the IDSNs only until the first one)
        self.lidsn4 = [0, 0, 0, 0]
        self.pidsn4 = [0, 0, 0, 0]
        self.token = 0
        self.confirmed = False      # peer proved it has our keys (client role)
        self.peer_map_seen = False  # a mapping (DSS or MPC+data) was received
        self.dss_seen = False       # a DATA_ACK was received
        # send side (relative DSN; ring head is snd_base)
        self.snd_base = 1
        self.data_ack = 1           # highest DATA_ACK from the peer (relative)
        self.snd_nxt = 1            # next DSN no subflow has been given yet
        self.wnd_end = 1            # right edge of the peer's data-level window
        self.rtx_nxt = 0            # [rtx_nxt, rtx_end): DSNs to reinject on other subflows
        self.rtx_end = 0
        self.ch_dsn = 0             # the chunk `chunk()` offered: its DSN ...
        self.ch_rtx = False         # ... and whether it comes from the reinjection range
        self.ch_dup = False         # ... or from the redundant scheduler's copy range
        self.dup_nxt = 0            # [dup_nxt, dup_end): small writes dup_sf sent, which the
        self.dup_end = 0            # other subflows send too (the `redundant` scheduler)
        self.dup_sf = None
        self.orphan_deadline = -1   # no subflow left: the connection ends then (tick)
        self.rtx_deadline = -1      # data-level retransmission timer (Linux's msk timer)
        self.rtx_backoff = 0
        self.peer_token = 0
        self.client = client        # we opened it
        self.sched = sched          # mptcp.sched.Scheduler (the stack's), None: no choice
        self.out_rr = 0             # the subflow the stack's output() asks first
        self.last_tx = None         # the subflow the round-robin scheduler picked last
        self.pm_due = -1            # the path manager looks at this connection then (tick)
        self.pm_backoff = 1000      # ms before re-creating a lost subflow (pm.py doubles it)
        self.ever_lost = False      # a subflow was lost (a new join is a re-creation)
        self.addrs = Addrs()        # ADD_ADDR / REMOVE_ADDR state (mptcp.addrs)
        # fallback to TCP (RFC 8684 3.7) only while no second subflow ever joined (Linux's
        # allow_infinite_fallback); after that a broken subflow is reset instead
        self.allow_fallback = True
        self.fin_queued = False     # shutdown_write called
        self.dfin_sent = False
        self.dfin_acked = False
        self.dfin_deadline = -1
        self.dfin_tries = 0
        # receive side
        self.rcv_read = 1           # relative DSN of the ring head
        self.rcv_nxt = 1            # next expected relative DSN (DATA_ACK we send)
        self.peer_fin = -1          # relative DSN of the peer's DATA_FIN, -1 unknown
        self.fin_rcvd = False       # DATA_FIN (or FIN when fallen back) consumed
        self.map_delta = 0          # dsn - ssn of the last mapping (fallback keeps it)
        # RFC 8684 3.7 (MP_FAIL / infinite mapping)
        self.fail_tx = False        # send MP_FAIL (on the next pure ACK)
        self.fail_dsn = 0           # relative DSN (peer's space) it carries
        self.fail_deadline = -1     # our MP_FAIL awaits the peer's answer until then
        self.infinite_tx = False    # the next data segment carries an infinite mapping
        self.inf_seq = -1           # relative seq of the segment that carried it (resent with it)
        self.inf_csum = False       # that DSS had a checksum
        self.m_ssn = [0] * MAP_SLOTS
        self.m_dsn = [0] * MAP_SLOTS
        self.m_len = [0] * MAP_SLOTS    # data bytes (excluding a DATA_FIN)
        self.m_dll = [0] * MAP_SLOTS    # data-level length on the wire
        self.m_csum = [0] * MAP_SLOTS
        self.m_sf = [None] * MAP_SLOTS  # the subflow whose sequence space m_ssn is in
        self.m_n = 0
        # app-level
        self.app_closed = False
        self.error = None
        self.established = False
        self.accepted = False
        self.sf = None
        self.subflows = []

    def set_local_key(self, key, token):
        """Our key (the stack drew it, its token unique among the connections)."""
        self.local_key = key
        self.token = token
        self.set_local_idsn(crypto.key_idsn(key))

    def set_peer_key(self, key):
        """The peer's key (MP_CAPABLE): its token names us in its MP_JOINs, its IDSN is
        the base of the DSNs we receive."""
        self.peer_key = bytes(key)
        self.set_peer_idsn(crypto.key_idsn(self.peer_key))
        self.peer_token = crypto.key_token(self.peer_key)

    def set_local_idsn(self, v):
        self.local_idsn = v
        self.lidsn4 = MP.limbs64(v)

    def set_peer_idsn(self, v):
        self.peer_idsn = v
        self.pidsn4 = MP.limbs64(v)

    # ------------------------------------------------------------ subflows
    def live(self):
        """A subflow that is not closed (the initial one first), or None."""
        for sf in self.subflows:
            if not sf.is_closed():
                return sf
        return None

    def live_count(self):
        n = 0
        for sf in self.subflows:
            if not sf.is_closed():
                n += 1
        return n

    def usable_other(self, sf):
        """Another subflow that could carry data now (no RTO outstanding)."""
        for s in self.subflows:
            if s is not sf and s.can_carry() and s.tries == 0:
                return True
        return False

    def reinject(self, sf):
        """Queue what `sf` sent and the peer has not DATA_ACKed for the other subflows, and
        stop holding the ring for `sf`'s retransmissions (it is failed or stale)."""
        sf.released = True
        if self.mptcp and sf.snd_max > sf.snd_una:
            lo = self.data_ack
            hi = sf.sb.max_dsn_end()
            if hi > self.snd_nxt:
                hi = self.snd_nxt
            if hi > lo:
                if self.rtx_end <= self.rtx_nxt:
                    self.rtx_nxt = lo
                    self.rtx_end = hi
                else:
                    if lo < self.rtx_nxt:
                        self.rtx_nxt = lo
                    if hi > self.rtx_end:
                        self.rtx_end = hi
        self.release()

    def subflow_gone(self, sf, now):
        """`sf` closed: without any other subflow the connection waits for a new one
        (the path manager re-creates it) until CLOSE_TIMEOUT_MS."""
        st = self.stack
        self.ever_lost = True
        if st.last is sf:
            st.last = None
        if self.error is None and self.mptcp and self.live() is None \
                and not (self.fin_rcvd and self.dfin_acked) and self.orphan_deadline < 0:
            # (failed re-joins do not extend it: the wait starts with the last subflow)
            self.orphan_deadline = tadd(now, CLOSE_TIMEOUT_MS)
        st.pm.subflow_gone(self, sf, now)

    def subflow_up(self, sf):
        self.orphan_deadline = -1
        self.stack.pm.subflow_up(self, sf)

    def set_error(self, why):
        """The connection's first error is the one reported."""
        if self.error is None:
            self.error = why

    def kill(self, why):
        """The connection ends with an error: every subflow is reset."""
        if self.error is None:
            self.error = why
        self.orphan_deadline = -1
        for sf in self.subflows:
            if sf.state != 0:
                sf.rst_pending = True

    # ------------------------------------------------------------ events from the subflows
    # A subflow reports what happened; the connection decides what that does to its own
    # state (mptcp.subflow never assigns a Connection field).
    def mptcp_agreed(self, peer_csum):
        """MP_CAPABLE answered: checksums if either side asked (RFC 8684 3.1, the A flag)."""
        self.csum = self.want_csum or peer_csum

    def mptcp_refused(self):
        """The SYN/ACK carries no MP_CAPABLE: plain TCP from the start."""
        self.mptcp = False

    def join_started(self):
        """A second subflow is being added: no fallback to TCP from now on (Linux's
        allow_infinite_fallback)."""
        self.allow_fallback = False

    def app_accepted(self):
        """The application took it from the accept queue."""
        self.accepted = True

    def subflow_dropped(self, sf):
        """The stack forgets closed subflow sf: the round-robin scheduler no longer
        starts after it."""
        if sf is self.last_tx:
            self.last_tx = None

    def first_handshake_done(self, client):
        """The first subflow is synchronized: the connection is established (one we
        accepted goes to the accept queue)."""
        self.established = True
        if not client:
            self.stack.conn_ready(self)

    def peer_confirmed(self, now):
        """The peer showed it has our key (a DATA_ACK, or MP_CAPABLE with its first data):
        a client may open more subflows now."""
        self.confirmed = True
        self.stack.pm.confirmed(self, now)

    def send_window(self, end):
        """The right edge of the peer's data-level window moved (the subflow computes it
        from its own window: MPTCP relative to DATA_ACK, fallen back from its ACK)."""
        self.wnd_end = end

    def mapping_seen(self):
        """The peer's first mapping (DSS or MP_CAPABLE with data) arrived."""
        self.peer_map_seen = True

    def data_fin_mapped(self, dsn):
        """A mapping carries the peer's DATA_FIN at relative DSN dsn."""
        self.peer_fin = dsn

    def data_fin_alone(self, dsn):
        """The peer's DATA_FIN on a segment without data: taken unless one is known or it
        lies below what was delivered."""
        if self.peer_fin < 0 and dsn >= self.rcv_nxt - 1:
            self.peer_fin = dsn
        self.check_fin()

    def stream_ended(self):
        """Nothing more can come from the peer (a FIN fallen back or before MPTCP was
        established, or the last subflow's FIN without DATA_FIN)."""
        self.fin_rcvd = True

    def unmapped_in_order(self, seq):
        """In-order data outside every mapping (subflow seq): the peer fell back (RFC 8684
        3.7); as Linux on one subflow, follow it: the data continues the data stream where
        it stands."""
        self.fall_back(0, seq)
        self.map_delta = self.rcv_nxt - seq

    def data_fin_sent(self, now, rto):
        """Our DATA_FIN went out on a subflow whose RTO is rto: retransmitted (with backoff)
        if not DATA_ACKed in time."""
        self.dfin_sent = True
        b = self.dfin_tries if self.dfin_tries < 8 else 8
        t = rto << b
        self.dfin_deadline = tadd(now, (t if t < RTO_MAX else RTO_MAX))

    def fail_sent(self):
        """Our MP_FAIL went out (its answer is awaited until fail_deadline)."""
        self.fail_tx = False

    def infinite_sent(self, seq):
        """Our infinite mapping went out on the segment at seq (of the only subflow: a
        segment resent there carries it again)."""
        self.inf_seq = seq
        self.inf_csum = self.csum

    def subflow_closed(self):
        """A subflow went to CLOSED: with none left, a DATA_FIN not yet acknowledged is
        sent again by the next subflow (break-before-make), not retransmitted by timer."""
        if self.live() is None:
            self.dfin_deadline = -1
            if self.dfin_sent and not self.dfin_acked:
                self.dfin_sent = False

    # ------------------------------------------------------------ timers
    def next_deadline(self):
        d = earlier(self.addrs.next_deadline(), self.dfin_deadline)
        d = earlier(d, self.fail_deadline)
        d = earlier(d, self.orphan_deadline)
        return earlier(d, self.rtx_deadline)

    def timers(self, now):
        self.addrs.timers(now)      # (a due ADD_ADDR goes on a subflow's next pure ACK)
        if due(now, self.fail_deadline):
            # our MP_FAIL got no answer (RFC 8684 3.7): reset, as Linux does
            self.fail_deadline = -1
            self.kill("MP_FAIL not answered")
        if due(now, self.dfin_deadline):
            self.dfin_tries += 1
            self.dfin_deadline = -1
            if self.dfin_tries > MAX_RETRIES:
                self.kill("timeout")
            else:
                self.dfin_sent = False      # a subflow's output() sends it again
                self.ctr[C.MPTCPRetrans] += 1
        if due(now, self.rtx_deadline):
            self._data_rtx(now)
        if due(now, self.orphan_deadline):
            self.orphan_deadline = -1
            self.ctr[C.OrphanTimeout] += 1
            if self.error is None:
                self.error = "timeout"

    # ------------------------------------------------------------ app API
    @property
    def state(self):
        sf = self.live()
        if sf is not None:
            return sf.state_name()
        if self.orphan_deadline >= 0:
            return "ESTABLISHED"        # between subflows (break-before-make)
        return self.sf.state_name() if self.sf is not None else "CLOSED"

    @property
    def closed(self):
        return self.orphan_deadline < 0 and self.live() is None

    @property
    def eof(self):
        return self.fin_rcvd and self.rcv.len == 0

    def write(self, mv):
        if self.fin_queued or self.error is not None or self.sf is None:
            return 0
        n = self.snd.write(mv)
        return n

    def readinto(self, mv):
        r = self.rcv
        old_right = self.rcv_read + r.size
        n = r.readinto(mv)
        if n:
            self.rcv_read += n
            # a synchronized subflow tells the peer (not a join still in SYN-SENT: it
            # could not send the update and would keep asking to)
            for sf in self.subflows:
                if sf.state >= _ESTABLISHED and not sf.is_closed():
                    sf.window_opened(self.rcv_read + r.size - old_right)
                    break
        return n

    def shutdown_write(self):
        self.fin_queued = True

    def close(self):
        """Close both directions. With data unread, as Linux: the connection is reset
        (RST, MP_FASTCLOSE with MPTCP) so the peer cannot take the close for a success."""
        self.fin_queued = True
        self.app_closed = True
        if self.rcv.len > 0:
            self.abort()

    def abort(self):
        """Reset every subflow (with MP_FASTCLOSE under MPTCP)."""
        self.orphan_deadline = -1
        for sf in self.subflows:
            sf.abort()

    # ------------------------------------------------------------ send side
    def data_end(self):
        """Relative DSN one past the last byte written by the app."""
        return self.snd_base + self.snd.len

    def rcv_window(self):
        return self.rcv.size - self.rcv.len

    def chunk(self, sf=None):
        """Bytes subflow sf may take for new data: a copy of a small write another subflow
        sent (`redundant`), the reinjection range, then unsent data; the DSN is left in
        ch_dsn (no tuple: no allocation)."""
        self.ch_dup = False
        if self.dup_end > self.dup_nxt:
            lo = self.dup_nxt if self.dup_nxt > self.snd_base else self.snd_base
            if lo >= self.dup_end:
                self.dup_nxt = self.dup_end = 0
                self.dup_sf = None
            elif sf is not self.dup_sf:
                self.ch_dsn = lo
                self.ch_rtx = False
                self.ch_dup = True
                return self.dup_end - lo
        if self.rtx_end > self.rtx_nxt:
            lo = self.rtx_nxt
            if lo < self.snd_base:
                lo = self.snd_base
            if lo < self.rtx_end:
                self.ch_dsn = lo
                self.ch_rtx = True
                return self.rtx_end - lo
            self.rtx_nxt = 0
            self.rtx_end = 0
        self.ch_dsn = self.snd_nxt
        self.ch_rtx = False
        return self.data_end() - self.snd_nxt

    def took(self, dsn, n, sf=None):
        """Subflow sf sent [dsn, dsn+n) as new subflow data."""
        e = dsn + n
        if self.ch_dup:
            self.dup_nxt = e
            self.ctr[C.MPTCPDupTx] += 1
            return
        if not self.ch_rtx and self.sched is not None and self.sched.copies(n) \
                and len(self.subflows) > 1:
            if self.dup_end <= self.dup_nxt:
                self.dup_nxt = dsn
                self.dup_sf = sf
            self.dup_end = e            # (the copy follows the same subflow's small writes)
        if self.ch_rtx:
            self.rtx_nxt = e
            self.ctr[C.MPTCPReinject] += 1
        if e > self.snd_nxt:
            self.snd_nxt = e
        if self.rtx_deadline < 0 and self.mptcp and len(self.subflows) > 1:
            self._arm_rtx(self.stack.now)

    def _arm_rtx(self, now):
        """(Only with more than one subflow: alone, a subflow's own RTO covers its data.)"""
        r = 200
        for sf in self.subflows:
            if not sf.is_closed() and sf.rtt.rto > r:
                r = sf.rtt.rto
        r = r << self.rtx_backoff
        self.rtx_deadline = tadd(now, r if r < RTO_MAX else RTO_MAX)

    def _data_rtx(self, now):
        """Data-level retransmission timer (RFC 8684 3.3.6): data every subflow has
        acknowledged but the DATA_ACK does not cover (the receiver dropped it at the data
        level, or a subflow died with it) is sent again, one segment per expiry with
        backoff. While a subflow still has data in flight its own RTO is in charge."""
        self.rtx_deadline = -1
        if not self.mptcp or self.snd_nxt <= self.data_ack or self.error is not None:
            return
        for sf in self.subflows:
            if not sf.is_closed() and sf.snd_max > sf.snd_una:
                self._arm_rtx(now)
                return
        hi = self.data_ack + 1400
        if hi > self.snd_nxt:
            hi = self.snd_nxt
        if self.rtx_end <= self.rtx_nxt:
            self.rtx_nxt = self.data_ack
            self.rtx_end = hi
        elif self.data_ack < self.rtx_nxt:
            self.rtx_nxt = self.data_ack
        self.ctr[C.MPTCPRetrans] += 1
        if self.rtx_backoff < 6:
            self.rtx_backoff += 1
        self._arm_rtx(now)

    def all_handed_out(self):
        return self.snd_nxt >= self.data_end() and self.rtx_end <= self.rtx_nxt

    def on_data_ack(self, rel, sf_una):
        """Peer's DATA_ACK (relative): seen (its options are not stripped); frees the send
        ring up to it."""
        self.dss_seen = True
        if rel == self.data_ack:
            return          # no news (the usual case on the receiving side)
        end = self.data_end()
        top = end + 1 if self.dfin_sent else end
        if rel > top or rel < self.data_ack:
            return
        self.data_ack = rel
        self.rtx_backoff = 0
        if rel >= self.snd_nxt:
            self.rtx_deadline = -1
        elif self.rtx_deadline >= 0:
            self._arm_rtx(self.stack.now)
        if self.dfin_sent and rel == end + 1 and not self.dfin_acked:
            self.dfin_acked = True
            self.dfin_deadline = -1
        self.release()

    def release(self, sf_una=0):
        """Drop acknowledged bytes from the send ring: up to the DATA_ACK (fallen back: what
        the subflow acknowledged), and not past what a subflow may still retransmit."""
        lim = self.data_ack if self.mptcp else self.snd_nxt
        for sf in self.subflows:
            h = sf.hold()
            if 0 <= h < lim:
                lim = h
        end = self.data_end()
        if lim > end:
            lim = end
        if lim > self.snd_base:
            self.snd.consume(lim - self.snd_base)
            self.snd_base = lim

    # ------------------------------------------------------------ rebasing (DESIGN 2.3)
    def rebase_snd(self, by):
        """Our data-level send space drops by `by`; its base (IDSN limbs) grows. The
        subflows' segment mappings (DSN - seq) follow."""
        MP.limbs_add(self.lidsn4, by)
        self.snd_base -= by
        self.snd_nxt -= by
        self.wnd_end -= by
        x = self.data_ack - by
        self.data_ack = x if x > 0 else 0
        if self.rtx_end > self.rtx_nxt:
            self.rtx_nxt -= by
            self.rtx_end -= by
        else:
            self.rtx_nxt = 0
            self.rtx_end = 0
        for sf in self.subflows:
            sf.sb.rebase_dsn(by)
            sf.tx_delta -= by

    def rebase_sf_snd(self, sf, by):
        """Subflow `sf`'s send space dropped by `by`: the seq of our infinite mapping (in
        the initial subflow's space) follows."""
        if self.inf_seq >= 0 and sf is self.sf:
            x = self.inf_seq - by
            self.inf_seq = x if x >= 0 else -1

    def rebase_sf_rcv(self, sf, by):
        """Subflow `sf`'s receive space dropped by `by`: mappings held in it follow."""
        if sf is self.sf:
            self.map_delta += by
        for i in range(self.m_n):
            if self.m_sf[i] is sf:
                self.m_ssn[i] -= by

    def rebase_rcv(self, by):
        """The peer's data-level space drops by `by`; its base (IDSN limbs) grows."""
        MP.limbs_add(self.pidsn4, by)
        self.rcv_read -= by
        self.rcv_nxt -= by
        if self.peer_fin >= 0:
            self.peer_fin -= by
        x = self.fail_dsn - by
        self.fail_dsn = x if x > 0 else 0
        self.map_delta -= by
        for i in range(self.m_n):
            self.m_dsn[i] -= by
        for sf in self.subflows:
            sf.map_dsn -= by
            sf.adv_base -= by

    # ------------------------------------------------------------ receive side
    def add_pending_map(self, sf, ssn, dsn, dlen, dll, csum, in_order):
        """Remember a checksummed mapping; False if the table is full.

        The last slot is kept for the mapping of in-order data, so that
        out-of-order mappings can never block the progress of the connection.
        """
        n = self.m_n
        for i in range(n):
            if self.m_ssn[i] == ssn and self.m_dsn[i] == dsn and self.m_len[i] == dlen \
                    and self.m_sf[i] is sf:
                return True
        if n >= MAP_SLOTS or (n >= MAP_SLOTS - 1 and not in_order):
            return False
        self.m_ssn[n] = ssn
        self.m_dsn[n] = dsn
        self.m_len[n] = dlen
        self.m_dll[n] = dll
        self.m_csum[n] = csum
        self.m_sf[n] = sf
        self.m_n = n + 1
        return True

    def place(self, dsn, src, s, n):
        """Copy src[s:s+n] (data with relative DSN dsn) into the receive ring.

        Trims what is already delivered or beyond the buffer. Returns False
        when the data cannot be tracked (out of hole slots) and must be dropped.
        """
        r = self.rcv
        off = dsn - self.rcv_read
        committed = r.len
        if off < committed:
            k = committed - off
            if k >= n:
                return True         # all duplicate at the data level
            off += k
            s += k
            n -= k
            dsn += k
        if off + n > r.size:
            n = r.size - off
            if n <= 0:
                return True
        if not self.csum and off > committed and not self.asm.can_add(off - committed, n):
            self.ctr[C.TcpOFODrop] += 1
            return False
        r.put_at(off, src, s, n)
        if not self.csum:
            return self.deliver(dsn, n)
        return True

    def deliver(self, dsn, n):
        """Data [dsn, dsn+n) is in the ring and verified: make it readable when in order."""
        off = dsn - self.rcv_nxt
        if off + n <= 0:
            return True
        if off < 0:
            n += off
            off = 0
        a = self.asm
        if off == 0:
            if a.n:
                a.shift(n)
                k = n + a.take_front()
            else:
                k = n
        elif not a.add(off, n):
            self.ctr[C.TcpOFODrop] += 1
            return False
        else:
            k = 0
        if k:
            self.rcv.commit(k)
            self.rcv_nxt += k
        if self.peer_fin >= 0:
            self.check_fin()
        return True

    def check_fin(self):
        if self.peer_fin >= 0 and self.rcv_nxt == self.peer_fin and not self.fin_rcvd:
            self.rcv_nxt += 1
            self.fin_rcvd = True
            self.ctr[C.DataFinRx] += 1

    def verify_maps(self, sf, sf_rcv_nxt, now):
        """Check every pending mapping subflow `sf` now has completely.

        A bad sum with other subflows alive (RFC 8684 3.7) resets that subflow with
        MP_TCPRST and delivers none of its pending data: the peer reinjects it on the
        others. With one subflow: MP_FAIL and fallback, as Linux."""
        i = 0
        bad = False
        while i < self.m_n:
            if self.m_sf[i] is not sf:
                i += 1
                continue
            end = self.m_ssn[i] + self.m_len[i]
            if end - sf_rcv_nxt > 0 and not bad:
                i += 1
                continue
            dsn = self.m_dsn[i]
            dlen = self.m_len[i]
            if bad:
                dlen = 0                # the subflow is being reset: its mappings go
            elif dsn >= self.rcv_read and dlen > 0 and self.mptcp \
                    and (self.live_count() > 1 or not self.allow_fallback) and not self._map_ok(i):
                self.ctr[C.DataCsumErr] += 1
                bad = True
                dlen = 0
            # checked when the whole mapping is still in the ring (a re-injected mapping
            # may start below rcv_nxt: those bytes are already there)
            elif dsn >= self.rcv_read and dlen > 0 and not self._map_ok(i):
                # as Linux: the data is kept; the answer is MP_FAIL and fallback
                self.ctr[C.DataCsumErr] += 1
                if self.mptcp and self.fail_deadline < 0 and not self.fail_tx:
                    self.fail_tx = True
                    self.fail_dsn = dsn
                    self.fail_deadline = tadd(now, FAIL_TIMEOUT_MS)
            if dlen > 0:
                self.deliver(dsn, dlen)
            self._del_map(i)
        if bad:
            self.drop_maps(sf)
            sf.rst_reason = MP.RST_MPTCP
            sf.lost(now, True)

    def drop_maps(self, sf):
        """Forget the pending mappings of subflow sf (it is reset: they will not complete)."""
        i = 0
        while i < self.m_n:
            if self.m_sf[i] is sf:
                self._del_map(i)
            else:
                i += 1

    def _del_map(self, i):
        """Remove pending mapping i (the last one takes its slot)."""
        n = self.m_n - 1
        self.m_ssn[i] = self.m_ssn[n]
        self.m_dsn[i] = self.m_dsn[n]
        self.m_len[i] = self.m_len[n]
        self.m_dll[i] = self.m_dll[n]
        self.m_csum[i] = self.m_csum[n]
        self.m_sf[i] = self.m_sf[n]
        self.m_sf[n] = None
        self.m_n = n

    def fall_back(self, delta, sf_rcv_nxt):
        """Continue as plain TCP (RFC 8684 3.7), for good: subflow data maps to the data
        level by a fixed delta. Checksummed mappings the subflow already has in order are
        delivered; data beyond them is delivered as the subflow advances."""
        self.mptcp = False
        self.map_delta = delta
        self.infinite_tx = False
        self.fail_tx = False
        self.fail_deadline = -1
        if self.csum:
            for i in range(self.m_n):
                k = sf_rcv_nxt - self.m_ssn[i]
                if k > self.m_len[i]:
                    k = self.m_len[i]
                if k > 0:
                    self.deliver(self.m_dsn[i], k)
            self.m_n = 0
            self.csum = False
        # plain TCP: the subflow ACK is the delivery; what it covered while we
        # waited for a DATA_ACK is released now (no later ACK may come to do it)
        self.release()

    def on_mp_fail(self):
        """The peer sent MP_FAIL: the answer to ours, or a checksum failure it saw in our data."""
        if not self.mptcp or not self.allow_fallback:
            return                      # (after a join: no fallback; its subflow is reset)
        if self.fail_deadline >= 0:
            self.fail_deadline = -1      # the peer answered; its infinite mapping follows
            return
        self.fail_tx = True             # echo it ...
        self.fail_dsn = self.rcv_nxt
        self.infinite_tx = True         # ... and map our next data infinitely

    def _map_ok(self, i):
        r = self.rcv
        dlen = self.m_len[i]
        off = self.m_dsn[i] - self.rcv_read
        if off < 0 or off + dlen > r.size:
            return False
        ssn = self.m_ssn[i]
        acc = MP.dss_pseudo_rel(self.pidsn4, self.m_dsn[i],
                                (self.m_sf[i].roff_h + (ssn >> 16)) & 0xFFFF, ssn & 0xFFFF,
                                self.m_dll[i])
        acc += self.m_csum[i]
        p = r.pos(off)
        first = r.size - p
        if first >= dlen:
            s = checksum.ones_sum(r.buf, p, p + dlen, acc)
        else:
            s = checksum.ones_sum(r.buf, p, r.size, acc)
            s = checksum.ones_sum_at(r.buf, 0, dlen - first, s, first)
        return s == 0xFFFF
