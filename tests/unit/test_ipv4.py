"""IPv4 header codec: round trip, checksum, and every malformed case returns a code."""
from tutil import hexb
from mptcp import ipv4
from mptcp.errors import OK, E_SHORT, E_BADLEN, E_CSUM, E_FRAG, E_NOTV4

SRC = bytes([198, 18, 1, 2])
DST = bytes([198, 18, 0, 1])


def _pkt(payload_len=8, ident=0x1234, ttl=64):
    b = bytearray(20 + payload_len)
    assert ipv4.write(b, 0, SRC, DST, 6, payload_len, ident, ttl) == 20
    return b


def test_write_parse_roundtrip():
    b = _pkt(8)
    h = ipv4.IPv4Header()
    assert ipv4.parse(b, len(b), h) == OK
    assert h.hlen == 20 and h.total == 28 and h.proto == 6
    assert h.ttl == 64 and h.ident == 0x1234 and h.df
    assert ipv4.addr_eq(b, h.src, SRC) and ipv4.addr_eq(b, h.dst, DST)
    assert not ipv4.addr_eq(b, h.src, DST)
    assert ipv4.addr_at(b, h.dst) == DST


def test_known_header_checksum():
    # Classic example header (checksum 0xb861).
    ref = hexb("4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7")
    b = bytearray(0x73)
    ipv4.write(b, 0, ref[12:16], ref[16:20], 0x11, 0x73 - 20, 0, 64)
    assert bytes(b[:20]) == ref
    h = ipv4.IPv4Header()
    assert ipv4.parse(b, len(b), h) == OK


def test_write_at_offset_and_memoryview():
    b = bytearray(40)
    mv = memoryview(b)
    ipv4.write(mv, 4, SRC, DST, 6, 0, 7)
    h = ipv4.IPv4Header()
    assert ipv4.parse(mv[4:24], 20, h) == OK
    assert h.total == 20 and h.ident == 7


def test_several_packets_in_one_read():
    a = _pkt(4)
    c = _pkt(12, ident=2)
    buf = bytearray(a + c)
    h = ipv4.IPv4Header()
    assert ipv4.parse(buf, len(buf), h) == OK and h.total == 24
    mv = memoryview(buf)[h.total:]
    assert ipv4.parse(mv, len(mv), h) == OK and h.total == 32 and h.ident == 2


def test_bad_checksum():
    b = _pkt()
    b[11] ^= 1
    h = ipv4.IPv4Header()
    assert ipv4.parse(b, len(b), h) == E_CSUM
    assert ipv4.parse(b, len(b), h, False) == OK


def test_malformed():
    h = ipv4.IPv4Header()
    b = _pkt()
    assert ipv4.parse(b, 19, h) == E_SHORT
    assert ipv4.parse(b"", 0, h) == E_SHORT
    assert ipv4.parse(b, 100, h) == OK   # n is clamped to len(buf)
    v6 = bytearray(b)
    v6[0] = 0x65
    assert ipv4.parse(v6, len(v6), h) == E_NOTV4
    short_ihl = bytearray(b)
    short_ihl[0] = 0x44
    assert ipv4.parse(short_ihl, len(short_ihl), h) == E_BADLEN
    big_ihl = bytearray(b)
    big_ihl[0] = 0x4F   # 60 bytes > 28
    assert ipv4.parse(big_ihl, len(big_ihl), h) == E_SHORT
    trunc = _pkt(8)
    assert ipv4.parse(trunc, 27, h) == E_SHORT   # total 28 > n
    tot = _pkt(8)
    tot[2] = 0
    tot[3] = 10   # total < hlen
    assert ipv4.parse(tot, len(tot), h) == E_BADLEN
    for hi, lo in ((0x20, 0), (0, 1), (0x40, 0x10)):
        f = _pkt()
        f[6] = hi
        f[7] = lo
        assert ipv4.parse(f, len(f), h, False) == E_FRAG


def test_ip_options_header():
    b = bytearray(24 + 4)
    ipv4.write(b, 0, SRC, DST, 6, 8, 1)
    b[0] = 0x46
    b[20] = 1
    b[21] = 1
    b[22] = 1
    b[23] = 0  # NOP NOP NOP EOL
    b[10] = b[11] = 0
    s = 0
    for i in range(0, 24, 2):
        s += (b[i] << 8) | b[i + 1]
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    c = 0xFFFF - s
    b[10] = c >> 8
    b[11] = c & 0xFF
    h = ipv4.IPv4Header()
    assert ipv4.parse(b, len(b), h) == OK and h.hlen == 24


def test_pseudo_sum():
    # Manual sum: c612+0102 + c612+0001 + 6 + 20
    exp = 0xC612 + 0x0102 + 0xC612 + 0x0001 + 6 + 20
    while exp >> 16:
        exp = (exp & 0xFFFF) + (exp >> 16)
    assert ipv4.pseudo_sum(SRC, DST, 6, 20) == exp
    b = _pkt()
    assert ipv4.pseudo_sum(b, b, 6, 20, 12, 16) == exp
    assert ipv4.pseudo_sum(b"\xff\xff\xff\xff", b"\xff\xff\xff\xff", 255, 0xFFFF) <= 0xFFFF
