"""The concentrator's relay engine (asyncio, CPython, Linux): MPTCP listeners, one plain TCP
connection to the target per accepted connection, bytes copied both ways, counters.

Semantics of one relayed connection (client = the accepted MPTCP side):
- an EOF read on one side becomes shutdown(SHUT_WR) on the other, after every byte read
  before it was written there (half-close is honoured; the other direction goes on);
- when both directions have ended, both sockets are closed normally (FIN);
- an error on either side (reset, EPIPE, ...) ends the relay: the other side is closed with
  a reset (SO_LINGER 0: a RST, MP_FASTCLOSE under MPTCP), so neither end mistakes a broken
  relay for a clean end of stream;
- the target unreachable: the client is reset at once (counted in target_connect_failures);
- idle for --idle-timeout seconds (no byte either way): both sides reset (idle_timeouts).

Fallback detection: getsockopt(SOL_MPTCP, MPTCP_INFO) fails with EOPNOTSUPP on a socket that
fell back to plain TCP (Linux >= 5.16) and carries MPTCP_INFO_FLAG_FALLBACK; it is read at
accept, every second while the connection lives and before it is closed. A kernel without
MPTCP_INFO (ENOPROTOOPT) makes the check unavailable: stats then say so
("fallback_detection": "unavailable") and fallback_tcp / mptcp / multipath stay 0.
"""

import asyncio
import errno
import logging
import os
import socket
import struct
import time

IPPROTO_MPTCP = 262
SOL_MPTCP = 284
MPTCP_INFO = 1
MPTCP_INFO_FLAG_FALLBACK = 1
BUFSIZE = 65536
SAMPLE_S = 1.0          # MPTCP_INFO sampling period of a live connection

log = logging.getLogger("mptcp-concentrator")

COUNTERS = ("accepted", "active", "closed", "bytes_up", "bytes_down",
            "target_connect_failures", "resets", "resets_client", "resets_target",
            "idle_timeouts", "rejected_max_conns", "mptcp", "fallback_tcp", "multipath",
            "internal_errors")


def fmt_addr(host, port):
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


def mptcp_state(sock):
    """("mptcp", subflows) | ("tcp", 0) after a fallback | (None, 0) when it cannot be told.
    `subflows` is MPTCP_INFO's mptcpi_subflows: the subflows beyond the first (joins)."""
    try:
        raw = sock.getsockopt(SOL_MPTCP, MPTCP_INFO, 256)
    except OSError as e:
        if e.errno == errno.EOPNOTSUPP:
            return "tcp", 0
        return None, 0
    if len(raw) < 12:
        return None, 0
    if struct.unpack_from("I", raw, 8)[0] & MPTCP_INFO_FLAG_FALLBACK:
        return "tcp", 0
    return "mptcp", raw[0]


def why(e):
    """An OSError as words ("Connection refused"), not asyncio's "Connect call failed"."""
    return os.strerror(e.errno) if getattr(e, "errno", None) else str(e)


def _abort(sock):
    """Close with a reset (RST; MP_FASTCLOSE on an MPTCP socket)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def _nodelay(sock):
    try:        # a relay must not add Nagle's delay to small writes (best effort)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass


class Service:
    """One listener and its fixed target, with its counters."""

    def __init__(self, listen_host, listen_port, target_host, target_port):
        self.listen_host, self.listen_port = listen_host, listen_port
        self.target_host, self.target_port = target_host, target_port
        self.c = dict.fromkeys(COUNTERS, 0)
        self.sock = None

    @property
    def name(self):
        return fmt_addr(self.listen_host, self.listen_port)

    @property
    def target(self):
        return fmt_addr(self.target_host, self.target_port)

    def stats(self):
        d = {"listen": self.name, "target": self.target}
        d.update(self.c)
        return d


class _SideError(Exception):
    """An OSError on one side of a relayed connection ("client" or "target")."""

    def __init__(self, side, err):
        super().__init__(side, err)
        self.side, self.err = side, err


class _Conn:
    """Per-connection state: last activity, what MPTCP_INFO said so far."""

    def __init__(self, svc, client, peer):
        self.svc, self.client, self.peer = svc, client, peer
        self.target = None
        self.last = time.monotonic()
        self.fallback = self.multipath = False

    def sample(self, detect):
        """Read MPTCP_INFO, count a fallback or a join the first time; the kind read."""
        if not detect:
            return None
        kind, subflows = mptcp_state(self.client)
        if kind == "tcp" and not self.fallback:
            self.fallback = True
            self.svc.c["fallback_tcp"] += 1
            log.info("%s: %s fell back to TCP", self.svc.name, self.peer)
        elif kind == "mptcp" and subflows >= 1 and not self.multipath:
            self.multipath = True
            self.svc.c["multipath"] += 1
            log.debug("%s: %s has %d joined subflow(s)", self.svc.name, self.peer, subflows)
        return kind


class Relay:
    """Runs the services: accept loops, one task per relayed connection."""

    def __init__(self, services, max_conns=256, idle_timeout=0.0, connect_timeout=10.0):
        self.services = services
        self.max_conns = max_conns
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self.detect = None          # "MPTCP_INFO" or "unavailable", set by listen()
        self.started = time.monotonic()
        self._tasks = set()
        self._accepters = []

    @property
    def active(self):
        return sum(s.c["active"] for s in self.services)

    def listen(self, backlog=128):
        """Open every listener (MPTCP); OSError from socket()/bind()/listen() goes up with
        .service set to the Service that failed. Listeners opened so far are closed then."""
        try:
            for svc in self.services:
                try:
                    fam = socket.AF_INET6 if ":" in svc.listen_host else socket.AF_INET
                    s = socket.socket(fam, socket.SOCK_STREAM, IPPROTO_MPTCP)
                    try:
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                        s.bind((svc.listen_host, svc.listen_port))
                        s.listen(backlog)
                        s.setblocking(False)
                    except OSError:
                        s.close()
                        raise
                except OSError as e:
                    e.service = svc
                    raise
                svc.sock = s
                svc.listen_port = s.getsockname()[1]     # port 0: the one the kernel chose
        except OSError:
            self.close_listeners()
            raise
        self.detect = "MPTCP_INFO" if self._info_works() else "unavailable"

    def _info_works(self):
        """MPTCP_INFO is there when a listener answers it (a listener is not fallen back)."""
        s = self.services[0].sock
        try:
            s.getsockopt(SOL_MPTCP, MPTCP_INFO, 256)
            return True
        except OSError:
            return False

    def close_listeners(self):
        for svc in self.services:
            if svc.sock is not None:
                svc.sock.close()
                svc.sock = None

    def start(self):
        """Start the accept loops (after listen(), inside the running event loop)."""
        for svc in self.services:
            self._accepters.append(asyncio.ensure_future(self._accept_loop(svc)))

    async def stop(self):
        """Stop accepting, reset every relayed connection, wait for their tasks."""
        for t in self._accepters:
            t.cancel()
        for t in self._accepters:
            try:
                await t
            except asyncio.CancelledError:
                pass
        self._accepters = []
        self.close_listeners()
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def stats(self, reason):
        tot = dict.fromkeys(COUNTERS, 0)
        for s in self.services:
            for k in COUNTERS:
                tot[k] += s.c[k]
        return {"event": "stats", "reason": reason, "time": round(time.time(), 3),
                "uptime_s": round(time.monotonic() - self.started, 3),
                "max_conns": self.max_conns, "fallback_detection": self.detect,
                "services": [s.stats() for s in self.services], "total": tot}

    async def _accept_loop(self, svc):
        loop = asyncio.get_running_loop()
        while True:
            try:
                client, peer = await loop.sock_accept(svc.sock)
            except OSError as e:      # EMFILE, ENOBUFS...: say so, do not spin
                log.error("%s: accept failed: %s", svc.name, why(e))
                await asyncio.sleep(0.1)
                continue
            svc.c["accepted"] += 1
            peer = fmt_addr(peer[0], peer[1])
            if self.active >= self.max_conns:
                svc.c["rejected_max_conns"] += 1
                log.warning("%s: %s rejected: %d connections active (--max-conns)",
                            svc.name, peer, self.active)
                _abort(client)
                continue
            svc.c["active"] += 1
            t = asyncio.ensure_future(self._handle(svc, client, peer))
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)

    async def _connect_target(self, svc):
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(svc.target_host, svc.target_port,
                                       type=socket.SOCK_STREAM)
        last = None
        for fam, typ, proto, _, addr in infos:
            s = socket.socket(fam, typ, proto)
            s.setblocking(False)
            try:
                await loop.sock_connect(s, addr)
                return s
            except BaseException as e:
                s.close()
                if not isinstance(e, OSError):
                    raise
                last = e
        raise last or OSError(errno.EHOSTUNREACH, "no address")

    async def _handle(self, svc, client, peer):
        conn = _Conn(svc, client, peer)
        try:
            await self._run(conn)
        except Exception:       # a bug in the relay: counted and logged with its traceback
            svc.c["internal_errors"] += 1
            log.exception("%s: %s: internal error", svc.name, peer)
        finally:
            svc.c["active"] -= 1

    async def _run(self, conn):
        svc, client = conn.svc, conn.client
        client.setblocking(False)
        _nodelay(client)
        if conn.sample(self.detect == "MPTCP_INFO") == "mptcp":
            svc.c["mptcp"] += 1
        try:
            target = await asyncio.wait_for(self._connect_target(svc), self.connect_timeout)
        except asyncio.CancelledError:
            _abort(client)
            raise
        except (OSError, asyncio.TimeoutError) as e:
            svc.c["target_connect_failures"] += 1
            reason = "timed out" if isinstance(e, asyncio.TimeoutError) else why(e)
            log.warning("%s: %s: target %s unreachable: %s; client reset",
                        svc.name, conn.peer, svc.target, reason)
            _abort(client)
            return
        conn.target = target
        _nodelay(target)
        log.debug("%s: %s relayed to %s", svc.name, conn.peer, svc.target)
        up = asyncio.ensure_future(self._pump(conn, client, target, "client", "target",
                                              "bytes_up"))
        down = asyncio.ensure_future(self._pump(conn, target, client, "target", "client",
                                                "bytes_down"))
        mon = asyncio.ensure_future(self._monitor(conn))
        pumps = {up, down}
        outcome, side = "closed", None
        try:
            while pumps:
                done, _ = await asyncio.wait(pumps | {mon}, return_when=asyncio.FIRST_COMPLETED)
                if mon in done:
                    outcome = "idle"
                    break
                for t in done:
                    pumps.discard(t)
                    exc = t.exception()
                    if exc is not None:
                        outcome, side = "reset", exc
                        if not isinstance(exc, _SideError):
                            raise exc       # a bug, not the network: never hidden
                if outcome == "reset":
                    break
        except asyncio.CancelledError:      # stop(): the relay is cut, both sides reset
            outcome = "stopped"
            raise
        finally:
            for t in (up, down, mon):
                t.cancel()
            await asyncio.gather(up, down, mon, return_exceptions=True)
            conn.sample(self.detect == "MPTCP_INFO")
            if outcome == "closed":
                client.close()
                target.close()
            else:
                _abort(client)
                _abort(target)
        if outcome == "closed":
            svc.c["closed"] += 1
            log.debug("%s: %s done", svc.name, conn.peer)
        elif outcome == "idle":
            svc.c["idle_timeouts"] += 1
            log.info("%s: %s idle for %g s: reset", svc.name, conn.peer, self.idle_timeout)
        else:
            svc.c["resets"] += 1
            svc.c["resets_" + side.side] += 1
            log.info("%s: %s: %s side failed (%s): relay reset", svc.name, conn.peer,
                     side.side, why(side.err))

    async def _pump(self, conn, src, dst, src_side, dst_side, counter):
        """Copy src -> dst until EOF (then shutdown(SHUT_WR) on dst); _SideError on error."""
        loop = asyncio.get_running_loop()
        buf = bytearray(BUFSIZE)
        mv = memoryview(buf)
        while True:
            try:
                n = await loop.sock_recv_into(src, buf)
            except OSError as e:
                raise _SideError(src_side, e)
            conn.last = time.monotonic()
            if n == 0:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError as e:
                    raise _SideError(dst_side, e)
                return
            try:
                await loop.sock_sendall(dst, mv[:n])
            except OSError as e:
                raise _SideError(dst_side, e)
            conn.last = time.monotonic()
            conn.svc.c[counter] += n

    async def _monitor(self, conn):
        """Returns when the connection has been idle for idle_timeout; samples MPTCP_INFO."""
        detect = self.detect == "MPTCP_INFO"
        while True:
            wait = SAMPLE_S
            if self.idle_timeout > 0:
                left = conn.last + self.idle_timeout - time.monotonic()
                if left <= 0:
                    return
                wait = min(wait, left)
            await asyncio.sleep(wait)
            conn.sample(detect)
