"""Blocking socket-like API over the poll loop (for apps and scripts).

    s = MPSocket(loop); s.connect(("198.18.0.1", 5001)); s.sendall(data); s.close()
    ls = MPSocket(loop); ls.listen(5001); c = ls.accept(); n = c.recv_into(buf)

Errors raise OSError with a message (ETIMEDOUT, ECONNRESET, ...).
"""
from mptcp import ticks
from mptcp_runtime import clock
from mptcp_net.netif import ip_aton

ETIMEDOUT = 110
ECONNRESET = 104
ENOTCONN = 107
ECONNREFUSED = 111


class MPSocket:
    def __init__(self, loop, ifindex=0, mptcp=True, csum=False, timeout_ms=30000):
        self.loop = loop
        self.ifindex = ifindex
        self.mptcp = mptcp
        self.csum = csum
        self.timeout_ms = timeout_ms
        self.conn = None
        self._port = None

    # -- client
    def connect(self, addr):
        host, port = addr
        st = self.loop.stack
        self.conn = c = st.connect(clock.now_ms(), ip_aton(host), port, self.ifindex,
                                   self.mptcp, self.csum)
        if not self.loop.run_until(lambda: c.established or c.error is not None or c.closed,
                                   self.timeout_ms):
            c.abort()
            raise OSError(ETIMEDOUT, "connect to %s:%d timed out" % (host, port))
        self._check()

    # -- server
    def listen(self, port, backlog=1):
        self.loop.stack.listen(port, self.mptcp, self.csum)
        self._port = port

    def accept(self, timeout_ms=None):
        st = self.loop.stack
        box = [None]

        def ready():
            box[0] = st.accept()
            return box[0] is not None
        if not self.loop.run_until(ready, self.timeout_ms if timeout_ms is None else timeout_ms):
            raise OSError(ETIMEDOUT, "accept on port %d timed out" % self._port)
        s = MPSocket(self.loop, self.ifindex, self.mptcp, self.csum, self.timeout_ms)
        s.conn = box[0]
        return s

    def _check(self):
        c = self.conn
        if c is None:
            raise OSError(ENOTCONN, "not connected")
        if c.error is not None:
            raise OSError(ECONNRESET, str(c.error))

    # -- data
    def send(self, buf):
        """Queue as much of buf as fits; waits until at least one byte fits."""
        c = self.conn
        self._check()
        mv = buf if isinstance(buf, memoryview) else memoryview(buf)
        n = c.write(mv)
        if n:
            return n
        end = ticks.add(clock.now_ms(), self.timeout_ms)
        loop = self.loop
        while True:
            loop.run_once()
            self._check()
            n = c.write(mv)
            if n:
                return n
            if ticks.diff(clock.now_ms(), end) >= 0:
                raise OSError(ETIMEDOUT, "send timed out (peer window closed?)")

    def sendall(self, buf):
        mv = buf if isinstance(buf, memoryview) else memoryview(buf)
        off = 0
        total = len(mv)
        while off < total:
            off += self.send(mv[off:])
        return total

    def recv_into(self, buf, nbytes=0):
        """Block until data arrives; return bytes read, 0 at end of stream."""
        c = self.conn
        mv = buf if isinstance(buf, memoryview) else memoryview(buf)
        if nbytes:
            mv = mv[:nbytes]
        end = ticks.add(clock.now_ms(), self.timeout_ms)
        loop = self.loop
        while True:
            n = c.readinto(mv)
            if n:
                return n
            if c.eof:
                return 0        # a clean end of stream stays clean (a later RST is not an error here)
            if c.closed:
                if c.error is not None:
                    raise OSError(ECONNRESET, str(c.error))
                return 0
            self._check()
            loop.run_once()
            if ticks.diff(clock.now_ms(), end) >= 0:
                raise OSError(ETIMEDOUT, "recv timed out")

    def close(self, linger_ms=10000):
        """Send DATA_FIN after queued data; wait (up to linger_ms) for the close to finish."""
        c = self.conn
        if c is None:
            return
        c.close()
        self.loop.run_until(lambda: c.closed or c.error is not None, linger_ms)

    def shutdown_write(self):
        self.conn.shutdown_write()
