"""Small for ever (DESIGN 2.3): a connection that has moved gigabytes, on a device that has
been up for weeks, still keeps every number in a small int and allocates nothing.

The connection is established, then every relative sequence space on both sides is moved
to just below the rebase threshold (Subflow._rebase_snd/_rebase_rcv and
Connection.rebase_rcv with a negative amount: the state a connection reaches after
gigabytes, the wire values unchanged), and the clock starts 0.3 s before a tick wrap
(tick MASK - 300 is, e.g., an uptime of 37.3 days: the third wrap). Then a two-way transfer with
loss in both directions (pure ACKs too, and whole rounds) runs with the heap locked around
all stack work (MicroPython: an allocation raises MemoryError, and the suite's strict mode
lets it through; CPython: the lock is a no-op and the values are checked the same way).
Both directions are checked by SHA-256, every int the core keeps must stay in the 31-bit
range, each space must have been rebased once, and the clock must have wrapped.
"""
import hashlib
from mptcp.compat import heap_lock, heap_unlock
from mptcp.stack import Stack
from mptcp import ringbuf, ticks
from mptcp.tcp import REBASE_AT, REBASE_BY
from test_small_ints import _big_ints

A = bytes([198, 18, 1, 2])
B = bytes([198, 18, 0, 1])
JUMP = REBASE_AT - 0x10000          # 64 KiB before the threshold (a multiple of 2**16)
BLOCK = 8192
CAP = 65536


class _End:
    """One application end: writes a pseudo-random block again and again, captures what it
    reads into a preallocated buffer (hashed outside the lock)."""

    def __init__(self, seed, blocks):
        self.data = bytearray(BLOCK)
        x = seed
        for i in range(BLOCK):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            self.data[i] = (x >> 16) & 0xFF
        self.dmv = memoryview(self.data)
        self.blocks = blocks        # blocks to send
        self.sent = 0               # blocks written
        self.rbuf = bytearray(BLOCK)
        self.rmv = memoryview(self.rbuf)
        self.cap = bytearray(CAP)
        self.cap_len = 0
        self.got = 0
        self.h = hashlib.sha256()
        self.c = None

    def write(self):
        c = self.c
        if self.sent < self.blocks and c.snd.free() >= BLOCK:
            if c.write(self.dmv) == BLOCK:      # whole blocks: the stream is data repeated
                self.sent += 1

    def read(self):
        c = self.c
        while self.cap_len + BLOCK <= CAP:
            k = c.readinto(self.rmv)
            if not k:
                return
            ringbuf.copy(self.cap, self.cap_len, self.rbuf, 0, k)
            self.cap_len += k

    def flush(self):
        """Outside the lock: hash what was captured."""
        if self.cap_len:
            self.h.update(memoryview(self.cap)[:self.cap_len])
            self.got += self.cap_len
            self.cap_len = 0

    def expected(self):
        h = hashlib.sha256()
        for _ in range(self.blocks):
            h.update(self.data)
        return h.digest()


class _Pair:
    def __init__(self, csum, seed, blocks):
        self.a = a = Stack(snd_buf=16384, rcv_buf=16384, max_conns=1, seed=seed)
        self.b = b = Stack(snd_buf=16384, rcv_buf=16384, max_conns=1, seed=seed + 7)
        a.add_netif(1, A)
        b.add_netif(1, B)
        b.listen(5001, True, csum)
        self.now = ticks.MASK - 300
        self.t = 0                  # steps (ms) since the start
        self.k = [0, 0]             # packets per direction
        self.drops = 0
        self.pkt = bytearray(2048)
        self.pmv = memoryview(self.pkt)
        self.ea = _End(seed, blocks)
        self.eb = _End(seed + 1, blocks)
        self.ea.c = a.connect(self.now, B, 5001, 1, True, csum)
        while self.eb.c is None or not self.ea.c.established:
            self.step(False)
            if self.eb.c is None:
                self.eb.c = b.accept()

    def _lost(self, d):
        """Deterministic loss: one in 19 (a->b) / 23 (b->a) packets, pure ACKs included,
        and every 700 ms a 40 ms blackout of both directions (whole rounds)."""
        k = self.k[d] + 1
        self.k[d] = k
        if self.t % 700 < 40 or k % (19 + 4 * d) == 7:
            self.drops += 1
            return True
        return False

    def step(self, lossy):
        self.t += 1
        self.now = now = ticks.add(self.now, 1)
        self._pump(self.a, self.b, 0, lossy, now)     # (no tuples: nothing allocated here)
        self._pump(self.b, self.a, 1, lossy, now)
        if self.ea.c is not None and self.eb.c is not None and self.ea.c.established:
            self.ea.write()
            self.eb.write()
            self.ea.read()
            self.eb.read()

    def _pump(self, src, dst, d, lossy, now):
        pmv = self.pmv
        pkt = self.pkt
        while True:
            n = src.output(now, pmv)
            if n <= 0:
                return
            if lossy and self._lost(d):
                continue
            dst.input(1, pkt, n, now)


def _jump(c, by):
    """Move every relative space of connection c (both directions) forward by `by`."""
    sf = c.sf
    sf._rebase_snd(-by)
    sf._rebase_rcv(-by)
    c.rebase_snd(-by)           # the data-level send space rebases on its own
    c.rebase_rcv(-by)


def _offsets(c):
    sf = c.sf
    return (sf.soff_h, sf.roff_h, c.lidsn4[2], c.pidsn4[2])


def _run(csum, seed):
    blocks = 24                     # 192 KiB each way: every space crosses the threshold
    p = _Pair(csum, seed, blocks)
    ca = p.ea.c
    cb = p.eb.c
    for c in (ca, cb):
        _jump(c, JUMP)
    before = [_offsets(ca), _offsets(cb)]
    wrapped = False
    rounds = 0
    while p.ea.got < blocks * BLOCK or p.eb.got < blocks * BLOCK:
        rounds += 1
        assert rounds < 2000, ("stalled", p.ea.got, p.eb.got, ca.state, cb.state)
        heap_lock()
        try:
            for _ in range(20):
                last = p.now
                p.step(True)
                if p.now < last:
                    wrapped = True
        finally:
            heap_unlock()
        p.ea.flush()
        p.eb.flush()
        for c in (ca, cb):
            assert c.error is None, c.error
    assert p.eb.h.digest() == p.ea.expected(), "a -> b corrupted"
    assert p.ea.h.digest() == p.eb.expected(), "b -> a corrupted"
    assert wrapped and p.drops > 20, (wrapped, p.drops)
    # every space was rebased exactly once (its base moved by REBASE_BY)
    for c, b0 in ((ca, before[0]), (cb, before[1])):
        b1 = _offsets(c)
        for i in range(4):
            assert (b1[i] - b0[i]) & 0xFFFF == (REBASE_BY >> 16) & 0xFFFF, (i, b0, b1)
    big = []
    for name, st, c in (("a", p.a, ca), ("b", p.b, cb)):
        sf = c.sf
        for where, obj in ((name + ".conn", c), (name + ".sf", sf), (name + ".cc", sf.cc),
                           (name + ".sb", sf.sb), (name + ".asm", c.asm),
                           (name + ".ooo", sf.ooo), (name + ".snd", c.snd),
                           (name + ".rcv", c.rcv), (name + ".stack", st),
                           (name + ".seg", st.seg), (name + ".mo", st.mo)):
            _big_ints(obj, where, big)
    assert not big, big
    # and the connection still closes cleanly, both ways
    for c in (ca, cb):
        c.shutdown_write()
    for _ in range(5000):
        p.step(False)
        for e in (p.ea, p.eb):
            e.read()
            e.flush()
            if e.c.eof and not e.c.app_closed:
                e.c.close()
        if ca.closed and cb.closed:
            break
    assert ca.closed and cb.closed and ca.error is None and cb.error is None, \
        (ca.state, ca.error, cb.state, cb.error)


def test_lossy_two_way_after_gigabytes_and_weeks():
    _run(False, 31)


def test_lossy_two_way_after_gigabytes_and_weeks_dss_checksum():
    _run(True, 37)
