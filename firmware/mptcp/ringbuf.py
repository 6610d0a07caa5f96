"""Preallocated byte ring for the send and receive buffers of a connection.

The ring is allocated once; data moves in and out with memoryview slice
copies (at most two per call, one per side of the wrap). Offsets given to
`peek_into`/`write_at` are relative to the read position, so the caller keeps
only small relative sequence numbers. `write_at` stores out-of-order data
beyond the readable bytes without making it readable; `commit` does that.
"""


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
        n = self.write_at(self.len, data)
        self.len += n
        return n

    def write_at(self, off, data):
        """Copy data to offset off (>= 0) past the read position; no commit.

        Bytes that would fall beyond the ring's capacity are cut off; returns
        how many were stored.
        """
        size = self.size
        n = len(data)
        if off >= size:
            return 0
        if off + n > size:
            n = size - off
        p = self.pos(off)
        first = size - p
        if first >= n:
            self.mv[p:p + n] = data[:n] if n != len(data) else data
        else:
            self.mv[p:size] = data[:first]
            self.mv[0:n - first] = data[first:n]
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
        if first >= n:
            dst[d:d + n] = self.mv[p:p + n]
        else:
            dst[d:d + first] = self.mv[p:size]
            dst[d + first:d + n] = self.mv[0:n - first]
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
