"""Runtime over real UDP sockets: two device stacks joined by two UdpTunnel netifs.

Runs on both interpreters; exercises the poll loop, the netif framing and the
Connection API end to end (SHA-256 checked). Not applicable (tutil.NotApplicable)
where the interpreter has no `socket` module (the WebAssembly port).
"""
import hashlib
import os

from mptcp.stack import Stack
from mptcp_runtime.loop import Loop
from mptcp_net.netif import ip_aton
from mptcp_runtime import clock
from mptcp import ticks
import tutil


def _pair():
    # UDP sockets: NotApplicable on a port without a socket module (WebAssembly)
    tutil.require_module("socket")
    from mptcp_net.udp_tunnel import UdpTunnel
    # ports picked at random per run, so that two test runs on one machine do not collide
    r = os.urandom(2)
    a_port = 40000 + (((r[0] << 8) | r[1]) % 10000) * 2
    b_port = a_port + 1
    a_addr = ip_aton("198.18.1.2")
    b_addr = ip_aton("198.18.0.1")
    na = UdpTunnel("wifi", 0, a_addr, "127.0.0.1", b_port, local_port=a_port, pad_tx=True)
    nb = UdpTunnel("wifi", 0, b_addr, "127.0.0.1", a_port, local_port=b_port, pad_tx=True)
    sa = Stack(snd_buf=16384, rcv_buf=16384, max_conns=2)
    sb = Stack(snd_buf=16384, rcv_buf=16384, max_conns=2)
    return Loop(sa, [na]), Loop(sb, [nb])


def _transfer(total, csum):
    la, lb = _pair()
    try:
        lb.stack.listen(5001, True, csum)
        ca = la.stack.connect(clock.now_ms(), ip_aton("198.18.0.1"), 5001, 0, True, csum)
        cb = None
        data = os.urandom(total)
        sent = 0
        got = bytearray()
        rbuf = bytearray(4096)
        rmv = memoryview(rbuf)
        closed = False
        t0 = clock.now_ms()
        while ticks.diff(clock.now_ms(), t0) < 20000:
            la.run_once(0)
            lb.run_once(0)
            if cb is None:
                cb = lb.stack.accept()
            if ca.established and sent < total:
                sent += ca.write(memoryview(data)[sent:])
            if sent == total and not closed:
                ca.close()
                closed = True
            if cb is not None:
                n = cb.readinto(rmv)
                if n:
                    got.extend(rmv[:n])
                if cb.eof and len(got) == total:
                    break
        assert cb is not None, "server never accepted"
        assert len(got) == total, (len(got), total)
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
        assert ca.mptcp and cb.mptcp
    finally:
        la.close()
        lb.close()


def test_loopback_transfer():
    _transfer(100000, False)


def test_loopback_transfer_csum():
    _transfer(50000, True)


def test_loopback_transfer_across_the_ticks_wrap():
    """The clock (loop, netifs and stack) starts 0.5 s before the 2**30 ms wrap: the
    transfer (about 1 s here) crosses it and still completes, SHA-256 checked."""
    real = clock.now_ms
    shift = (ticks.PERIOD - 500 - real()) & ticks.MASK
    clock.now_ms = lambda: (real() + shift) & ticks.MASK
    try:
        _transfer(100000, False)
    finally:
        clock.now_ms = real


def test_loop_steady_state_allocates_nothing():
    """MicroPython: poll loop + UDP netifs + stack in a bulk transfer allocate nothing
    per packet (gc.mem_alloc with the collector off). CPython: the same run moves data."""
    import gc
    has_mem = hasattr(gc, "mem_alloc")
    la, lb = _pair()
    try:
        lb.stack.listen(5001, True, False)
        ca = la.stack.connect(clock.now_ms(), ip_aton("198.18.0.1"), 5001, 0, True, False)
        holder = [None]
        data = bytearray(16384)
        dmv = memoryview(data)
        rbuf = bytearray(16384)
        rmv = memoryview(rbuf)
        st = {"got": 0}

        def step():
            la.run_once(0)
            lb.run_once(0)
            if holder[0] is None:
                holder[0] = lb.stack.accept()
            if ca.established:
                ca.write(dmv)
            cb = holder[0]
            if cb is not None:
                while True:
                    k = cb.readinto(rmv)
                    if not k:
                        break
                    st["got"] += k

        t0 = clock.now_ms()
        while st["got"] < 300000 and ticks.diff(clock.now_ms(), t0) < 10000:
            step()
        assert st["got"] >= 300000, "no steady state reached: %d bytes" % st["got"]
        got0 = st["got"]
        segs0 = la.stack.counters.get("TcpOutSegs")
        if has_mem:
            gc.collect()
            gc.disable()
            m0 = gc.mem_alloc()
        try:
            for _ in range(200):
                step()
            m1 = gc.mem_alloc() if has_mem else 0
        finally:
            if has_mem:
                gc.enable()
        segs = la.stack.counters.get("TcpOutSegs") - segs0
        assert segs > 20 and st["got"] > got0, (segs, st["got"] - got0)
        if has_mem:
            assert m1 - m0 == 0, "%d bytes allocated over %d segments" % (m1 - m0, segs)
        assert la.stack.counters.get("InternalErrors") == 0
    finally:
        la.close()
        lb.close()
