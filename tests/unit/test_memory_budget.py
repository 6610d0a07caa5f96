"""The memory budget (DESIGN 2.2, docs/ARCHITECTURE.md "Memory budget").

Everything a connection needs is allocated when it is created, sized by the board's
budget: the two rings, fixed slot tables, the header template. A transfer (with loss,
so the out-of-order and retransmission tables are used) must not grow any of them.
The memory a stack and a connection take is measured on both interpreters (MicroPython:
gc.mem_alloc after a collection; CPython: tracemalloc's traced bytes after a collection) and
must stay within the budget written in ARCHITECTURE.md, the same for small and large rings
(so a copy of a ring, or a table sized by the ring, breaks it).
"""
import sys
from mptcp.stack import Stack, SUBFLOW_OOO_SLOTS
from mptcp.connection import MAP_SLOTS, OOO_SLOTS
from mptcp.tcp import SEG_SLOTS
from test_stack_pair import transfer, Link, establish, A_ADDR, B_ADDR

IS_MPY = sys.implementation.name == "micropython"
# Budget beyond the two rings, per connection and per stack, in bytes; see ARCHITECTURE.md.
# MicroPython: measured on the 64-bit unix port (objects are about half that on a 32-bit
# board). CPython: its objects are bigger (a small int is 28 bytes, not a tagged word).
# The 32-bit WebAssembly port measures a connection at ~6.9 KB (its GC blocks are 16 bytes
# like the 64-bit port's, and the small tables pack worse), the 64-bit port at ~5.9 KB.
# CPython's stack is ~7.6 KB since MpOptions carries the data path's 16-bit halves
# (two instances; a bigger instance dict).
if IS_MPY:
    CONN_OVERHEAD = 9 * 1024       # + the multipath state (issue 8): 8.4 KB on the 32-bit port
    STACK_OVERHEAD = 4608
else:
    CONN_OVERHEAD = 13 * 1024     # + the multipath state (issue 8)
    STACK_OVERHEAD = 9 * 1024      # + path manager and scheduler (issue 8)
# the overhead must not depend on the ring size (tables are fixed, rings are not copied)
RING_INDEPENDENCE = 512


def _sizes(c):
    sf = c.sf
    return {
        "snd": len(c.snd.buf), "rcv": len(c.rcv.buf),
        "asm": (len(c.asm.start), len(c.asm.end)),
        "ooo": (len(sf.ooo.start), len(sf.ooo.end)),
        "maps": (len(c.m_ssn), len(c.m_dsn), len(c.m_len), len(c.m_dll), len(c.m_csum)),
        "sb": (len(sf.sb.end), len(sf.sb.sacked)),
        "hdr": len(sf.hdr) if sf.hdr is not None else 40,
    }


def _expected(snd, rcv):
    return {"snd": snd, "rcv": rcv, "asm": (OOO_SLOTS, OOO_SLOTS),
            "ooo": (SUBFLOW_OOO_SLOTS, SUBFLOW_OOO_SLOTS), "maps": (MAP_SLOTS,) * 5,
            "sb": (SEG_SLOTS,) * 2, "hdr": 40}


def test_tables_sized_once_and_never_grow():
    a, b, ca, cb, link = transfer(size=120000, direction="c2s", csum_c=True, loss=11,
                                  reorder=7, seed=5, snd=8192, rcv=4096)
    for c in (ca, cb):
        assert _sizes(c) == _expected(8192, 4096), _sizes(c)


def _alloc():
    """Bytes allocated now, after a collection (CPython: while tracemalloc is tracing)."""
    import gc
    gc.collect()
    if IS_MPY:
        return gc.mem_alloc()
    import tracemalloc
    return tracemalloc.get_traced_memory()[0]


def _measure(snd, rcv):
    """(stack bytes, connection bytes beyond its rings) of one side, both sides built."""
    m0 = _alloc()
    a = Stack(snd_buf=snd, rcv_buf=rcv, max_conns=1, seed=1)
    b = Stack(snd_buf=snd, rcv_buf=rcv, max_conns=1, seed=2)
    a.add_netif(1, A_ADDR)
    b.add_netif(1, B_ADDR)
    b.listen(5001)
    m1 = _alloc()
    link = Link(a, b)       # the test's wire: not part of either side
    m1b = _alloc()
    ca = a.connect(1000, B_ADDR, 5001)
    establish(link, 1000, ca, b)
    m2 = _alloc()
    return (m1 - m0) // 2, (m2 - m1b) // 2 - snd - rcv


def test_heap_per_connection_within_budget():
    tracing = False
    if not IS_MPY:
        import tracemalloc
        tracing = not tracemalloc.is_tracing()
        if tracing:
            tracemalloc.start()
    try:
        conns = []
        for snd, rcv in ((4096, 4096), (16384, 16384), (32768, 32768)):
            stack, conn = _measure(snd, rcv)
            print("memory (%s): stack %d B, connection %d B + rings %d B"
                  % (sys.implementation.name, stack, conn, snd + rcv))
            assert 0 < stack <= STACK_OVERHEAD, ("stack", stack)
            assert 0 < conn <= CONN_OVERHEAD, ("connection beyond its rings", conn)
            conns.append(conn)
        assert max(conns) - min(conns) <= RING_INDEPENDENCE, ("overhead grows with the rings",
                                                              conns)
    finally:
        if tracing:
            tracemalloc.stop()
