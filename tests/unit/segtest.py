"""Segment-level test harness: ONE device Stack, the test plays its peer.

In the style of smoltcp's socket tests: exact segments in, exact segments and
timers out. Only the Stack's packet interface is used (input/output/
next_deadline, connect/listen/accept, the Connection app API, counters), so the
tests survive a rewrite of the core.

Sequence numbers in descriptions are RELATIVE (SYN = 0, first data byte = 1):
  - segments we send: seq relative to the peer's ISN (PEER_ISN), ack relative
    to the device's ISS (learned from its SYN or SYN/ACK), SACK edges relative
    to the device's ISS;
  - segments the device sends: seq relative to its ISS, ack and SACK edges
    relative to PEER_ISN.
MPTCP data sequence numbers are relative to the IDSN of the side whose data
they number (DSN 1 = first data byte): a DATA_ACK we send is relative to the
device's IDSN, a DSN we send to ours, and the other way round for what the
device sends. Runs on CPython and MicroPython (no dataclasses, no f-strings).
"""
from mptcp.stack import Stack
from mptcp import tcpwire as W
from mptcp import mpopts as MP
from mptcp import ipv4
from mptcp import checksum
from mptcp import crypto

FIN = W.FIN
SYN = W.SYN
RST = W.RST
PSH = W.PSH
ACK = W.ACK

DEV_ADDR = bytes([192, 0, 2, 1])
PEER_ADDR = bytes([192, 0, 2, 2])
IFX = 3                     # not 0 and not 1: a wrong ifindex shows
DEV_PORT = 80               # the device's listening port
PEER_PORT = 40000           # the peer's port when the device listens
PEER_ISN = 0xFFFFFF00       # 256 bytes before the 32-bit wrap
PEER_KEY = bytes([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88])
T0 = 1000                   # the test clock starts here (ms)
M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF


def flag_str(f):
    s = ""
    for bit, ch in ((SYN, "S"), (FIN, "F"), (RST, "R"), (PSH, "P"), (ACK, "A")):
        if f & bit:
            s += ch
    return s or "-"


class Mpc:
    """MP_CAPABLE: flags byte, keys (bytes or None), data-level length, checksum.
    csum=True in an expectation: present and correct for the payload."""

    def __init__(self, flags=MP.CAP_H, skey=None, rkey=None, dll=None, csum=None, version=1):
        self.flags = flags
        self.skey = skey
        self.rkey = rkey
        self.dll = dll
        self.csum = csum
        self.version = version

    def key(self):
        return (self.version, self.flags, self.skey, self.rkey, self.dll, self.csum)

    def __eq__(self, o):
        return isinstance(o, Mpc) and self.key() == o.key()

    def __ne__(self, o):
        return not self.__eq__(o)

    def __repr__(self):
        return "Mpc(v%d flags=0x%02x skey=%r rkey=%r dll=%r csum=%r)" % (
            self.version, self.flags, self.skey, self.rkey, self.dll, self.csum)


class Dss:
    """DSS: ack = DATA_ACK, dsn/ssn/dll = mapping (None when absent), fin = DATA_FIN.
    ack8/dsn8: 8-byte fields. csum: None absent, an int exact, True (expectation:
    present and correct; to send: computed)."""

    def __init__(self, ack=None, dsn=None, ssn=None, dll=None, fin=False, csum=None,
                 ack8=True, dsn8=True):
        self.ack = ack
        self.dsn = dsn
        self.ssn = ssn
        self.dll = dll
        self.fin = fin
        self.csum = csum
        self.ack8 = ack8 if ack is not None else False
        self.dsn8 = dsn8 if dsn is not None else False

    def key(self):
        return (self.ack, self.ack8, self.dsn, self.dsn8, self.ssn, self.dll, self.fin, self.csum)

    def __eq__(self, o):
        return isinstance(o, Dss) and self.key() == o.key()

    def __ne__(self, o):
        return not self.__eq__(o)

    def __repr__(self):
        return "Dss(ack=%r%s dsn=%r%s ssn=%r dll=%r fin=%r csum=%r)" % (
            self.ack, "/8" if self.ack8 else "", self.dsn, "/8" if self.dsn8 else "",
            self.ssn, self.dll, self.fin, self.csum)


OPT_NAMES = ("mss", "ws", "sackp", "ts", "sack", "mpc", "dss", "mp_fail", "fastclose",
             "tcprst", "mp_other")


class Seg:
    """A readable segment: relative seq/ack, flags, window (as on the wire), payload,
    options (a dict: mss, ws, sackp, ts=(val, ecr), sack=[(l, r)], mpc=Mpc, dss=Dss,
    mp_fail=relative DSN, fastclose=key, tcprst=(flags, reason), mp_other=[subtypes])."""

    def __init__(self, seq, ack, flags, window, payload=b"", opts=None):
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.window = window
        self.payload = bytes(payload)
        self.opts = opts if opts is not None else {}

    def _okey(self):
        return [(k, self.opts[k]) for k in OPT_NAMES if k in self.opts]

    def __eq__(self, o):
        return (isinstance(o, Seg) and self.seq == o.seq and self.ack == o.ack
                and self.flags == o.flags and self.window == o.window
                and self.payload == o.payload and self._okey() == o._okey())

    def __ne__(self, o):
        return not self.__eq__(o)

    def __repr__(self):
        p = self.payload
        ps = repr(p) if len(p) <= 16 else "<%d bytes %r...>" % (len(p), p[:8])
        return "Seg(seq=%r ack=%r flags=%s win=%r payload=%s opts=%r)" % (
            self.seq, self.ack, flag_str(self.flags), self.window, ps, self._okey())


class Peer:
    """The device stack and the peer's state (the test's side of the connection)."""

    def __init__(self, rcv_buf=8192, snd_buf=8192, mss=1460, seed=7, now=T0, max_conns=2):
        self.st = Stack(snd_buf=snd_buf, rcv_buf=rcv_buf, max_conns=max_conns, seed=seed,
                        mss=mss)
        self.st.add_netif(IFX, DEV_ADDR)
        self.rcv_buf = rcv_buf
        self.now = now
        self.out = bytearray(1600)
        self.inb = bytearray(1600)
        self.irs = PEER_ISN         # the peer's ISN (base of what we send)
        self.iss = None             # the device's ISS (learned from its SYN)
        self.dev_port = DEV_PORT
        self.peer_port = PEER_PORT
        self.conn = None
        self.peer_key = PEER_KEY
        self.peer_idsn = crypto.key_idsn(PEER_KEY)
        self.dev_key = None
        self.dev_idsn = 0
        self.last_ifindex = -1

    def set_dev_key(self, key):
        self.dev_key = bytes(key)
        self.dev_idsn = crypto.key_idsn(self.dev_key)

    def ctr(self, name):
        return self.st.counters.get(name)

    def deadline(self):
        return self.st.next_deadline()


# ---------------------------------------------------------------- building segments
def _pad(buf, o, start):
    while (o - start) & 3:
        buf[o] = W.OPT_NOP
        o += 1
    return o


def build(t, seq, ack=None, flags=ACK, window=None, payload=b"", mss=None, ws=None,
          sackp=False, ts=None, sack=None, mpc=None, dss=None, mp_fail=None,
          fastclose=None, raw_opts=None, sport=None, dport=None, abs_seq=False):
    """One IPv4+TCP packet (bytes) from the peer to the device."""
    b = bytearray(1600)
    o = 40
    if mss is not None:
        o += W.put_mss(b, o, mss)
    if ws is not None:
        o += W.put_nop(b, o)
        o += W.put_wscale(b, o, ws)
    if sackp:
        o += W.put_nops(b, o, 2)
        o += W.put_sackp(b, o)
    if ts is not None:
        o += W.put_nops(b, o, 2)
        o += W.put_ts(b, o, ts[0] & M32, ts[1] & M32)
    if sack:
        o += W.put_nops(b, o, 2)
        edges = []
        for lr in sack:
            edges.append((t.iss + lr[0]) & M32)
            edges.append((t.iss + lr[1]) & M32)
        o += W.put_sack(b, o, edges, len(sack))
    pay = bytes(payload)
    if mpc is not None:
        cs = mpc.csum
        if cs is True:
            # MP_CAPABLE with data: the mapping is DSN IDSN+1, SSN 1
            cs = _dss_csum(t.peer_idsn + 1, 1, mpc.dll, pay)
        o += MP.put_mp_capable(b, o, mpc.flags, mpc.skey, mpc.rkey, mpc.dll, cs, mpc.version)
    if dss is not None:
        f = 0
        if dss.ack is not None:
            f |= MP.DSS_ACK | (MP.DSS_ACK8 if dss.ack8 else 0)
        if dss.dsn is not None:
            f |= MP.DSS_MAP | (MP.DSS_DSN8 if dss.dsn8 else 0)
        if dss.fin:
            f |= MP.DSS_FIN
        da = (t.dev_idsn + dss.ack) & M64 if dss.ack is not None else 0
        dsn = (t.peer_idsn + dss.dsn) & M64 if dss.dsn is not None else 0
        cs = dss.csum
        if cs is True:
            cs = _dss_csum(dsn, dss.ssn, dss.dll, pay)
        o += MP.put_dss(b, o, f, da, dsn, dss.ssn or 0, dss.dll or 0, cs)
    if mp_fail is not None:
        o += MP.put_mp_fail(b, o, (t.dev_idsn + mp_fail) & M64)
    if fastclose is not None:
        o += MP.put_mp_fastclose(b, o, fastclose)
    if raw_opts:
        for x in raw_opts:
            b[o] = x
            o += 1
    o = _pad(b, o, 40)
    assert o - 40 <= 40, "options too long"
    if window is None:
        window = 65535
    s = seq if abs_seq else (t.irs + seq) & M32
    a = 0
    if ack is not None:
        a = (t.iss + ack) & M32 if not abs_seq else ack
    W.write_header(b, 20, sport if sport is not None else t.peer_port,
                   dport if dport is not None else t.dev_port, s, a, flags, window, o - 40)
    n = o + len(pay)
    b[o:n] = pay
    tl = n - 20
    ps = ipv4.pseudo_sum(PEER_ADDR, DEV_ADDR, 6, tl)
    W.set_csum(b, 20, checksum.inet_checksum(b, 20, n, ps))
    ipv4.write(b, 0, PEER_ADDR, DEV_ADDR, 6, tl, 0x1234)
    return bytes(b[:n])


def _dss_csum(dsn64, ssn, dll, pay):
    return checksum.dss_checksum(dsn64 & M64, ssn & M32, dll, pay, 0, len(pay))


def send(t, seq, ack=None, flags=ACK, window=None, payload=b"", **kw):
    """Build a segment (see build) and give it to the device at t.now."""
    pkt = build(t, seq, ack, flags, window, payload, **kw)
    inject(t, pkt)


def inject(t, pkt):
    """Give raw packet bytes to the device at t.now."""
    n = len(pkt)
    t.inb[:n] = pkt
    t.st.input(IFX, t.inb, n, t.now)


# ---------------------------------------------------------------- reading what it sends
def parse(t, pkt):
    """The device's packet (bytes) as a Seg; checks both checksums and addresses."""
    n = len(pkt)
    ip = ipv4.IPv4Header()
    assert ipv4.parse(pkt, n, ip) == 0, "bad IPv4 header"
    assert ip.total == n and ip.proto == 6
    assert pkt[12:16] == DEV_ADDR and pkt[16:20] == PEER_ADDR, "addresses"
    tl = n - 20
    ps = ipv4.pseudo_sum(pkt, pkt, 6, tl, 12, 16)
    assert checksum.ones_sum(pkt, 20, n, ps) == 0xFFFF, "bad TCP checksum"
    seg = W.TcpSegment()
    assert W.parse(pkt, 20, n, seg) == 0, "bad TCP header"
    assert seg.sport == t.dev_port and seg.dport == t.peer_port, "ports %d->%d" % (
        seg.sport, seg.dport)
    flags = seg.flags
    if t.iss is None and flags & SYN:
        t.iss = seg.seq
    base = t.iss if t.iss is not None else 0
    rseq = (seg.seq - base) & M32
    rack = (seg.ack - t.irs) & M32 if flags & ACK else None
    pay = bytes(pkt[seg.data_off:n])
    opts = {}
    if seg.mss:
        opts["mss"] = seg.mss
    if seg.wscale >= 0:
        opts["ws"] = seg.wscale
    if seg.sackp:
        opts["sackp"] = True
    if seg.ts_present:
        opts["ts"] = (seg.ts_val, seg.ts_ecr)
    if seg.sack_n:
        e = seg.sack_blocks
        opts["sack"] = [((e[2 * i] - t.irs) & M32, (e[2 * i + 1] - t.irs) & M32)
                        for i in range(seg.sack_n)]
    mo = MP.MpOptions()
    for i in range(seg.mp_n):
        off = seg.mp_off[i]
        ln = seg.mp_len[i]
        err = MP.parse(pkt, off, ln, mo)
        assert err == 0, "device sent a bad MPTCP option (%d)" % err
        st = mo.subtype
        if st == MP.MP_CAPABLE:
            cs = mo.csum
            if cs is not None and mo.dll is not None and t.dev_key is not None:
                ok = _dss_csum(t.dev_idsn + 1, 1, mo.dll, pay) == cs
                cs = True if ok else cs
            opts["mpc"] = Mpc(mo.flags, mo.skey, mo.rkey, mo.dll, cs, mo.version)
        elif st == MP.DSS:
            f = mo.dss_flags
            d = Dss()
            if f & MP.DSS_ACK:
                d.ack = (mo.data_ack - t.peer_idsn) & (M64 if mo.data_ack8 else M32)
                d.ack8 = mo.data_ack8
            if f & MP.DSS_MAP:
                d.dsn = (mo.dsn - t.dev_idsn) & (M64 if mo.dsn8 else M32)
                d.dsn8 = mo.dsn8
                d.ssn = mo.ssn
                d.dll = mo.dll
                cs = mo.csum
                if cs is not None:
                    dsn64 = (t.dev_idsn + d.dsn) & M64
                    if f & MP.DSS_FIN and mo.dll == len(pay) + 1:
                        ok = True    # DATA_FIN: checked by the caller if it cares
                    else:
                        ok = _dss_csum(dsn64, mo.ssn, mo.dll, pay) == cs
                    cs = True if ok else cs
                d.csum = cs
            d.fin = (f & MP.DSS_FIN) != 0
            opts["dss"] = d
        elif st == MP.MP_FAIL:
            opts["mp_fail"] = (mo.dsn - t.peer_idsn) & M64
        elif st == MP.MP_FASTCLOSE:
            opts["fastclose"] = mo.rkey
        elif st == MP.MP_TCPRST:
            opts["tcprst"] = (mo.flags, mo.reason)
        else:
            opts.setdefault("mp_other", []).append(st)
    return Seg(rseq, rack, flags, seg.window, pay, opts)


def recv(t):
    """The next packet the device sends at t.now, as a Seg (None if none)."""
    n = t.st.output(t.now, t.out)
    assert t.ctr("InternalErrors") == 0, "the stack hit an internal error"
    if not n:
        return None
    t.last_ifindex = t.st.out_ifindex
    assert t.st.out_ifindex == IFX, "sent on ifindex %r" % t.st.out_ifindex
    return parse(t, bytes(t.out[:n]))


def expect(t, seq, ack, flags, window=None, payload=b"", **opts):
    """The device sends exactly this segment now. window None: the whole receive
    buffer (what an idle connection without window scaling advertises)."""
    got = recv(t)
    if window is None:
        window = t.rcv_buf if t.rcv_buf <= 0xFFFF else 0xFFFF
    want = Seg(seq, ack, flags, window, payload, opts)
    assert got is not None, "nothing sent; wanted %r" % want
    assert got == want, "\n got  %r\n want %r" % (got, want)
    return got


def expect_nothing(t):
    got = recv(t)
    assert got is None, "unexpected %r" % got


def drain(t):
    """Every segment the device sends now (a list)."""
    r = []
    while True:
        s = recv(t)
        if s is None:
            return r
        r.append(s)
        assert len(r) < 200, "the device does not stop sending"


def expect_deadline(t, when):
    d = t.st.next_deadline()
    assert d == when, "next_deadline %r, wanted %r (now %r)" % (d, when, t.now)


def at(t, when):
    """Advance the clock to `when` (never backwards)."""
    assert when >= t.now
    t.now = when


# ---------------------------------------------------------------- opening connections
def passive_open(t, mss=1460, ws=None, sackp=False, ts=None, window=65535, mptcp=False,
                 csum=False, listen_mptcp=None):
    """The device listens; we send SYN (seq 0) and get its SYN/ACK. Returns the SYN/ACK."""
    t.st.listen(t.dev_port, mptcp=mptcp if listen_mptcp is None else listen_mptcp, csum=csum)
    mpc = None
    if mptcp:
        mpc = Mpc(MP.CAP_H | (MP.CAP_A if csum else 0))
    send(t, 0, None, SYN, window, mss=mss, ws=ws, sackp=sackp, ts=ts, mpc=mpc)
    s = recv(t)
    assert s is not None and s.flags == SYN | ACK, s
    if "mpc" in s.opts and s.opts["mpc"].skey is not None:
        t.set_dev_key(s.opts["mpc"].skey)
    return s


def establish_passive(t, window=65535, **kw):
    """passive_open + our ACK (seq 1, ack 1); returns the accepted Connection."""
    passive_open(t, window=window, **kw)
    mpc = None
    if kw.get("mptcp"):
        mpc = Mpc(MP.CAP_H | (MP.CAP_A if kw.get("csum") else 0), t.peer_key, t.dev_key)
    ts = kw.get("ts")
    send(t, 1, 1, ACK, window, ts=ts, mpc=mpc)
    c = t.st.accept()
    assert c is not None and c.state == "ESTABLISHED"
    t.conn = c
    return c


def active_open(t, mptcp=False, csum=False):
    """The device connects to us; returns (connection, its SYN)."""
    c = t.st.connect(t.now, PEER_ADDR, DEV_PORT, mptcp=mptcp, csum=csum)
    assert c is not None
    t.conn = c
    n = t.st.output(t.now, t.out)
    assert n > 0 and t.st.out_ifindex == IFX
    pkt = bytes(t.out[:n])
    seg = W.TcpSegment()
    W.parse(pkt, 20, n, seg)
    # the device chose its port: from now on it is the "device port"
    t.dev_port = seg.sport
    t.peer_port = DEV_PORT
    return c, parse(t, pkt)


def establish_active(t, mss=1460, ws=None, sackp=False, ts=None, window=65535):
    """The device connects; we answer SYN/ACK; it ACKs. Returns the connection."""
    c, syn = active_open(t)
    send(t, 0, 1, SYN | ACK, window, mss=mss, ws=ws, sackp=sackp, ts=ts)
    s = recv(t)
    assert s is not None and s.flags == ACK and s.seq == 1 and s.ack == 1, s
    assert c.state == "ESTABLISHED"
    return c


def write_all(c, data):
    n = c.write(data)
    assert n == len(data), "send ring took %d of %d" % (n, len(data))


def read_all(c, n=65536):
    b = bytearray(n)
    k = c.readinto(memoryview(b))
    return bytes(b[:k])


def pattern(n, start=0):
    """n bytes of a recognisable pattern (byte i = (start + i) * 7 mod 251)."""
    return bytes(((start + i) * 7) % 251 for i in range(n))
