"""The lab's link emulator: a detached process that owns the TUN devices and moves packets
between the device side and the peer namespace, applying each link's impairments.

Started by `mptcp-lab up` as `python -m mptcp_lab.emulator`; controlled over a UNIX socket
(one JSON request line, one JSON reply line; see `handle_request`).

Links are objects in `Emulator.links`, keyed by name ("wifi"; "lte" later).  A link has:
  * a peer-side TUN in `mplab` (e.g. wifi0 = 198.18.1.1/24),
  * device-side endpoints: a UDP socket (the MicroPython device sends each IPv4 packet as one
    datagram to 127.0.0.1:<port>) and a TUN in `mplab-ref` (the kernel reference device),
  * two `impair.Direction`s: "up" (device -> peer) and "down" (peer -> device).
Downlink packets go to whichever device side last sent an IPv4 packet uplink.
"""

import argparse
import json
import os
import random
import select
import signal
import socket
import sys
import time
import traceback

from . import common
from .common import LINKS, NS_PEER, NS_REF
from .impair import PROFILES, Direction
from . import tun

READ_BATCH = 64
MAX_PKT = 65535


class Stop(Exception):
    """Raised by the SIGTERM/SIGINT handler to leave the poll loop."""


class Link:
    """Base link: two directions with impairments; subclasses own the endpoints."""

    implemented = True

    def __init__(self, name, profile, rng):
        self.name = name
        self.cfg = LINKS[name]
        self.profile = profile
        self.up = Direction("up", rng)
        self.down = Direction("down", rng)
        self.apply_profile(profile)

    def apply_profile(self, profile):
        if profile not in PROFILES:
            raise ValueError("unknown profile %r (use %s)" % (profile, ", ".join(PROFILES)))
        self.profile = profile
        for d in (self.up, self.down):
            d.set(**PROFILES[profile])

    def directions(self, which="both"):
        if which == "both":
            return (self.up, self.down)
        if which in ("up", "uplink"):
            return (self.up,)
        if which in ("down", "downlink"):
            return (self.down,)
        raise ValueError("direction must be both, up or down")

    def set_state(self, up):
        for d in (self.up, self.down):
            d.up = up
            if not up:   # a link going down loses what is in flight
                while d.fifo:
                    d.drop("down", len(d.fifo.popleft()[1]))
                d.serial.clear()
                d.busy_until = 0.0

    def status(self):
        return {"implemented": self.implemented, "profile": self.profile,
                "state": "up" if (self.up.up and self.down.up) else "down",
                "uplink": {"params": self.up.params(), "counters": self.up.counters()},
                "downlink": {"params": self.down.params(), "counters": self.down.counters()}}


class PlannedLink:
    """A link that is configured but not emulated yet (LTE: needs the PPP modem emulator)."""

    implemented = False

    def __init__(self, name, profile):
        self.name = name
        self.profile = profile

    def status(self):
        return {"implemented": False, "profile": self.profile, "state": "not implemented",
                "note": "LTE (PPP over a pty via the modem emulator) is not implemented yet"}


class TunUdpLink(Link):
    """A link whose device side is IP-in-UDP (MicroPython device) or a TUN in mplab-ref.

    Downlink datagrams to the device are zero-padded to PAD_TO (1500) bytes: on MicroPython a
    datagram socket only has the stream `readinto`, which fills its whole buffer, so with
    fixed-size frames one readinto returns exactly one packet (the IPv4 total length gives
    the real size; runtime/udp_tunnel.py relies on this).  The device announces itself with
    an empty datagram ("hello") before its first packet.
    """

    PAD_TO = 1500

    def __init__(self, name, profile, rng, emu):
        super().__init__(name, profile, rng)
        self.emu = emu
        self.peer_fd = None
        self.ref_fd = None
        self.sock = None
        self.dest = None        # ("udp", addr) or ("ref", None)
        self.dest_str = None
        self.hellos = 0         # times the device side changed to a new UDP address
        self.pad_to = self.PAD_TO
        self.zeros = memoryview(bytes(self.PAD_TO))

    def setup(self):
        cfg = self.cfg
        pid = os.getpid()
        tmp_peer = "mlp%s%d" % (self.name[:2], pid)
        tmp_ref = "mlr%s%d" % (self.name[:2], pid)
        self.peer_fd = tun.open_tun(tmp_peer[:15])
        tun.place(tmp_peer[:15], NS_PEER, cfg["ifname"], cfg["peer_addr"], cfg["prefix"])
        self.ref_fd = tun.open_tun(tmp_ref[:15])
        tun.place(tmp_ref[:15], NS_REF, cfg["ifname"], cfg["dev_addr"], cfg["prefix"],
                  routes=((common.LAB_NET, cfg["peer_addr"]),))
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for opt, force in ((socket.SO_RCVBUF, 33), (socket.SO_SNDBUF, 32)):
            try:
                s.setsockopt(socket.SOL_SOCKET, force, 8 << 20)   # SO_*BUFFORCE (root)
            except OSError:
                s.setsockopt(socket.SOL_SOCKET, opt, 8 << 20)
        try:
            s.bind(("127.0.0.1", cfg["udp_port"]))
        except OSError as e:
            s.close()
            raise RuntimeError("cannot bind the %s device port 127.0.0.1:%d: %s (another lab "
                               "or process uses it?)" % (self.name, cfg["udp_port"], e)) from e
        s.setblocking(False)
        self.sock = s
        return [(self.peer_fd, self.on_peer), (self.ref_fd, self.on_ref),
                (s.fileno(), self.on_udp)]

    def close(self):
        for fd in (self.peer_fd, self.ref_fd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        if self.sock:
            self.sock.close()
        self.peer_fd = self.ref_fd = self.sock = None

    # --- ingress ---------------------------------------------------------------------------

    def on_peer(self, now):
        """Packets the kernel in mplab sends towards the device (downlink)."""
        fd, d, rd = self.peer_fd, self.down, os.read
        for _ in range(READ_BATCH):
            try:
                pkt = rd(fd, MAX_PKT)
            except BlockingIOError:
                return
            if not pkt or (pkt[0] >> 4) != 4:
                continue
            self.ingress(d, pkt, now, self.send_down)

    def on_ref(self, now):
        """Packets the reference device (kernel in mplab-ref) sends uplink."""
        fd, d, rd = self.ref_fd, self.up, os.read
        for _ in range(READ_BATCH):
            try:
                pkt = rd(fd, MAX_PKT)
            except BlockingIOError:
                return
            if not pkt or (pkt[0] >> 4) != 4:
                continue
            if self.dest is None or self.dest[0] != "ref":
                self.dest = ("ref", None)
                self.dest_str = "ref"
            self.ingress(d, pkt, now, self.send_up)

    def on_udp(self, now):
        """Packets the device process sends uplink, one IPv4 packet per datagram.

        Any datagram, even an empty "hello", makes its sender the downlink destination.
        A datagram longer than its IPv4 total length (padded by the device) is trimmed."""
        s, d = self.sock, self.up
        for _ in range(READ_BATCH):
            try:
                pkt, addr = s.recvfrom(MAX_PKT)
            except BlockingIOError:
                return
            except OSError:
                return
            dest = self.dest
            if dest is None or dest[1] != addr:
                self.dest = ("udp", addr)
                self.dest_str = "udp:%s:%d" % addr
                self.hellos += 1
            n = len(pkt)
            if n < 20 or (pkt[0] >> 4) != 4:
                if n:
                    d.drop("bad", n)
                continue
            tot = (pkt[2] << 8) | pkt[3]
            if tot < 20 or tot > n:
                d.drop("bad", n)
                continue
            if tot < n:
                pkt = pkt[:tot]
            self.ingress(d, pkt, now, self.send_up)

    def ingress(self, d, pkt, now, send):
        if not d.up:
            d.drop("down", len(pkt))
            return
        if d.loss and d.rng.random() * 100.0 < d.loss:
            d.drop("loss", len(pkt))
            return
        if d.plain:
            send(d, pkt)
        elif d.admit(pkt, now):
            self.emu.wake(d, self)

    # --- egress ----------------------------------------------------------------------------

    def send_up(self, d, pkt):
        try:
            os.write(self.peer_fd, pkt)
        except OSError:
            d.drop("tx", len(pkt))
            return
        d.fwd_pkts += 1
        d.fwd_bytes += len(pkt)

    def send_down(self, d, pkt):
        dest = self.dest
        try:
            if dest is None:
                d.drop("nodest", len(pkt))
                return
            if dest[0] == "udp":
                pad = self.pad_to - len(pkt)
                if pad > 0:     # fixed-size frames: see class docstring
                    self.sock.sendmsg((pkt, self.zeros[:pad]), (), 0, dest[1])
                else:
                    self.sock.sendto(pkt, dest[1])
            else:
                os.write(self.ref_fd, pkt)
        except OSError:
            d.drop("tx", len(pkt))
            return
        d.fwd_pkts += 1
        d.fwd_bytes += len(pkt)

    def sender(self, d):
        return self.send_up if d is self.up else self.send_down

    def status(self):
        st = super().status()
        st["peer_if"] = "%s:%s %s/%d" % (NS_PEER, self.cfg["ifname"], self.cfg["peer_addr"],
                                         self.cfg["prefix"])
        st["ref_if"] = "%s:%s %s/%d" % (NS_REF, self.cfg["ifname"], self.cfg["dev_addr"],
                                        self.cfg["prefix"])
        st["device_udp"] = "127.0.0.1:%d" % self.cfg["udp_port"]
        st["device_side"] = self.dest_str
        st["device_changes"] = self.hellos
        st["pad_to"] = self.pad_to
        return st


class Emulator:
    def __init__(self, wifi="clean", lte=None, seed=None):
        self.rng = random.Random(seed)
        self.links = {}
        self.handlers = {}
        self.pending = set()     # (link, direction) with packets waiting in their FIFO
        self.ep = select.epoll()
        self.running = True
        self.ctl = None
        self.conns = {}
        self.started = time.time()
        self.wifi_profile = wifi
        self.lte_profile = lte
        self.links["wifi"] = TunUdpLink("wifi", wifi, self.rng, self)
        self.links["lte"] = PlannedLink("lte", lte)

    def register(self, fd, handler):
        self.handlers[fd] = handler
        self.ep.register(fd, select.EPOLLIN)

    def unregister(self, fd):
        self.handlers.pop(fd, None)
        try:
            self.ep.unregister(fd)
        except (OSError, ValueError):
            pass

    def setup(self):
        for link in self.links.values():
            if link.implemented:
                for fd, h in link.setup():
                    self.register(fd, h)
        try:
            os.unlink(common.CONTROL_SOCK)
        except FileNotFoundError:
            pass
        ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ctl.bind(common.CONTROL_SOCK)
        os.chmod(common.CONTROL_SOCK, 0o600)
        ctl.listen(8)
        ctl.setblocking(False)
        self.ctl = ctl
        self.register(ctl.fileno(), self.on_accept)

    def wake(self, d, link):
        self.pending.add((link, d))

    # --- control channel -------------------------------------------------------------------

    def on_accept(self, now):
        try:
            c, _ = self.ctl.accept()
        except OSError:
            return
        c.setblocking(False)
        self.conns[c.fileno()] = [c, b""]
        self.register(c.fileno(), lambda now, fd=c.fileno(): self.on_ctl(fd))

    def on_ctl(self, fd):
        c, buf = self.conns[fd]
        try:
            data = c.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            buf += data
            self.conns[fd][1] = buf
            if b"\n" not in buf and len(buf) < 65536:
                return
        self.unregister(fd)
        del self.conns[fd]
        try:
            req = json.loads(buf.split(b"\n", 1)[0].decode() or "{}")
            rep = self.handle_request(req)
        except Exception as e:  # a bad request must never kill the emulator
            rep = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
        try:
            c.setblocking(True)
            c.settimeout(2.0)
            c.sendall((json.dumps(rep) + "\n").encode())
        except OSError:
            pass
        c.close()

    def get_link(self, name, need_impl=True):
        if name not in self.links:
            raise ValueError("unknown link %r (use %s)" % (name, ", ".join(self.links)))
        link = self.links[name]
        if need_impl and not link.implemented:
            raise ValueError("link %r is not implemented yet (LTE/PPP is a later issue)" % name)
        return link

    def handle_request(self, req):
        """Requests: {"cmd": "status"} | {"cmd": "link", "link": L, "state": "up"|"down"} |
        {"cmd": "set", "link": L, "settings": {...}, "dir": "both"|"up"|"down"} |
        {"cmd": "profile", "link": L, "profile": P} | {"cmd": "reset", "link": L or None} |
        {"cmd": "stop"}.  Replies {"ok": true, ...} or {"ok": false, "error": msg}."""
        cmd = req.get("cmd")
        if cmd == "status":
            return {"ok": True, "status": self.status()}
        if cmd == "link":
            link = self.get_link(req.get("link"))
            state = req.get("state")
            if state not in ("up", "down"):
                raise ValueError("state must be up or down")
            link.set_state(state == "up")
            return {"ok": True, "status": self.status()}
        if cmd == "set":
            link = self.get_link(req.get("link"))
            settings = req.get("settings") or {}
            for d in link.directions(req.get("dir", "both")):
                d.set(**settings)
            link.profile = "custom"
            return {"ok": True, "status": self.status()}
        if cmd == "profile":
            name = req.get("link")
            link = self.get_link(name, need_impl=False)
            if link.implemented:
                link.apply_profile(req.get("profile"))
            else:
                link.profile = req.get("profile")
            return {"ok": True, "status": self.status()}
        if cmd == "reset":
            for link in self.links.values():
                if link.implemented and req.get("link") in (None, link.name):
                    link.up.reset_counters()
                    link.down.reset_counters()
            return {"ok": True}
        if cmd == "stop":
            self.running = False
            return {"ok": True}
        raise ValueError("unknown command %r" % cmd)

    def status(self):
        return {"pid": os.getpid(), "uptime_s": round(time.time() - self.started, 1),
                "links": {n: l.status() for n, l in self.links.items()}}

    # --- main loop -------------------------------------------------------------------------

    def release(self, now):
        """Send every delayed packet whose time has come; return the next deadline or None."""
        nxt = None
        done = []
        for item in self.pending:
            link, d = item
            fifo = d.fifo
            send = link.sender(d)
            while fifo and fifo[0][0] <= now:
                pkt = fifo.popleft()[1]
                if d.up:
                    send(d, pkt)
                else:
                    d.drop("down", len(pkt))
            if fifo:
                t = fifo[0][0]
                if nxt is None or t < nxt:
                    nxt = t
            else:
                done.append(item)
        for item in done:
            self.pending.discard(item)
        return nxt

    def run(self):
        handlers = self.handlers
        poll = self.ep.poll
        mono = time.monotonic
        nxt = None
        while self.running:
            if self.pending:
                now = mono()
                nxt = self.release(now)
                timeout = -1 if nxt is None else max(0.0, nxt - now)
            else:
                timeout = -1
            try:
                events = poll(timeout)
            except InterruptedError:
                continue
            if events:
                now = mono()
                for fd, _ in events:
                    h = handlers.get(fd)
                    if h is not None:
                        h(now)

    def close(self):
        for link in self.links.values():
            if link.implemented:
                link.close()
        if self.ctl:
            self.ctl.close()
            try:
                os.unlink(common.CONTROL_SOCK)
            except OSError:
                pass


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m mptcp_lab.emulator",
                                 description="mptcp-lab link emulator (started by mptcp-lab up)")
    ap.add_argument("--wifi", default="clean", choices=sorted(PROFILES))
    ap.add_argument("--lte", default=None)
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args(argv)
    os.makedirs(common.RUN_DIR, exist_ok=True)
    with open(common.PIDFILE, "w") as f:
        f.write("%d\n" % os.getpid())
    emu = Emulator(a.wifi, a.lte, a.seed)

    def stop(signum, frame):
        raise Stop()   # epoll.poll() is retried after a handler that returns: leave it
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    rc = 0
    try:
        emu.setup()
        print("emulator %d ready: wifi=%s lte=%s" % (os.getpid(), a.wifi, a.lte), flush=True)
        emu.run()
    except Stop:
        pass
    except Exception:
        traceback.print_exc()
        rc = 1
    finally:
        emu.close()
        try:
            if common.read_pid(common.PIDFILE) == os.getpid():
                os.unlink(common.PIDFILE)
        except OSError:
            pass
    print("emulator %d stopped" % os.getpid(), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
