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
    # + the multipath state (issue 8): 12.2 KB in the whole suite, 13.1 KB when this file runs
    # alone (CPython 3.11 allocates its specialising interpreter's caches as code warms up)
    CONN_OVERHEAD = 14 * 1024
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


def _trace_start():
    """CPython: start tracemalloc unless it runs already; True if this call started it."""
    if IS_MPY:
        return False
    import tracemalloc
    if tracemalloc.is_tracing():
        return False
    tracemalloc.start()
    return True


def _trace_stop(started):
    if started:
        import tracemalloc
        tracemalloc.stop()


def test_heap_per_connection_within_budget():
    tracing = _trace_start()
    try:
        conns = []
        _measure(4096, 4096)    # warm-up: a first connection imports and caches (run alone)
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
        _trace_stop(tracing)


# A joined subflow (MP_JOIN, issue 8): its TCP state, scoreboard (SEG_SLOTS), out-of-order
# slots, header template, nonces and HMACs. Measured: 64-bit unix port 2.7 KB per side,
# CPython 5.3 KB per side. A Pico W (MAX_SUBFLOWS = 2) carries one of these per connection.
SUBFLOW_OVERHEAD = 3584 if IS_MPY else 7 * 1024


def _joined(c):
    return len([s for s in c.subflows if s.join_acked and s.state_name() == "ESTABLISHED"])


def test_heap_per_joined_subflow_within_budget():
    """The live heap a second subflow adds to both ends, after a real MP_JOIN mid-transfer."""
    import tutil
    from netsim import App, run
    from mpnet import MpLink, mp_pair, WIFI, LTE
    if not tutil.gc_frees_inside_a_call():
        raise tutil.NotApplicable("gc.collect() frees nothing inside a call on this port")
    tracing = _trace_start()
    try:
        a, b = mp_pair(snd=16384, rcv=16384, seed=1)
        link = MpLink(a, b, seed=1)
        a.netif_down(LTE)               # LTE comes up later: the join happens mid-transfer
        link.path("lte").up = False
        b.listen(5001)
        ca = a.connect(1000, B_ADDR, 5001, ifindex=WIFI)
        now, cb = establish(link, 1000, ca, b)
        pa = App(link, ca, 10 ** 6, 11)
        pb = App(link, cb, 10 ** 6, 12)
        now = run(link, now, lambda: (pa.step() or pb.step() or True)
                  and pa.got > 2000 and pb.got > 2000)
        assert _joined(ca) == 1 and len(cb.subflows) == 1
        m0 = _alloc()
        link.restore("lte")
        now = run(link, now, lambda: _joined(ca) == 2 and _joined(cb) == 2)
        m1 = _alloc()
        per_side = (m1 - m0) // 2
        print("memory (%s): a joined subflow %d B per side" % (sys.implementation.name, per_side))
        assert 0 < per_side <= SUBFLOW_OVERHEAD, ("joined subflow", per_side)
    finally:
        _trace_stop(tracing)
