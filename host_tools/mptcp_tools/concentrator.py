"""mptcp-concentrator: accept a device's Multipath TCP connections on Linux and relay each one
to an ordinary TCP server.

A device with two links (Wi-Fi + LTE) gets MPTCP's handover only if its peer speaks MPTCP;
most servers do not. The concentrator runs next to them: it listens with an MPTCP socket
(IPPROTO_MPTCP, the kernel's upstream MPTCP does the protocol: joins, handover, reinjection),
and for each accepted connection opens a plain TCP connection to the target and copies bytes
both ways. Half-closes are passed on (EOF -> shutdown(SHUT_WR) on the other side); an error
or reset on one side resets the other; no byte read is dropped. Clients without MPTCP are
relayed too (the kernel falls back to TCP) and counted.

Counters (per service and in total) are printed as one JSON line on stdout on SIGUSR1, every
--stats-interval seconds and at exit; logs go to stderr. Exit status: 0 after SIGTERM/SIGINT,
1 when it cannot start (port in use, MPTCP off, --check-target failed), 2 for a bad command
line.
"""

import argparse
import asyncio
import errno
import ipaddress
import json
import logging
import os
import signal
import socket
import sys

from .concentrator_relay import IPPROTO_MPTCP, Relay, Service, fmt_addr, log, why

PROG = "mptcp-concentrator"
MPTCP_SYSCTL = "/proc/sys/net/mptcp/enabled"

EPILOG = """\
examples:
  mptcp-concentrator --listen 0.0.0.0:8443 --target 10.0.0.5:443
  mptcp-concentrator --listen 198.18.0.1 --map 5001=127.0.0.1:6001 --map 5002=db.lan:5432

counters (JSON; "services": one object per listener, "total": their sum):
  accepted                 connections accepted (rejected ones included)
  active                   connections being relayed now
  closed                   relays that ended cleanly (both directions reached EOF)
  bytes_up / bytes_down    bytes relayed client -> target / target -> client
  target_connect_failures  the target refused, was unreachable or timed out (client reset)
  resets, resets_client, resets_target
                           relays ended by an error or reset on that side (other side reset)
  idle_timeouts            relays reset after --idle-timeout seconds without a byte
  rejected_max_conns       connections reset at once because --max-conns were active
  mptcp                    connections that were MPTCP when accepted
  fallback_tcp             connections found running as plain TCP (client without MPTCP,
                           or a later fallback), read from getsockopt(SOL_MPTCP, MPTCP_INFO)
  multipath                connections seen with at least one joined subflow (sampled at
                           accept, every second, and at the end)
  internal_errors          bugs in the relay (logged with a traceback); should stay 0
"fallback_detection" is "MPTCP_INFO", or "unavailable" on kernels without it (< 5.16): then
mptcp, fallback_tcp and multipath are not counted.

signals: SIGUSR1 prints the counters; SIGTERM/SIGINT stop (listeners closed, relays reset,
counters printed). The server side must have MPTCP enabled (sysctl net.mptcp.enabled=1);
let the device's second link join with `ip mptcp limits set subflows 2` (see README).
"""


class UsageError(Exception):
    """A bad command line: one line, exit 2."""


class StartError(Exception):
    """The concentrator cannot start: one line, exit 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _split_hostport(text, what, need_port=True):
    """'h:p', '[v6]:p', ('h' when not need_port) -> (host, port or None)."""
    t = text.strip()
    if t.startswith("["):
        host, sep, rest = t[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise UsageError("%s %r: expected [IPv6]:PORT" % (what, text))
        port = rest[1:] if rest else None
    elif t.count(":") == 1:
        host, port = t.split(":")
    elif ":" in t:          # a bare IPv6 address
        host, port = t, None
    else:
        host, port = t, None
    if not host:
        raise UsageError("%s %r: no host" % (what, text))
    if port is None or port == "":
        if need_port:
            raise UsageError("%s %r: expected HOST:PORT" % (what, text))
        return host, None
    try:
        p = int(port)
    except ValueError:
        raise UsageError("%s %r: port %r is not a number" % (what, text, port))
    if not 0 <= p <= 65535:
        raise UsageError("%s %r: port %d out of range" % (what, text, p))
    return host, p


def _target(text, what):
    host, port = _split_hostport(text, what)
    if port == 0:
        raise UsageError("%s %r: port 0 is not a target" % (what, text))
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise UsageError("%s %r: cannot resolve %r: %s" % (what, text, host, e.strerror))
    return host, port


def build_parser():
    ap = _Parser(prog=PROG, description=__doc__.split("\n\nCounters")[0],
                 epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", metavar="ADDR[:PORT]",
                    help="local IP address (and port, with --target) to accept MPTCP on; "
                         "default address 0.0.0.0; port 0 lets the kernel choose")
    ap.add_argument("--target", metavar="HOST:PORT",
                    help="the TCP server every connection to --listen's port is relayed to")
    ap.add_argument("--map", metavar="LISTENPORT=HOST:PORT", action="append", default=[],
                    help="one more listener on --listen's address relaying to HOST:PORT "
                         "(repeat for several)")
    ap.add_argument("--max-conns", type=int, default=256, metavar="N",
                    help="relayed connections at once, all listeners together; more are "
                         "reset at accept (default 256)")
    ap.add_argument("--idle-timeout", type=float, default=0.0, metavar="S",
                    help="reset a relay after S seconds without a byte either way "
                         "(default 0: never)")
    ap.add_argument("--connect-timeout", type=float, default=10.0, metavar="S",
                    help="give up connecting to the target after S seconds (default 10)")
    ap.add_argument("--check-target", action="store_true",
                    help="at start, connect once to every target and exit 1 if one is "
                         "unreachable (the target sees one empty connection)")
    ap.add_argument("--stats-interval", type=float, default=0.0, metavar="S",
                    help="print the counters every S seconds (default 0: only on SIGUSR1 "
                         "and at exit)")
    ap.add_argument("--log-level", default="info",
                    choices=("debug", "info", "warning", "error"),
                    help="stderr log level (default info; debug logs every connection)")
    return ap


def parse_args(argv):
    """The command line -> (options, [Service]); UsageError for anything wrong."""
    a = build_parser().parse_args(argv)
    if a.max_conns < 1:
        raise UsageError("--max-conns must be at least 1")
    for name in ("idle_timeout", "connect_timeout", "stats_interval"):
        if getattr(a, name) < 0:
            raise UsageError("--%s must not be negative" % name.replace("_", "-"))
    if a.connect_timeout == 0:
        raise UsageError("--connect-timeout must be positive")
    if a.target is None and not a.map:
        raise UsageError("nothing to relay: give --target HOST:PORT or --map PORT=HOST:PORT")
    host, port = ("0.0.0.0", None)
    if a.listen is not None:
        host, port = _split_hostport(a.listen, "--listen", need_port=False)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise UsageError("--listen %r: %r is not an IP address" % (a.listen, host))
    services = []
    if a.target is not None:
        if port is None:
            raise UsageError("--target needs a port in --listen ADDR:PORT")
        services.append(Service(host, port, *_target(a.target, "--target")))
    elif port is not None:
        raise UsageError("--listen %r has a port but no --target for it" % a.listen)
    for m in a.map:
        lport, sep, tgt = m.partition("=")
        if not sep:
            raise UsageError("--map %r: expected LISTENPORT=HOST:PORT" % m)
        try:
            lp = int(lport)
        except ValueError:
            raise UsageError("--map %r: listen port %r is not a number" % (m, lport))
        if not 1 <= lp <= 65535:
            raise UsageError("--map %r: listen port %d out of range" % (m, lp))
        services.append(Service(host, lp, *_target(tgt, "--map")))
    seen = set()
    for s in services:
        if s.listen_port and s.listen_port in seen:
            raise UsageError("listen port %d given twice" % s.listen_port)
        seen.add(s.listen_port)
    return a, services


def mptcp_unavailable():
    """None if this kernel/namespace can open an MPTCP socket, else why not (one line)."""
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP).close()
        return None
    except OSError as e:
        err = e
    try:
        with open(MPTCP_SYSCTL) as f:
            enabled = f.read().strip()
    except OSError:
        enabled = None
    if enabled == "0":
        return ("MPTCP is disabled in this network namespace (net.mptcp.enabled=0): "
                "enable it with `sysctl -w net.mptcp.enabled=1`")
    if enabled is None:
        return ("this kernel has no MPTCP (%s; needs Linux >= 5.6 with CONFIG_MPTCP=y)"
                % why(err))
    return "cannot open an MPTCP socket: %s" % why(err)


def _unprivileged_port_start():
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1024


def listen_error(e):
    """An OSError from Relay.listen() -> one line."""
    svc = getattr(e, "service", None)
    where = svc.name if svc else "?"
    if e.errno == errno.EADDRINUSE:
        reason = "address already in use (another process listens on that port)"
    elif e.errno == errno.EACCES:
        reason = ("permission denied: ports below %d need root or CAP_NET_BIND_SERVICE "
               "(systemd: AmbientCapabilities=CAP_NET_BIND_SERVICE)" % _unprivileged_port_start())
    elif e.errno == errno.EADDRNOTAVAIL:
        reason = "no such local address on this machine"
    else:
        reason = why(e)
    return "cannot listen on %s: %s" % (where, reason)


async def check_targets(services, timeout):
    """Connect once to every distinct target; StartError naming the first unreachable one."""
    for host, port in dict.fromkeys((s.target_host, s.target_port) for s in services):
        try:
            _, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except asyncio.TimeoutError:
            raise StartError("target %s unreachable: connect timed out after %g s"
                             % (fmt_addr(host, port), timeout))
        except OSError as e:
            raise StartError("target %s unreachable: %s"
                             % (fmt_addr(host, port), why(e)))
        w.close()


def emit(obj, out=None):
    """One JSON line on stdout (flushed: a supervisor or a test reads it at once)."""
    out = out or sys.stdout
    out.write(json.dumps(obj, sort_keys=True) + "\n")
    out.flush()


async def serve(opts, services):
    off = mptcp_unavailable()
    if off:
        raise StartError(off)
    if opts.check_target:
        await check_targets(services, opts.connect_timeout)
    relay = Relay(services, opts.max_conns, opts.idle_timeout, opts.connect_timeout)
    try:
        relay.listen()
    except OSError as e:
        raise StartError(listen_error(e))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, lambda: emit(relay.stats("sigusr1")))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    relay.start()
    for s in services:
        log.info("listening on %s (MPTCP) -> %s", s.name, s.target)
    emit({"event": "listening", "pid": os.getpid(), "fallback_detection": relay.detect,
          "services": [{"listen": s.name, "port": s.listen_port, "target": s.target}
                       for s in services]})
    if relay.detect != "MPTCP_INFO":
        log.warning("getsockopt(SOL_MPTCP, MPTCP_INFO) not supported by this kernel: "
                    "fallback to TCP is not detected (mptcp/fallback_tcp/multipath stay 0)")
    ticker = None
    if opts.stats_interval > 0:
        async def tick():
            while True:
                await asyncio.sleep(opts.stats_interval)
                emit(relay.stats("interval"))
        ticker = asyncio.ensure_future(tick())
    try:
        await stop.wait()
    finally:
        if ticker:
            ticker.cancel()
        log.info("stopping: %d relayed connection(s) reset", relay.active)
        await relay.stop()
        emit(relay.stats("exit"))


def main(argv=None):
    try:
        opts, services = parse_args(sys.argv[1:] if argv is None else argv)
    except UsageError as e:
        print("%s: error: %s (see --help)" % (PROG, e), file=sys.stderr)
        return 2
    logging.basicConfig(level=getattr(logging, opts.log_level.upper()), stream=sys.stderr,
                        format=PROG + ": %(levelname)s: %(message)s")
    try:
        asyncio.run(serve(opts, services))
    except StartError as e:
        print("%s: error: %s" % (PROG, e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
