"""RingBuf: wrap-around, out-of-order writes with commit, partial copies."""
from mptcp.ringbuf import RingBuf


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
    assert bytes(dst[2:7]) == b"defgh"


def test_memoryview_source():
    r = RingBuf(16)
    src = memoryview(bytearray(b"0123456789"))
    assert r.write(src[2:6]) == 4
    out = bytearray(4)
    r.readinto(out)
    assert bytes(out) == b"2345"
