"""RingBuf: wrap-around, out-of-order writes with commit, partial copies."""
from mptcp import ringbuf
from mptcp.ringbuf import RingBuf, copy


def test_write_read_wrap():
    r = RingBuf(10)
    assert r.write(b"abcdefgh") == 8
    out = bytearray(5)
    assert r.readinto(out) == 5 and bytes(out) == b"abcde"
    assert r.write(b"123456789") == 7          # only 7 fit
    assert r.len == 10 and r.free() == 0
    out = bytearray(10)
    assert r.readinto(out) == 10
    assert bytes(out) == b"fgh1234567"
    assert r.len == 0


def test_peek_and_consume():
    r = RingBuf(8)
    r.write(b"hello")
    out = bytearray(3)
    assert r.peek_into(1, out) == 3 and bytes(out) == b"ell"
    assert r.peek_into(4, out) == 1 and out[0] == ord("o")
    assert r.peek_into(5, out) == 0
    r.consume(2)
    assert r.peek_into(0, out) == 3 and bytes(out) == b"llo"


def test_write_at_commit_out_of_order():
    r = RingBuf(8)
    r.write(b"ab")
    r.consume(2)                                 # head moved to 2, empty
    assert r.write_at(3, b"xyz") == 3            # beyond the readable bytes
    assert r.len == 0
    assert r.write_at(0, b"012") == 3
    r.commit(6)
    out = bytearray(6)
    assert r.readinto(out) == 6 and bytes(out) == b"012xyz"
    # ooo data must survive the ring going empty (head is not reset)
    r.write_at(2, b"QR")
    r.write_at(0, b"OP")
    r.commit(4)
    out = bytearray(4)
    assert r.readinto(out) == 4 and bytes(out) == b"OPQR"


def test_write_at_clips_to_capacity():
    r = RingBuf(4)
    assert r.write_at(2, b"abcdef") == 2
    assert r.write_at(4, b"a") == 0


def test_copy_out_into_offset():
    r = RingBuf(6)
    r.write(b"abcd")
    r.consume(3)
    r.write(b"efgh")                             # wraps
    dst = bytearray(8)
    r.copy_out(0, dst, 5, 2)
    assert bytes(dst) == b"\0\0defgh\0"                # nothing past d + n


def test_memoryview_source():
    r = RingBuf(16)
    src = memoryview(bytearray(b"0123456789"))
    assert r.write(src[2:6]) == 4
    out = bytearray(4)
    r.readinto(out)
    assert bytes(out) == b"2345"



def test_copy_clamps_to_both_buffers():
    src = b"0123456789"
    dst = bytearray(b"........")
    assert copy(dst, 6, src, 0, 5) == 2                  # clamped to dst
    assert bytes(dst) == b"......01"
    dst = bytearray(b"........")
    assert copy(dst, 0, src, 7, 5) == 3                  # clamped to src
    assert bytes(dst) == b"789....."
    dst = bytearray(b"........")
    assert copy(dst, 1, memoryview(src), 2, 4) == 4
    assert bytes(dst) == b".2345..."


def test_copy_refuses_bad_arguments():
    src = b"0123456789"
    dst = bytearray(b"........")
    for doff, soff, n in ((0, 0, 0), (0, 0, -1), (-1, 0, 3), (0, -1, 3),
                          (8, 0, 3), (9, 0, 3), (0, 10, 3), (0, 11, 3)):
        assert copy(dst, doff, src, soff, n) == 0, (doff, soff, n)
    assert bytes(dst) == b"........"


def test_impl_names_the_copy_in_use():
    """CPython: slices; MicroPython with native code: viper; without (wasm): the byte loop
    (a memoryview slice would allocate on every packet there)."""
    from tutil import expected_impl
    want = expected_impl("slices")
    if want == "pure-python":
        want = "bytes"
    assert ringbuf.IMPL == want, (ringbuf.IMPL, want)
    assert (ringbuf.IMPL == "slices") == (copy is ringbuf._copy_slices)
    assert (ringbuf.IMPL == "bytes") == (copy is ringbuf._copy_bytes)


def test_byte_loop_copy_clamps_like_the_others():
    """_copy_bytes (no native code) behaves exactly as _copy_slices, bounds included."""
    for f in (ringbuf._copy_bytes, ringbuf._copy_slices):
        dst = bytearray(8)
        assert f(dst, 2, b"abcdef", 1, 4) == 4 and bytes(dst) == b"\0\0bcde\0\0"
        assert f(dst, 6, b"xyz", 0, 3) == 2 and bytes(dst[6:]) == b"xy"
        assert f(dst, 0, b"ab", 1, 5) == 1 and dst[0] == ord("b")
        assert f(dst, -1, b"ab", 0, 1) == 0 and f(dst, 0, b"ab", -1, 1) == 0
        assert f(dst, 0, b"ab", 0, 0) == 0
        assert f(dst, 3, b"q", 0, 1) == 1 and dst[3] == ord("q")   # one byte is copied


def test_clear_empties_the_ring():
    r = RingBuf(8)
    r.write(b"abcdef")
    r.consume(3)
    r.clear()
    assert r.len == 0 and r.free() == 8
    assert r.write(b"12345678") == 8
    out = bytearray(8)
    assert r.readinto(out) == 8 and bytes(out) == b"12345678"


def test_empty_and_negative_writes_store_nothing():
    r = RingBuf(8)
    assert r.write(b"") == 0 and r.len == 0
    assert r.write_at(-1, b"x") == 0
    assert r.put_at(-3, b"xyz", 0, 3) == 0
    assert r.put_at(2, b"xyz", 0, 0) == 0
    r.commit(3)
    out = bytearray(3)
    assert r.readinto(out) == 3 and bytes(out) == bytes(3)


def test_commit_is_clamped_to_capacity():
    r = RingBuf(8)
    r.write(b"abcdef")
    r.write_at(6, b"gh")
    r.commit(5)
    assert r.len == 8 and r.free() == 0
    out = bytearray(8)
    assert r.readinto(out) == 8 and bytes(out) == b"abcdefgh"


def test_peek_into_counts():
    r = RingBuf(8)
    r.write(b"hello")
    out = bytearray(4)
    assert r.peek_into(0, out, 0) == 0 and bytes(out) == bytes(4)   # n = 0 copies nothing
    assert r.peek_into(0, out, 2) == 2 and bytes(out) == b"he\0\0"
    assert r.peek_into(1, out, 9) == 4 and bytes(out) == b"ello"    # at most len(dst)


def test_consume_more_than_readable():
    r = RingBuf(8)
    r.write(b"abc")
    assert r.consume(10) == 3
    assert r.len == 0
    assert r.write(b"12345678") == 8                     # the whole ring is free again
