"""TCP header/option codec: writers, parse, and malformed headers/options."""
from tutil import hexb
from mptcp import tcpwire as tw
from mptcp.errors import OK, E_SHORT, E_BADLEN, E_BADOPT


def _syn():
    # header + MSS, SACKP, TS, NOP, WS = 4+2+10+1+3 = 20 bytes of options
    b = bytearray(40)
    o = 20
    o += tw.put_mss(b, o, 1460)
    o += tw.put_sackp(b, o)
    o += tw.put_ts(b, o, 0x11223344, 0)
    o += tw.put_nop(b, o)
    o += tw.put_wscale(b, o, 7)
    assert o == 40
    tw.write_header(b, 0, 40000, 6001, 0xFFFFFFF0, 0, tw.SYN, 64240, o - 20)
    return b


def test_syn_roundtrip():
    b = _syn()
    s = tw.TcpSegment()
    assert tw.parse(b, 0, len(b), s) == OK
    assert (s.sport, s.dport, s.seq, s.ack) == (40000, 6001, 0xFFFFFFF0, 0)
    assert s.flags == tw.SYN and s.window == 64240 and s.hlen == 40
    assert s.data_off == 40 and s.data_len == 0
    assert s.mss == 1460 and s.wscale == 7 and s.sackp
    assert s.ts_present and s.ts_val == 0x11223344 and s.ts_ecr == 0
    assert s.mp_n == 0 and s.sack_n == 0 and s.csum == 0 and s.urg == 0


def test_reuse_clears_options():
    s = tw.TcpSegment()
    assert tw.parse(_syn(), 0, 40, s) == OK
    b = bytearray(24)
    tw.write_header(b, 0, 1, 2, 3, 4, tw.ACK | tw.PSH, 5, 0)
    assert tw.parse(b, 0, 24, s) == OK
    assert s.mss == 0 and s.wscale == -1 and not s.sackp and not s.ts_present
    assert s.data_off == 20 and s.data_len == 4 and s.flags == tw.ACK | tw.PSH


def test_known_header_bytes():
    b = bytearray(20)
    tw.write_header(b, 0, 0x1771, 0x9c40, 1, 2, tw.ACK | tw.FIN, 502, 0)
    assert bytes(b) == hexb("1771 9c40 00000001 00000002 5011 01f6 0000 0000")
    tw.set_csum(b, 0, 0xBEEF)
    assert b[16] == 0xBE and b[17] == 0xEF


def test_offset_and_mptcp_and_sack():
    b = bytearray(8 + 20 + 40 + 5)
    o = 28
    o += tw.put_nops(b, o, 2)
    o += tw.put_sack(b, o, [100, 200, 0xFFFFFF00, 5], 2)   # 18
    # two fake MPTCP options: DSS-like (kind 30 len 8) and 4-byte
    b[o:o + 8] = bytes([30, 8, 0x20, 0x01, 0, 0, 0, 9])
    mp1 = o
    o += 8
    b[o:o + 4] = bytes([30, 4, 0x80, 0x00])
    mp2 = o
    o += 4
    o += tw.put_nops(b, o, 4)
    o += tw.put_eol(b, o)
    o += tw.put_nops(b, o, 68 - o)
    assert o == 68
    tw.write_header(b, 8, 1, 2, 3, 4, tw.ACK, 1000, 40)
    s = tw.TcpSegment()
    assert tw.parse(b, 8, len(b), s) == OK
    assert s.hlen == 60 and s.data_off == 68 and s.data_len == 5
    assert s.sack_n == 2 and s.sack_blocks[:4] == [100, 200, 0xFFFFFF00, 5]
    assert s.mp_n == 2 and s.mp_off[0] == mp1 and s.mp_len[0] == 8
    assert s.mp_off[1] == mp2 and s.mp_len[1] == 4


def test_options_after_eol_ignored():
    b = bytearray(24)
    tw.write_header(b, 0, 1, 2, 3, 4, tw.ACK, 1, 4)
    b[20] = 0
    b[21] = 99  # garbage after EOL
    s = tw.TcpSegment()
    assert tw.parse(b, 0, 24, s) == OK


def test_unknown_option_skipped_and_many_mptcp():
    b = bytearray(20 + 24)
    o = 20
    b[o:o + 4] = bytes([99, 4, 1, 2])
    o += 4
    for k in range(5):
        b[o:o + 4] = bytes([30, 4, 0x80, k])
        o += 4
    tw.write_header(b, 0, 1, 2, 3, 4, tw.ACK, 1, 24)
    s = tw.TcpSegment()
    assert tw.parse(b, 0, len(b), s) == OK
    assert s.mp_n == 4 and s.mp_extra == 1


def test_wscale_clamped():
    b = bytearray(24)
    tw.put_wscale(b, 20, 20)
    b[23] = 0
    tw.write_header(b, 0, 1, 2, 3, 4, tw.SYN, 1, 4)
    s = tw.TcpSegment()
    assert tw.parse(b, 0, 24, s) == OK and s.wscale == 14


def _with_opts(opts):
    n = (len(opts) + 3) & ~3
    b = bytearray(20 + n)
    b[20:20 + len(opts)] = opts
    tw.write_header(b, 0, 1, 2, 3, 4, tw.ACK, 1, n)
    return b


def test_malformed():
    s = tw.TcpSegment()
    assert tw.parse(bytearray(19), 0, 19, s) == E_SHORT
    assert tw.parse(bytearray(20), 0, 21, s) == E_SHORT
    assert tw.parse(bytearray(20), 5, 20, s) == E_SHORT
    b = bytearray(20)
    tw.write_header(b, 0, 1, 2, 3, 4, 0, 0, 0)
    b[12] = 0x40  # data offset 4
    assert tw.parse(b, 0, 20, s) == E_BADLEN
    b[12] = 0x60  # 24 > 20
    assert tw.parse(b, 0, 20, s) == E_BADLEN
    bad = (
        bytes([2, 6, 5, 0]),         # runs past the header
        bytes([2, 3, 5, 0]),         # MSS wrong length
        bytes([3, 4, 7, 0]),         # WS wrong length
        bytes([4, 3, 0, 0]),         # SACKP wrong length
        bytes([8, 8, 0, 0, 0, 0, 0, 0]),   # TS wrong length
        bytes([5, 9] + [0] * 10),    # SACK not 2+8n
        bytes([5, 2, 0, 0]),         # SACK with no block
        bytes([99, 1, 0, 0]),        # length < 2
        bytes([99, 0, 0, 0]),        # length 0
        bytes([1, 1, 1, 99]),        # kind without length byte
        bytes([30, 5, 0, 0]),        # MPTCP running past header
    )
    for o in bad:
        b = _with_opts(o)
        e = tw.parse(b, 0, len(b), s)
        assert e == E_BADOPT, (o, e)


def test_put_ts_and_sack_bytes():
    b = bytearray(12)
    assert tw.put_ts(b, 0, 1, 0xFFFFFFFF) == 10
    assert bytes(b[:10]) == hexb("080a 00000001 ffffffff")
    b = bytearray(10)
    assert tw.put_sack(b, 0, [1, 2], 1) == 10
    assert bytes(b) == hexb("050a 00000001 00000002")


def test_mutation_fuzz_never_raises():
    """Deterministic mutation fuzz of whole headers (both interpreters)."""
    base = _syn()
    s = tw.TcpSegment()
    x = 777
    ok = 0
    for it in range(3000):
        b = bytearray(base)
        for k in range(1 + it % 3):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            b[20 + x % 20 if x & 1 else x % 40] = (x >> 7) & 0xFF
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        end = len(b) - (x % 8 if x & 0x100 else 0)
        e = tw.parse(b, 0, end, s)
        assert e >= 0
        if e == OK:
            ok += 1
            assert 20 <= s.hlen <= end and s.data_off + s.data_len == end
    assert ok > 300


def test_write_header_clears_checksum_and_urgent_pointer():
    b = bytearray(b"\xff" * 20)
    tw.write_header(b, 0, 1, 2, 3, 4, tw.ACK, 5, 0)
    assert bytes(b[16:20]) == b"\0\0\0\0"
