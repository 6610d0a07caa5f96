"""asyncio streams over the MPTCP stack, as asyncio's: open_connection / start_server.

    r, w = await aio.open_connection("198.18.0.1", 5001, loop)
    w.write(b"hello\\n"); await w.drain(); line = await r.readline()
    w.close(); await w.wait_closed()
    srv = await aio.start_server(handle, 5001, loop)     # handle(reader, writer)

`loop` is the runtime's poll Loop (mptcp_runtime.loop). One driver task per Loop runs
`loop.run_once(0)` (never blocking the event loop) and then yields: at once while
segments flow, else it sleeps until the stack's next deadline, at most `poll_ms`, because
a packet arriving on a netif cannot wake an asyncio task portably (MicroPython's asyncio
polls only its own streams). After each iteration the driver wakes every waiter whose
connection has what it waits for (data or end of stream, send room, the handshake's end,
the close) and pushes writers' queued data into their send rings. Only APIs both
MicroPython's asyncio and CPython's have are used (Event without timeouts, wait_for,
create_task, sleep; sleep_ms where it exists).

Errors raise OSError(errno, message) like the blocking API (mptcp_runtime.socket_api);
readexactly raises EOFError (asyncio.IncompleteReadError on CPython, a subclass).
"""
try:
    import asyncio
except ImportError:        # older MicroPython
    import uasyncio as asyncio

from mptcp import counters as C
from mptcp_runtime import clock
from mptcp_net.netif import ip_aton, ip_ntoa
from mptcp import ticks

ETIMEDOUT = 110
ECONNRESET = 104
ECONNREFUSED = 111
ENOBUFS = 105

_sleep_ms = getattr(asyncio, "sleep_ms", None)
_Incomplete = getattr(asyncio, "IncompleteReadError", None)

# what a waiter waits for
_W_READ = 1
_W_ROOM = 2
_W_OPEN = 3
_W_CLOSED = 4
# what close() / write_eof() asked for
_EOF = 1
_CLOSE = 2


async def _sleep(ms):
    if _sleep_ms is not None:
        await _sleep_ms(ms)
    else:
        await asyncio.sleep(ms / 1000)


class _Conn:
    """The state a reader and its writer share: the Connection, one Event, queued output."""

    def __init__(self, drv, conn):
        self.drv = drv
        self.c = conn
        self.ev = asyncio.Event()
        self.want = 0
        self.pend = []          # memoryviews of copies written but not yet in the send ring
        self.closing = 0        # _EOF (write_eof) or _CLOSE (close), done once pend is empty
        self.fin_done = False
        drv.conns.append(self)
        drv.ensure()

    def ready(self, want):
        c = self.c
        if c.error is not None or c.closed or self.drv.failed is not None:
            return True
        if want == _W_READ:
            return c.rcv.len > 0 or c.fin_rcvd
        if want == _W_ROOM:
            return c.snd.size > c.snd.len
        if want == _W_OPEN:
            return c.established
        return False

    async def wait(self, want):
        """Until ready(want); the driver sets the Event when it is."""
        drv = self.drv
        while not self.ready(want):
            self.ev.clear()
            self.want = want
            if self not in drv.waiting:
                drv.waiting.append(self)
            drv.ensure()
            try:
                await self.ev.wait()
            finally:
                self.want = 0

    def push(self):
        """Move queued output into the send ring; True when nothing is left queued."""
        pend = self.pend
        c = self.c
        while pend:
            mv = pend[0]
            n = c.write(mv)
            if n == len(mv):
                pend.pop(0)
            else:
                if n:
                    pend[0] = mv[n:]
                return False
        if self.closing and not self.fin_done:
            self.fin_done = True
            if self.closing == _CLOSE:
                c.close()
            else:
                c.shutdown_write()
        return True

    def check(self):
        c = self.c
        if c.error is not None:
            raise OSError(ECONNRESET, str(c.error))
        e = self.drv.failed
        if e is not None:
            raise OSError(ECONNRESET, "the network driver failed: %r" % (e,))


class StreamReader:
    def __init__(self, cs):
        self._cs = cs
        self._buf = b""          # read ahead by readline, served first

    async def _fill(self, limit):
        """Wait for data or the end; return up to limit bytes of what is there (b"" at the end)."""
        cs = self._cs
        await cs.wait(_W_READ)
        c = cs.c
        k = c.rcv.len
        if k > limit:
            k = limit
        if k == 0:
            if not c.eof:          # a clean end of stream stays clean (a later RST too)
                cs.check()
            return b""
        b = bytearray(k)
        n = c.readinto(memoryview(b))
        self._cs.drv.flush()      # the window opened: tell the peer now
        return bytes(b) if n == k else bytes(b[:n])

    async def read(self, n=-1):
        """Up to n bytes (all until the end of stream if n < 0); b"" at the end."""
        if n == 0:
            return b""
        if n < 0:
            parts = []
            while True:
                d = await self.read(65536)
                if not d:
                    return b"".join(parts)
                parts.append(d)
        if self._buf:
            d = self._buf[:n]
            self._buf = self._buf[n:]
            return d
        return await self._fill(n)

    async def readinto(self, buf):
        """Bytes copied into buf (no intermediate copy when nothing is read ahead); 0 at the end."""
        mv = buf if isinstance(buf, memoryview) else memoryview(buf)
        if len(mv) == 0:
            return 0
        if self._buf:
            k = min(len(mv), len(self._buf))
            mv[:k] = self._buf[:k]
            self._buf = self._buf[k:]
            return k
        cs = self._cs
        while True:
            await cs.wait(_W_READ)
            n = cs.c.readinto(mv)
            if n:
                cs.drv.flush()
                return n
            c = cs.c
            if c.eof:
                return 0
            cs.check()
            if c.closed:
                return 0

    async def readexactly(self, n):
        """Exactly n bytes; EOFError (IncompleteReadError on CPython) if the stream ends first."""
        b = bytearray(n)
        mv = memoryview(b)
        got = 0
        while got < n:
            k = await self.readinto(mv[got:])
            if not k:
                partial = bytes(mv[:got])
                if _Incomplete is not None:
                    raise _Incomplete(partial, n)
                raise EOFError("end of stream after %d of %d bytes" % (got, n))
            got += k
        return bytes(b)

    async def readline(self):
        """Up to and including b"\\n"; what is left at the end of stream without one."""
        parts = []
        while True:
            d = self._buf
            self._buf = b""
            if not d:
                d = await self._fill(1 << 30)
                if not d:
                    return b"".join(parts)
            i = d.find(b"\n")
            if i >= 0:
                parts.append(d[:i + 1])
                self._buf = d[i + 1:]
                return b"".join(parts)
            parts.append(d)


class StreamWriter:
    def __init__(self, cs):
        self._cs = cs

    def write(self, buf):
        """Queue buf (copied if the send ring cannot take it all now); drain() waits."""
        cs = self._cs
        if cs.closing:
            raise OSError(ECONNRESET, "write after close or write_eof")
        cs.check()
        mv = buf if isinstance(buf, memoryview) else memoryview(buf)
        n = 0 if cs.pend else cs.c.write(mv)
        if n < len(mv):
            cs.pend.append(memoryview(bytes(mv[n:])))
            cs.drv.add_writer(cs)
        if n:
            cs.drv.flush()

    async def drain(self):
        """Until everything written is in the send ring (then the stack owns it)."""
        cs = self._cs
        while not cs.push():
            cs.check()
            await cs.wait(_W_ROOM)
        cs.check()
        cs.drv.flush()

    async def awrite(self, buf):
        """write + drain (MicroPython's Stream.awrite)."""
        self.write(buf)
        await self.drain()

    async def aclose(self):
        """close + wait_closed (MicroPython's Stream.aclose)."""
        await self.wait_closed()

    def _finish(self, how):
        cs = self._cs
        if cs.closing >= how:
            return
        if cs.fin_done:            # write_eof already sent: close releases the connection
            cs.c.close()
        cs.closing = how
        if cs.push():
            cs.drv.flush()
        else:
            cs.drv.add_writer(cs)

    def write_eof(self):
        """Half-close: DATA_FIN after the queued data; reading goes on (asyncio's write_eof)."""
        self._finish(_EOF)

    def can_write_eof(self):
        return True

    def close(self):
        """DATA_FIN after the queued data; with data unread, a reset (as Linux)."""
        self._finish(_CLOSE)

    def is_closing(self):
        return self._cs.closing == _CLOSE

    async def wait_closed(self):
        """Until both directions are finished (the peer closed too) or the connection reset."""
        cs = self._cs
        self._finish(_CLOSE)
        await cs.wait(_W_CLOSED)
        cs.drv.flush()

    def get_extra_info(self, name, default=None):
        sf = self._cs.c.sf
        if sf is None:
            return default
        if name == "peername":
            return (ip_ntoa(sf.raddr), sf.rport)
        if name == "sockname":
            return (ip_ntoa(sf.laddr), sf.lport)
        if name == "mptcp":
            return self._cs.c.mptcp
        if name == "connection":
            return self._cs.c
        return default


class Server:
    """What start_server returns: close(), wait_closed(), `async with`."""

    def __init__(self, drv, cb, port):
        self.drv = drv
        self.cb = cb
        self.port = port
        self.tasks = []

    def close(self):
        """Stop accepting (connections already accepted go on)."""
        drv = self.drv
        if drv.servers.get(self.port) is self:
            del drv.servers[self.port]
            ls = drv.loop.stack.listeners     # the Stack has no unlisten: [port, mptcp, csum]
            for i in range(len(ls)):
                if ls[i][0] == self.port:
                    ls.pop(i)
                    break

    async def wait_closed(self):
        self.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, et, ev, tb):
        self.close()


class _Driver:
    """The task that runs one runtime Loop under asyncio and wakes the streams' waiters."""

    def __init__(self, loop, poll_ms):
        self.loop = loop
        self.poll_ms = poll_ms
        self.conns = []          # open _Conn: the driver runs while there is one
        self.waiting = []        # _Conn with a waiter
        self.writers = []        # _Conn with queued output or a close pending
        self.servers = {}        # port -> Server
        self.task = None
        self.running = False
        self.failed = None       # the exception that ended the driver (waiters then raise it)

    def ensure(self):
        if self.failed is not None:
            return
        t = self.task
        if t is None or t.done():
            self.running = True
            self.task = asyncio.create_task(self._run())

    def stop(self):
        self.running = False
        t = self.task
        self.task = None
        if t is not None and not t.done():
            t.cancel()

    def flush(self):
        self.loop.flush(clock.now_ms())

    def add_writer(self, cs):
        if cs not in self.writers:
            self.writers.append(cs)
        self.ensure()

    def _wake(self):
        ws = self.waiting
        i = 0
        while i < len(ws):
            cs = ws[i]
            if cs.want == 0 or cs.ready(cs.want):
                ws.pop(i)
                cs.ev.set()
            else:
                i += 1

    def _push(self):
        ws = self.writers
        i = 0
        while i < len(ws):
            cs = ws[i]
            if cs.push() or cs.c.error is not None or cs.c.closed:
                ws.pop(i)
            else:
                i += 1

    def _prune(self):
        cs = self.conns
        i = 0
        while i < len(cs):
            c = cs[i].c
            if c.closed or c.error is not None:
                cs.pop(i)
            else:
                i += 1

    def _accept(self):
        st = self.loop.stack
        while True:
            c = st.accept()
            if c is None:
                return
            srv = self.servers.get(c.sf.lport)
            if srv is None:          # listened to by someone else on this Loop: not ours
                c.abort()
                continue
            cs = _Conn(self, c)
            res = srv.cb(StreamReader(cs), StreamWriter(cs))
            if res is not None:      # a coroutine (a plain callable may return None)
                srv.tasks.append(asyncio.create_task(res))

    async def _run(self):
        try:
            await self._serve()
        except Exception as e:       # (CancelledError is not an Exception on MicroPython's
            self.failed = e          #  asyncio nor on CPython >= 3.8: a stop() ends quietly)
            self.task = None
            for cs in self.waiting:
                cs.ev.set()
            self.waiting = []        # not re-raised: every stream call raises it from now on

    async def _serve(self):
        loop = self.loop
        st = loop.stack
        v = st.counters.v
        segs = -1
        while self.running:
            loop.run_once(0)
            if self.writers:
                self._push()
                loop.flush(clock.now_ms())
            if self.servers:
                self._accept()
            if self.waiting:
                self._wake()
            if self.conns:
                self._prune()
            if not (self.conns or self.waiting or self.servers) and st.next_deadline() < 0:
                self.task = None
                return               # nothing to do: ensure() starts it again
            s = v[C.TcpInSegs] + v[C.TcpOutSegs]
            if s != segs:
                segs = s
                await asyncio.sleep(0)   # traffic: let the apps run, then poll again
                continue
            wait = self.poll_ms
            dl = st.next_deadline()
            if dl >= 0:
                d = ticks.diff(dl, clock.now_ms())
                if d < wait:
                    wait = d if d > 0 else 0
            if wait > 0:
                await _sleep(wait)
            else:
                await asyncio.sleep(0)


def driver(loop, poll_ms=None):
    """The driver of a runtime Loop, made at the first use; poll_ms (default 10) caps the
    sleep of an idle driver, i.e. how late a packet after a quiet spell is seen."""
    d = getattr(loop, "_aio", None)
    if d is None:
        d = _Driver(loop, 10)
        loop._aio = d
    if poll_ms is not None:
        d.poll_ms = poll_ms
    return d


def stop(loop):
    """Stop the driver task of this Loop (before closing the Loop or ending the program).
    Outside a running event loop the cancelled task stays queued on MicroPython (its
    asyncio.run leaves other tasks behind) and keeps the Loop alive: prefer shutdown()."""
    d = getattr(loop, "_aio", None)
    if d is not None:
        d.stop()


async def shutdown(loop):
    """Stop the driver task of this Loop and wait until it has ended (nothing of the Loop
    is left in the event loop's queues afterwards)."""
    d = getattr(loop, "_aio", None)
    if d is None:
        return
    t = d.task
    d.stop()
    while t is not None and not t.done():
        await asyncio.sleep(0)


async def open_connection(host, port, loop, ifindex=0, mptcp=True, csum=False,
                          timeout_ms=30000):
    """Connect to host:port (dotted IPv4) through the runtime Loop; -> (reader, writer)."""
    drv = driver(loop)
    c = loop.stack.connect(clock.now_ms(), ip_aton(host), port, ifindex, mptcp, csum)
    if c is None:
        raise OSError(ENOBUFS, "no free connection slot (MAX_CONNECTIONS) or no netif")
    drv.flush()
    cs = _Conn(drv, c)
    try:
        await asyncio.wait_for(cs.wait(_W_OPEN), timeout_ms / 1000)
    except asyncio.TimeoutError:
        c.abort()
        raise OSError(ETIMEDOUT, "connect to %s:%d timed out" % (host, port))
    if drv.failed is not None:
        cs.check()
    if c.error is not None:
        raise OSError(ECONNREFUSED, "connect to %s:%d: %s" % (host, port, c.error))
    if not c.established:
        raise OSError(ECONNREFUSED, "connect to %s:%d refused" % (host, port))
    return StreamReader(cs), StreamWriter(cs)


async def start_server(cb, port, loop, mptcp=True, csum=False):
    """Listen on port (every address of the Loop's netifs); each connection runs as the task
    cb(reader, writer). -> Server."""
    drv = driver(loop)
    if port in drv.servers:
        raise OSError(98, "port %d already has a server" % port)
    loop.stack.listen(port, mptcp, csum)
    srv = Server(drv, cb, port)
    drv.servers[port] = srv
    drv.ensure()
    return srv
