"""mptcp_runtime.aio (asyncio streams) over two stacks joined by UDP netifs on 127.0.0.1.

Same set-up as test_runtime_loopback; runs under CPython and MicroPython's asyncio.
Not applicable where the interpreter has no `socket` (the WebAssembly port) or no
asyncio.run. Every run is bounded by asyncio.wait_for, so a hang fails the test.
"""
import hashlib

import tutil

PORT = 5001
LIMIT_S = 60


def _setup():
    tutil.require_module("socket")
    asyncio = tutil.require_module("asyncio")
    if not hasattr(asyncio, "run"):
        raise tutil.NotApplicable("asyncio here has no run()")
    from test_runtime_loopback import _pair
    from mptcp_runtime import aio
    la, lb = _pair()
    # la's hello went out before lb's socket existed: the ICMP port-unreachable left an
    # error pending on la's connected socket, which would eat the first SYN (1 s RTO)
    try:
        la.netifs[0].sock.send(b"")
    except OSError:
        pass
    return asyncio, aio, la, lb


def _run(asyncio, aio, la, lb, coro):
    """Run coro bounded by LIMIT_S; the drivers end inside the run (MicroPython's
    asyncio.run leaves unfinished tasks queued, holding the Loops and their buffers)."""
    async def main():
        try:
            return await asyncio.wait_for(coro, LIMIT_S)
        finally:
            await aio.shutdown(la)
            await aio.shutdown(lb)
    return asyncio.run(main())


def _finish(aio, la, lb):
    aio.stop(la)
    aio.stop(lb)
    la.close()
    lb.close()


def _chunk(seed, k, size):
    """Chunk k of a seeded stream: SHA-256 in counter mode (the same on every interpreter;
    made piece by piece, as one 200 KB object fragments a small MicroPython heap)."""
    out = bytearray(size)
    i = 0
    while i < size:
        d = hashlib.sha256(b"%d:%d:%d" % (seed, k, i)).digest()
        m = min(32, size - i)
        out[i:i + m] = d[:m]
        i += m
    return out


def test_aio_echo_200k_each_way():
    asyncio, aio, la, lb = _setup()
    total = 200000
    piece = 7000            # more than one write takes when the send ring is nearly full
    seen = {}

    async def echo(r, w):
        seen["peer"] = w.get_extra_info("peername")
        seen["mptcp"] = w.get_extra_info("mptcp")
        n = 0
        h = hashlib.sha256()
        while True:
            d = await r.read(3000)
            if not d:
                break
            n += len(d)
            h.update(d)
            w.write(d)
            await w.drain()
        seen["echoed"] = n
        seen["sha_in"] = h.digest()
        w.close()
        await w.wait_closed()
        seen["closed"] = True

    async def main():
        srv = await aio.start_server(echo, PORT, lb)
        r, w = await aio.open_connection("198.18.0.1", PORT, la)
        assert w.get_extra_info("peername") == ("198.18.0.1", PORT)
        assert w.get_extra_info("mptcp") is True

        async def sender():
            h = hashlib.sha256()
            off = 0
            k = 0
            while off < total:
                d = _chunk(1, k, min(piece, total - off))
                h.update(d)
                w.write(d)
                d[:] = bytes(len(d))             # write() must have copied what it queued
                await w.drain()
                off += len(d)
                k += 1
            w.write_eof()
            return h.digest()

        t = asyncio.create_task(sender())
        h = hashlib.sha256()
        got = 0
        while got < total:                 # in pieces: a 200 KB heap object is too much here
            d = await r.readexactly(min(20000, total - got))
            h.update(d)
            got += len(d)
        tail = await r.read(100)
        sent = await t
        await w.wait_closed()
        for _ in range(500):            # the server's handler finishes its own close too
            if "closed" in seen:
                break
            await asyncio.sleep(0.01)
        srv.close()
        return got, h.digest(), sent, tail, w.get_extra_info("sockname")

    try:
        got, digest, sent, tail, sockname = _run(asyncio, aio, la, lb, main())
    finally:
        _finish(aio, la, lb)
    assert got == total and digest == sent
    assert tail == b""
    assert seen["echoed"] == total and seen["sha_in"] == sent
    assert seen["closed"] and seen["mptcp"] is True
    assert seen["peer"] == sockname and sockname[0] == "198.18.1.2"


def test_aio_readline_readexactly_and_end_of_stream():
    asyncio, aio, la, lb = _setup()
    lines = [b"first line\n", b"x" * 5000 + b"\n", b"\n", b"no newline at the end"]

    async def server(r, w):
        for ln in lines:
            w.write(ln)
        await w.drain()
        req = await r.readline()           # the client's request, after our lines
        w.write(b"ack:" + req)
        await w.drain()
        w.close()
        await w.wait_closed()

    async def main():
        srv = await aio.start_server(server, PORT, lb)
        r, w = await aio.open_connection("198.18.0.1", PORT, la)
        got = []
        for _ in range(3):                 # (no await in a comprehension on MicroPython)
            got.append(await r.readline())
        w.write(b"hello\n")
        await w.drain()
        rest = await r.readexactly(len(lines[3]))
        rest2 = await r.read()             # n = -1: everything up to the end of stream
        eof = None
        try:
            await r.readexactly(5)
        except EOFError as e:              # asyncio.IncompleteReadError on CPython
            eof = e
        last = await r.readline()
        w.close()
        await w.wait_closed()
        srv.close()
        return got, rest, rest2, eof, last

    try:
        got, rest, rest2, eof, last = _run(asyncio, aio, la, lb, main())
    finally:
        _finish(aio, la, lb)
    assert got == lines[:3]
    assert rest == lines[3] and rest2 == b"ack:hello\n"
    assert eof is not None
    assert last == b""


def test_aio_connect_refused_and_timed_out():
    asyncio, aio, la, lb = _setup()

    async def refused():
        # lb runs (a driver serves its Loop) but nobody listens on PORT + 1
        srv = await aio.start_server(lambda r, w: None, PORT, lb)
        try:
            await aio.open_connection("198.18.0.1", PORT + 1, la, timeout_ms=10000)
        except OSError as e:
            return e
        finally:
            srv.close()
        return None

    async def timed_out():
        aio.stop(lb)                       # nobody answers the SYN now
        try:
            await aio.open_connection("198.18.0.1", PORT, la, timeout_ms=300)
        except OSError as e:
            return e
        return None

    try:
        e1 = _run(asyncio, aio, la, lb, refused())
        e2 = _run(asyncio, aio, la, lb, timed_out())
    finally:
        _finish(aio, la, lb)
    assert e1 is not None and e1.args[0] == aio.ECONNREFUSED, e1
    assert e2 is not None and e2.args[0] == aio.ETIMEDOUT, e2


def test_aio_driver_failure_reaches_the_waiters():
    """A driver that dies (here: the poll loop raises) fails the waiting reader with
    OSError instead of leaving it blocked for ever."""
    asyncio, aio, la, lb = _setup()

    async def server(r, w):
        await r.read(10)

    async def main():
        await aio.start_server(server, PORT, lb)
        r, w = await aio.open_connection("198.18.0.1", PORT, la)

        def boom(wait=0):
            raise ValueError("netif broke")
        la.run_once = boom
        try:
            await r.read(10)
        except OSError as e:
            return e
        return None

    try:
        e = _run(asyncio, aio, la, lb, main())
    finally:
        del la.run_once
        _finish(aio, la, lb)
    assert e is not None and "netif broke" in str(e), e
