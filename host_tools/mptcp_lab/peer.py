"""Kernel-side traffic helpers, run inside a lab namespace (`ip netns exec NS python -m
mptcp_lab.peer ...`):

  server --port P (--recv | --send BYTES | --echo) [--tcp] [--once]
  client --connect HOST:PORT (--send BYTES | --recv) [--tcp]
  ref ARGS        the reference device: the device perf app's options run by the kernel
                  (--connect HOST:PORT | --listen PORT) (--send BYTES | --recv)

Each transfer prints ONE JSON line, like the device perf app:
  {"bytes": N, "sha256": "...", "seconds": S, "mptcp": bool, "subflows": [...]}
`mptcp` is true only if the socket is MPTCP and has not fallen back to TCP, checked at the
start and at the end of the transfer with getsockopt(SOL_MPTCP, MPTCP_INFO): on Linux 6.18 it
fails (EOPNOTSUPP) on a fallen-back socket, and MPTCP_INFO_FLAG_FALLBACK is checked as well.
"""

import argparse
import ctypes
import hashlib
import json
import os
import socket
import struct
import sys
import time

from .common import (IPPROTO_MPTCP, SOL_MPTCP, MPTCP_INFO, MPTCP_TCPINFO, MPTCP_SUBFLOW_ADDRS,
                     LINKS)

BLOCK = 1 << 20
RECV_CHUNK = 256 * 1024
MPTCP_INFO_FLAG_FALLBACK = 1


def parse_bytes(text):
    """'8388608', '8M', '8MiB', '64k' -> int (K/M/G are powers of 1024)."""
    t = str(text).strip().lower().replace("ib", "").rstrip("b")
    mult = 1
    if t and t[-1] in "kmg":
        mult = 1 << {"k": 10, "m": 20, "g": 30}[t[-1]]
        t = t[:-1]
    try:
        n = int(float(t) * mult)
    except ValueError:
        raise argparse.ArgumentTypeError("bad byte count %r" % text)
    if n < 0:
        raise argparse.ArgumentTypeError("negative byte count")
    return n


class Stream:
    """A cheap pseudo-random byte stream: one random 1 MiB block, with the block counter
    XORed into its first 8 bytes so that no two blocks are equal."""

    def __init__(self):
        self.base = os.urandom(BLOCK)
        self.head = int.from_bytes(self.base[:8], "big")
        self.buf = bytearray(self.base)
        self.mv = memoryview(self.buf)

    def block(self, i):
        self.buf[0:8] = (self.head ^ i).to_bytes(8, "big")
        return self.mv


# --- MPTCP introspection ----------------------------------------------------------------------

def mptcp_info(sock):
    """Return (is_mptcp, info dict) from MPTCP_INFO; (False, {}) on TCP or after fallback."""
    try:
        raw = sock.getsockopt(SOL_MPTCP, MPTCP_INFO, 256)
    except OSError:
        return False, {}
    if len(raw) < 16:
        return False, {}
    info = {"subflows": raw[0], "add_addr_signal": raw[1], "add_addr_accepted": raw[2],
            "flags": struct.unpack_from("I", raw, 8)[0] if len(raw) >= 12 else 0}
    if len(raw) >= 43:
        info["csum_enabled"] = bool(raw[42])
    if len(raw) >= 80:
        info["retransmits"], = struct.unpack_from("I", raw, 44)
        (info["bytes_retrans"], info["bytes_sent"], info["bytes_received"],
         info["bytes_acked"]) = struct.unpack_from("QQQQ", raw, 48)
    return not (info["flags"] & MPTCP_INFO_FLAG_FALLBACK), info


def _link_of(addr):
    for name, cfg in LINKS.items():
        if addr in (cfg["dev_addr"], cfg["peer_addr"]):
            return name
    return None


_libc = None


def _getsockopt_inout(sock, level, opt, inbuf):
    """getsockopt with an input buffer (Python's getsockopt only passes zeros)."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(bytes(inbuf), len(inbuf))
    ln = ctypes.c_uint32(len(inbuf))
    if _libc.getsockopt(sock.fileno(), level, opt, buf, ctypes.byref(ln)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return buf.raw[:ln.value]


def subflows(sock):
    """Best effort per-subflow byte counts: [{"link", "bytes_tx", "bytes_rx", ...}]."""
    hdr = struct.Struct("IIII")
    out = []
    n_max, tcp_sz, addr_sz = 8, 256, 256
    try:
        raw_t = _getsockopt_inout(sock, SOL_MPTCP, MPTCP_TCPINFO,
                                  hdr.pack(16, 0, 0, tcp_sz) + bytes(n_max * tcp_sz))
        raw_a = _getsockopt_inout(sock, SOL_MPTCP, MPTCP_SUBFLOW_ADDRS,
                                  hdr.pack(16, 0, 0, addr_sz) + bytes(n_max * addr_sz))
    except OSError:
        return out
    _, nt, _, ut = hdr.unpack_from(raw_t, 0)
    _, na, _, ua = hdr.unpack_from(raw_a, 0)
    for i in range(min(nt, na, n_max)):
        t = raw_t[16 + i * ut: 16 + (i + 1) * ut]
        a = raw_a[16 + i * ua: 16 + (i + 1) * ua]
        loc = socket.inet_ntoa(a[4:8]) if len(a) >= 8 else "?"
        rem = socket.inet_ntoa(a[128 + 4:128 + 8]) if len(a) >= 136 else "?"
        sf = {"link": _link_of(loc) or _link_of(rem) or "?", "local": loc, "remote": rem}
        if len(t) >= 208:
            sf["bytes_tx"], = struct.unpack_from("Q", t, 200)
            sf["bytes_rx"], = struct.unpack_from("Q", t, 128)
            sf["rtt_ms"] = struct.unpack_from("I", t, 68)[0] / 1000.0
            sf["retrans"], = struct.unpack_from("I", t, 100)
        out.append(sf)
    return out


def _tcp_subflow(sock):
    """The single 'subflow' of a plain TCP (or fallen-back) connection."""
    try:
        t = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
        loc, rem = sock.getsockname()[0], sock.getpeername()[0]
    except OSError:
        return []
    sf = {"link": _link_of(loc) or _link_of(rem) or "?", "local": loc, "remote": rem}
    if len(t) >= 208:
        sf["bytes_tx"], = struct.unpack_from("Q", t, 200)
        sf["bytes_rx"], = struct.unpack_from("Q", t, 128)
    return [sf]


# --- transfers --------------------------------------------------------------------------------

def new_socket(tcp):
    return socket.socket(socket.AF_INET, socket.SOCK_STREAM,
                         socket.IPPROTO_TCP if tcp else IPPROTO_MPTCP)


def _wait_eof(sock, timeout=60.0):
    """After our FIN: wait until the peer closes, so everything we sent was read."""
    sock.settimeout(timeout)
    buf = bytearray(65536)
    try:
        while sock.recv_into(buf):
            pass
    except OSError:
        pass


def transfer(sock, mode, nbytes, t0, abort_after=None):
    """Run one transfer on a connected socket; return the result dict (the JSON line).
    abort_after: (recv) stop reading after that many bytes and return at once: the caller's
    close() then leaves data unread, which Linux answers with MP_FASTCLOSE."""
    ok0, _ = mptcp_info(sock)
    sha = hashlib.sha256()
    total = 0
    if mode == "send":
        st = Stream()
        i = 0
        while total < nbytes:
            mv = st.block(i)
            n = min(BLOCK, nbytes - total)
            chunk = mv[:n]
            sock.sendall(chunk)
            sha.update(chunk)
            total += n
            i += 1
        snap = subflows(sock) or _tcp_subflow(sock)
        ok1, info = mptcp_info(sock)
        sock.shutdown(socket.SHUT_WR)
        _wait_eof(sock)
        snap = subflows(sock) or snap     # final counts if the subflow is still there
    else:   # recv or echo
        buf = bytearray(RECV_CHUNK)
        mv = memoryview(buf)
        while True:
            n = sock.recv_into(buf)
            if not n:
                break
            sha.update(mv[:n])
            if mode == "echo":
                sock.sendall(mv[:n])
            total += n
            if abort_after is not None and total >= abort_after:
                time.sleep(0.2)             # more data arrives: the close leaves it unread
                return {"bytes": total, "sha256": sha.hexdigest(), "aborted": True,
                        "seconds": round(time.monotonic() - t0, 6), "mptcp": bool(ok0),
                        "subflows": subflows(sock) or _tcp_subflow(sock)}
        snap = subflows(sock) or _tcp_subflow(sock)
        ok1, info = mptcp_info(sock)
        sock.shutdown(socket.SHUT_WR)
    secs = time.monotonic() - t0
    mptcp = bool(ok0 and ok1)
    res = {"bytes": total, "sha256": sha.hexdigest(), "seconds": round(secs, 6), "mptcp": mptcp,
           "subflows": snap}
    if info:
        res["mptcp_info"] = info
    return res


def emit(res):
    sys.stdout.write(json.dumps(res) + "\n")
    sys.stdout.flush()


def parse_links(text):
    """'wifi,lte' -> ["wifi", "lte"] (known, distinct, at least one)."""
    names = [n.strip() for n in str(text).split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("--links needs at least one link (wifi, lte)")
    for n in names:
        if n not in LINKS:
            raise argparse.ArgumentTypeError("unknown link %r (known: %s)"
                                             % (n, ", ".join(LINKS)))
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError("a link twice in --links %s" % text)
    return names


def ref_endpoints(links, listen, backup=None):
    """Configure the kernel's in-kernel path manager in this namespace (mplab-ref) for
    `links`: the first link carries the initial subflow (the socket binds to its address),
    each other link becomes an endpoint (`subflow` for a client, `signal` for a server),
    flagged `backup` if it is the link `backup` (like the device's --backup).
    Returns the address to bind."""
    import subprocess

    def ip(*args):
        p = subprocess.run(["ip", "mptcp"] + list(args), capture_output=True, text=True)
        if p.returncode != 0:
            raise OSError("ip mptcp %s: %s" % (" ".join(args), p.stderr.strip()))
    ip("endpoint", "flush")
    ip("limits", "set", "subflows", "8", "add_addr_accepted", "8")
    for name in links[1:]:
        cfg = LINKS[name]
        flags = ["signal" if listen else "subflow"] + (["backup"] if name == backup else [])
        ip("endpoint", "add", cfg["dev_addr"], "dev", cfg["ifname"], *flags)
    return LINKS[links[0]]["dev_addr"]


def serve(port, mode, nbytes, tcp, once, bind="0.0.0.0", extra=None, abort_after=None):
    ls = new_socket(tcp)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((bind, port))
    ls.listen(8)
    sys.stderr.write("listening %s:%d %s\n" % (bind, port, "tcp" if tcp else "mptcp"))
    sys.stderr.flush()
    rc = 0
    while True:
        c, addr = ls.accept()
        t0 = time.monotonic()
        try:
            res = transfer(c, mode, nbytes, t0, abort_after)
            res["peer"] = "%s:%d" % addr
            if extra:
                res.update(extra)
            emit(res)
            if mode == "send" and res["bytes"] != nbytes:
                rc = 1
        except OSError as e:
            emit({"error": str(e), "peer": "%s:%d" % addr})
            rc = 1
        finally:
            c.close()
        if once:
            return rc


def connect(host, port, mode, nbytes, tcp, extra=None, timeout=30.0, bind=None):
    s = new_socket(tcp)
    s.settimeout(timeout)
    t0 = time.monotonic()
    try:
        if bind:
            s.bind((bind, 0))
        s.connect((host, port))
        s.settimeout(None)
        res = transfer(s, mode, nbytes, t0)
    except OSError as e:
        emit({"error": "%s:%d: %s" % (host, port, e)})
        return 1
    finally:
        s.close()
    if extra:
        res.update(extra)
    emit(res)
    return 0 if (mode != "send" or res["bytes"] == nbytes) else 1


def hostport(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT, got %r" % text)
    return host, int(port)


def _mode_args(p, echo=False):
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--recv", action="store_true", help="read until EOF")
    g.add_argument("--send", type=parse_bytes, metavar="BYTES",
                   help="send BYTES of pseudo-random data (K/M/G suffixes = KiB/MiB/GiB)")
    if echo:
        g.add_argument("--echo", action="store_true", help="send back what is received")


def _mode(a):
    if getattr(a, "echo", False):
        return "echo", 0
    return ("send", a.send) if a.send is not None else ("recv", 0)


def build_parser(prog="mptcp_lab.peer"):
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="role", required=True)
    s = sub.add_parser("server", help="kernel server (MPTCP unless --tcp)")
    s.add_argument("--port", type=int, required=True)
    _mode_args(s, echo=True)
    s.add_argument("--tcp", action="store_true", help="plain TCP instead of MPTCP")
    s.add_argument("--once", action="store_true", help="exit after one connection")
    s.add_argument("--bind", default="0.0.0.0")
    s.add_argument("--abort-after", type=parse_bytes, metavar="BYTES", default=None,
                   help="(--recv) read BYTES, then close with data unread: Linux answers "
                        "that with MP_FASTCLOSE")
    s.add_argument("--ns", default="mplab", help="namespace to run in (used by mptcp-lab)")
    c = sub.add_parser("client", help="kernel client (MPTCP unless --tcp)")
    c.add_argument("--connect", type=hostport, required=True, metavar="HOST:PORT")
    _mode_args(c)
    c.add_argument("--tcp", action="store_true")
    c.add_argument("--ns", default="mplab", help="namespace to run in (used by mptcp-lab)")
    r = sub.add_parser("ref", help="reference device: the perf app's options, kernel MPTCP")
    g = r.add_mutually_exclusive_group(required=True)
    g.add_argument("--connect", type=hostport, metavar="HOST:PORT")
    g.add_argument("--listen", type=int, metavar="PORT")
    _mode_args(r)
    r.add_argument("--links", type=parse_links, default=["wifi"],
                   help="wifi,lte: one subflow per link (the first one first); default wifi")
    r.add_argument("--backup", default=None, metavar="LINK",
                   help="that link's endpoint gets the backup flag (not the first link)")
    r.add_argument("--heap", default=None, help="ignored (kernel)")
    r.add_argument("--scheduler", default=None, help="ignored (kernel's default scheduler)")
    r.add_argument("--tcp", action="store_true")
    return ap


def main(argv=None):
    a = build_parser().parse_args(argv)
    mode, n = _mode(a)
    if a.role == "server":
        if a.abort_after is not None and mode != "recv":
            build_parser().error("--abort-after needs --recv")
        return serve(a.port, mode, n, a.tcp, a.once, a.bind, abort_after=a.abort_after)
    if a.role != "ref":
        return connect(a.connect[0], a.connect[1], mode, n, a.tcp)
    extra = {"heap_peak": None, "runtime": "kernel", "links": a.links, "backup": a.backup}
    if a.backup is not None and a.backup not in a.links[1:]:
        emit({"error": "--backup %s is not one of the joined --links %s"
                       % (a.backup, ",".join(a.links[1:]) or "(none)")})
        return 2
    try:
        addr = ref_endpoints(a.links, a.listen is not None, a.backup)
    except OSError as e:
        emit({"error": "reference device links %s: %s" % (",".join(a.links), e)})
        return 1
    if a.listen is not None:
        return serve(a.listen, mode, n, a.tcp, True, extra=extra)
    return connect(a.connect[0], a.connect[1], mode, n, a.tcp, extra=extra, bind=addr)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
