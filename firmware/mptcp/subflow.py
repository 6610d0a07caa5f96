"""One MPTCP v1 subflow (RFC 8684): a TCP endpoint (mptcp.tcp) and what MPTCP adds.

The MP_CAPABLE and MP_JOIN handshakes (keys, nonces, HMACs, the third ACK repeated
until acknowledged), address ids and the backup flag (MP_PRIO), ADD_ADDR /
REMOVE_ADDR input, the receive mappings (DSS, infinite mapping, DATA_FIN) and their
checks, DATA_ACK input, DSS writing, MP_FAIL / MP_FASTCLOSE / MP_TCPRST, fallback
decisions, and what the scheduler asks (hold, can_carry, has_room, lost). It is
the only part of a subflow that talks to its Connection (mptcp.connection), which
owns the data sequence space and its own state: the subflow reads it and reports
events through its methods, never assigning a field. The TCP endpoint reaches
this class through the upcalls documented in TcpEndpoint.
"""
from mptcp.compat import const
from mptcp import tcpwire as T
from mptcp import mpopts as MP
from mptcp import checksum
from mptcp import counters as C
from mptcp import crypto
from mptcp.connection import M64
from mptcp.ticks import add as tadd
from mptcp.tcp import (TcpEndpoint, CLOSED, SYN_SENT, ESTABLISHED, CLOSE_WAIT, TIME_WAIT,
                       SEG_SLOTS, REBASE_AT, REBASE_BY)

_OPT = const(40)           # options start: 20 (IP) + 20 (TCP), as in mptcp.tcp
STALE_RTOS = const(4)         # RTOs in a row that make a subflow stale (Linux's stale_loss_cnt)


class Subflow(TcpEndpoint):
    def __init__(self, conn, stack, ifindex, laddr, raddr, lport, rport, iss, mss, client):
        TcpEndpoint.__init__(self, stack, ifindex, laddr, raddr, lport, rport, iss, mss,
                             client)
        self.conn = conn
        self.adv_base = 0          # data-level RCV.NXT when we last advertised a window
        self.fastclose = False     # our next RST carries MP_FASTCLOSE
        self.tx_fb = False         # the segment just written carried our infinite mapping
        # current receive mapping (relative): used for segments without a DSS
        self.map_ssn = 0
        self.map_dsn = 0
        self.map_len = 0
        self.released = False      # its data was reinjected: it no longer holds the send ring
        self.stale = False         # STALE_RTOS RTOs without progress
        self.link_up = True
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

    # ------------------------------------------------------------ scheduler / connection API
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

    def set_backup(self, flag):
        """Our B flag for this subflow changes: MP_PRIO tells the peer (RFC 8684 3.3.8)."""
        if self.backup != flag:
            self.backup = flag
            self.prio_tx = True
            self.ack_now = True

    def window_opened(self, grew):
        """The app read data: send a window update when it matters (SWS avoidance)."""
        if self.fin_rcvd or self.state >= TIME_WAIT:
            return      # the peer has ended its stream: a window update would only draw a RST
        c = self.conn
        grow = c.rcv_nxt + c.rcv_window() - (self.adv_base + self.adv_wnd)
        if grow >= 2 * self.mss or grow >= (c.rcv.size >> 1):
            self.ack_now = True

    def abort(self):
        c = self.conn
        if self.state == CLOSED:
            return
        c.set_error("aborted")
        if self.state == SYN_SENT and not self.syn_sent:
            self._to_closed()
            return
        self.rst_pending = True
        self.fastclose = c.mptcp and c.peer_key is not None and self.state >= ESTABLISHED

    def take_syn(self, seg):
        TcpEndpoint.take_syn(self, seg)
        if not self.join:
            self.conn.send_window(1 + seg.window)

    def _join_hmac(self, n):
        """Our MP_JOIN HMAC (RFC 8684 3.2): HMAC(our key || peer key, our nonce || its nonce)."""
        c = self.conn
        return crypto.join_hmac(c.local_key, c.peer_key, self.lnonce, self.rnonce)[:n]

    def _peer_join_hmac(self, n):
        c = self.conn
        return crypto.join_hmac(c.peer_key, c.local_key, self.rnonce, self.lnonce)[:n]

    def _others_live(self):
        for sf in self.conn.subflows:
            if sf is not self and not sf.is_closed():
                return True
        return False

    # ------------------------------------------------------------ upcalls: state
    def _rebased_snd(self, by):
        self.conn.rebase_sf_snd(self, by)

    def _rebased_rcv(self, by):
        x = self.map_ssn - by
        if x < 0:
            self.map_len = 0                    # a mapping that far behind is stale
            x = 0
        self.map_ssn = x
        self.conn.rebase_sf_rcv(self, by)

    def _input_done(self):
        c = self.conn
        if c.rcv_nxt >= REBASE_AT:
            c.rebase_rcv(REBASE_BY)
        if c.snd_base >= REBASE_AT:
            c.rebase_snd(REBASE_BY)

    def _closed(self):
        self.conn.subflow_closed()

    def _handshake_done(self, now):
        c = self.conn
        if not c.established:
            c.first_handshake_done(self.client)
        if self.join and self.client:
            c.subflow_up(self)

    def _app_closed(self):
        return self.conn.app_closed

    def _closed_above(self):
        c = self.conn
        return c.mptcp and c.dfin_acked and c.fin_rcvd

    def _reset_in(self, fatal):
        c = self.conn
        if not fatal and (self.join or (c.mptcp and c.peer_key is not None
                                        and self.state >= ESTABLISHED and c.error is None)):
            # a subflow reset: as Linux, the connection goes on (other subflows, or a
            # new one within close_timeout); MP_FASTCLOSE ends it (_opts_in)
            self.lost(self.stack.now, False)
            return
        c.set_error("refused" if self.state == SYN_SENT else "reset")
        self._to_closed()
        for sf in c.subflows:
            if sf is not self and sf.state != CLOSED:
                sf.rst_pending = True

    def _gave_up(self, now):
        c = self.conn
        if self.join or (c.mptcp and c.peer_key is not None and self.state >= ESTABLISHED
                         and c.error is None):
            self.lost(now, self.state != SYN_SENT)
            return True
        c.set_error("timeout")
        return False

    def _rto_in(self, now):
        c = self.conn
        if self.state == ESTABLISHED and c.mptcp and len(c.subflows) > 1:
            # a silent failure: the others take its data now, not after more backoff
            if not self.released and self.snd_max > self.snd_una and c.usable_other(self):
                c.reinject(self)
            if self.tries >= STALE_RTOS and not self.stale:
                self.stale = True
                self.ctr[C.SubflowStale] += 1
        if not self.join_acked:
            self.ack_now = True         # resend the MP_JOIN third ACK (RFC 8684 3.2)
            return True
        return False

    # ------------------------------------------------------------ upcalls: input
    def _synack_in(self, buf, seg, now):
        """Our SYN was answered: MP_JOIN's HMAC checked, or MP_CAPABLE's key taken."""
        c = self.conn
        ctr = self.ctr
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
                return False
            ctr[C.MPJoinSynAckRx] += 1
            self.peer_addr_id = mo.addr_id
            self.peer_backup = mo.backup
            self.jhmac = self._join_hmac(20)
            self.join_acked = False
            return True
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
                c.set_peer_key(mo.skey)
                c.mptcp_agreed((mo.flags & MP.CAP_A) != 0)
            else:
                c.mptcp_refused()
                ctr[C.MPCapableFallbackSYNACK] += 1
        return True

    def _third_ack(self, buf, seg, r):
        """SYN-RCVD: the third ACK (MP_JOIN's HMAC, MP_CAPABLE's keys or a fallback)."""
        c = self.conn
        if self.join:
            return self._join_third_ack(buf, seg)
        if c.mptcp:
            mo = self.stack.mo
            ctr = self.ctr
            if (r & 2) and mo.skey is not None and mo.rkey is not None:
                if mo.rkey != c.local_key:
                    ctr[C.TcpInErrsBadMptcp] += 1
                ctr[C.MPCapableACKRX] += 1
                c.set_peer_key(mo.skey)
            else:
                # the third ACK carries no MP_CAPABLE: plain TCP from now on (through
                # fall_back: a checksum negotiated in the SYNs no longer applies)
                c.fall_back(0, self.rcv_nxt)
                ctr[C.MPCapableFallbackACK] += 1
        return True

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

    def _old_data_in(self, buf, seg):
        """An old (duplicate) data segment may carry the peer's infinite mapping (RFC 8684
        3.7): the sender fell back when it sent it, so the receiver must follow even
        though the data itself is not needed."""
        if not self.conn.mptcp or not seg.mp_n:
            return
        mo = self.stack.mo2
        for i in range(seg.mp_n):
            off = seg.mp_off[i]
            if seg.mp_len[i] >= 4 and buf[off + 2] >> 4 == MP.DSS:
                if MP.parse_dss_fast(buf, off, seg.mp_len[i], mo) == 0:
                    self._check_infinite(buf, mo)
                return

    def _dup_in(self, buf, r):
        if r & 1:
            self._check_infinite(buf, self.stack.mo)   # a duplicate may bring the fallback

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

    def _rst_in(self, buf, seg):
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

    def _opts_in(self, buf, seg, now):
        """Parse the MPTCP options; DSS / MP_CAPABLE land in stack.mo. Returns bit 0: a DSS
        was found, bit 1: an MP_CAPABLE with keys, bit 2: the DSS has DATA_FIN; -1: the
        connection ended here (MP_FASTCLOSE)."""
        c = self.conn
        if not c.mptcp or not seg.mp_n:
            return 0
        mo = self.stack.mo
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
                if MP.parse(buf, off, ln, mo2) == 0 and mo2.rkey == c.local_key:
                    self.ctr[C.MPFastcloseRx] += 1
                    self._reset_by_peer(True)
                    self.rst_pending = True     # answer with a RST (RFC 8684 3.5)
                    self.fastclose = False
                    return -1 if c.error is not None and self.state == CLOSED else 0
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
                c.on_mp_fail()
        if c.error is not None and self.state == CLOSED:
            return -1
        if have_dss:
            return 5 if mo.dss_flags & MP.DSS_FIN else 1
        return 2 if have_mpc else 0

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
        """The peer withdraws addresses: their subflows close, their data goes elsewhere.
        Id 0 is the peer's initial address (RFC 8684 3.4.2): the initial subflow and any
        join to that address close, and the path manager no longer joins it."""
        c = self.conn
        now = self.stack.now
        ids = mo.ids
        for k in range(len(ids)):
            self.ctr[C.RmAddr] += 1
            c.addrs.remove_remote(ids[k])
            for sf in c.subflows:
                if sf.peer_addr_id == ids[k] and sf.state != CLOSED:
                    sf.lost(now, True)

    def _ack_in(self, buf, seg, ack, r):
        """DATA_ACK, the MP_JOIN third ACK acknowledged, options stripped (fallback)."""
        c = self.conn
        if not self.join_acked:
            self.join_acked = True      # the peer answered our MP_JOIN third ACK
            if self.snd_max == self.snd_una:
                self.rto_deadline = -1
                self.tries = 0
        if c.mptcp and (r & 1):
            mo = self.stack.mo
            if mo.dss_flags & MP.DSS_ACK:
                if mo.data_ack8:
                    rel = MP.get_rel64(buf, mo.data_ack_off, c.lidsn4)
                else:
                    rel = T.rel32(mo.data_ack_h, mo.data_ack_l, c.lidsn4[2], c.lidsn4[3],
                                  c.data_ack)
                if not c.confirmed:
                    c.peer_confirmed(self.stack.now)
                c.on_data_ack(rel, self.snd_una)      # (also: a DATA_ACK was seen)
        elif c.mptcp and self.client and not r and not c.dss_seen \
                and ack > self.snd_una and ack > 1:
            # our data is acked without any DSS from the peer: options are being
            # stripped; fall back to plain TCP (RFC 8684 3.7). Only the client: a server
            # that got the MP_CAPABLE third ACK is fully established (Linux's
            # check_fully_established) and one stripped ACK must not make it fall back
            # alone while the client, having seen DATA_ACKs, never does.
            c.fall_back(self._peer_delta(), self.rcv_nxt)
            self.ctr[C.DSSFallback] += 1

    def _acked(self):
        if self.stale:
            self.stale = False
            self.ctr[C.SubflowRecover] += 1
        self.conn.release()

    def _wnd_in(self, ack, r):
        c = self.conn
        if c.mptcp and (r & 1):
            e = c.data_ack + self.snd_wnd       # MPTCP: relative to DATA_ACK
        elif not self.join:
            e = ack + self.sb.delta_at(ack, self.tx_delta) + self.snd_wnd
        else:
            return
        if e != c.wnd_end:
            c.send_window(e)    # (only when it moves: not on every data segment received)

    def _peer_delta(self):
        """DSN - SSN of the peer's data (its last mapping), for a fallback we start."""
        return self.map_dsn - self.map_ssn if self.conn.peer_map_seen else 0

    def _data_in(self, buf, mv, seg, seq, s, dlen, r, now):
        """Find the mapping of payload buf[s:s+dlen] (subflow seq), check it, and place the
        data in the connection's receive ring. Returns the bytes placed (0: dropped)."""
        c = self.conn
        ctr = self.ctr
        # find the mapping of this data (relative ssn -> relative dsn)
        if c.mptcp:
            mo = self.stack.mo
            have_dss = (r & 1) != 0
            have_mpc = (r & 2) != 0
            m_ssn = 0
            m_dsn = 0
            m_len = 0
            m_dll = 0
            m_csum = 0
            fin = False
            if have_mpc:
                if c.peer_key is None and mo.skey is not None:
                    c.set_peer_key(mo.skey)
                if mo.dll is not None:
                    m_ssn = 1
                    m_dsn = 1
                    m_len = mo.dll
                    m_dll = mo.dll
                    m_csum = mo.csum if mo.csum is not None else 0
                    have_dss = True
                if not c.confirmed and not self.client:
                    c.peer_confirmed(now)
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
                        return 0        # (reset: no fallback after a join)
            else:
                have_dss = False
            if c.mptcp:
                if have_dss:
                    if c.csum and mo.csum is None and not have_mpc:
                        ctr[C.DataCsumErr] += 1
                        return 0
                    if seq < m_ssn or seq + dlen > m_ssn + m_len:
                        ctr[C.DSSNotMatching] += 1
                        return 0
                    if not c.peer_map_seen:
                        c.mapping_seen()
                    self.map_ssn = m_ssn
                    self.map_dsn = m_dsn
                    self.map_len = m_len
                    if fin:
                        c.data_fin_mapped(m_dsn + m_len)
                    if c.csum and not c.add_pending_map(self, m_ssn, m_dsn, m_len, m_dll, m_csum,
                                                       m_ssn <= self.rcv_nxt):
                        ctr[C.TcpOFODrop] += 1
                        return 0
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
                    return 0
                elif seq == self.rcv_nxt:
                    # in-order data outside every mapping: the peer fell back (e.g. its
                    # data was acked without a DATA_ACK, RFC 8684 3.7). As Linux on a
                    # single subflow (MAPPING_INVALID -> fallback), follow it: the data
                    # continues the data stream where it stands
                    ctr[C.DSSNoMatchTCP] += 1
                    ctr[C.DSSFallback] += 1
                    c.unmapped_in_order(seq)
                else:
                    ctr[C.DSSNoMatchTCP] += 1   # out of order: wait until it is in order
                    return 0
            if c.mptcp:
                dsn = m_dsn + (seq - m_ssn)
            else:
                dsn = seq + c.map_delta
        else:
            dsn = seq + c.map_delta
        if c.app_closed and dsn + dlen > c.rcv_nxt:
            # new data after close(): nobody will read it; reset as Linux does (tcp_reset
            # on data after RCV_SHUTDOWN) rather than let the peer believe it was delivered.
            # (Data the connection already has, reinjected on a new subflow, is no news.)
            self.abort()
            return 0
        # the receive ring bounds the data level (window relative to DATA_ACK)
        lim = c.rcv_read + c.rcv.size - dsn
        if dlen > lim:
            dlen = lim
            if dlen <= 0:
                self.ack_now = True
                return 0
        # the subflow's out-of-order tracking must have room for it
        off = seq - self.rcv_nxt
        if off > 0 and not self.ooo.can_add(off, dlen):
            ctr[C.TcpOFODrop] += 1
            self.ack_now = True
            return 0
        if not c.place(dsn, mv, s, dlen):
            self.ack_now = True
            return 0
        return dlen

    def _data_done(self, seq, dlen, adv, now):
        c = self.conn
        if adv:
            if adv > dlen and not c.mptcp:
                # fallen back: the subflow's out-of-order data (maybe checksummed and
                # never delivered) becomes data-level data as the hole closes
                c.deliver(seq + dlen + c.map_delta, adv - dlen)
            if c.csum and c.mptcp:
                c.verify_maps(self, self.rcv_nxt, now)
                if c.fail_tx:
                    self.ack_now = True
        if c.peer_fin >= 0:
            c.check_fin()
            if c.fin_rcvd:
                self.ack_now = True

    def _data_fin_in(self, buf):
        """A DATA_FIN on a segment without data."""
        c = self.conn
        if not c.mptcp:
            return
        mo = self.stack.mo
        if not (mo.dss_flags & MP.DSS_MAP) or mo.dll != 1:
            return
        c.data_fin_alone(self._peer_dsn(buf, mo))
        self.ack_now = True

    def _fin_in(self, now):
        c = self.conn
        if not c.mptcp or not c.established:
            c.stream_ended()
        elif c.peer_fin < 0:
            if self._others_live():
                # the peer closes this subflow only: its data goes to the others,
                # and we close our side of it
                c.reinject(self)
                self.ctr[C.RmSubflow] += 1
                self.sub_close = True
            else:
                # the only subflow closed without DATA_FIN: nothing more can come
                c.stream_ended()

    # ------------------------------------------------------------ upcalls: output
    def _unwanted(self):
        """A join still trying when the connection is over: drop it."""
        c = self.conn
        return self.join and (c.error is not None or (c.dfin_acked and c.fin_rcvd))

    def _ctl_out(self, now, buf):
        """MP_JOIN's third ACK (alone until acknowledged), MP_FAIL, MP_PRIO / ADD_ADDR
        signalling: each on a pure ACK of its own. > 0: sent, < 0: nothing now."""
        c = self.conn
        if not self.join_acked:
            # MP_JOIN initiator: only the third ACK until the peer acknowledges it
            if self.ack_now:
                if self.rto_deadline < 0:
                    self.rto_deadline = tadd(now, self.rtt.rto)
                return self._out_seg(now, buf, self.snd_max, 0, T.ACK)
            return -1
        if c.fail_tx and c.mptcp and c.established and (c.confirmed or not self.client):
            return self._out_seg(now, buf, self.snd_max, 0, T.ACK)    # carries MP_FAIL
        if (self.prio_tx or c.addrs.pending()) and c.mptcp and c.established \
                and (c.confirmed or not self.client) and self.can_carry():
            # signalling goes on a pure ACK of its own (data segments have no room for it)
            return self._out_seg(now, buf, self.snd_max, 0, T.ACK)
        return 0

    def _dsn_gone(self, dsn, now):
        """A retransmission needs data the ring no longer holds (it was reinjected and
        DATA_ACKed on another subflow): this subflow cannot go on; reset it alone."""
        if dsn < self.conn.snd_base:
            self.rst_reason = MP.RST_UNSPEC
            self.lost(now, True)
            return True
        return False

    def _new_data(self, now, nxt):
        """New data from the connection (its scheduler agreeing): the byte count, the DSN
        in tx_dsn. An MP_CAPABLE client sends one segment until the peer confirms."""
        c = self.conn
        if self.can_carry() and (not c.mptcp or not self.client or c.confirmed
                                 or self.snd_max <= 1):
            avail = c.chunk(self)
            if avail > 0:
                dsn = c.ch_dsn
                if len(c.subflows) == 1 or c.sched is None or c.sched.allows(c, self):
                    n = self._send_room(nxt, avail, c.wnd_end - dsn)
                    if n > 0:
                        c.took(dsn, n, self)
                        self.tx_dsn = dsn
                        return n
                    if self.snd_max == self.snd_una and self.persist_deadline < 0 \
                            and (self.snd_right <= nxt or c.wnd_end <= dsn):
                        self._arm_persist(now)
        return 0

    def _close_out(self, now, buf, nxt, fin_ok):
        """FIN (-1; fallen back: after the data; MPTCP: when both DATA_FINs are done, or
        this subflow alone closes) or our DATA_FIN on a pure ACK."""
        c = self.conn
        if fin_ok:
            if self.sub_close:
                return -1
            if c.fin_queued and c.all_handed_out() and (not c.mptcp or (c.dfin_acked and c.fin_rcvd)):
                return -1
        if c.mptcp and c.fin_queued and not c.dfin_sent and c.all_handed_out() and c.established \
                and self.can_carry():
            c.data_fin_sent(now, self.rtt.rto)
            self.ctr[C.DataFinTx] += 1
            return self._out_seg(now, buf, self.snd_max, 0, T.ACK)
        return 0

    def _opt_room(self, seq):
        """Option bytes a data segment at seq will carry (for the payload size)."""
        c = self.conn
        t = 12 if self.ts_ok else 0
        if not c.established or not c.mptcp:
            return t
        # 28: DSS with 8-byte DATA_ACK and DSN and a checksum; the first segment
        # (MP_CAPABLE+data, 24) is sized the same so that its retransmission
        # with a DSS still fits the MSS
        return t + 28

    def _rcv_window(self):
        c = self.conn
        self.adv_base = c.rcv_nxt
        return c.rcv_window()

    def _syn_opts(self, buf, o):
        c = self.conn
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
        return o

    def _rst_out(self, buf, o):
        c = self.conn
        if self.fastclose and c.peer_key is not None:
            o += MP.put_mp_fastclose(buf, o, c.peer_key)
            self.ctr[C.MPFastcloseTx] += 1
        elif self.rst_reason >= 0:
            o += MP.put_mp_tcprst(buf, o, self.rst_reason)
            self.ctr[C.MPRstTx] += 1
        self.fastclose = False
        self.rst_reason = -1
        return o

    def _sent(self, seq, n, dsn):
        c = self.conn
        f = T.PSH if dsn + n == c.data_end() else 0
        if self.tx_fb:
            self.tx_fb = False
            c.fall_back(self._peer_delta(), self.rcv_nxt)
        return f

    def _seg_opts(self, buf, o, seq, n, flags, dsn, now):
        """The MPTCP options of a segment (and its n payload bytes from DSN dsn): MP_JOIN's
        third ACK, MP_CAPABLE with the first data, else DSS (DATA_ACK, mapping, checksum,
        DATA_FIN), MP_FAIL, MP_PRIO or ADD_ADDR on pure ACKs."""
        c = self.conn
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
                        self.tx_psum = psum
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
                    c.fail_sent()
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
                        self.tx_again = o > o0 and c.addrs.pending()    # one per segment
                if n > 0 and c.infinite_tx:
                    self.ctr[C.InfiniteMapTx] += 1
                    c.infinite_sent(seq)
                    self.tx_fb = True   # (after the segment is in the scoreboard: it holds the ring)
        elif n > 0:
            c.snd.copy_out(dsn - c.snd_base, buf, n, o)
        return o
