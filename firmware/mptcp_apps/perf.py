USAGE = """perf: bulk transfer over the device's MPTCP stack (iperf-like), for the lab and field trials.

client:  perf --connect HOST:PORT (--send BYTES | --recv)
server:  perf --listen PORT (--send BYTES | --recv)
options: --links wifi[,lte]  --heap BYTES  --scheduler minrtt|backup|redundant|roundrobin
         --backup LINK (joined with the backup flag; default: lte with --scheduler backup)
         --abort-after BYTES (--recv: abort the connection after BYTES: RST + MP_FASTCLOSE)
         --no-mptcp  --csum
         --timeout SECONDS  --wifi-tunnel HOST:PORT  --snd-buf BYTES  --rcv-buf BYTES  -v
         --lte-serial PATH (modem tty; default $MPTCP_LAB_LTE or the board's)
         --lte-timeout SECONDS (wait for the LTE link before the transfer; default 60)
         --raw IFNAME --raw-addr A.B.C.D (Wi-Fi on a real interface through raw sockets,
         mptcp_net.raw_netif, as root; the address is the interface's, default the board's
         WIFI_ADDR;
         installs mptcp_net.rawnet_rules' nftables table for the run; --raw-no-rules: do not)
The connection's first subflow uses the first link listed (wifi = ifindex 0, lte = ifindex 1);
the path manager joins from every other listed link that is up, and again when a link returns.
BYTES takes K/M/G (powers of 1024) suffixes: 8M = 8 MiB.

Ends by printing ONE JSON line (DESIGN §4):
{"bytes":N,"sha256":"…","seconds":S,"mptcp":true,"subflows":[{"link":"wifi","bytes_tx":…,"bytes_rx":…}],"heap_peak":N,…}
"mem" (MicroPython): live heap bytes after start-up ("code"), after the stack, netifs and loop
("stack"), once connected ("conn") and after the transfer ("end"); "heap" = the heap's size.
Exit status 0 only if the transfer completed (all data acknowledged / clean end of stream).
Times are ticks (ms modulo 2**30): "seconds" is right for a transfer shorter than 6 days,
and --timeout / --lte-timeout are at most MAX_TIMEOUT_S (a tick difference spans < 6.2 days).
"""
# (MicroPython's -m does not define __doc__, so the usage text is a plain constant.)
import sys
import os
import hashlib
import binascii

from mptcp import ticks
from mptcp_runtime import clock
from mptcp_apps.args import UsageError, parse_size, main as app_main


LINKS = {"wifi": 0, "lte": 1}
MAX_TIMEOUT_S = 500000         # < ticks.HALF ms: a deadline must be comparable with now
BLOCK = 16384


def parse_args(argv):
    o = {"connect": None, "listen": None, "send": None, "recv": False, "links": "wifi",
         "heap": None, "scheduler": "minrtt", "backup": None, "abort_after": None, "mptcp": True, "csum": False, "timeout": 120,
         "wifi_tunnel": None, "snd_buf": None, "rcv_buf": None, "verbose": False,
         "lte_serial": None, "lte_timeout": 60.0, "raw": None, "raw_addr": None,
         "raw_rules": True}
    i = 0
    n = len(argv)

    def val():
        if i + 1 >= n:
            raise UsageError("%s needs a value" % argv[i])
        return argv[i + 1]
    while i < n:
        a = argv[i]
        if a in ("-h", "--help"):
            raise UsageError("")
        elif a == "--connect":
            hp = val()
            if ":" not in hp:
                raise UsageError("--connect takes HOST:PORT")
            h, p = hp.rsplit(":", 1)
            o["connect"] = (h, int(p))
            i += 1
        elif a == "--listen":
            o["listen"] = int(val())
            i += 1
        elif a == "--send":
            o["send"] = parse_size(val())
            i += 1
        elif a == "--recv":
            o["recv"] = True
        elif a == "--links":
            o["links"] = val()
            i += 1
        elif a == "--heap":
            o["heap"] = parse_size(val())
            i += 1
        elif a == "--scheduler":
            o["scheduler"] = val()
            i += 1
        elif a == "--backup":
            o["backup"] = val()
            i += 1
        elif a == "--abort-after":
            o["abort_after"] = parse_size(val())
            i += 1
        elif a == "--no-mptcp":
            o["mptcp"] = False
        elif a == "--csum":
            o["csum"] = True
        elif a == "--timeout":
            o["timeout"] = float(val())
            i += 1
        elif a == "--wifi-tunnel":
            o["wifi_tunnel"] = val()
            i += 1
        elif a == "--raw":
            o["raw"] = val()
            i += 1
        elif a == "--raw-no-rules":
            o["raw_rules"] = False
        elif a == "--raw-addr":
            o["raw_addr"] = val()
            i += 1
        elif a == "--lte-serial":
            o["lte_serial"] = val()
            i += 1
        elif a == "--lte-timeout":
            o["lte_timeout"] = float(val())
            i += 1
        elif a == "--snd-buf":
            o["snd_buf"] = parse_size(val())
            i += 1
        elif a == "--rcv-buf":
            o["rcv_buf"] = parse_size(val())
            i += 1
        elif a in ("-v", "--verbose"):
            o["verbose"] = True
        else:
            raise UsageError("unknown argument: %s" % a)
        i += 1
    if (o["connect"] is None) == (o["listen"] is None):
        raise UsageError("give exactly one of --connect HOST:PORT or --listen PORT")
    if (o["send"] is None) == (not o["recv"]):
        raise UsageError("give exactly one of --send BYTES or --recv")
    if o["abort_after"] is not None and not o["recv"]:
        raise UsageError("--abort-after BYTES needs --recv")
    for name in o["links"].split(","):
        if name not in LINKS:
            raise UsageError("unknown link %r (known: wifi, lte)" % name)
    for k in ("timeout", "lte_timeout"):
        if not 0 < o[k] <= MAX_TIMEOUT_S:
            raise UsageError("--%s must be in (0, %d] seconds"
                             % (k.replace("_", "-"), MAX_TIMEOUT_S))
    if o["raw"] is not None and o["wifi_tunnel"] is not None:
        raise UsageError("give at most one of --raw IFNAME and --wifi-tunnel HOST:PORT")
    from mptcp.sched import NAMES as SCHEDULERS
    if o["scheduler"] == "default":
        o["scheduler"] = "minrtt"
    if o["scheduler"] not in SCHEDULERS:
        raise UsageError("unknown scheduler %r (known: %s)" % (o["scheduler"], ", ".join(SCHEDULERS)))
    if o["backup"] is None and o["scheduler"] == "backup" and "," in o["links"]:
        o["backup"] = o["links"].split(",")[-1]
    if o["backup"] is not None and o["backup"] not in o["links"].split(","):
        raise UsageError("--backup %s is not one of --links %s" % (o["backup"], o["links"]))
    return o


def board_config():
    """The board module with mptcp-flash's settings (mptcp_runtime.config), None without one."""
    from mptcp_runtime import config
    return config.board()


def _getenv(name):
    """os.getenv where the port has it (the unix port); None on a board (no environment)."""
    g = getattr(os, "getenv", None)
    return g(name) if g is not None else None


def make_netifs(o, board):
    from mptcp_net.netif import ip_aton
    nifs = []
    for name in o["links"].split(","):
        if name == "wifi" and o["raw"]:
            nifs.append(raw_netif(o, board))
        elif name == "wifi":
            from mptcp_net.udp_tunnel import UdpTunnel
            tun = o["wifi_tunnel"] or _getenv("MPTCP_LAB_WIFI") or "127.0.0.1:47001"
            h, p = tun.rsplit(":", 1)
            addr = getattr(board, "WIFI_ADDR", "198.18.1.2")
            nifs.append(UdpTunnel("wifi", LINKS["wifi"], ip_aton(addr), h, int(p)))
        else:
            from mptcp_net.lte_link import from_board
            path = o["lte_serial"] or _getenv("MPTCP_LAB_LTE")
            # the lab's current line rate: --lte-baud (a board driven over its console
            # has no environment) or the lab's variable
            baud = o.get("lte_baud") or _getenv("MPTCP_LAB_LTE_BAUD")
            try:
                nifs.append(from_board(board, path, LINKS["lte"], baud=int(baud) if baud else None,
                                        clock=clock.now_ms, sleep_ms=clock.sleep_ms))
            except (ValueError, OSError) as e:
                raise UsageError("LTE link: %s" % (e,))
    return nifs


def raw_netif(o, board):
    """The Wi-Fi link on a real interface (mptcp_net.raw_netif): the stack's ephemeral ports and
    the listening port are the device's; the rest of the interface stays the kernel's."""
    from mptcp_net.netif import ip_aton
    from mptcp_net.raw_netif import RawNetif, EPHEMERAL
    addr = o["raw_addr"] or getattr(board, "WIFI_ADDR", None)
    if not addr:
        raise UsageError("--raw needs --raw-addr A.B.C.D (the interface's IPv4 address)")
    ports = [EPHEMERAL]
    if o["listen"] is not None:
        ports.append((o["listen"], o["listen"]))
    try:
        return RawNetif("wifi", LINKS["wifi"], o["raw"], ip_aton(addr), ports=ports,
                        rules=o["raw_rules"])
    except (OSError, ValueError) as e:
        raise UsageError("raw link on %s: %s (needs root)" % (o["raw"], e))


def wait_links(o, loop, nifs):
    """Run the loop until every link that must dial (LTE) is up; OSError with why if not."""
    slow = [n for n in nifs if hasattr(n, "failed")]
    if not slow:
        return
    t0 = clock.now_ms()
    ok = loop.run_until(lambda: all(n.up or n.failed() for n in slow),
                        int(o["lte_timeout"] * 1000))
    for n in slow:
        if not n.up:
            why = "failed" if n.failed() else "not up after %gs" % o["lte_timeout"]
            raise OSError(110, "%s link %s (state %s, last error: %s)"
                          % (n.name, why, n.state, n.last_error()))
    _log(o, "perf: links up after %d ms: %s" % (ticks.diff(clock.now_ms(), t0), ", ".join(
        "%s %d.%d.%d.%d" % ((n.name,) + tuple(n.addr)) for n in slow)))


def _mem(tag, marks):
    """Record the live heap (after a collection) at a set-up checkpoint; MicroPython only.

    The checkpoints split the device's RAM into: code (modules loaded), stack (Stack,
    netifs, loop buffers), conn (the connection's rings and state), end (what is still
    live after the transfer): the figures for the memory budget (docs/ARCHITECTURE.md)."""
    try:
        import gc
        gc.collect()
        marks[tag] = gc.mem_alloc()
        if "heap" not in marks:
            marks["heap"] = gc.mem_alloc() + gc.mem_free()
    except (ImportError, AttributeError):
        pass


def _log(o, *args):
    if o["verbose"]:
        print(*args, file=sys.stderr)


def run(o):
    from mptcp_runtime.factory import make_stack, backup_link
    from mptcp_runtime.loop import Loop
    from mptcp_runtime.socket_api import MPSocket
    marks = {}
    board = board_config()
    _mem("code", marks)
    st = make_stack(board, o["snd_buf"], o["rcv_buf"], o["scheduler"], max_conns=2)
    snd = st.snd_buf
    nifs = make_netifs(o, board)
    backup = o["backup"] or backup_link(board, o["scheduler"], o["links"].split(","))
    for n in nifs:
        n.backup = n.name == backup
    loop = Loop(st, nifs)
    _mem("stack", marks)    # also: the big buffers below want contiguous heap
    first = LINKS[o["links"].split(",")[0]]
    tmo = int(o["timeout"] * 1000)
    h = hashlib.sha256()
    block = BLOCK if BLOCK <= snd else snd      # the app's buffer: no bigger than the ring
    buf = bytearray(block)
    mv = memoryview(buf)
    total = 0
    ok = False
    err = None
    s = None
    t_start = clock.now_ms()
    t0 = t_start
    try:
        wait_links(o, loop, nifs)
        if o["connect"]:
            s = MPSocket(loop, first, mptcp=o["mptcp"], csum=o["csum"], timeout_ms=tmo)
            s.connect(o["connect"])
            _log(o, "perf: connected to %s:%d mptcp=%s" % (o["connect"][0], o["connect"][1], s.conn.mptcp))
        else:
            ls = MPSocket(loop, first, mptcp=o["mptcp"], csum=o["csum"], timeout_ms=tmo)
            ls.listen(o["listen"])
            _log(o, "perf: listening on port %d" % o["listen"])
            s = ls.accept(tmo)
            _log(o, "perf: accepted, mptcp=%s" % s.conn.mptcp)
        _mem("conn", marks)
        t0 = clock.now_ms()
        if o["send"] is not None:
            want = o["send"]
            for i in range(0, block, 256):      # random data, no second block-sized copy
                k = block - i if block - i < 256 else 256
                buf[i:i + k] = os.urandom(k)
            blk = 0
            while total < want:
                buf[0] = blk & 0xFF
                buf[1] = (blk >> 8) & 0xFF
                buf[2] = (blk >> 16) & 0xFF
                k = want - total
                if k > block:
                    k = block
                part = mv[:k]
                s.sendall(part)
                h.update(part)
                total += k
                blk += 1
            s.close(linger_ms=tmo)
            c = s.conn
            ok = c.closed and c.error is None
            if not ok:
                err = c.error or "close did not complete (state %s)" % c.state
        else:
            stop = o["abort_after"]
            while True:
                n = s.recv_into(mv)
                if n == 0:
                    break
                h.update(mv[:n])
                total += n
                if stop is not None and total >= stop:
                    break
            if stop is not None:
                s.conn.abort()              # RST + MP_FASTCLOSE on every subflow
                loop.run_until(lambda: s.conn.closed, 2000)
                ok = s.conn.error == "aborted" and s.conn.closed
                err = None if ok else "abort did not complete (%s)" % (s.conn.error,)
            else:
                s.close(linger_ms=tmo)
                ok = s.conn.error is None
                if not ok:
                    err = s.conn.error
    except OSError as e:
        err = "%s" % (e,)
    t1 = clock.now_ms()
    _mem("end", marks)
    c = s.conn if s is not None else None
    names = {}
    for k in LINKS:
        names[LINKS[k]] = k
    subflows = []
    if c is not None:
        for sf in c.subflows:
            subflows.append({"link": names.get(sf.ifindex, str(sf.ifindex)),
                             "bytes_tx": sf.bytes_tx(), "bytes_rx": sf.bytes_rx(),
                             "rtt_ms": sf.rtt.rtt_ms, "retrans": sf.retrans,
                             "state": sf.state_name(), "join": sf.join,
                             "backup": sf.backup or sf.peer_backup, "stale": sf.stale})
    counters = {}
    for name, v in st.counters.items():
        if v:
            counters[name] = v
    if loop._mem_alloc is not None:
        m = loop._mem_alloc()
        if m > loop.heap_peak:
            loop.heap_peak = m
    res = {"bytes": total, "sha256": binascii.hexlify(h.digest()).decode(),
           "seconds": ticks.diff(t1, t0) / 1000, "mptcp": bool(c is not None and c.mptcp),
           "subflows": subflows, "heap_peak": loop.heap_peak, "mem": marks or None,
           "ok": ok, "error": err, "counters": counters,
           "impl": sys.implementation.name, "scheduler": o["scheduler"]}
    for n in nifs:
        if hasattr(n, "stats") and hasattr(n, "ups"):
            ls = n.stats()
            res[n.name] = {"ups": n.ups, "downs": n.downs, "last_down": n.last_down,
                           "state": n.state, "dials": ls["modem"]["dials"],
                           "redials": ls["modem"]["redials"],
                           "no_carrier": ls["modem"]["no_carrier"],
                           "rx_bad_fcs": ls["rx_bad_fcs"], "tx_dropped": ls["tx_dropped"],
                           "lcp_echo_fail": ls["lcp_echo_fail"]}
        elif hasattr(n, "rx_trunc"):        # the raw-socket netif
            res[n.name] = n.stats()
    loop.close()
    return ok, res


def main(argv=None):
    return app_main("perf", USAGE, parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
