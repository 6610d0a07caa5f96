"""MPTCP option codec: kernel-written vectors, round trips of every subtype and
flag combination, and malformed/truncated input (an error code, never a raise)."""
from tutil import hexb
from mptcp import mpopts as m
from mptcp.errors import OK, E_SHORT, E_BADLEN, E_BADOPT, E_UNKNOWN, name

# Options written by Linux 6.18 (from ../shared/vectors, see test_golden_vectors).
KERNEL = (
    "1e040101",                                                   # MP_CAPABLE SYN
    "1e0c01016f3cfc7b86592ab2",                                   # SYN/ACK
    "1e140101f7214061b1ceba8c6f3cfc7b86592ab2",                   # ACK
    "1e160101f7214061b1ceba8c6f3cfc7b86592ab20005",               # ACK + data
    "1e040181",                                                   # SYN, A (csum) flag
    "1e180181dc22b058f0a9b06f98235f7a877d5af24e20dcb3",           # ACK + data + csum
    "1e0c200371f95d97f6d4bfed",                                   # DSS ack64
    "1e082001b019514c",                                           # DSS ack32
    "1e1a200f71f95d97f6d4bfedded23b3497b7128a000000010bb8",       # ack64 + map64
    "1e16200d0e9d7ff8b5234bfcb019514c000000017a60",               # ack32 + map64
    "1e16201d0e9d7ff8b5234bfcb047180c000000000001",               # + DATA_FIN
    "1e1a201fb5234bfcb047180d816a48e30e9d7ff8000000000001",       # ack64 map64 FIN
    "1e18200dbe783c75e249fcdecaa89cfc000000014e20dcb3",           # map + csum
    "1e1c201fe249fcdecaa8eb1dfc172c73be783c75000000000001dc85",   # FIN + csum
    "1e0c1000e5207a1b404e9f91",                                   # MP_JOIN SYN
    "1e101001d3a86beaedb9ef2a15f57a8c",                           # MP_JOIN SYN/ACK
    "1e181000ecf53a571e407c9039be260c3b9b07283bbeb2c0",           # MP_JOIN ACK
    "1e103001c612000225114e26921a7e28",                           # ADD_ADDR + HMAC
    "1e083101c6120002",                                           # ADD_ADDR echo
    "1e044001",                                                   # REMOVE_ADDR id 1
    "1e0351",                                                     # MP_PRIO backup
    "1e0c70006f3cfc7b86592ab2",                                   # MP_FASTCLOSE
    "1e048000",                                                   # MP_TCPRST
)


def _parse(b, mo=None):
    mo = mo or m.MpOptions()
    return m.parse(b, 0, len(b), mo), mo


def _reencode(mo):
    out = bytearray(40)
    n = m.put(out, 0, mo)
    return bytes(out[:n])


def test_kernel_vectors_roundtrip():
    mo = m.MpOptions()
    for h in KERNEL:
        b = hexb(h)
        e, _ = _parse(b, mo)
        assert e == OK, (h, name(e))
        assert mo.length == len(b)
        assert _reencode(mo) == b, h


def test_kernel_fields():
    e, mo = _parse(hexb("1e0c01016f3cfc7b86592ab2"))
    assert e == OK and mo.subtype == m.MP_CAPABLE and mo.version == 1
    assert mo.flags == m.CAP_H and mo.skey == hexb("6f3cfc7b86592ab2") and mo.rkey is None
    assert mo.dll is None and mo.csum is None
    e, mo = _parse(hexb("1e180181dc22b058f0a9b06f98235f7a877d5af24e20dcb3"))
    assert mo.flags == m.CAP_A | m.CAP_H and mo.dll == 20000 and mo.csum == 0xDCB3
    assert mo.skey == hexb("dc22b058f0a9b06f") and mo.rkey == hexb("98235f7a877d5af2")
    e, mo = _parse(hexb("1e16200d0e9d7ff8b5234bfcb019514c000000017a60"))
    assert e == OK and mo.subtype == m.DSS
    assert mo.dss_flags == m.DSS_ACK | m.DSS_MAP | m.DSS_DSN8
    assert mo.data_ack == 0x0E9D7FF8 and not mo.data_ack8
    assert mo.dsn == 0xB5234BFCB019514C and mo.dsn8 and mo.ssn == 1 and mo.dll == 0x7A60
    assert mo.csum is None and mo.data_ack_off == 4 and mo.dsn_off == 8
    e, mo = _parse(hexb("1e0c1000e5207a1b404e9f91"))
    assert mo.subtype == m.MP_JOIN and mo.token == 0xE5207A1B
    assert mo.nonce == hexb("404e9f91") and mo.addr_id == 0 and not mo.backup
    e, mo = _parse(hexb("1e101001d3a86beaedb9ef2a15f57a8c"))
    assert mo.addr_id == 1 and mo.hmac == hexb("d3a86beaedb9ef2a") and mo.nonce == hexb("15f57a8c")
    e, mo = _parse(hexb("1e181000ecf53a571e407c9039be260c3b9b07283bbeb2c0"))
    assert len(mo.hmac) == 20 and mo.addr_id == -1
    e, mo = _parse(hexb("1e103001c612000225114e26921a7e28"))
    assert mo.subtype == m.ADD_ADDR and not mo.echo and mo.ipver == 4 and mo.addr_id == 1
    assert mo.addr == bytes([198, 18, 0, 2]) and not mo.has_port and mo.port == 0
    assert mo.hmac == hexb("25114e26921a7e28")
    e, mo = _parse(hexb("1e083101c6120002"))
    assert mo.echo and mo.hmac is None and mo.addr == bytes([198, 18, 0, 2])
    e, mo = _parse(hexb("1e044001"))
    assert mo.subtype == m.REMOVE_ADDR and mo.ids == b"\x01"
    e, mo = _parse(hexb("1e0351"))
    assert mo.subtype == m.MP_PRIO and mo.backup and mo.addr_id == -1
    e, mo = _parse(hexb("1e0c70006f3cfc7b86592ab2"))
    assert mo.subtype == m.MP_FASTCLOSE and mo.rkey == hexb("6f3cfc7b86592ab2")
    e, mo = _parse(hexb("1e048000"))
    assert mo.subtype == m.MP_TCPRST and mo.reason == 0 and mo.flags == 0


def test_dss_checksum_pseudo_header_kernel():
    # DATA_FIN alone (ssn 0, dll 1, no payload): the pseudo-header is all that is summed.
    for h in ("1e18201dbe783c75e249fcdecaa8eb1c0000000000016b10",
              "1e1c201fe249fcdecaa8eb1dfc172c73be783c75000000000001dc85"):
        e, mo = _parse(hexb(h))
        assert e == OK and mo.dss_flags & m.DSS_FIN
        assert m.dss_csum_sum(mo.dsn, mo.ssn, mo.dll) + mo.csum == 0xFFFF


def test_mp_capable_all_lengths():
    k1 = hexb("0102030405060708")
    k2 = hexb("f1f2f3f4f5f6f7f8")
    cases = ((None, None, None, None, 4), (k1, None, None, None, 12),
             (k1, k2, None, None, 20), (k1, k2, 1400, None, 22), (k1, k2, 65535, 0xABCD, 24))
    for sk, rk, dll, cs, n in cases:
        for ver in (0, 1):
            for fl in (m.CAP_H, m.CAP_A | m.CAP_H, m.CAP_C | m.CAP_H, 0xFF):
                b = bytearray(n + 3)
                assert m.mp_capable_len(sk, rk, dll, cs) == n
                assert m.put_mp_capable(b, 3, fl, sk, rk, dll, cs, ver) == n
                mo = m.MpOptions()
                assert m.parse(b, 3, n, mo) == OK
                assert (mo.subtype, mo.version, mo.flags, mo.skey, mo.rkey, mo.dll, mo.csum) == \
                    (m.MP_CAPABLE, ver, fl, sk, rk, dll, cs)
                assert _reencode(mo) == bytes(b[3:])


def test_dss_every_flag_combination():
    mo = m.MpOptions()
    for f in range(32):
        for cs in (None, 0x1234):
            ack = 0x0102030405060708 if f & m.DSS_ACK8 else 0xFEDCBA98
            dsn = 0xF0E0D0C0B0A09080 if f & m.DSS_DSN8 else 0x80000001
            n = m.dss_len(f, cs is not None and bool(f & m.DSS_MAP))
            b = bytearray(n)
            assert m.put_dss(b, 0, f, ack, dsn, 0xFFFFFFFF, 1460, cs) == n
            assert b[1] == n
            assert m.parse(b, 0, n, mo) == OK, (f, cs)
            assert mo.subtype == m.DSS and mo.dss_flags == f
            if f & m.DSS_ACK:
                assert mo.data_ack == ack and mo.data_ack8 == bool(f & m.DSS_ACK8)
            else:
                assert mo.data_ack == 0
            if f & m.DSS_MAP:
                assert mo.dsn == dsn and mo.dsn8 == bool(f & m.DSS_DSN8)
                assert mo.ssn == 0xFFFFFFFF and mo.dll == 1460 and mo.csum == cs
            else:
                assert mo.dll is None and mo.csum is None
            assert _reencode(mo) == bytes(b)


def test_dss_lengths():
    assert m.dss_len(0) == 4
    assert m.dss_len(m.DSS_ACK) == 8
    assert m.dss_len(m.DSS_ACK | m.DSS_ACK8) == 12
    assert m.dss_len(m.DSS_MAP) == 14
    assert m.dss_len(m.DSS_MAP, True) == 16
    assert m.dss_len(m.DSS_MAP | m.DSS_DSN8 | m.DSS_ACK | m.DSS_ACK8, True) == 28
    assert m.dss_len(m.DSS_ACK8 | m.DSS_DSN8) == 4   # a/m without A/M add nothing


def test_dss_wraps_32bit_fields():
    b = bytearray(18)
    n = m.put_dss(b, 0, m.DSS_ACK | m.DSS_MAP, 0x1FFFFFFFF, 0x300000002, 7, 1)
    mo = m.MpOptions()
    assert m.parse(b, 0, n, mo) == OK and mo.data_ack == 0xFFFFFFFF and mo.dsn == 2


def test_dss_extra_two_octets_without_map_accepted():
    # Linux accepts opsize == expected + 2 with any flags; nothing is kept.
    b = hexb("1e0a2001b019514c0000")
    e, mo = _parse(b)
    assert e == OK and mo.csum is None and mo.data_ack == 0xB019514C


def test_mp_join_roundtrips():
    mo = m.MpOptions()
    for bk in (False, True):
        b = bytearray(12)
        assert m.put_mp_join_syn(b, 0, 5, 0xDEADBEEF, hexb("01020304"), bk) == 12
        assert m.parse(b, 0, 12, mo) == OK
        assert (mo.addr_id, mo.token, mo.nonce, mo.backup) == (5, 0xDEADBEEF, hexb("01020304"), bk)
        assert _reencode(mo) == bytes(b)
        b2 = bytearray(12)
        m.put_mp_join_syn(b2, 0, 5, 0xDEADBEEF, 0x01020304, bk)   # nonce as int
        assert b2 == b
        b = bytearray(16)
        assert m.put_mp_join_synack(b, 0, 255, bytes(range(32)), hexb("a1a2a3a4"), bk) == 16
        assert m.parse(b, 0, 16, mo) == OK
        assert (mo.addr_id, mo.hmac, mo.nonce, mo.backup) == (255, bytes(range(8)), hexb("a1a2a3a4"), bk)
        assert _reencode(mo) == bytes(b)
    b = bytearray(24)
    assert m.put_mp_join_ack(b, 0, bytes(range(100, 132))) == 24
    assert m.parse(b, 0, 24, mo) == OK and mo.hmac == bytes(range(100, 120))
    assert _reencode(mo) == bytes(b)


def test_add_addr_all_forms():
    mo = m.MpOptions()
    a4 = bytes([198, 18, 0, 2])
    a6 = bytes(range(0x20, 0x30))
    h = hexb("0102030405060708")
    for addr in (a4, a6):
        for port in (0, 6001):
            for echo in (False, True):
                n = m.add_addr_len(4 if len(addr) == 4 else 6, port != 0, not echo)
                b = bytearray(n)
                assert m.put_add_addr(b, 0, 7, addr, port, None if echo else h, echo) == n
                assert m.parse(b, 0, n, mo) == OK, (len(addr), port, echo)
                assert mo.echo == echo and mo.addr == addr and mo.port == port
                assert mo.has_port == (port != 0) and mo.addr_id == 7
                assert mo.ipver == (4 if len(addr) == 4 else 6)
                assert mo.hmac == (None if echo else h)
                assert _reencode(mo) == bytes(b)
    # explicit port 0 on the wire survives a round trip
    b = bytearray(10)
    assert m.put_add_addr(b, 0, 1, a4, 0, None, True, True) == 10
    assert m.parse(b, 0, 10, mo) == OK and mo.has_port and mo.port == 0
    assert _reencode(mo) == bytes(b)
    assert [m.add_addr_len(v, p, hm) for v in (4, 6) for p in (0, 1) for hm in (0, 1)] == \
        [8, 16, 10, 18, 20, 28, 22, 30]


def test_other_subtypes_roundtrip():
    mo = m.MpOptions()
    b = bytearray(8)
    n = m.put_remove_addr(b, 0, [1, 2, 255, 0, 9])
    assert n == 8 and m.parse(b, 0, n, mo) == OK and mo.ids == bytes([1, 2, 255, 0, 9])
    assert _reencode(mo) == bytes(b)
    for bk in (False, True):
        for aid in (-1, 3):
            b = bytearray(4)
            n = m.put_mp_prio(b, 0, bk, aid)
            assert n == (3 if aid < 0 else 4)
            assert m.parse(b, 0, n, mo) == OK and mo.backup == bk and mo.addr_id == aid
            assert _reencode(mo) == bytes(b[:n])
    b = bytearray(12)
    assert m.put_mp_fail(b, 0, 0xFFFFFFFFFFFFFFFF) == 12
    assert m.parse(b, 0, 12, mo) == OK and mo.subtype == m.MP_FAIL and mo.dsn == 0xFFFFFFFFFFFFFFFF
    assert _reencode(mo) == bytes(b)
    b = bytearray(12)
    assert m.put_mp_fastclose(b, 0, hexb("0807060504030201")) == 12
    assert m.parse(b, 0, 12, mo) == OK and mo.rkey == hexb("0807060504030201")
    assert _reencode(mo) == bytes(b)
    for reason in range(7):
        for fl in (0, m.TCPRST_T, 0x0F):
            b = bytearray(4)
            assert m.put_mp_tcprst(b, 0, reason, fl) == 4
            assert m.parse(b, 0, 4, mo) == OK and mo.reason == reason and mo.flags == fl
            assert _reencode(mo) == bytes(b)


def test_subtype_names():
    assert m.subtype_name(m.DSS) == "DSS"
    assert m.subtype_name(m.MP_TCPRST) == "MP_TCPRST"
    assert m.subtype_name(15) == "MP_EXPERIMENTAL"
    assert m.subtype_name(11) == "MP_11"


def test_malformed_returns_codes():
    mo = m.MpOptions()
    assert m.parse(b"", 0, 0, mo) == E_SHORT
    assert m.parse(hexb("1e04"), 0, 4, mo) == E_SHORT          # truncated buffer
    assert m.parse(hexb("1e0401"), 0, 3, mo) == E_BADLEN       # length byte mismatch
    assert m.parse(hexb("1e040101"), 1, 4, mo) == E_SHORT
    assert m.parse(hexb("1e040101"), -1, 4, mo) == E_SHORT
    assert m.parse(hexb("02040101"), 0, 4, mo) == E_BADOPT     # not kind 30
    assert m.parse(hexb("1e0300"), 0, 3, mo) == E_BADLEN       # MP_CAPABLE of 3
    assert m.parse(hexb("1e04f000"), 0, 4, mo) == E_UNKNOWN and mo.subtype == 15
    assert m.parse(hexb("1e049000"), 0, 4, mo) == E_UNKNOWN and mo.subtype == 9
    bad = {
        m.MP_CAPABLE: (3, 5, 8, 13, 21, 23, 25, 30),
        m.MP_JOIN: (3, 4, 11, 13, 15, 17, 20, 23, 25),
        m.DSS: (3, 5, 7, 9, 13, 15, 17),
        m.ADD_ADDR: (3, 4, 7, 9, 11, 12, 17, 19, 40),
        m.REMOVE_ADDR: (3,),
        m.MP_PRIO: (5, 6),
        m.MP_FAIL: (4, 11, 13),
        m.MP_FASTCLOSE: (4, 11, 13),
        m.MP_TCPRST: (3, 5),
    }
    for st, lens in bad.items():
        for n in lens:
            b = bytearray(n)
            b[0] = 30
            b[1] = n
            b[2] = st << 4
            if st == m.DSS and n > 3:
                b[3] = m.DSS_ACK   # expects 8 (or 10)
            e = m.parse(b, 0, n, mo)
            assert e == E_BADLEN, (st, n, name(e))


def test_truncated_every_prefix_never_raises():
    mo = m.MpOptions()
    for h in KERNEL:
        full = hexb(h)
        for cut in range(len(full)):
            b = full[:cut]
            assert m.parse(b, 0, len(full), mo) != OK
            # claimed length = available bytes: either ok with another layout or an error
            if cut >= 2:
                bb = bytearray(b)
                bb[1] = cut
                e = m.parse(bb, 0, cut, mo)
                assert e >= 0


def _hot_path_packet():
    from mptcp import ipv4, tcpwire as tw
    pkt = bytearray(84)
    ipv4.write(pkt, 0, b"\xc6\x12\x01\x02", b"\xc6\x12\x00\x01", 6, 64, 1)
    o = 40
    o += tw.put_nops(pkt, o, 2)
    o += tw.put_ts(pkt, o, 1000, 2000)
    o += m.put_dss(pkt, o, m.DSS_ACK | m.DSS_MAP, 0x1234, 0x5678, 1, 1460)
    o += tw.put_sack(pkt, o, [1, 2], 1)
    tw.write_header(pkt, 20, 1, 2, 3, 4, tw.ACK, 5, o - 40)
    return pkt


def _locked_ok(fn):
    from mptcp.compat import heap_lock, heap_unlock
    fn()
    ok = True
    heap_lock()
    try:
        fn()
    except MemoryError:
        ok = False
    heap_unlock()
    return ok


def test_hot_path_allocates_nothing():
    """ipv4/tcpwire/DSS parse and the DSS/header writers run under heap_lock
    (MicroPython; a no-op on CPython) with 32-bit wire values."""
    from mptcp import ipv4, tcpwire as tw
    pkt = _hot_path_packet()
    h = ipv4.IPv4Header()
    seg = tw.TcpSegment()
    mo = m.MpOptions()
    n = len(pkt)
    assert _locked_ok(lambda: ipv4.parse(pkt, n, h))
    assert ipv4.parse(pkt, n, h) == OK and h.total == 84
    assert _locked_ok(lambda: tw.parse(pkt, 20, 84, seg))
    assert tw.parse(pkt, 20, 84, seg) == OK and seg.mp_n == 1 and seg.sack_n == 1
    assert seg.hlen == 60 and seg.data_len == 4
    assert _locked_ok(lambda: m.parse(pkt, seg.mp_off[0], seg.mp_len[0], mo))
    assert mo.data_ack == 0x1234 and mo.dsn == 0x5678 and mo.dll == 1460
    assert _locked_ok(lambda: m.put_dss(pkt, seg.mp_off[0], mo.dss_flags, mo.data_ack,
                                        mo.dsn, mo.ssn, mo.dll, mo.csum))
    assert _locked_ok(lambda: tw.write_header(pkt, 20, 1, 2, 3, 4, tw.ACK, 5, 24))
    assert _locked_ok(lambda: ipv4.pseudo_sum(pkt, pkt, 6, 64, 12, 16))


def test_data_path_codecs_allocate_nothing_with_32bit_values():
    """The data path's DSS reader/writer with every field beyond 2**30 (heap ints on a
    32-bit board if ever built): parse_dss_fast gives halves/offsets, the writers take
    halves and limbs; nothing allocates (MicroPython's heap_lock; the values are checked
    on every interpreter)."""
    from mptcp import tcpwire as tw
    b = bytearray(40)
    f = m.DSS_ACK | m.DSS_MAP
    n = m.put_dss(b, 0, f, 0xFEDCBA98, 0xC0000001, 0xFFFFFFF0, 1460, 0xBEEF)
    mo = m.MpOptions()
    assert _locked_ok(lambda: m.parse_dss_fast(b, 0, n, mo))
    assert m.parse_dss_fast(b, 0, n, mo) == OK
    assert (mo.data_ack_h, mo.data_ack_l) == (0xFEDC, 0xBA98)
    assert (mo.dsn_h, mo.dsn_l) == (0xC000, 0x0001)
    assert (mo.ssn_h, mo.ssn_l) == (0xFFFF, 0xFFF0) and mo.dll == 1460 and mo.csum == 0xBEEF
    # relative values nearest a small reference, from halves
    assert _locked_ok(lambda: tw.rel32(mo.ssn_h, mo.ssn_l, 0xFFFF, 0xFF00, 100))
    assert tw.rel32(mo.ssn_h, mo.ssn_l, 0xFFFF, 0xFF00, 100) == 0xF0
    base = m.limbs64(0xFFFFFFFFC0000000)
    assert tw.rel32(mo.dsn_h, mo.dsn_l, base[2], base[3], 0) == 1
    # 8-byte DSN/DATA_ACK written from limbs + relative, SSN from halves
    f8 = m.DSS_ACK | m.DSS_ACK8 | m.DSS_MAP | m.DSS_DSN8
    out = bytearray(40)
    assert _locked_ok(lambda: m.put_dss_rel(out, 0, f8, base, 5, base, 7, 0xABCD, 0x1234, 100, 0x55AA))
    assert m.parse(out, 0, 28, mo) == OK
    assert mo.data_ack == 0xFFFFFFFFC0000005 and mo.dsn == 0xFFFFFFFFC0000007
    assert mo.ssn == 0xABCD1234 and mo.dll == 100 and mo.csum == 0x55AA
    assert _locked_ok(lambda: m.get_rel64(out, 4, base))
    assert m.get_rel64(out, 12, base) == 7
    assert _locked_ok(lambda: m.dss_pseudo_rel(base, 7, 0xABCD, 0x1234, 100))
    assert m.dss_pseudo_rel(base, 7, 0xABCD, 0x1234, 100) == \
        m.dss_csum_sum(0xFFFFFFFFC0000007, 0xABCD1234, 100)
    assert _locked_ok(lambda: tw.put_ts_hh(out, 0, 0xFFFF, 0xFFFE, 0x8000, 1))
    assert bytes(out[2:10]) == bytes([0xFF, 0xFF, 0xFF, 0xFE, 0x80, 0, 0, 1])


def test_limbs_add_rebases_both_ways():
    b = m.limbs64(0xFFFFFFFFFFFF0000)
    m.limbs_add(b, 0x10000)
    assert b == [0, 0, 0, 0]
    m.limbs_add(b, -0x10000000)
    assert b == m.limbs64(0xFFFFFFFFF0000000)
    m.limbs_add(b, 0x10000000 + 5)
    assert b == [0, 0, 0, 5]


def test_mutation_fuzz_never_raises():
    """Deterministic mutation fuzz (both interpreters): codes, never exceptions;
    what parses re-encodes to something that parses to the same subtype."""
    mo = m.MpOptions()
    mo2 = m.MpOptions()
    out = bytearray(48)
    x = 12345
    seeds = [hexb(h) for h in KERNEL]
    ok = 0
    for it in range(3000):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        b = bytearray(seeds[x % len(seeds)])
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        i = x % len(b)
        b[i] = (x >> 8) & 0xFF
        if x & 0x10000:
            b = b[:(x >> 5) % (len(b) + 1)]
        if len(b) >= 2 and x & 0x20000:
            b[1] = len(b)
        length = b[1] if len(b) >= 2 else len(b)
        e = m.parse(b, 0, length, mo)
        assert e >= 0
        if e == OK:
            ok += 1
            n = m.put(out, 0, mo)
            assert m.parse(out, 0, n, mo2) == OK and mo2.subtype == mo.subtype
    assert ok > 300
