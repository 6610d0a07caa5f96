"""MPTCP v1 option codec (RFC 8684 section 3), every subtype.

`parse(buf, off, length, mo)` decodes ONE option whose kind byte (30) is at
buf[off] and whose length byte equals `length` (as located by
`tcpwire.parse`: `seg.mp_off[i]`, `seg.mp_len[i]`), filling the reusable
`MpOptions`. Only the fields of `mo.subtype` are meaningful afterwards.
It returns OK or a reason code (never raises). DSS, the per-packet option,
is read by direct indexing with no slicing; keys, nonces, HMACs and
addresses (handshake / signalling only) are copied out as bytes.

The option length alone selects the layout, as in Linux: the caller checks
that it fits the segment (e.g. MP_CAPABLE 4 only on SYN, 12 on SYN/ACK).
Writers `put_*` write at buf[off] and return the length; `*_len` size them.
`put(buf, off, mo)` re-encodes a parsed option (reserved bits become 0).
Sequence numbers are plain ints: 32-bit TCP-level, 32/64-bit data-level.
"""
from mptcp.compat import const
from mptcp.errors import OK, E_SHORT, E_BADLEN, E_BADOPT, E_UNKNOWN
from mptcp import checksum

KIND = const(30)

MP_CAPABLE = const(0)
MP_JOIN = const(1)
DSS = const(2)
ADD_ADDR = const(3)
REMOVE_ADDR = const(4)
MP_PRIO = const(5)
MP_FAIL = const(6)
MP_FASTCLOSE = const(7)
MP_TCPRST = const(8)
MP_EXPERIMENTAL = const(15)

# MP_CAPABLE flags (byte 3)
CAP_A = const(0x80)   # checksum required
CAP_B = const(0x40)   # extensibility (must be 0 in v1)
CAP_C = const(0x20)   # do not initiate subflows to the source address
CAP_H = const(0x01)   # HMAC-SHA256
VERSION = const(1)

# DSS flags (byte 3, low 5 bits)
DSS_FIN = const(0x10)    # F: DATA_FIN
DSS_DSN8 = const(0x08)   # m: DSN is 8 octets
DSS_MAP = const(0x04)    # M: DSN + subflow seq + data-level length present
DSS_ACK8 = const(0x02)   # a: DATA_ACK is 8 octets
DSS_ACK = const(0x01)    # A: DATA_ACK present

JOIN_B = const(0x01)     # MP_JOIN / MP_PRIO backup flag
ADD_ADDR_E = const(0x01) # ADD_ADDR echo flag
TCPRST_T = const(0x01)   # MP_TCPRST transient flag

# MP_TCPRST reason codes (RFC 8684 3.6)
RST_UNSPEC = const(0)
RST_MPTCP = const(1)
RST_RESOURCES = const(2)
RST_ADMIN = const(3)
RST_DATA = const(4)
RST_PERF = const(5)
RST_MIDDLEBOX = const(6)

# MP_JOIN option lengths
JOIN_SYN_LEN = const(12)
JOIN_SYNACK_LEN = const(16)
JOIN_ACK_LEN = const(24)

_NAMES = ("MP_CAPABLE", "MP_JOIN", "DSS", "ADD_ADDR", "REMOVE_ADDR",
          "MP_PRIO", "MP_FAIL", "MP_FASTCLOSE", "MP_TCPRST")


def subtype_name(subtype):
    if 0 <= subtype < len(_NAMES):
        return _NAMES[subtype]
    if subtype == MP_EXPERIMENTAL:
        return "MP_EXPERIMENTAL"
    return "MP_%d" % subtype


class MpOptions:
    """Result of `parse` for one option; reused (only `subtype`'s fields are valid)."""

    def __init__(self):
        self.subtype = -1
        self.off = 0          # offset of the kind byte in buf
        self.length = 0       # option length (bytes)
        self.flags = 0        # MP_CAPABLE flags byte; MP_JOIN/MP_PRIO/MP_TCPRST low nibble
        # MP_CAPABLE
        self.version = 0
        self.skey = None      # bytes(8) or None
        self.rkey = None      # bytes(8) or None (also MP_FASTCLOSE's key)
        # MP_JOIN
        self.backup = False   # B flag (MP_JOIN SYN/SYN-ACK, MP_PRIO)
        self.addr_id = -1     # -1 = absent (MP_JOIN ACK, MP_PRIO length 3)
        self.token = 0        # int, 32-bit
        self.nonce = None     # bytes(4)
        self.hmac = None      # bytes: 8 (JOIN SYN/ACK, ADD_ADDR) or 20 (JOIN ACK)
        # DSS (also dll/csum of MP_CAPABLE)
        self.dss_flags = 0
        self.data_ack = 0
        self.data_ack8 = False
        self.data_ack_off = 0  # offset of the DATA_ACK field in buf
        self.dsn = 0          # DSS mapping / MP_FAIL
        self.dsn8 = False
        self.dsn_off = 0      # offset of the DSN field in buf
        self.ssn = 0          # relative subflow sequence number
        # the data path's form (parse_dss_fast): 16-bit halves of the 4-byte fields
        self.data_ack_h = 0
        self.data_ack_l = 0
        self.dsn_h = 0
        self.dsn_l = 0
        self.ssn_h = 0
        self.ssn_l = 0
        self.dll = None       # data-level length (None if absent)
        self.csum = None      # checksum (None if absent)
        # ADD_ADDR
        self.echo = False
        self.ipver = 4
        self.addr = None      # bytes(4) or bytes(16)
        self.port = 0         # 0 when absent
        self.has_port = False
        # REMOVE_ADDR
        self.ids = None       # bytes of address ids
        # MP_TCPRST
        self.reason = 0


def _u16(buf, i):
    return (buf[i] << 8) | buf[i + 1]


def _u32(buf, i):
    return (buf[i] << 24) | (buf[i + 1] << 16) | (buf[i + 2] << 8) | buf[i + 3]


def _u64(buf, i):
    return (_u32(buf, i) << 32) | _u32(buf, i + 4)


def _copy(buf, i, n):
    return bytes(buf[i:i + n])


def parse(buf, off, length, mo):
    """Decode the option at buf[off:off+length]; return OK or a reason code."""
    if off < 0 or length < 3 or off + length > len(buf):
        return E_SHORT
    if buf[off] != KIND:
        return E_BADOPT
    if buf[off + 1] != length:
        return E_BADLEN
    st = buf[off + 2] >> 4
    mo.subtype = st
    mo.off = off
    mo.length = length
    if st == DSS:
        return _parse_dss(buf, off, length, mo)
    if st == MP_CAPABLE:
        return _parse_capable(buf, off, length, mo)
    if st == MP_JOIN:
        return _parse_join(buf, off, length, mo)
    if st == ADD_ADDR:
        return _parse_add_addr(buf, off, length, mo)
    if st == REMOVE_ADDR:
        if length < 4:
            return E_BADLEN
        mo.ids = _copy(buf, off + 3, length - 3)
        return OK
    if st == MP_PRIO:
        if length != 3 and length != 4:
            return E_BADLEN
        mo.flags = buf[off + 2] & 0x0F
        mo.backup = (mo.flags & JOIN_B) != 0
        mo.addr_id = buf[off + 3] if length == 4 else -1
        return OK
    if st == MP_FAIL:
        if length != 12:
            return E_BADLEN
        mo.dsn = _u64(buf, off + 4)
        return OK
    if st == MP_FASTCLOSE:
        if length != 12:
            return E_BADLEN
        mo.rkey = _copy(buf, off + 4, 8)
        return OK
    if st == MP_TCPRST:
        if length != 4:
            return E_BADLEN
        mo.flags = buf[off + 2] & 0x0F
        mo.reason = buf[off + 3]
        return OK
    return E_UNKNOWN


def dss_len(flags, csum=False):
    """Length of a DSS option with these flags (csum only counts with M)."""
    n = 4
    if flags & DSS_ACK:
        n += 8 if flags & DSS_ACK8 else 4
    if flags & DSS_MAP:
        n += 14 if flags & DSS_DSN8 else 10
        if csum:
            n += 2
    return n


def _parse_dss(buf, off, length, mo):
    """The full decode (tools, tests): whole values in data_ack / dsn / ssn."""
    err = parse_dss_fast(buf, off, length, mo)
    if err == OK:
        f = mo.dss_flags
        if f & DSS_ACK:
            mo.data_ack = _u64(buf, mo.data_ack_off) if f & DSS_ACK8 else _u32(buf, mo.data_ack_off)
        if f & DSS_MAP:
            mo.dsn = _u64(buf, mo.dsn_off) if f & DSS_DSN8 else _u32(buf, mo.dsn_off)
            mo.ssn = _u32(buf, mo.dsn_off + (8 if f & DSS_DSN8 else 4))
    return err


def parse_dss_fast(buf, off, length, mo):
    """Decode a DSS (kind byte at buf[off]) without building any int of 30 bits or more
    (the data path, DESIGN 2.3).

    8-byte DATA_ACK / DSN are left in the packet: read them relative to a base
    with `get_rel64(buf, mo.data_ack_off, base)` / `get_rel64(buf, mo.dsn_off, base)`.
    4-byte ones and the subflow sequence number are given as 16-bit halves
    (data_ack_h/_l, dsn_h/_l, ssn_h/_l). mo.data_ack / mo.dsn / mo.ssn hold -1 here;
    `parse` fills them with whole values.
    """
    if length < 4:
        return E_BADLEN
    f = buf[off + 3] & 0x1F
    exp = dss_len(f, False)
    # Like Linux, accept 2 extra octets (checksum) with any flags; they are
    # kept only when a mapping is present.
    if length != exp and length != exp + 2:
        return E_BADLEN
    mo.dss_flags = f
    i = off + 4
    mo.data_ack = 0
    if f & DSS_ACK:
        mo.data_ack = -1
        mo.data_ack_off = i
        if f & DSS_ACK8:
            mo.data_ack8 = True
            i += 8
        else:
            mo.data_ack8 = False
            mo.data_ack_h = (buf[i] << 8) | buf[i + 1]
            mo.data_ack_l = (buf[i + 2] << 8) | buf[i + 3]
            i += 4
    else:
        mo.data_ack8 = False
    if f & DSS_MAP:
        mo.dsn = -1
        mo.ssn = -1
        mo.dsn_off = i
        if f & DSS_DSN8:
            mo.dsn8 = True
            i += 8
        else:
            mo.dsn8 = False
            mo.dsn_h = (buf[i] << 8) | buf[i + 1]
            mo.dsn_l = (buf[i + 2] << 8) | buf[i + 3]
            i += 4
        mo.ssn_h = (buf[i] << 8) | buf[i + 1]
        mo.ssn_l = (buf[i + 2] << 8) | buf[i + 3]
        mo.dll = (buf[i + 4] << 8) | buf[i + 5]
        if length == exp + 2:
            mo.csum = (buf[i + 6] << 8) | buf[i + 7]
        else:
            mo.csum = None
    else:
        mo.dsn = 0
        mo.dsn8 = False
        mo.ssn = 0
        mo.dll = None
        mo.csum = None
    return OK


# ---------------------------------------------------------------- 64-bit values, relative
# A 64-bit int is a heap object on every MicroPython port. The data path keeps
# data sequence numbers relative to the IDSN (small ints) and meets the 64-bit
# wire value only here, through the base as four 16-bit limbs (most significant
# first), so the arithmetic stays in small ints even on 32-bit boards.

def limbs_add(b, v):
    """Add v (a small int, may be negative) to the 64-bit value in limbs b, mod 2**64, in
    place: how a connection rebases its relative sequence numbers (small ints only)."""
    x = b[3] + (v & 0xFFFF)
    b[3] = x & 0xFFFF
    x = b[2] + ((v >> 16) & 0xFFFF) + (x >> 16)
    b[2] = x & 0xFFFF
    hi = 0xFFFF if v < 0 else 0         # sign extension of v into the upper limbs
    x = b[1] + hi + (x >> 16)
    b[1] = x & 0xFFFF
    b[0] = (b[0] + hi + (x >> 16)) & 0xFFFF


def limbs64(v):
    """A 64-bit value as [bits 63-48, 47-32, 31-16, 15-0] (setup path only)."""
    return [(v >> 48) & 0xFFFF, (v >> 32) & 0xFFFF, (v >> 16) & 0xFFFF, v & 0xFFFF]


def get_rel64(buf, i, b):
    """(64-bit value at buf[i]) - base (limbs b) mod 2**64; -1 if that is >= 2**63
    (i.e. "before" the base: no valid relative sequence number)."""
    x = ((buf[i + 6] << 8) | buf[i + 7]) - b[3]
    d3 = x & 0xFFFF
    x = ((buf[i + 4] << 8) | buf[i + 5]) - b[2] + (x >> 16)
    d2 = x & 0xFFFF
    x = ((buf[i + 2] << 8) | buf[i + 3]) - b[1] + (x >> 16)
    d1 = x & 0xFFFF
    x = ((buf[i] << 8) | buf[i + 1]) - b[0] + (x >> 16)
    d0 = x & 0xFFFF
    if d0 == 0 and d1 == 0:
        return (d2 << 16) | d3
    if d0 >= 0x8000:
        return -1
    return (((((d0 << 16) | d1) << 16) | d2) << 16) | d3


def put_rel64(buf, i, b, rel):
    """Write base (limbs b) + rel (>= 0) mod 2**64 as 8 big-endian bytes at buf[i]."""
    x = b[3] + (rel & 0xFFFF)
    buf[i + 7] = x & 0xFF
    buf[i + 6] = (x >> 8) & 0xFF
    x = b[2] + ((rel >> 16) & 0xFFFF) + (x >> 16)
    buf[i + 5] = x & 0xFF
    buf[i + 4] = (x >> 8) & 0xFF
    x = b[1] + ((rel >> 32) & 0xFFFF) + (x >> 16)
    buf[i + 3] = x & 0xFF
    buf[i + 2] = (x >> 8) & 0xFF
    x = b[0] + ((rel >> 48) & 0xFFFF) + (x >> 16)
    buf[i + 1] = x & 0xFF
    buf[i] = (x >> 8) & 0xFF


def sum_rel64(b, rel):
    """Sum (not folded) of the four 16-bit words of base + rel mod 2**64 (DSS checksum)."""
    x = b[3] + (rel & 0xFFFF)
    s = x & 0xFFFF
    x = b[2] + ((rel >> 16) & 0xFFFF) + (x >> 16)
    s += x & 0xFFFF
    x = b[1] + ((rel >> 32) & 0xFFFF) + (x >> 16)
    s += x & 0xFFFF
    x = b[0] + ((rel >> 48) & 0xFFFF) + (x >> 16)
    return s + (x & 0xFFFF)


def dss_pseudo_rel(b, rel, ssn_h, ssn_l, dll):
    """Folded DSS checksum pseudo-header sum for DSN base+rel and the subflow sequence
    number in 16-bit halves (see dss_csum_sum)."""
    s = sum_rel64(b, rel) + ssn_h + ssn_l + (dll & 0xFFFF)
    s = (s & 0xFFFF) + (s >> 16)
    return (s & 0xFFFF) + (s >> 16)


def mp_capable_len(skey=None, rkey=None, dll=None, csum=None):
    """Length of MP_CAPABLE with the given fields present (not None)."""
    n = 4
    if skey is not None:
        n += 8
    if rkey is not None:
        n += 8
    if dll is not None:
        n += 2
    if csum is not None:
        n += 2
    return n


def _parse_capable(buf, off, length, mo):
    if length != 4 and length != 12 and length != 20 and length != 22 and length != 24:
        return E_BADLEN
    mo.version = buf[off + 2] & 0x0F
    mo.flags = buf[off + 3]
    mo.skey = _copy(buf, off + 4, 8) if length >= 12 else None
    mo.rkey = _copy(buf, off + 12, 8) if length >= 20 else None
    mo.dll = _u16(buf, off + 20) if length >= 22 else None
    mo.csum = _u16(buf, off + 22) if length == 24 else None
    return OK


def _parse_join(buf, off, length, mo):
    mo.flags = buf[off + 2] & 0x0F
    if length == JOIN_SYN_LEN:
        mo.backup = (mo.flags & JOIN_B) != 0
        mo.addr_id = buf[off + 3]
        mo.token = _u32(buf, off + 4)
        mo.nonce = _copy(buf, off + 8, 4)
        mo.hmac = None
    elif length == JOIN_SYNACK_LEN:
        mo.backup = (mo.flags & JOIN_B) != 0
        mo.addr_id = buf[off + 3]
        mo.hmac = _copy(buf, off + 4, 8)
        mo.nonce = _copy(buf, off + 12, 4)
        mo.token = 0
    elif length == JOIN_ACK_LEN:
        mo.backup = False
        mo.addr_id = -1
        mo.hmac = _copy(buf, off + 4, 20)
        mo.nonce = None
        mo.token = 0
    else:
        return E_BADLEN
    return OK


def add_addr_len(ipver=4, has_port=False, has_hmac=True):
    return 4 + (4 if ipver == 4 else 16) + (2 if has_port else 0) + (8 if has_hmac else 0)


def _parse_add_addr(buf, off, length, mo):
    echo = (buf[off + 2] & ADD_ADDR_E) != 0
    n = length - 4
    if not echo:
        n -= 8   # truncated HMAC
    if n == 4 or n == 6:
        ipver = 4
        alen = 4
    elif n == 16 or n == 18:
        ipver = 6
        alen = 16
    else:
        return E_BADLEN
    mo.echo = echo
    mo.ipver = ipver
    mo.addr_id = buf[off + 3]
    mo.addr = _copy(buf, off + 4, alen)
    i = off + 4 + alen
    if n > alen:
        mo.has_port = True
        mo.port = _u16(buf, i)
        i += 2
    else:
        mo.has_port = False
        mo.port = 0
    mo.hmac = None if echo else _copy(buf, i, 8)
    return OK


# ---------------------------------------------------------------- writers

def _put_u16(buf, i, v):
    buf[i] = (v >> 8) & 0xFF
    buf[i + 1] = v & 0xFF


def _put_u32(buf, i, v):
    buf[i] = (v >> 24) & 0xFF
    buf[i + 1] = (v >> 16) & 0xFF
    buf[i + 2] = (v >> 8) & 0xFF
    buf[i + 3] = v & 0xFF


def _put_u64(buf, i, v):
    _put_u32(buf, i, (v >> 32) & 0xFFFFFFFF)
    _put_u32(buf, i + 4, v & 0xFFFFFFFF)


def _put_bytes(buf, i, b, n):
    for k in range(n):
        buf[i + k] = b[k]


def _put_4(buf, i, v):
    # a 4-byte field given as int or bytes (nonce)
    if isinstance(v, int):
        _put_u32(buf, i, v)
    else:
        _put_bytes(buf, i, v, 4)


def put_mp_capable(buf, off, flags, skey=None, rkey=None, dll=None, csum=None,
                   version=VERSION):
    """MP_CAPABLE: 4 (SYN), 12 (SYN/ACK), 20 (ACK), 22/24 (ACK + data[, csum])."""
    n = mp_capable_len(skey, rkey, dll, csum)
    buf[off] = KIND
    buf[off + 1] = n
    buf[off + 2] = (MP_CAPABLE << 4) | (version & 0x0F)
    buf[off + 3] = flags & 0xFF
    i = off + 4
    if skey is not None:
        _put_bytes(buf, i, skey, 8)
        i += 8
    if rkey is not None:
        _put_bytes(buf, i, rkey, 8)
        i += 8
    if dll is not None:
        _put_u16(buf, i, dll)
        i += 2
    if csum is not None:
        _put_u16(buf, i, csum)
    return n


def put_dss(buf, off, flags, data_ack=0, dsn=0, ssn=0, dll=0, csum=None):
    """DSS with the given flags; csum (int) is written only with DSS_MAP."""
    f = flags & 0x1F
    has_csum = csum is not None and (f & DSS_MAP)
    n = dss_len(f, has_csum)
    buf[off] = KIND
    buf[off + 1] = n
    buf[off + 2] = DSS << 4
    buf[off + 3] = f
    i = off + 4
    if f & DSS_ACK:
        if f & DSS_ACK8:
            _put_u64(buf, i, data_ack)
            i += 8
        else:
            _put_u32(buf, i, data_ack)     # _put_u32 keeps the low 32 bits
            i += 4
    if f & DSS_MAP:
        if f & DSS_DSN8:
            _put_u64(buf, i, dsn)
            i += 8
        else:
            _put_u32(buf, i, dsn)
            i += 4
        _put_u32(buf, i, ssn)
        _put_u16(buf, i + 4, dll)
        if has_csum:
            _put_u16(buf, i + 6, csum)
    return n


def put_dss_rel(buf, off, flags, ack_base, ack_rel, dsn_base, dsn_rel, ssn_h, ssn_l, dll,
                csum=-1):
    """put_dss for the data path, with small ints only: the 8-byte DATA_ACK and DSN are
    base (limbs, see limbs64) + relative value, the subflow sequence number is given as
    16-bit halves. flags must hold DSS_ACK|DSS_ACK8 (and DSS_DSN8 with DSS_MAP); csum >= 0
    is written with DSS_MAP. Returns the length."""
    n = dss_len(flags, csum >= 0)
    buf[off] = KIND
    buf[off + 1] = n
    buf[off + 2] = DSS << 4
    buf[off + 3] = flags
    put_rel64(buf, off + 4, ack_base, ack_rel)
    if flags & DSS_MAP:
        put_rel64(buf, off + 12, dsn_base, dsn_rel)
        buf[off + 20] = ssn_h >> 8
        buf[off + 21] = ssn_h & 0xFF
        buf[off + 22] = ssn_l >> 8
        buf[off + 23] = ssn_l & 0xFF
        buf[off + 24] = dll >> 8
        buf[off + 25] = dll & 0xFF
        if csum >= 0:
            buf[off + 26] = csum >> 8
            buf[off + 27] = csum & 0xFF
    return n


# Folded sum of the DSS checksum pseudo-header (RFC 8684 3.3.1): one implementation,
# in the checksum module; add the payload's sum and invert to get the DSS checksum.
dss_csum_sum = checksum.dss_pseudo_sum


def put_mp_join_syn(buf, off, addr_id, token, nonce, backup=False):
    buf[off] = KIND
    buf[off + 1] = JOIN_SYN_LEN
    buf[off + 2] = (MP_JOIN << 4) | (JOIN_B if backup else 0)
    buf[off + 3] = addr_id & 0xFF
    _put_u32(buf, off + 4, token)
    _put_4(buf, off + 8, nonce)
    return JOIN_SYN_LEN


def put_mp_join_synack(buf, off, addr_id, hmac8, nonce, backup=False):
    """hmac8: the first 8 bytes of the HMAC (a longer one is truncated)."""
    buf[off] = KIND
    buf[off + 1] = JOIN_SYNACK_LEN
    buf[off + 2] = (MP_JOIN << 4) | (JOIN_B if backup else 0)
    buf[off + 3] = addr_id & 0xFF
    _put_bytes(buf, off + 4, hmac8, 8)
    _put_4(buf, off + 12, nonce)
    return JOIN_SYNACK_LEN


def put_mp_join_ack(buf, off, hmac20):
    """hmac20: the first 20 bytes of the HMAC (a 32-byte one is truncated)."""
    buf[off] = KIND
    buf[off + 1] = JOIN_ACK_LEN
    buf[off + 2] = MP_JOIN << 4
    buf[off + 3] = 0
    _put_bytes(buf, off + 4, hmac20, 20)
    return JOIN_ACK_LEN


def put_add_addr(buf, off, addr_id, addr, port=0, hmac=None, echo=False, with_port=None):
    """ADD_ADDR (IPv4 or IPv6 by len(addr)); hmac (8 bytes) unless echo.

    The port is written when with_port is True, or (default) when port != 0.
    """
    if with_port is None:
        with_port = port != 0
    alen = len(addr)
    has_hmac = not echo
    n = 4 + alen + (2 if with_port else 0) + (8 if has_hmac else 0)
    buf[off] = KIND
    buf[off + 1] = n
    buf[off + 2] = (ADD_ADDR << 4) | (ADD_ADDR_E if echo else 0)
    buf[off + 3] = addr_id & 0xFF
    _put_bytes(buf, off + 4, addr, alen)
    i = off + 4 + alen
    if with_port:
        _put_u16(buf, i, port)
        i += 2
    if has_hmac:
        _put_bytes(buf, i, hmac, 8)
    return n


def put_remove_addr(buf, off, ids):
    """REMOVE_ADDR for the address ids in `ids` (bytes or list of ints)."""
    n = 3 + len(ids)
    buf[off] = KIND
    buf[off + 1] = n
    buf[off + 2] = REMOVE_ADDR << 4
    for k in range(len(ids)):
        buf[off + 3 + k] = ids[k]
    return n


def put_mp_prio(buf, off, backup, addr_id=-1):
    """MP_PRIO, length 3 (RFC 8684; Linux) or 4 with addr_id >= 0 (RFC 6824 style)."""
    n = 3 if addr_id < 0 else 4
    buf[off] = KIND
    buf[off + 1] = n
    buf[off + 2] = (MP_PRIO << 4) | (JOIN_B if backup else 0)
    if n == 4:
        buf[off + 3] = addr_id & 0xFF
    return n


def put_mp_fail(buf, off, dsn):
    return put_mp_fail_rel(buf, off, limbs64(dsn), 0)


def put_mp_fail_rel(buf, off, base, rel):
    """MP_FAIL for DSN base (limbs) + rel: the data path's form (small ints only)."""
    buf[off] = KIND
    buf[off + 1] = 12
    buf[off + 2] = MP_FAIL << 4
    buf[off + 3] = 0
    put_rel64(buf, off + 4, base, rel)
    return 12


def put_mp_fastclose(buf, off, rkey):
    """MP_FASTCLOSE carrying the receiver's (peer's) key."""
    buf[off] = KIND
    buf[off + 1] = 12
    buf[off + 2] = MP_FASTCLOSE << 4
    buf[off + 3] = 0
    _put_bytes(buf, off + 4, rkey, 8)
    return 12


def put_mp_tcprst(buf, off, reason, flags=0):
    buf[off] = KIND
    buf[off + 1] = 4
    buf[off + 2] = (MP_TCPRST << 4) | (flags & 0x0F)
    buf[off + 3] = reason & 0xFF
    return 4


def put(buf, off, mo):
    """Re-encode a parsed option from `mo`; return its length (0 if unknown)."""
    st = mo.subtype
    if st == DSS:
        return put_dss(buf, off, mo.dss_flags, mo.data_ack, mo.dsn, mo.ssn,
                       mo.dll or 0, mo.csum)
    if st == MP_CAPABLE:
        return put_mp_capable(buf, off, mo.flags, mo.skey, mo.rkey, mo.dll, mo.csum,
                              mo.version)
    if st == MP_JOIN:
        if mo.length == JOIN_SYN_LEN:
            return put_mp_join_syn(buf, off, mo.addr_id, mo.token, mo.nonce, mo.backup)
        if mo.length == JOIN_SYNACK_LEN:
            return put_mp_join_synack(buf, off, mo.addr_id, mo.hmac, mo.nonce, mo.backup)
        return put_mp_join_ack(buf, off, mo.hmac)
    if st == ADD_ADDR:
        return put_add_addr(buf, off, mo.addr_id, mo.addr, mo.port, mo.hmac, mo.echo,
                            mo.has_port)
    if st == REMOVE_ADDR:
        return put_remove_addr(buf, off, mo.ids)
    if st == MP_PRIO:
        return put_mp_prio(buf, off, mo.backup, mo.addr_id)
    if st == MP_FAIL:
        return put_mp_fail(buf, off, mo.dsn)
    if st == MP_FASTCLOSE:
        return put_mp_fastclose(buf, off, mo.rkey)
    if st == MP_TCPRST:
        return put_mp_tcprst(buf, off, mo.reason, mo.flags)
    return 0
