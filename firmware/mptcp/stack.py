"""The sans-IO stack: demultiplexes packets to connections, runs their timers.

`input(ifindex, buf, n, now)` takes one IPv4 packet and never raises;
`output(now, out)` writes at most one packet; `next_deadline()` says when to
call again. No sockets, clocks or select here (see docs/ARCHITECTURE.md).
"""
from mptcp.compat import const
from mptcp import ipv4
from mptcp import tcpwire as T
from mptcp import mpopts as MP
from mptcp import checksum
from mptcp import crypto
from mptcp import counters as C
from mptcp.counters import Counters
from mptcp.errors import E_NOTV4, E_BADOPT
from mptcp.assembler import Assembler
from mptcp.connection import Connection, M64
from mptcp.tcp import CLOSED, SYN_SENT, ESTABLISHED
from mptcp.subflow import Subflow
from mptcp.ticks import MASK as TMASK, earlier
from mptcp.sched import by_name as sched_by_name
from mptcp.pm import PathManager

EPHEMERAL_LO = const(49152)
CHALLENGE_PER_SEC = const(10)
SUBFLOW_OOO_SLOTS = const(4)
MAX_SUBFLOWS = const(4)        # per connection, like Linux's `ip mptcp limits subflows`


class _Prng:
    """xorshift32 for deterministic tests (seed given); else os.urandom."""

    def __init__(self, seed):
        self.s = (seed * 2654435761 + 1) & 0xFFFFFFFF or 1

    def u32(self):
        x = self.s
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.s = x
        return x


def _owns(sf, buf, seg, laddr):
    """The live subflow `sf` is the one segment `seg` (in buf) is for."""
    return (sf.lport == seg.dport and sf.rport == seg.sport and sf.state != CLOSED
            and sf.laddr == laddr and ipv4.addr_eq(buf, 12, sf.raddr))


class Stack:
    # strict: an internal exception propagates instead of being counted (InternalErrors)
    # and swallowed. The test runners set Stack.strict = True for the whole suite, so a
    # bug fails the test that hit it; a device keeps running (the default).
    strict = False

    def __init__(self, snd_buf=32768, rcv_buf=32768, max_conns=2, seed=None, mss=1460,
                 strict=None, max_subflows=MAX_SUBFLOWS, scheduler="minrtt"):
        if strict is not None:
            self.strict = strict
        self.max_subflows = max_subflows
        self.sched = sched_by_name(scheduler)
        self.pm = PathManager(self)
        self.snd_buf = snd_buf
        self.rcv_buf = rcv_buf
        self.max_conns = max_conns
        self.mss = mss
        self.counters = Counters()
        self.ctr = self.counters.v
        self.prng = _Prng(seed) if seed is not None else None
        self.netifs = []            # [ifindex, addr4, up, backup]
        self.blocked_ifs = []       # links whose transmit queue is full (set_blocked)
        self.conns = []
        self.listeners = []         # [port, mptcp, csum]
        self.accept_q = []
        self.ip = ipv4.IPv4Header()
        self.seg = T.TcpSegment()
        self.mo = MP.MpOptions()
        self.mo2 = MP.MpOptions()
        self.ident = 0
        self.now = 0                # the last `now` (a tick) given to input/output
        self._in_buf = None
        self.last = None            # connection of the last segment in (demux cache)
        self._in_mv = None
        self.out_ifindex = 0
        self.rr = 0
        self.next_port = EPHEMERAL_LO + (self._rand32() & 0x3FFF)
        self.chal_sec = -1
        self.chal_n = 0
        # one pending stack-level RST (no socket / bad ACK in SYN_SENT)
        self.rst = False
        self.rst_if = 0
        self.rst_src = b"\0\0\0\0"
        self.rst_dst = b"\0\0\0\0"
        self.rst_sport = 0
        self.rst_dport = 0
        self.rst_seq = 0
        self.rst_ack = 0
        self.rst_flags = 0
        self.rst_reason = -1        # MP_TCPRST reason on it (-1: none)

    # ------------------------------------------------------------ setup
    def _rand32(self):
        if self.prng is not None:
            return self.prng.u32()
        return int.from_bytes(crypto.new_key()[:4], "big")

    def _new_key(self):
        if self.prng is None:
            return crypto.new_key()
        b = bytearray(8)
        a = self.prng.u32()
        c = self.prng.u32()
        for i in range(4):
            b[i] = (a >> (8 * i)) & 0xFF
            b[4 + i] = (c >> (8 * i)) & 0xFF
        return bytes(b)

    def add_netif(self, ifindex, addr4, backup=False, up=True):
        """A link with an address (again: up, maybe with a new address after a re-dial).
        backup: subflows on it are joined with the B flag (used only when no other can).
        up=False: known but not usable yet (an LTE link still dialling)."""
        addr4 = bytes(addr4)
        if not up:
            for nf in self.netifs:
                if nf[0] == ifindex:
                    return
            self.netifs.append([ifindex, addr4, False, backup])
            return
        for nf in self.netifs:
            if nf[0] == ifindex:
                if nf[1] != addr4:
                    self._fail_subflows(ifindex, nf[1])   # the old address is gone
                nf[1] = addr4
                nf[2] = True
                nf[3] = backup
                self._set_link(ifindex, True)
                self.pm.link_up(ifindex, self.now)
                return
        self.netifs.append([ifindex, addr4, True, backup])
        self.pm.link_up(ifindex, self.now)

    def netif_down(self, ifindex):
        """A link says it went down (PPP lost carrier, Wi-Fi disassociated): its MPTCP
        subflows are failed at once and their data goes to the other subflows, without
        waiting for an RTO. `add_netif` brings it back (the path manager re-joins)."""
        for nf in self.netifs:
            if nf[0] == ifindex:
                nf[2] = False
                self.ctr[C.LinkDown] += 1
                self._set_link(ifindex, False)
                self._fail_subflows(ifindex, None, nf[1])
                self.pm.link_down(ifindex, self.now)

    def set_blocked(self, ifindex, blocked):
        """The link's transmit queue is full (True) or has room again: its subflows send
        nothing meanwhile and the scheduler gives new data to the others."""
        bl = self.blocked_ifs
        if blocked and ifindex not in bl:
            bl.append(ifindex)
        elif not blocked and ifindex in bl:
            bl.remove(ifindex)
        for c in self.conns:
            for sf in c.subflows:
                if sf.ifindex == ifindex:
                    sf.blocked = blocked

    def _set_link(self, ifindex, up):
        for c in self.conns:
            for sf in c.subflows:
                if sf.ifindex == ifindex:
                    sf.link_up = up

    def _fail_subflows(self, ifindex, addr, own=None):
        """Lose the established MPTCP subflows on ifindex (with local address addr if
        given), or with the link's own address `own` (a subflow is the link's by its
        address too). Plain TCP connections keep theirs: they may survive an outage."""
        now = self.now
        for c in self.conns:
            if not c.mptcp or c.peer_key is None:
                continue
            for sf in c.subflows:
                if (sf.ifindex == ifindex or sf.laddr == own) and sf.state != CLOSED \
                        and (addr is None or sf.laddr == addr) \
                        and (sf.state >= ESTABLISHED or sf.join):
                    sf.lost(now, False)

    def is_up(self, ifindex):
        for nf in self.netifs:
            if nf[0] == ifindex:
                return nf[2]
        return False

    def _addr_of(self, ifindex):
        for nf in self.netifs:
            if nf[0] == ifindex:
                return nf[1]
        return self.netifs[0][1] if self.netifs else None

    def listen(self, port, mptcp=True, csum=False):
        for l in self.listeners:
            if l[0] == port:
                l[1] = mptcp
                l[2] = csum
                return
        self.listeners.append([port, mptcp, csum])

    def accept(self):
        if self.accept_q:
            c = self.accept_q.pop(0)
            c.app_accepted()
            return c
        return None

    def _new_subflow(self, c, ifindex, laddr, raddr, lport, rport, client):
        sf = Subflow(c, self, ifindex, laddr, raddr, lport, rport, self._rand32(), self.mss, client)
        sf.ooo = Assembler(SUBFLOW_OOO_SLOTS)
        sf.set_rcv_wscale(self.rcv_buf)
        sf.link_up = self.is_up(ifindex)
        sf.blocked = ifindex in self.blocked_ifs
        c.subflows.append(sf)
        return sf

    def _nonce(self):
        x = self._rand32()
        return bytes([(x >> 24) & 0xFF, (x >> 16) & 0xFF, (x >> 8) & 0xFF, x & 0xFF])

    def _addr_id(self, c, ifindex, laddr):
        """Address id of a local address in c: 0 for the initial subflow's (RFC 8684 3.2),
        else the netif's position + 1."""
        if laddr == c.sf.laddr:
            return 0
        for i in range(len(self.netifs)):
            if self.netifs[i][1] == laddr:
                return i + 1
        return len(self.netifs) + 1

    def _is_backup(self, ifindex):
        for nf in self.netifs:
            if nf[0] == ifindex:
                return nf[3]
        return False

    def join(self, c, ifindex, now, raddr=None, rport=0):
        """Open an MP_JOIN subflow of connection c from link ifindex to raddr:rport (default:
        the initial subflow's peer) (the path manager)."""
        laddr = self._addr_of(ifindex)
        if raddr is None:
            raddr = c.sf.raddr
            rport = c.sf.rport
        self._drop_closed(c)
        sf = self._new_subflow(c, ifindex, laddr, raddr, self._free_port(raddr, rport),
                               rport, True)
        sf.join = True
        c.join_started()
        sf.lnonce = self._nonce()
        sf.addr_id = self._addr_id(c, ifindex, laddr)
        sf.backup = self._is_backup(ifindex)
        self.ctr[C.TcpActiveOpens] += 1
        return sf

    def _drop_closed(self, c):
        """Forget c's closed subflows (not the initial one: tests and the app read it)."""
        subs = c.subflows
        i = 1
        while i < len(subs):
            sf = subs[i]
            if sf.state == CLOSED and not sf.rst_pending:
                if sf is self.last:
                    self.last = None
                c.subflow_dropped(sf)
                subs.pop(i)
            else:
                i += 1

    def _new_conn(self, mptcp, csum, ifindex, laddr, raddr, lport, rport, client, now):
        c = Connection(self, self.snd_buf, self.rcv_buf, mptcp, csum, client, self.sched)
        sf = self._new_subflow(c, ifindex, laddr, raddr, lport, rport, client)
        c.sf = sf
        sf.backup = self._is_backup(ifindex)
        if mptcp:
            self._keys(c)
        self.conns.append(c)
        return c

    def _keys(self, c):
        """A local key whose token no other connection has (an MP_JOIN names its connection
        by token: RFC 8684 2.2; Linux's mptcp_token_new_connect draws again too)."""
        while True:
            key = self._new_key()
            token = crypto.key_token(key)
            clash = False
            for x in self.conns:
                if x is not c and x.mptcp and x.token == token:
                    clash = True
            if not clash:
                break
            self.counters.v[C.TokenCollision] += 1
        c.set_local_key(key, token)

    def set_peer_key(self, c, key):
        """(Tests: the connection takes the peer's key itself, Connection.set_peer_key.)"""
        c.set_peer_key(key)

    def connect(self, now, dst4, dport, ifindex=0, mptcp=True, csum=False):
        if not self.netifs:
            return None
        if ifindex == 0:
            ifindex = self.netifs[0][0]
        self._reap()
        if len(self.conns) >= self.max_conns:
            return None
        laddr = self._addr_of(ifindex)
        lport = self._free_port(dst4, dport)
        c = self._new_conn(mptcp, csum, ifindex, laddr, bytes(dst4), lport, dport, True, now)
        self.ctr[C.TcpActiveOpens] += 1
        return c

    def _free_port(self, dst4, dport):
        for _ in range(0x4000):
            p = self.next_port
            self.next_port = p + 1 if p < 65535 else EPHEMERAL_LO
            used = False
            for c in self.conns:
                for sf in c.subflows:
                    if sf.lport == p:
                        used = True
            if not used:
                return p
        return self.next_port

    def conn_ready(self, c):
        """A passive connection finished its handshake: queue it for accept(); with MPTCP
        the path manager announces our other addresses."""
        if not c.accepted and c not in self.accept_q:
            self.accept_q.append(c)
        if c.mptcp and c.peer_key is not None:
            self.pm.established_passive(c, self.now)

    def set_backup(self, ifindex, flag):
        """Mark a link backup (or not): its subflows tell the peer with MP_PRIO."""
        for nf in self.netifs:
            if nf[0] == ifindex:
                nf[3] = flag
        for c in self.conns:
            for sf in c.subflows:
                if sf.ifindex == ifindex and not sf.is_closed():
                    sf.set_backup(flag)

    # ------------------------------------------------------------ input
    def input(self, ifindex, buf, n, now):
        """One whole IPv4 packet in buf[0:n]. Never raises."""
        try:
            self._input(ifindex, buf, n, now)
        except Exception:   # last resort: a bug must not kill the device
            self.ctr[C.InternalErrors] += 1
            if self.strict:
                raise

    def _input(self, ifindex, buf, n, now):
        ctr = self.ctr
        self.now = now
        ctr[C.IpInReceives] += 1
        ip = self.ip
        err = ipv4.parse(buf, n, ip)
        if err != 0:
            ctr[C.IpInNotV4 if err == E_NOTV4 else C.IpInHdrErrors] += 1
            return
        if ip.proto != 6:
            ctr[C.IpInUnknownProtos] += 1
            return
        laddr = None
        for nf in self.netifs:
            if ipv4.addr_eq(buf, 16, nf[1]):
                laddr = nf[1]
                break
        if laddr is None:
            ctr[C.IpInAddrErrors] += 1
            return
        hl = ip.hlen
        tot = ip.total
        if checksum.ones_sum(buf, hl, tot, ipv4.pseudo_sum(buf, buf, 6, tot - hl, 12, 16)) != 0xFFFF:
            ctr[C.TcpInCsumErrors] += 1
            return
        seg = self.seg
        err = T.parse(buf, hl, tot, seg)
        if err != 0:
            ctr[C.TcpInErrs] += 1
            if err == E_BADOPT:
                ctr[C.TcpInErrsBadOpt] += 1
            return
        ctr[C.TcpInSegs] += 1
        # demux over every subflow: the last one that got a segment first (bulk transfers)
        sf = self.last
        if sf is None or not _owns(sf, buf, seg, laddr):
            sf = None
            for x in self.conns:
                for y in x.subflows:
                    if _owns(y, buf, seg, laddr):
                        sf = y
                        self.last = y
                        break
                if sf is not None:
                    break
        if sf is not None:
            if buf is not self._in_buf:     # the runtime reuses one buffer
                self._in_buf = buf
                self._in_mv = memoryview(buf)
            sf.input(buf, self._in_mv, seg, now)
            return
        flags = seg.flags
        if (flags & (T.SYN | T.ACK | T.RST)) == T.SYN:
            for l in self.listeners:
                if l[0] == seg.dport:
                    self._passive_open(ifindex, buf, seg, laddr, l, now)
                    return
        ctr[C.DroppedNoSocket] += 1
        if not (flags & T.RST):
            self.send_rst_for(buf, seg, None, ifindex)

    def _passive_join(self, ifindex, buf, seg, laddr, k, now):
        """An MP_JOIN SYN (RFC 8684 3.2): a new subflow of the connection its token names,
        or a RST with MP_TCPRST (unknown token, too many subflows, bad option)."""
        ctr = self.ctr
        ctr[C.MPJoinSynRx] += 1
        mo = self.mo
        c = None
        if seg.mp_len[k] == 12 and MP.parse(buf, seg.mp_off[k], 12, mo) == 0:
            for x in self.conns:
                if x.token == mo.token and x.mptcp and x.peer_key is not None and x.error is None:
                    c = x
                    break
            if c is None:
                ctr[C.MPJoinNoTokenFound] += 1
                self.send_rst_for(buf, seg, None, ifindex, MP.RST_MPTCP)
                return
        else:
            ctr[C.TcpInErrsBadMptcp] += 1
            self.send_rst_for(buf, seg, None, ifindex, MP.RST_MPTCP)
            return
        if c.live_count() >= self.max_subflows or not c.mptcp:
            ctr[C.MPJoinRejected] += 1
            self.send_rst_for(buf, seg, None, ifindex, MP.RST_RESOURCES)
            return
        self._drop_closed(c)
        sf = self._new_subflow(c, ifindex, laddr, bytes(buf[12:16]), seg.dport, seg.sport, False)
        sf.join = True
        c.join_started()
        sf.rnonce = mo.nonce
        sf.peer_addr_id = mo.addr_id
        sf.peer_backup = mo.backup
        sf.lnonce = self._nonce()
        sf.addr_id = self._addr_id(c, ifindex, laddr)
        sf.backup = self._is_backup(ifindex)
        sf.jhmac = sf._join_hmac(8)
        sf.take_syn(seg)
        ctr[C.TcpPassiveOpens] += 1

    def _passive_open(self, ifindex, buf, seg, laddr, l, now):
        ctr = self.ctr
        mptcp = False
        peer_csum = False
        mo = self.mo
        for i in range(seg.mp_n):
            if seg.mp_len[i] >= 3 and buf[seg.mp_off[i] + 2] >> 4 == MP.MP_JOIN:
                if l[1]:
                    self._passive_join(ifindex, buf, seg, laddr, i, now)
                else:
                    self.send_rst_for(buf, seg, None, ifindex)
                return
        self._reap()
        if len(self.conns) >= self.max_conns:
            ctr[C.ListenOverflows] += 1
            return
        if l[1]:
            for i in range(seg.mp_n):
                off = seg.mp_off[i]
                if seg.mp_len[i] == 4 and buf[off + 2] >> 4 == MP.MP_CAPABLE:
                    if MP.parse(buf, off, 4, mo) == 0 and mo.version == 1:
                        mptcp = True
                        peer_csum = (mo.flags & MP.CAP_A) != 0
                    break
        c = self._new_conn(mptcp, l[2], ifindex, laddr, bytes(buf[12:16]), seg.dport,
                           seg.sport, False, now)
        if mptcp:
            ctr[C.MPCapableSYNRX] += 1
            c.mptcp_agreed(peer_csum)
        c.sf.take_syn(seg)
        ctr[C.TcpPassiveOpens] += 1

    # ------------------------------------------------------------ RST / challenge ACK
    def send_rst_for(self, buf, seg, sf, ifindex=0, reason=-1):
        """Queue a RST answering segment `seg` (RFC 9293 3.10.7.1); with MP_TCPRST when
        reason >= 0."""
        if self.rst:
            return
        self.rst = True
        self.rst_reason = reason
        self.rst_if = sf.ifindex if sf is not None else ifindex
        self.rst_src = bytes(buf[16:20])
        self.rst_dst = bytes(buf[12:16])
        self.rst_sport = seg.dport
        self.rst_dport = seg.sport
        if seg.flags & T.ACK:
            self.rst_seq = seg.ack
            self.rst_ack = 0
            self.rst_flags = T.RST
        else:
            ln = seg.data_len
            if seg.flags & T.SYN:
                ln += 1
            if seg.flags & T.FIN:
                ln += 1
            self.rst_seq = 0
            self.rst_ack = (seg.seq + ln) & 0xFFFFFFFF
            self.rst_flags = T.RST | T.ACK

    def challenge_ack(self, sf, now):
        # at most CHALLENGE_PER_SEC per second (RFC 5961 7), a window starting at chal_sec
        if self.chal_sec < 0 or ((now - self.chal_sec) & TMASK) >= 1000:
            self.chal_sec = now
            self.chal_n = 0
        if self.chal_n >= CHALLENGE_PER_SEC:
            self.ctr[C.ChallengeAcksLimited] += 1
            return
        self.chal_n += 1
        self.ctr[C.ChallengeAcks] += 1
        sf.ack_now = True

    def _out_rst(self, out):
        self.rst = False
        ol = 0
        if self.rst_reason >= 0:
            ol = MP.put_mp_tcprst(out, 40, self.rst_reason)
            self.ctr[C.MPRstTx] += 1
        T.write_header(out, 20, self.rst_sport, self.rst_dport, self.rst_seq, self.rst_ack,
                       self.rst_flags, 0, ol)
        tl = 20 + ol
        ps = ipv4.pseudo_sum(self.rst_src, self.rst_dst, 6, tl)
        T.set_csum(out, 20, checksum.inet_checksum(out, 20, 20 + tl, ps))
        self.ident = (self.ident + 1) & 0xFFFF
        ipv4.write(out, 0, self.rst_src, self.rst_dst, 6, tl, self.ident)
        self.ctr[C.TcpOutRsts] += 1
        self.ctr[C.TcpOutSegs] += 1
        self.out_ifindex = self.rst_if
        return 20 + tl

    # ------------------------------------------------------------ output / timers
    def _reap(self):
        i = 0
        cs = self.conns
        while i < len(cs):
            c = cs[i]
            gone = c.orphan_deadline < 0
            if gone:
                for sf in c.subflows:
                    if sf.state != CLOSED or sf.rst_pending:
                        gone = False
                        break
            if gone:
                for sf in c.subflows:
                    if sf is self.last:
                        self.last = None
                cs.pop(i)
            else:
                i += 1

    def timers(self, now):
        for c in self.conns:
            c.timers(now)
            for sf in c.subflows:
                sf.timers(now)
        self.pm.poll(now)

    def output(self, now, out):
        """Write one packet into out (a bytearray/memoryview of >= MTU bytes)."""
        try:
            return self._output(now, out)
        except Exception:
            self.ctr[C.InternalErrors] += 1
            if self.strict:
                raise
            return 0

    def _output(self, now, out):
        self.now = now
        if self.rst:
            return self._out_rst(out)
        cs = self.conns
        k = len(cs)
        if k == 0:
            return 0
        self.timers(now)
        for i in range(k):
            j = (self.rr + i) % k
            c = cs[j]
            subs = c.subflows
            m = len(subs)
            for h in range(m):
                sf = subs[(c.out_rr + h) % m]
                n = sf.output(now, out)
                if n:
                    self.rr = j + 1
                    c.out_rr = (c.out_rr + h + 1) % m
                    self.out_ifindex = sf.ifindex
                    return n
        self._reap()
        return 0

    def next_deadline(self):
        """When to call output() next: a tick (mptcp.ticks; the last `now` given when
        something is to be sent at once), or -1 when no timer runs."""
        now = self.now
        if self.rst:
            return now
        d = self.pm.next_deadline()
        for c in self.conns:
            d = earlier(d, c.next_deadline())
            for sf in c.subflows:
                d = earlier(d, sf.next_deadline(now))
        return d
