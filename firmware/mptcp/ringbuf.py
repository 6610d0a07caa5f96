"""Preallocated byte ring for the send and receive buffers of a connection.

The ring is allocated once. Data moves in and out with `copy(dst, doff, src,
soff, n)`: on MicroPython a viper routine (mptcp._copy_viper), because every
memoryview slice read there allocates (a byte loop where there is no native code);
on CPython slice assignment. At most
two copies per call, one per side of the wrap. Offsets given to
`peek_into`/`write_at`/`put_at` are relative to the read position, so the
caller keeps only small relative sequence numbers. `write_at`/`put_at` store
out-of-order data beyond the readable bytes without making it readable;
`commit` does that.
"""
import sys


def _fit(dst, doff, src, soff, n):
    """How many of n bytes can go from src[soff:] to dst[doff:] (0 for bad offsets)."""
    if n <= 0 or doff < 0 or soff < 0:
        return 0
    if doff + n > len(dst):
        n = len(dst) - doff
    if soff + n > len(src):
        n = len(src) - soff
    return n if n > 0 else 0


def _copy_slices(dst, doff, src, soff, n):
    """copy() by slice assignment (CPython)."""
    n = _fit(dst, doff, src, soff, n)
    if n == 0:
        return 0
    if soff == 0 and n == len(src):
        dst[doff:doff + n] = src
    else:
        dst[doff:doff + n] = memoryview(src)[soff:soff + n]
    return n


def _copy_bytes(dst, doff, src, soff, n):
    """copy() one byte at a time: MicroPython without native code (e.g. the WebAssembly
    port), where a memoryview slice would allocate on every packet. Slow, allocation-free."""
    n = _fit(dst, doff, src, soff, n)
    k = soff - doff
    for i in range(doff, doff + n):
        dst[i] = src[i + k]
    return n


copy = _copy_slices
IMPL = "slices"
if sys.implementation.name == "micropython":
    copy = _copy_bytes
    IMPL = "bytes"
    try:
        from mptcp._copy_viper import copy
        IMPL = "viper-native"
    except (ImportError, ValueError, SyntaxError, NotImplementedError, AttributeError):
        pass


class RingBuf:
    def __init__(self, size):
        self.buf = bytearray(size)
        self.mv = memoryview(self.buf)
        self.size = size
        self.head = 0      # index of the first readable byte
        self.len = 0       # readable bytes

    def free(self):
        return self.size - self.len

    def clear(self):
        self.head = 0
        self.len = 0

    def pos(self, off):
        """Buffer index of the byte at offset off from the read position."""
        p = self.head + off
        if p >= self.size:
            p -= self.size
        return p

    def write(self, data):
        """Append as much of data as fits; return the byte count."""
        n = self.put_at(self.len, data, 0, len(data))
        self.len += n
        return n

    def write_at(self, off, data):
        """Copy data to offset off (>= 0) past the read position; no commit.

        Bytes that would fall beyond the ring's capacity are cut off; returns
        how many were stored.
        """
        return self.put_at(off, data, 0, len(data))

    def put_at(self, off, src, s, n):
        """write_at for src[s:s+n] without slicing src (the per-packet receive path)."""
        size = self.size
        if off >= size or off < 0:
            return 0
        if off + n > size:
            n = size - off
        if n <= 0:
            return 0
        p = self.pos(off)
        first = size - p
        buf = self.buf
        if first >= n:
            copy(buf, p, src, s, n)
        else:
            copy(buf, p, src, s, first)
            copy(buf, 0, src, s + first, n - first)
        return n

    def commit(self, n):
        """Make n more bytes (already stored with write_at) readable."""
        if self.len + n > self.size:
            n = self.size - self.len
        self.len += n

    def peek_into(self, off, dst, n=-1):
        """Copy up to n (default len(dst)) readable bytes from offset off."""
        avail = self.len - off
        if n < 0 or n > len(dst):
            n = len(dst)
        if n > avail:
            n = avail
        if n <= 0:
            return 0
        return self.copy_out(off, dst, n)

    def copy_out(self, off, dst, n, d=0):
        """Copy n bytes at offset off into dst[d:d+n], readable or not."""
        size = self.size
        p = self.pos(off)
        first = size - p
        buf = self.buf
        if first >= n:
            copy(dst, d, buf, p, n)
        else:
            copy(dst, d, buf, p, first)
            copy(dst, d + first, buf, 0, n - first)
        return n

    def consume(self, n):
        """Drop n bytes from the front (after they are read/acked)."""
        if n > self.len:
            n = self.len
        self.head = self.pos(n)
        self.len -= n      # (head is not reset when empty: out-of-order data may sit beyond)
        return n

    def readinto(self, dst):
        n = self.peek_into(0, dst)
        self.consume(n)
        return n
