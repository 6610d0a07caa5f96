"""The bulk data path allocates nothing (DESIGN 2.2), proven with heap_lock.

Two Stacks back to back, a bulk transfer in steady state: app write ->
segment out -> segment in -> receive ring -> ACK out -> ACK in -> app read.
On MicroPython `micropython.heap_lock()` makes any allocation raise
MemoryError; the stack's input/output catch exceptions and count
InternalErrors, so the test checks that counter and that data moved. On
CPython the lock is a no-op and the test just runs the path.
"""
from mptcp.compat import heap_lock, heap_unlock
from mptcp.stack import Stack
from mptcp import counters as C

A = bytes([198, 18, 1, 2])
A2 = bytes([198, 18, 2, 2])
B = bytes([198, 18, 0, 1])


class _Bulk:
    def __init__(self, csum, seed, snd=32768, rcv=32768, two=False):
        sched = "roundrobin" if two else "minrtt"
        self.a = a = Stack(snd_buf=snd, rcv_buf=rcv, max_conns=2, seed=seed, scheduler=sched)
        self.b = b = Stack(snd_buf=snd, rcv_buf=rcv, max_conns=2, seed=seed + 7, scheduler=sched)
        a.add_netif(1, A)
        if two:
            a.add_netif(2, A2)          # the path manager joins from it
        b.add_netif(1, B)
        b.listen(5001, True, csum)
        self.now = 1000
        self.ca = a.connect(self.now, B, 5001, 1, True, csum)
        self.cb = None
        self.pkt = bytearray(2048)
        self.pmv = memoryview(self.pkt)
        self.data = bytearray(8192)
        for i in range(len(self.data)):
            self.data[i] = (i * 7 + 3) & 0xFF
        self.dmv = memoryview(self.data)
        self.rbuf = bytearray(8192)
        self.rmv = memoryview(self.rbuf)
        self.sent = 0
        self.got = 0
        self.segs = 0
        self.bad = 0

    def step(self):
        """One round: time +1 ms, a -> b until idle, b -> a until idle, write, read."""
        a = self.a
        b = self.b
        pmv = self.pmv
        pkt = self.pkt
        self.now += 1
        now = self.now
        while True:
            n = a.output(now, pmv)
            if n <= 0:
                break
            b.input(1, pkt, n, now)
            self.segs += 1
        while True:
            n = b.output(now, pmv)
            if n <= 0:
                break
            a.input(1, pkt, n, now)
        if self.cb is None:
            self.cb = b.accept()
        ca = self.ca
        if ca.established and ca.snd.free() >= 8192:
            self.sent += ca.write(self.dmv)     # whole writes: stream = data repeated
        cb = self.cb
        if cb is not None:
            while True:
                k = cb.readinto(self.rmv)
                if not k:
                    break
                got = self.got
                data = self.data
                rb = self.rbuf
                for i in range(0, k, 61):       # sampled check, no allocation
                    if rb[i] != data[(got + i) & 8191]:
                        self.bad += 1
                self.got = got + k


def _run(csum, seed):
    t = _Bulk(csum, seed)
    for _ in range(300):            # handshake, slow start, steady state
        t.step()
    assert t.ca.established and t.cb is not None and t.got > 100000
    ie_a = t.a.counters.v[C.InternalErrors]
    ie_b = t.b.counters.v[C.InternalErrors]
    assert ie_a == 0 and ie_b == 0
    got0 = t.got
    segs0 = t.segs
    heap_lock()
    try:
        for _ in range(200):
            t.step()
    finally:
        heap_unlock()
    assert t.a.counters.v[C.InternalErrors] == 0, "allocation on the sender's path"
    assert t.b.counters.v[C.InternalErrors] == 0, "allocation on the receiver's path"
    assert t.segs - segs0 > 200, t.segs - segs0
    assert t.got - got0 > 200 * 1000, t.got - got0
    assert t.bad == 0, "corrupted data"
    assert t.cb.state == "ESTABLISHED" and t.ca.state == "ESTABLISHED"


def test_bulk_no_alloc():
    _run(False, 11)


def test_bulk_no_alloc_two_subflows():
    """Two subflows (a join, the round-robin scheduler, mappings per segment, the ring held
    for both): the data path still allocates nothing."""
    t = _Bulk(False, 31, two=True)
    for _ in range(300):
        t.step()
    assert len(t.ca.subflows) == 2 and len(t.cb.subflows) == 2
    tx0 = [sf.bytes_tx() for sf in t.ca.subflows]
    got0 = t.got
    heap_lock()
    try:
        for _ in range(200):
            t.step()
    finally:
        heap_unlock()
    assert t.a.counters.v[C.InternalErrors] == 0 and t.b.counters.v[C.InternalErrors] == 0
    tx1 = [sf.bytes_tx() for sf in t.ca.subflows]
    assert tx1[0] - tx0[0] > 50000 and tx1[1] - tx0[1] > 50000, (tx0, tx1)
    assert t.got - got0 > 200 * 1000 and t.bad == 0


def test_bulk_no_alloc_dss_checksum():
    _run(True, 23)
