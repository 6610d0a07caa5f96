"""mptcp_net.hdlc (RFC 1662 framing) on both interpreters, every implementation available.

The reference FCS here is the bitwise definition (shift register, poly 0x8408),
written independently of the table-driven code under test.
"""
import random

from tutil import IS_MPY, expected_impl, heap_lock_works
from mptcp_net import hdlc
from mptcp.compat import heap_lock, heap_unlock

IMPLS = sorted(hdlc.IMPLS)


def ref_fcs(data, fcs=0xFFFF):
    for b in data:
        fcs ^= b
        for _ in range(8):
            if fcs & 1:
                fcs = (fcs >> 1) ^ 0x8408
            else:
                fcs >>= 1
    return fcs


def ref_frame(content, accm=0xFFFFFFFF):
    """flag, stuffed content + FCS (complemented, LSB first), flag."""
    f = ref_fcs(content) ^ 0xFFFF
    body = bytes(content) + bytes((f & 0xFF, f >> 8))
    out = bytearray(b"\x7e")
    for b in body:
        if b in (0x7E, 0x7D) or (b < 0x20 and (accm >> b) & 1):
            out.append(0x7D)
            out.append(b ^ 0x20)
        else:
            out.append(b)
    out.append(0x7E)
    return bytes(out)


def _rand(n, seed):
    r = random.Random(seed) if hasattr(random, "Random") else None
    if r is not None:
        return bytes(r.getrandbits(8) for _ in range(n))
    random.seed(seed)
    return bytes(random.getrandbits(8) for _ in range(n))


def _encode(impl, content, accm, size=4096):
    e = hdlc.Encoder(size, impl)
    e.set_accm(accm)
    assert e.frame(content, len(content), b"", 0, 0)
    return bytes(e.buf[e.head:e.tail])


def _decode_all(impl, stream, accm, size=1600, step=0):
    """All good frames in stream (fed in pieces of `step` bytes, 0 = at once)."""
    d = hdlc.Decoder(size, impl)
    d.set_accm(accm)
    out = []
    n = len(stream)
    pos = 0
    while pos < n:
        end = n if step == 0 else min(n, pos + step)
        i = pos
        while i < end:
            i = d.feed(stream, i, end)
            if d.flen:
                out.append(bytes(d.frame[:d.flen]))
        pos = end
    return out, d


def test_impl_chosen():
    """The fast path this interpreter must have picked; pure Python is always there too,
    and every test below runs each implementation in IMPLS."""
    want = expected_impl("cpython-binascii")
    assert hdlc.IMPL == want, (hdlc.IMPL, want)
    assert IMPLS == sorted(set(("pure-python", want))), IMPLS


def test_fcs_vectors():
    for impl in IMPLS:
        # CRC-16/X-25 check value (RFC 1662's FCS-16, complemented)
        assert hdlc.fcs16(b"123456789", impl=impl) ^ 0xFFFF == 0x906E
        assert hdlc.fcs16(b"", impl=impl) == 0xFFFF
        assert hdlc.fcs16(b"\x00", impl=impl) == ref_fcs(b"\x00")
        for seed in range(5):
            data = _rand(300 + seed * 7, seed)
            want = ref_fcs(data)
            assert hdlc.fcs16(data, impl=impl) == want, impl
            # chained over pieces, and with start/end offsets
            f = hdlc.fcs16(data, 0, 123, impl=impl)
            assert hdlc.fcs16(data, 123, len(data), f, impl=impl) == want
            assert hdlc.fcs16(bytearray(data), 10, 20, impl=impl) == ref_fcs(data[10:20])
            assert hdlc.fcs16(memoryview(data), 0, -1, impl=impl) == want
            # a frame with its complemented FCS appended (LSB first) checks to the good value
            c = want ^ 0xFFFF
            assert hdlc.fcs16(data + bytes((c & 0xFF, c >> 8)), impl=impl) == hdlc.FCS_GOOD
        # out of range bounds are clamped
        assert hdlc.fcs16(b"abc", 0, 99, impl=impl) == ref_fcs(b"abc")


def test_encode_matches_reference():
    contents = [b"\xff\x03\xc0\x21\x01\x01\x00\x04", bytes(range(256)),
                b"\x7e\x7d\x7e\x7d", b"\x21" + _rand(1500, 7)]
    for accm in (0xFFFFFFFF, 0, 0x000A0000, 0x80000001):
        for c in contents:
            want = ref_frame(c, accm)
            for impl in IMPLS:
                assert _encode(impl, c, accm) == want, (impl, accm)


def test_every_byte_round_trip():
    for accm in (0xFFFFFFFF, 0, 0x000A0000, 0x55555555):
        for impl in IMPLS:
            data = bytes(range(256)) + bytes(range(255, -1, -1))
            s = _encode(impl, data, accm)
            # nothing the ACCM flags, and no flag, inside the frame
            inner = s[1:-1]
            assert 0x7E not in inner
            for b in inner:
                if b < 0x20:
                    assert not (accm >> b) & 1
            for dimpl in IMPLS:
                got, d = _decode_all(dimpl, s, accm)
                assert got == [data], (impl, dimpl, accm)
                assert d.frames == 1 and d.bad_fcs == 0


def test_pieces_and_offsets():
    for impl in IMPLS:
        e = hdlc.Encoder(512, impl)
        e.set_accm(0)
        a = b"xx\x7e\x01\x02yy"
        b = bytearray(b"..\x7d\x03..")
        assert e.frame(b"\x21", 1, a, 2, 3, memoryview(b), 2, 2)
        got, _ = _decode_all(impl, bytes(e.buf[e.head:e.tail]), 0)
        assert got == [b"\x21\x7e\x01\x02\x7d\x03"]


def test_back_to_back_frames_share_flags():
    for impl in IMPLS:
        e = hdlc.Encoder(1024, impl)
        e.set_accm(0)
        for i in range(3):
            assert e.frame(bytes((0x21, i, i, i)), 4, b"", 0, 0)
        s = bytes(e.buf[e.head:e.tail])
        assert s.count(b"\x7e") == 4        # one opening flag, then one per frame
        got, _ = _decode_all(impl, s, 0)
        assert got == [bytes((0x21, i, i, i)) for i in range(3)]
        e.consumed(len(s))
        assert e.pending() == 0
        assert e.frame(b"\x21abc", 4, b"", 0, 0)
        assert e.buf[0] == 0x7E              # idle again: opens with a flag


def test_streaming_any_chunking():
    frames = [b"\xff\x03\xc0\x21" + _rand(n, n) for n in (4, 50, 300, 1400)]
    stream = b"".join(ref_frame(f, 0) for f in frames)
    for impl in IMPLS:
        for step in (1, 2, 3, 7, 64, 0):
            got, d = _decode_all(impl, stream, 0, step=step)
            assert got == frames, (impl, step)
            assert d.bad_fcs == 0 and d.short == 0


def test_noise_cut_abort_oversize():
    good = b"\xff\x03\x00\x21" + _rand(100, 1)
    g = ref_frame(good, 0)
    stream = (
        b"garbage\x01\x02"                   # noise before the first flag: one bad frame
        + g
        + b"\x7e\x00\x11\x7e"                # 2 bytes between flags: short
        + g[:40] + b"\x7e"                   # cut short: bad FCS
        + b"\x7eabc\x7d\x7e"                 # 0x7D then flag: abort
        + ref_frame(b"\x21" + bytes(3000), 0)   # oversize
        + g[:-3] + bytes(((g[-3] ^ 1),)) + g[-2:]   # one bit flipped: bad FCS
        + b"\x7e\x7e\x7e"                    # flag fill: not an error
        + g)
    for impl in IMPLS:
        for step in (0, 1, 5):
            got, d = _decode_all(impl, stream, 0, step=step)
            assert got == [good, good], (impl, step)
            assert d.short == 1, d.short
            assert d.bad_escape == 1
            assert d.too_long == 1
            assert d.bad_fcs == 3, d.bad_fcs


def test_rx_accm_removes_inserted_control_chars():
    good = b"\xff\x03\xc0\x21\x05\x06\x00\x04"
    s = ref_frame(good, 0xFFFFFFFF)
    # a modem inserted XON/XOFF into the line: RFC 1662 says drop them (they are in the ACCM)
    noisy = s[:5] + b"\x11" + s[5:9] + b"\x13" + s[9:]
    for impl in IMPLS:
        got, d = _decode_all(impl, noisy, 0xFFFFFFFF)
        assert got == [good]
        got, d = _decode_all(impl, noisy, 0)      # not in the ACCM: data, so the FCS fails
        assert got == [] and d.bad_fcs == 1


def test_escape_across_chunks_and_double_escape():
    for impl in IMPLS:
        d = hdlc.Decoder(64, impl)
        d.set_accm(0)
        content = b"\x21\x7e\x7d\x00"
        s = ref_frame(content, 0)
        k = s.index(b"\x7d") + 1                # split right after an escape byte
        i = d.feed(s, 0, k)
        assert d.flen == 0 and i == k
        d.feed(s, k, len(s))
        assert bytes(d.frame[:d.flen]) == content


def test_feed_never_raises_on_random_input():
    for impl in IMPLS:
        d = hdlc.Decoder(200, impl)
        d.set_accm(0)
        for seed in range(20):
            data = _rand(600, 100 + seed)
            i = 0
            while i < len(data):
                i = d.feed(data, i, len(data))
        # and a good frame afterwards is still delivered
        good = b"\xff\x03\x00\x21hello"
        s = b"\x7e" + ref_frame(good, 0)
        i = 0
        out = []
        while i < len(s):
            i = d.feed(s, i, len(s))
            if d.flen:
                out.append(bytes(d.frame[:d.flen]))
        assert out == [good]


def test_encoder_queue_full_and_partial_consume():
    for impl in IMPLS:
        e = hdlc.Encoder(300, impl)
        e.set_accm(0)
        assert e.frame(b"\x21", 1, bytes(120), 0, 120)
        assert e.frame(b"\x21", 1, bytes(120), 0, 120)
        t = e.tail
        assert not e.frame(b"\x21", 1, bytes(120), 0, 120)   # no room: dropped, queue intact
        assert e.dropped == 1 and e.tail == t
        e.consumed(100)
        assert e.head == 100
        assert e.frame(b"\x21", 1, bytes(50), 0, 50)        # compacts to make room
        assert e.head == 0
        s = bytes(e.buf[e.head:e.tail])
        got, _ = _decode_all(impl, b"\x7e" + s, 0)
        assert got[-1] == b"\x21" + bytes(50)
        e.consumed(e.pending())
        assert e.pending() == 0 and e.head == 0
        # worst case (every byte escaped) fits in an empty queue of 2n + 2 + flags
        big = hdlc.Encoder(2 * (1 + 100 + 2) + 2, impl)
        assert big.frame(b"\x7e", 1, b"\x7e" * 100, 0, 100)


def test_no_allocation_on_hot_path():
    """Framing and deframing a full-size packet allocates nothing, with every MicroPython
    implementation (heap_lock makes an allocation raise). CPython has no heap lock: there the
    same run checks the frame only."""
    assert heap_lock_works() == IS_MPY
    pkt = bytearray(_rand(1500, 3))
    hdr = b"\x21"
    mv = memoryview(pkt)
    for impl in IMPLS:
        e = hdlc.Encoder(4096, impl)
        e.set_accm(0)
        d = hdlc.Decoder(1600, impl)
        d.set_accm(0)
        ok = False
        i = n = -1
        heap_lock()
        try:
            ok = e.frame(hdr, 1, mv, 0, 1500)
            n = e.tail
            i = d.feed(e.buf, 0, n)
        except MemoryError:
            ok = False
        heap_unlock()
        assert ok and i == n and d.flen == 1501, (impl, ok, i, n, d.flen)
        assert bytes(d.frame[:d.flen]) == hdr + bytes(pkt), impl


def test_all_ctl_escapes_every_control_character():
    """LCP codes 1..7 go out with the default ACCM whatever was negotiated."""
    for impl in IMPLS:
        e = hdlc.Encoder(256, impl)
        e.set_accm(0)
        body = bytes(range(32))
        assert e.frame(b"\xff\x03\xc0\x21", 4, body, 0, 32, all_ctl=True)
        s = bytes(e.buf[e.head:e.tail])
        assert s == ref_frame(b"\xff\x03\xc0\x21" + body, 0xFFFFFFFF)
        e.clear()
        assert e.frame(b"\xff\x03\xc0\x21", 4, body, 0, 32)     # the negotiated ACCM again
        assert bytes(e.buf[e.head:e.tail]) == ref_frame(b"\xff\x03\xc0\x21" + body, 0)
        e.set_accm(0x000A0000)                                  # changing the ACCM later
        e.clear()                                               # leaves "all" intact
        assert e.frame(b"\xff\x03\xc0\x21", 4, body, 0, 32, all_ctl=True)
        assert bytes(e.buf[e.head:e.tail]) == ref_frame(b"\xff\x03\xc0\x21" + body,
                                                        0xFFFFFFFF)
