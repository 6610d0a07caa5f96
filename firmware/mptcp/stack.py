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
from mptcp.tcp import Subflow, CLOSED, SYN_SENT
from mptcp.ticks import MASK as TMASK, earlier

EPHEMERAL_LO = const(49152)
CHALLENGE_PER_SEC = const(10)
SUBFLOW_OOO_SLOTS = const(4)


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
                 strict=None):
        if strict is not None:
            self.strict = strict
        self.snd_buf = snd_buf
        self.rcv_buf = rcv_buf
        self.max_conns = max_conns
        self.mss = mss
        self.counters = Counters()
        self.ctr = self.counters.v
        self.prng = _Prng(seed) if seed is not None else None
        self.netifs = []            # [ifindex, addr4, up]
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

    def add_netif(self, ifindex, addr4):
        for nf in self.netifs:
            if nf[0] == ifindex:
                nf[1] = bytes(addr4)
                nf[2] = True
                return
        self.netifs.append([ifindex, bytes(addr4), True])

    def netif_down(self, ifindex):
        """A link says it went down (PPP lost carrier, Wi-Fi disassociated): its subflows
        are failed at once, without waiting for an RTO. `add_netif` brings it back."""
        for nf in self.netifs:
            if nf[0] == ifindex:
                nf[2] = False

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
            c.accepted = True
            return c
        return None

    def _new_conn(self, mptcp, csum, ifindex, laddr, raddr, lport, rport, client, now):
        c = Connection(self, self.snd_buf, self.rcv_buf, mptcp, csum)
        sf = Subflow(c, self, ifindex, laddr, raddr, lport, rport, self._rand32(), self.mss, client)
        sf.ooo = Assembler(SUBFLOW_OOO_SLOTS)
        sf.set_rcv_wscale(self.rcv_buf)
        c.sf = sf
        c.subflows.append(sf)
        if mptcp:
            c.local_key = self._new_key()
            c.token = crypto.key_token(c.local_key)
            c.set_local_idsn(crypto.key_idsn(c.local_key))
        self.conns.append(c)
        return c

    def set_peer_key(self, c, key):
        c.peer_key = bytes(key)
        c.set_peer_idsn(crypto.key_idsn(c.peer_key))

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
                if c.sf.lport == p:
                    used = True
                    break
            if not used:
                return p
        return self.next_port

    def conn_ready(self, c):
        """A passive connection finished its handshake: queue it for accept()."""
        if not c.accepted and c not in self.accept_q:
            self.accept_q.append(c)

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
        # demux: the last connection that got a segment first (bulk transfers)
        c = self.last
        if c is None or not _owns(c.sf, buf, seg, laddr):
            c = None
            for x in self.conns:
                if _owns(x.sf, buf, seg, laddr):
                    c = x
                    self.last = x
                    break
        if c is not None:
            if buf is not self._in_buf:     # the runtime reuses one buffer
                self._in_buf = buf
                self._in_mv = memoryview(buf)
            c.sf.input(buf, self._in_mv, seg, now)
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

    def _passive_open(self, ifindex, buf, seg, laddr, l, now):
        ctr = self.ctr
        self._reap()
        if len(self.conns) >= self.max_conns:
            ctr[C.ListenOverflows] += 1
            return
        mptcp = False
        csum = l[2]
        mo = self.mo
        for i in range(seg.mp_n):
            if seg.mp_len[i] >= 3 and buf[seg.mp_off[i] + 2] >> 4 == MP.MP_JOIN:
                # a join needs a path manager this core does not have yet:
                # refuse it rather than open a plain connection (RFC 8684 3.2)
                ctr[C.MPJoinSynRx] += 1
                self.send_rst_for(buf, seg, None, ifindex)
                return
        if l[1]:
            for i in range(seg.mp_n):
                off = seg.mp_off[i]
                if seg.mp_len[i] == 4 and buf[off + 2] >> 4 == MP.MP_CAPABLE:
                    if MP.parse(buf, off, 4, mo) == 0 and mo.version == 1:
                        mptcp = True
                        if mo.flags & MP.CAP_A:
                            csum = True
                    break
        c = self._new_conn(mptcp, l[2], ifindex, laddr, bytes(buf[12:16]), seg.dport,
                           seg.sport, False, now)
        if mptcp:
            ctr[C.MPCapableSYNRX] += 1
            c.csum = csum
        c.sf.take_syn(seg)
        ctr[C.TcpPassiveOpens] += 1

    # ------------------------------------------------------------ RST / challenge ACK
    def send_rst_for(self, buf, seg, sf, ifindex=0):
        """Queue a RST answering segment `seg` (RFC 9293 3.10.7.1)."""
        if self.rst:
            return
        self.rst = True
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
        T.write_header(out, 20, self.rst_sport, self.rst_dport, self.rst_seq, self.rst_ack,
                       self.rst_flags, 0, 0)
        ps = ipv4.pseudo_sum(self.rst_src, self.rst_dst, 6, 20)
        T.set_csum(out, 20, checksum.inet_checksum(out, 20, 40, ps))
        self.ident = (self.ident + 1) & 0xFFFF
        ipv4.write(out, 0, self.rst_src, self.rst_dst, 6, 20, self.ident)
        self.ctr[C.TcpOutRsts] += 1
        self.ctr[C.TcpOutSegs] += 1
        self.out_ifindex = self.rst_if
        return 40

    # ------------------------------------------------------------ output / timers
    def _reap(self):
        i = 0
        cs = self.conns
        while i < len(cs):
            sf = cs[i].sf
            if sf.state == CLOSED and not sf.rst_pending:
                if cs[i] is self.last:
                    self.last = None
                cs.pop(i)
            else:
                i += 1

    def timers(self, now):
        for c in self.conns:
            c.sf.timers(now)

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
            sf = cs[j].sf
            n = sf.output(now, out)
            if n:
                self.rr = j + 1
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
        d = -1
        for c in self.conns:
            d = earlier(d, c.sf.next_deadline(now))
        return d
