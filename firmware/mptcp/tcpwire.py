"""TCP header and option codec (RFC 9293, 7323, 2018), zero-copy.

`parse(buf, off, end, seg)` reads the header at buf[off:end] by index into a
reusable `TcpSegment`; MPTCP options (kind 30) are only located
(`mp_off[i]`/`mp_len[i]`, i < mp_n, offset of the kind byte) and left for
`mpopts.parse(buf, seg.mp_off[i], seg.mp_len[i], mo)`.
The checksum is not checked here: the caller sums the segment with
`checksum` and `ipv4.pseudo_sum`. Writers put bytes at an offset and return
how many they wrote; padding/alignment is the caller's choice (`put_nop`).
"""
from mptcp.compat import const
from mptcp.errors import OK, E_SHORT, E_BADLEN, E_BADOPT

FIN = const(0x01)
SYN = const(0x02)
RST = const(0x04)
PSH = const(0x08)
ACK = const(0x10)
URG = const(0x20)
ECE = const(0x40)
CWR = const(0x80)

HLEN = const(20)
OPT_EOL = const(0)
OPT_NOP = const(1)
OPT_MSS = const(2)
OPT_WS = const(3)
OPT_SACKP = const(4)
OPT_SACK = const(5)
OPT_TS = const(8)
OPT_MPTCP = const(30)

MAX_MP = const(4)       # MPTCP options remembered per segment
MAX_SACK = const(4)     # SACK blocks remembered per segment


class TcpSegment:
    """Result of `parse`; one instance is reused for every segment."""

    def __init__(self):
        self.sport = 0
        self.dport = 0
        # sequence and acknowledgment numbers as 16-bit halves: a raw 32-bit
        # value would be a heap object on 32-bit boards (`seq`/`ack` build it)
        self.seq_h = 0
        self.seq_l = 0
        self.ack_h = 0
        self.ack_l = 0
        self.flags = 0
        self.window = 0
        self.csum = 0
        self.urg = 0
        self.hlen = 0          # header length incl. options (bytes)
        self.data_off = 0      # absolute offset of the payload in buf
        self.data_len = 0
        self.clear_opts()
        # SACK edges [left0, right0, left1, ...] as 16-bit halves (see `sack_blocks`)
        self.sack_h = [0, 0, 0, 0, 0, 0, 0, 0]
        self.sack_l = [0, 0, 0, 0, 0, 0, 0, 0]
        self.mp_off = [0, 0, 0, 0]
        self.mp_len = [0, 0, 0, 0]

    @property
    def seq(self):
        return (self.seq_h << 16) | self.seq_l

    @property
    def ack(self):
        return (self.ack_h << 16) | self.ack_l

    @property
    def sack_blocks(self):
        """The SACK edges as 32-bit values (a new list: for tests and tools, not the data path)."""
        return [(self.sack_h[i] << 16) | self.sack_l[i] for i in range(8)]

    # RFC 7323 timestamps, also as 16-bit halves (the peer's TSval is any 32-bit value)
    @property
    def ts_val(self):
        return (self.tsv_h << 16) | self.tsv_l

    @property
    def ts_ecr(self):
        return (self.tse_h << 16) | self.tse_l

    def clear_opts(self):
        self.mss = 0           # 0 = absent
        self.wscale = -1       # -1 = absent
        self.sackp = False
        self.ts_present = False
        self.tsv_h = 0
        self.tsv_l = 0
        self.tse_h = 0
        self.tse_l = 0
        self.sack_n = 0
        self.mp_n = 0
        self.mp_extra = 0      # MPTCP options beyond MAX_MP (ignored)


def parse(buf, off, end, seg):
    """Parse the TCP header at buf[off:end]; return OK or a reason code."""
    if end > len(buf):
        return E_SHORT
    if off < 0 or end - off < 20:
        return E_SHORT
    hlen = (buf[off + 12] >> 4) << 2
    if hlen < 20:
        return E_BADLEN
    if off + hlen > end:
        return E_BADLEN
    seg.sport = (buf[off] << 8) | buf[off + 1]
    seg.dport = (buf[off + 2] << 8) | buf[off + 3]
    seg.seq_h = (buf[off + 4] << 8) | buf[off + 5]
    seg.seq_l = (buf[off + 6] << 8) | buf[off + 7]
    seg.ack_h = (buf[off + 8] << 8) | buf[off + 9]
    seg.ack_l = (buf[off + 10] << 8) | buf[off + 11]
    seg.flags = buf[off + 13]
    seg.window = (buf[off + 14] << 8) | buf[off + 15]
    seg.csum = (buf[off + 16] << 8) | buf[off + 17]
    seg.urg = (buf[off + 18] << 8) | buf[off + 19]
    seg.hlen = hlen
    seg.data_off = off + hlen
    seg.data_len = end - off - hlen
    # clear_opts(), inlined (per packet)
    seg.mss = 0
    seg.wscale = -1
    seg.sackp = False
    seg.ts_present = False
    seg.sack_n = 0
    seg.mp_n = 0
    seg.mp_extra = 0
    i = off + 20
    oend = off + hlen
    if i + 12 <= oend and buf[i] == OPT_NOP and buf[i + 1] == OPT_NOP and buf[i + 2] == OPT_TS \
            and buf[i + 3] == 10:
        # the usual layout (RFC 7323 appendix A): NOP NOP TS first
        seg.ts_present = True
        seg.tsv_h = (buf[i + 4] << 8) | buf[i + 5]
        seg.tsv_l = (buf[i + 6] << 8) | buf[i + 7]
        seg.tse_h = (buf[i + 8] << 8) | buf[i + 9]
        seg.tse_l = (buf[i + 10] << 8) | buf[i + 11]
        i += 12
    if i < oend:
        return _parse_opts(buf, i, oend, seg)
    return OK


def _parse_opts(buf, i, oend, seg):
    while i < oend:
        kind = buf[i]
        if kind == OPT_EOL:
            return OK
        if kind == OPT_NOP:
            i += 1
            continue
        if i + 1 >= oend:
            return E_BADOPT
        olen = buf[i + 1]
        if olen < 2 or i + olen > oend:
            return E_BADOPT
        if kind == OPT_MPTCP:
            n = seg.mp_n
            if n < MAX_MP:
                seg.mp_off[n] = i
                seg.mp_len[n] = olen
                seg.mp_n = n + 1
            else:
                seg.mp_extra += 1
        elif kind == OPT_TS:
            if olen != 10:
                return E_BADOPT
            seg.ts_present = True
            seg.tsv_h = (buf[i + 2] << 8) | buf[i + 3]
            seg.tsv_l = (buf[i + 4] << 8) | buf[i + 5]
            seg.tse_h = (buf[i + 6] << 8) | buf[i + 7]
            seg.tse_l = (buf[i + 8] << 8) | buf[i + 9]
        elif kind == OPT_MSS:
            if olen != 4:
                return E_BADOPT
            seg.mss = (buf[i + 2] << 8) | buf[i + 3]
        elif kind == OPT_WS:
            if olen != 3:
                return E_BADOPT
            ws = buf[i + 2]
            seg.wscale = 14 if ws > 14 else ws  # RFC 7323 2.3: clamp
        elif kind == OPT_SACKP:
            if olen != 2:
                return E_BADOPT
            seg.sackp = True
        elif kind == OPT_SACK:
            if olen < 10 or (olen - 2) & 7:
                return E_BADOPT
            nb = (olen - 2) >> 3
            if nb > MAX_SACK:
                nb = MAX_SACK
            sh = seg.sack_h
            sl = seg.sack_l
            j = i + 2
            for k in range(2 * nb):
                sh[k] = (buf[j] << 8) | buf[j + 1]
                sl[k] = (buf[j + 2] << 8) | buf[j + 3]
                j += 4
            seg.sack_n = nb
        i += olen
    return OK


def write_header(buf, off, sport, dport, seq, ack, flags, window, opt_len):
    """Write the fixed 20-byte header; checksum and urgent pointer zeroed.

    opt_len (multiple of 4, <= 40) sets the data offset; the caller writes
    the options at buf[off+20:] and fills the checksum (offset off+16).
    A bad opt_len is a caller bug: ValueError rather than a corrupt header.
    """
    if opt_len < 0 or opt_len > 40 or opt_len & 3:
        raise ValueError("opt_len")
    buf[off] = (sport >> 8) & 0xFF
    buf[off + 1] = sport & 0xFF
    buf[off + 2] = (dport >> 8) & 0xFF
    buf[off + 3] = dport & 0xFF
    _put_u32(buf, off + 4, seq)
    _put_u32(buf, off + 8, ack)
    buf[off + 12] = ((20 + opt_len) >> 2) << 4
    buf[off + 13] = flags & 0xFF
    buf[off + 14] = (window >> 8) & 0xFF
    buf[off + 15] = window & 0xFF
    buf[off + 16] = 0
    buf[off + 17] = 0
    buf[off + 18] = 0
    buf[off + 19] = 0
    return 20


def set_csum(buf, off, csum):
    """Store the TCP checksum value into the header at buf[off]."""
    buf[off + 16] = (csum >> 8) & 0xFF
    buf[off + 17] = csum & 0xFF


def rel32(h, l, bh, bl, near):
    """(h:l - bh:bl) mod 2**32, a wire value minus a base, both as 16-bit halves,
    returned as the relative number nearest `near`: small ints only (DESIGN 2.3)."""
    x = l - bl - (near & 0xFFFF)
    d = (h - bh - ((near >> 16) & 0xFFFF) + (x >> 16)) & 0xFFFF
    if d >= 0x8000:
        d -= 0x10000
    return near + ((d << 16) | (x & 0xFFFF))


def put_seq(buf, i, bh, bl, rel):
    """Write (bh:bl + rel) mod 2**32 big-endian at buf[i]: base as halves, rel >= 0."""
    x = bl + (rel & 0xFFFF)
    buf[i + 3] = x & 0xFF
    buf[i + 2] = (x >> 8) & 0xFF
    x = bh + ((rel >> 16) & 0xFFFF) + (x >> 16)
    buf[i + 1] = x & 0xFF
    buf[i] = (x >> 8) & 0xFF


def _put_u32(buf, i, v):
    buf[i] = (v >> 24) & 0xFF
    buf[i + 1] = (v >> 16) & 0xFF
    buf[i + 2] = (v >> 8) & 0xFF
    buf[i + 3] = v & 0xFF


def put_nop(buf, off):
    buf[off] = OPT_NOP
    return 1


def put_nops(buf, off, n):
    """n NOPs (padding to a 4-byte boundary); returns n."""
    for i in range(n):
        buf[off + i] = OPT_NOP
    return n


def put_eol(buf, off):
    buf[off] = OPT_EOL
    return 1


def put_mss(buf, off, mss):
    buf[off] = OPT_MSS
    buf[off + 1] = 4
    buf[off + 2] = (mss >> 8) & 0xFF
    buf[off + 3] = mss & 0xFF
    return 4


def put_wscale(buf, off, shift):
    buf[off] = OPT_WS
    buf[off + 1] = 3
    buf[off + 2] = shift & 0xFF
    return 3


def put_sackp(buf, off):
    buf[off] = OPT_SACKP
    buf[off + 1] = 2
    return 2


def put_ts(buf, off, val, ecr):
    return put_ts_h(buf, off, val, ecr >> 16, ecr & 0xFFFF)


def put_ts_h(buf, off, val, ecr_h, ecr_l):
    """Timestamps option with TSecr as 16-bit halves (TS.Recent is any 32-bit value)."""
    return put_ts_hh(buf, off, (val >> 16) & 0xFFFF, val & 0xFFFF, ecr_h, ecr_l)


def put_ts_hh(buf, off, val_h, val_l, ecr_h, ecr_l):
    """Timestamps option with TSval and TSecr as 16-bit halves: the data path's form
    (no 32-bit value is ever built, DESIGN 2.3)."""
    buf[off] = OPT_TS
    buf[off + 1] = 10
    buf[off + 2] = val_h >> 8
    buf[off + 3] = val_h & 0xFF
    buf[off + 4] = val_l >> 8
    buf[off + 5] = val_l & 0xFF
    buf[off + 6] = ecr_h >> 8
    buf[off + 7] = ecr_h & 0xFF
    buf[off + 8] = ecr_l >> 8
    buf[off + 9] = ecr_l & 0xFF
    return 10


def put_sack(buf, off, blocks, n):
    """SACK option with n blocks from the flat list blocks[left0, right0, ...]."""
    buf[off] = OPT_SACK
    buf[off + 1] = 2 + 8 * n
    j = off + 2
    for k in range(n):
        _put_u32(buf, j, blocks[2 * k])
        _put_u32(buf, j + 4, blocks[2 * k + 1])
        j += 8
    return 2 + 8 * n
