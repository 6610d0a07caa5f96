"""Hypothesis fuzzing of the wire parsers: random and mutated-valid bytes.

A parser must never raise, and whatever parses OK must re-encode to bytes
that parse back to the same values (reserved bits aside).
"""
from hypothesis import given, settings, strategies as st, HealthCheck

from mptcp import ipv4, tcpwire, mpopts
from mptcp.errors import OK

SETTINGS = settings(max_examples=3000, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

# Valid options (kernel-written, see test_golden_vectors) to mutate.
SEEDS = [bytes.fromhex(h) for h in (
    "1e040101", "1e0c01016f3cfc7b86592ab2", "1e140101f7214061b1ceba8c6f3cfc7b86592ab2",
    "1e160101f7214061b1ceba8c6f3cfc7b86592ab20005",
    "1e180181dc22b058f0a9b06f98235f7a877d5af24e20dcb3",
    "1e0c200371f95d97f6d4bfed", "1e082001b019514c",
    "1e1a200f71f95d97f6d4bfedded23b3497b7128a000000010bb8",
    "1e16200d0e9d7ff8b5234bfcb019514c000000017a60",
    "1e1c201fe249fcdecaa8eb1dfc172c73be783c75000000000001dc85",
    "1e0c1000e5207a1b404e9f91", "1e101001d3a86beaedb9ef2a15f57a8c",
    "1e181000ecf53a571e407c9039be260c3b9b07283bbeb2c0",
    "1e103001c612000225114e26921a7e28", "1e083101c6120002", "1e044001", "1e0351",
    "1e0c70006f3cfc7b86592ab2", "1e048000",
    "1e0c6000000000000000002a",
)]

MP_FIELDS = {
    mpopts.MP_CAPABLE: ("version", "flags", "skey", "rkey", "dll", "csum"),
    mpopts.MP_JOIN: ("length", "backup", "addr_id", "token", "nonce", "hmac"),
    mpopts.DSS: ("dss_flags", "data_ack", "data_ack8", "dsn", "dsn8", "ssn", "dll", "csum"),
    mpopts.ADD_ADDR: ("echo", "ipver", "addr_id", "addr", "port", "has_port", "hmac"),
    mpopts.REMOVE_ADDR: ("ids",),
    mpopts.MP_PRIO: ("backup", "addr_id"),
    mpopts.MP_FAIL: ("dsn",),
    mpopts.MP_FASTCLOSE: ("rkey",),
    mpopts.MP_TCPRST: ("flags", "reason"),
}


def _fields(mo):
    return tuple(getattr(mo, f) for f in MP_FIELDS[mo.subtype])


def _check_mp(buf, off, length):
    mo = mpopts.MpOptions()
    e = mpopts.parse(buf, off, length, mo)
    assert isinstance(e, int) and e >= 0
    if e != OK:
        return
    assert mo.subtype in MP_FIELDS and mo.length == length
    out = bytearray(48)
    n = mpopts.put(out, 0, mo)
    assert out[0] == 30 and out[1] == n
    mo2 = mpopts.MpOptions()
    assert mpopts.parse(out, 0, n, mo2) == OK
    assert mo2.subtype == mo.subtype and _fields(mo2) == _fields(mo)
    # only DSS "csum without a mapping" (tolerated like Linux) may shrink
    if n != length:
        assert mo.subtype == mpopts.DSS and n == length - 2
        assert not (mo.dss_flags & mpopts.DSS_MAP)
    else:
        # identical except reserved bits (only in bytes 2 and 3)
        assert out[2] >> 4 == buf[off + 2] >> 4
        assert bytes(out[4:n]) == bytes(buf[off + 4:off + n])


@SETTINGS
@given(st.binary(min_size=0, max_size=48), st.integers(0, 50), st.integers(-2, 60))
def test_mpopts_random(data, off, length):
    _check_mp(data, off, length)
    if len(data) >= 2:
        b = bytearray(data)
        b[0] = 30
        _check_mp(b, 0, b[1])
        b[1] = len(b)
        _check_mp(b, 0, len(b))


@st.composite
def mutated(draw, seeds):
    b = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.integers(0, 3))
        if op == 0 and b:
            i = draw(st.integers(0, len(b) - 1))
            b[i] = draw(st.integers(0, 255))
        elif op == 1 and b:
            i = draw(st.integers(0, len(b) - 1))
            b[i] ^= 1 << draw(st.integers(0, 7))
        elif op == 2:
            b = b[:draw(st.integers(0, len(b)))]
        else:
            b += draw(st.binary(max_size=8))
    return bytes(b)


@SETTINGS
@given(mutated(SEEDS), st.booleans())
def test_mpopts_mutated(b, fix_len):
    if fix_len and len(b) >= 2:
        bb = bytearray(b)
        bb[1] = len(bb)
        b = bytes(bb)
    length = b[1] if len(b) >= 2 else len(b)
    _check_mp(b, 0, length)
    _check_mp(memoryview(bytearray(b)), 0, length)


def _tcp_packet(opts, payload=b"ab"):
    pad = (-len(opts)) % 4
    opts = bytes(opts) + b"\x00" * pad
    if len(opts) > 40:
        opts = opts[:40]
    seg = bytearray(20 + len(opts) + len(payload))
    tcpwire.write_header(seg, 0, 40000, 6001, 12345, 67890, tcpwire.ACK, 500, len(opts))
    seg[20:20 + len(opts)] = opts
    seg[20 + len(opts):] = payload
    return seg


TCP_OPT_SEEDS = [
    bytes.fromhex("020405b40402080a1122334400000000010303 07".replace(" ", "")),
    bytes.fromhex("0101080a00000001000000020101050a0000000a00000014"),
    bytes.fromhex("0101080a000000010000000200000000") + SEEDS[8][:20],
    bytes.fromhex("1e082001b019514c1e044001"),
]


def _check_tcp(buf, off, end):
    seg = tcpwire.TcpSegment()
    e = tcpwire.parse(buf, off, end, seg)
    assert isinstance(e, int) and e >= 0
    if e != OK:
        return
    assert 20 <= seg.hlen <= 60 and seg.data_off == off + seg.hlen
    assert seg.data_len == end - seg.data_off >= 0
    assert 0 <= seg.mp_n <= 4 and 0 <= seg.sack_n <= 4
    for i in range(seg.mp_n):
        o, n = seg.mp_off[i], seg.mp_len[i]
        assert off + 20 <= o and o + n <= seg.data_off and buf[o] == 30 and buf[o + 1] == n
        _check_mp(buf, o, n)
    # re-encode the header and the options we understood, then parse again
    opts = bytearray(40)
    k = 0
    if seg.mss:
        k += tcpwire.put_mss(opts, k, seg.mss)
    if seg.wscale >= 0:
        k += tcpwire.put_wscale(opts, k, seg.wscale)
    if seg.sackp:
        k += tcpwire.put_sackp(opts, k)
    if seg.ts_present:
        k += tcpwire.put_ts(opts, k, seg.ts_val, seg.ts_ecr)
    if seg.sack_n and k + 2 + 8 * seg.sack_n <= 40:
        k += tcpwire.put_sack(opts, k, seg.sack_blocks, seg.sack_n)
    k += tcpwire.put_nops(opts, k, (-k) % 4)
    out = bytearray(20 + k)
    tcpwire.write_header(out, 0, seg.sport, seg.dport, seg.seq, seg.ack, seg.flags,
                         seg.window, k)
    out[20:] = opts[:k]
    s2 = tcpwire.TcpSegment()
    assert tcpwire.parse(out, 0, len(out), s2) == OK
    for f in ("sport", "dport", "seq", "ack", "flags", "window", "mss", "wscale", "sackp",
              "ts_present", "ts_val", "ts_ecr"):
        assert getattr(s2, f) == getattr(seg, f), f
    if s2.sack_n:
        assert s2.sack_blocks[:2 * s2.sack_n] == seg.sack_blocks[:2 * seg.sack_n]


@SETTINGS
@given(st.binary(min_size=0, max_size=80), st.integers(0, 8), st.integers(0, 90))
def test_tcpwire_random(data, off, end):
    _check_tcp(data, off, min(end, len(data)))
    _check_tcp(data, off, end)   # end beyond the buffer: E_SHORT, no raise


@SETTINGS
@given(mutated([bytes(_tcp_packet(o)) for o in TCP_OPT_SEEDS]))
def test_tcpwire_mutated(b):
    _check_tcp(b, 0, len(b))
    _check_tcp(bytearray(b), 0, len(b))


def _ip_packet(payload_len=20):
    b = bytearray(20 + payload_len)
    ipv4.write(b, 0, bytes([198, 18, 1, 2]), bytes([198, 18, 0, 1]), 6, payload_len, 7)
    return bytes(b)


def _check_ip(buf, n):
    h = ipv4.IPv4Header()
    e = ipv4.parse(buf, n, h)
    assert isinstance(e, int) and e >= 0
    if e != OK:
        return
    assert 20 <= h.hlen <= h.total <= min(n, len(buf))
    out = bytearray(20)
    ipv4.write(out, 0, buf[12:16], buf[16:20], h.proto, h.total - 20, h.ident, h.ttl, h.df)
    h2 = ipv4.IPv4Header()
    assert ipv4.parse(out + bytearray(h.total - 20), h.total, h2) == OK
    for f in ("total", "proto", "ttl", "ident", "df"):
        assert getattr(h2, f) == getattr(h, f), f


@SETTINGS
@given(st.binary(min_size=0, max_size=80), st.integers(-1, 100), st.booleans())
def test_ipv4_random(data, n, v4):
    if v4 and data:
        b = bytearray(data)
        b[0] = 0x45
        data = bytes(b)
    _check_ip(data, n)


@SETTINGS
@given(mutated([_ip_packet(0), _ip_packet(20), _ip_packet(3)]))
def test_ipv4_mutated(b):
    _check_ip(b, len(b))
    h = ipv4.IPv4Header()
    assert ipv4.parse(b, len(b), h, False) >= 0
