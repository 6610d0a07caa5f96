"""The lab's link emulator: a detached process that owns the TUN devices and moves packets
between the device side and the peer namespace, applying each link's impairments.

Started by `mptcp-lab up` as `python -m mptcp_lab.emulator`; controlled over a UNIX socket
(one JSON request line, one JSON reply line; see `handle_request`).

Links are objects in `Emulator.links`, keyed by name ("wifi", "lte").  The Wi-Fi link has:
  * a peer-side TUN in `mplab` (e.g. wifi0 = 198.18.1.1/24),
  * device-side endpoints: a UDP socket (the MicroPython device sends each IPv4 packet as one
    datagram to 127.0.0.1:<port>) and a TUN in `mplab-ref` (the kernel reference device),
  * two `impair.Direction`s: "up" (device -> peer) and "down" (peer -> device), each with
    its own impairments (including `corrupt`, applied in `ingress`/`Direction.admit`).
Downlink packets go to whichever device side last sent an IPv4 packet uplink.

The LTE link (`LteLink`) is TUN lte0 in `mplab` (198.18.2.1/24) driven by a
`modem_emu.ModemEmulator`: the device opens the emulator's pty slave as its modem UART (AT
commands, then PPP); the serial line's rate and the LTE delay are the modem emulator's.
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
from . import modem_emu, schedule, tun

READ_BATCH = 64
MAX_PKT = 65535


class Stop(Exception):
    """Raised by the SIGTERM/SIGINT handler to leave the poll loop."""


def set_directions(dirs, up):
    """Take directions up or down; a direction going down loses what is in flight."""
    for d in dirs:
        d.up = up
        if not up:
            while d.fifo:
                d.drop("down", len(d.fifo.popleft()[1]))
            d.serial.clear()
            d.busy_until = 0.0


def ref_tun(link_name, cfg, tag):
    """TUN `cfg["ifname"]` in mplab-ref with the device's address and its source routing;
    returns the fd."""
    tmp = ("mlr%s%d" % (tag, os.getpid()))[:15]
    fd = tun.open_tun(tmp)
    routes = ((common.LAB_NET, cfg["peer_addr"]),) if link_name == "wifi" else ()
    tun.place(tmp, NS_REF, cfg["ifname"], cfg["dev_addr"], cfg["prefix"], routes=routes)
    tun.source_route(NS_REF, cfg["ifname"], cfg["dev_addr"], cfg["peer_addr"], cfg["table"],
                     common.LAB_NET)
    return fd


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
        set_directions((self.up, self.down), up)

    def status(self):
        return {"implemented": self.implemented, "profile": self.profile,
                "state": "up" if (self.up.up and self.down.up) else "down",
                "uplink": {"params": self.up.params(), "counters": self.up.counters()},
                "downlink": {"params": self.down.params(), "counters": self.down.counters()}}


class LteLink:
    """TUN lte0 in mplab behind the LTE modem emulator (a pty the device dials over).

    `link lte down` is a radio outage: the modem drops the data call (NO CARRIER to the
    device) and deregisters until `link lte up`.  When the device's PPP ends with LCP
    Terminate, the emulated modem hangs up by itself (NO CARRIER), as real modems do, so the
    next device process finds it in command mode.

    The reference device (kernel, mplab-ref) has no PPP here: its LTE path is TUN lte0 in
    mplab-ref (198.18.2.2/24) through two `impair.Direction`s at the serial line's payload
    rate (baud/10 bytes/s of IP packets, FIFO tail drop) with the LTE one-way delay, kept
    equal to the modem's settings; `link lte down` cuts it too (drops, reason "down").
    Downlink packets from lte0 in mplab go to whichever side sent uplink last (the ref's
    TUN, or the modem's PPP session)."""

    implemented = True
    kind = "modem"

    def __init__(self, name, profile, emu, scenario=None):
        if profile not in modem_emu.PROFILES:
            raise ValueError("unknown LTE profile %r (use %s)"
                             % (profile, ", ".join(modem_emu.PROFILES)))
        self.name = name
        self.cfg = LINKS[name]
        self.profile = profile
        self.emu = emu
        self.scenario = scenario
        self.modem = None
        self.peer_fd = None
        self.ref_fd = None
        self.hangups_on_terminate = 0
        self.ref_up = Direction("up", emu.rng)
        self.ref_down = Direction("down", emu.rng)
        self.ref_active = False      # downlink to the ref's TUN (else to the modem)
        self.ref_claims = 0          # times the downlink switched to the ref
        self._sessions = 0

    def setup(self):
        cfg = self.cfg
        tmp = ("mlplt%d" % os.getpid())[:15]
        self.peer_fd = tun.open_tun(tmp)
        tun.place(tmp, NS_PEER, cfg["ifname"], cfg["peer_addr"], cfg["prefix"])
        p = modem_emu.PROFILES[self.profile]
        log = (lambda m: print(m, flush=True)) if os.environ.get("MPTCP_LAB_LTE_LOG") else None
        self.modem = modem_emu.ModemEmulator(self.peer_fd, p["baud"], p["delay_ms"],
                                             self.scenario, log=log)
        self._count_ip(self.modem.ppp)
        self.modem.tun_divert = self._to_ref
        self._sync_ref()
        self.ref_fd = ref_tun(self.name, cfg, "lt")
        try:
            with open(common.LTE_SERIAL_FILE, "w") as f:
                f.write(self.modem.slave_path + "\n")
        except OSError:
            pass
        return [(fd, lambda now, fd=fd: self.on_readable(fd, now)) for fd in self.modem.fds()] \
            + [(self.ref_fd, self.on_ref)]

    def close(self):
        if self.modem is not None:
            self.modem.close()
            self.modem = None
        for fd in (self.peer_fd, self.ref_fd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.peer_fd = self.ref_fd = None
        try:
            os.unlink(common.LTE_SERIAL_FILE)
        except OSError:
            pass

    def _count_ip(self, ppp):
        """IPv4 bytes carried in PPP frames each way (for goodput vs line-capacity figures)."""
        self.ip = {"up_ip_bytes": 0, "down_ip_bytes": 0}
        on_ip, send_ip = ppp.on_ip, ppp.send_ip

        def counted_on_ip(pkt):
            self.ip["up_ip_bytes"] += len(pkt)
            self.ref_active = False          # the dialled-in device sends: downlink is its
            on_ip(pkt)

        def counted_send_ip(pkt):
            ok = send_ip(pkt)
            if ok:
                self.ip["down_ip_bytes"] += len(pkt)
            return ok
        ppp.on_ip = counted_on_ip
        ppp.send_ip = counted_send_ip

    # --- event loop hooks ------------------------------------------------------------------

    def on_readable(self, fd, now):
        self.modem.on_readable(fd, now)
        self._after(now)

    def on_timer(self, now):
        self.modem.on_timer(now)
        self._after(now)

    def next_deadline(self):
        return self.modem.next_deadline() if self.modem is not None else None

    def _after(self, now):
        m = self.modem
        if m.mode == "data" and m.ppp.running and m.ppp.lcp.state == "closed":
            # LCP terminated (by the device): the modem leaves data mode with NO CARRIER
            self.hangups_on_terminate += 1
            m._drop_call(now, "PPP terminated")
            m._pump(now)

    # --- the reference device's path ----------------------------------------------------------

    def _sync_ref(self):
        """The ref's path follows the modem: payload rate baud/10 B/s, the LTE delay."""
        m = self.modem
        for d in (self.ref_up, self.ref_down):
            d.set(rate=m.baud * 8 // 10, delay=m.delay * 1000.0)

    def on_ref(self, now):
        """Packets the reference device (kernel in mplab-ref) sends on its LTE path."""
        fd, d = self.ref_fd, self.ref_up
        for _ in range(READ_BATCH):
            try:
                pkt = os.read(fd, MAX_PKT)
            except BlockingIOError:
                return
            if not pkt or (pkt[0] >> 4) != 4:
                continue
            if not self.ref_active:
                self.ref_active = True
                self.ref_claims += 1
            self._ref_ingress(d, pkt, now)

    def _to_ref(self, pkt, now):
        """modem_emu's TUN divert: downlink for the ref while it is the active LTE side."""
        m = self.modem
        if m.sessions != self._sessions:     # a device dialled in: the downlink is its
            self._sessions = m.sessions
            self.ref_active = False
        if not self.ref_active:
            return False
        self._ref_ingress(self.ref_down, pkt, now)
        return True

    def _ref_ingress(self, d, pkt, now):
        if not d.up:
            d.drop("down", len(pkt))
        elif d.admit(pkt, now):
            self.emu.wake(d, self)

    def sender(self, d):
        return self._ref_send_up if d is self.ref_up else self._ref_send_down

    def _ref_send_up(self, d, pkt):
        self._ref_write(d, self.peer_fd, pkt)

    def _ref_send_down(self, d, pkt):
        self._ref_write(d, self.ref_fd, pkt)

    @staticmethod
    def _ref_write(d, fd, pkt):
        try:
            os.write(fd, pkt)
        except OSError:
            d.drop("tx", len(pkt))
            return
        d.fwd_pkts += 1
        d.fwd_bytes += len(pkt)

    # --- control ---------------------------------------------------------------------------

    def apply_profile(self, profile):
        self.modem.set(profile=profile)
        self.profile = profile
        self._sync_ref()

    def configure(self, settings):
        """settings: {"baud": int, "delay_ms": float} (either)."""
        if "corrupt" in settings:
            raise ValueError("corrupt is only supported on the wifi link (the LTE link is "
                             "the modem emulator's PPP path)")
        bad = set(settings) - {"baud", "delay_ms"}
        if bad:
            raise ValueError("LTE link settings are baud and delay (not %s)" % ", ".join(sorted(bad)))
        self.modem.set(baud=settings.get("baud"), delay_ms=settings.get("delay_ms"))
        self.profile = "custom"
        self._sync_ref()

    def set_state(self, up):
        self.modem.set_up(up)
        set_directions((self.ref_up, self.ref_down), up)
        self.modem._pump(time.monotonic())

    def reset_counters(self):
        self.modem.c.clear()
        for k in self.ip:
            self.ip[k] = 0
        self.ref_up.reset_counters()
        self.ref_down.reset_counters()

    def status(self):
        st = self.modem.status()
        st["counters"].update(self.ip)
        st.update({"implemented": True, "kind": "modem", "profile": self.profile,
                   "state": "up" if st["up"] else "down",
                   "serial": self.modem.slave_path,
                   "peer_if": "%s:%s %s/%d" % (NS_PEER, self.cfg["ifname"],
                                               self.cfg["peer_addr"], self.cfg["prefix"]),
                   "device_addr": self.cfg["dev_addr"],
                   "hangups_on_terminate": self.hangups_on_terminate,
                   "device_side": "ref" if self.ref_active else "modem",
                   "ref": {"ref_if": "%s:%s %s/%d" % (NS_REF, self.cfg["ifname"],
                                                      self.cfg["dev_addr"], self.cfg["prefix"]),
                           "claims": self.ref_claims,
                           "uplink": {"params": self.ref_up.params(),
                                      "counters": self.ref_up.counters()},
                           "downlink": {"params": self.ref_down.params(),
                                        "counters": self.ref_down.counters()}}})
        return st


class TunUdpLink(Link):
    """A link whose device side is IP-in-UDP (MicroPython device) or a TUN in mplab-ref.

    Downlink datagrams to the device are zero-padded to PAD_TO (1500) bytes: on MicroPython a
    datagram socket only has the stream `readinto`, which fills its whole buffer, so with
    fixed-size frames one readinto returns exactly one packet (the IPv4 total length gives
    the real size; mptcp_net/udp_tunnel.py relies on this).  The device announces itself with
    an empty datagram ("hello") before its first packet.

    Link state reaches a UDP device as control frames (common.CTL_DOWN / CTL_UP, zero-padded
    to PAD_TO), as a Wi-Fi disassociation would: sent on every `link wifi up|down`, repeated
    every CTL_REPEAT_S while down (and CTL_UP_REPEATS times after coming up) so a lost
    datagram does not matter, and a hello while down is answered with CTL_DOWN.  Loss
    settings (even loss=100) send nothing: a silent failure.
    """

    PAD_TO = 1500
    CTL_REPEAT_S = 1.0
    CTL_UP_REPEATS = 2

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
        self.ctl_next = None    # when to repeat the link state to the device
        self.ctl_up_left = 0
        self.ctl_sent = 0       # control frames sent to the device
        self.state_changes = 0

    def setup(self):
        cfg = self.cfg
        pid = os.getpid()
        tmp_peer = "mlp%s%d" % (self.name[:2], pid)
        self.peer_fd = tun.open_tun(tmp_peer[:15])
        tun.place(tmp_peer[:15], NS_PEER, cfg["ifname"], cfg["peer_addr"], cfg["prefix"])
        self.ref_fd = ref_tun(self.name, cfg, self.name[:2])
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
            if not n and not d.up:
                self.send_ctl(common.CTL_DOWN)    # a device (re)starting on a down link
                continue
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
            if d.corrupt:
                pkt = d.corrupt_next(pkt)
            send(d, pkt)
        elif d.admit(pkt, now):     # admit() does the corruption for queued packets
            self.emu.wake(d, self)

    # --- link state to the device -----------------------------------------------------------

    def set_state(self, up):
        was = self.up.up and self.down.up
        super().set_state(up)
        if up != was:
            self.state_changes += 1
        now = time.monotonic()
        self.send_ctl(common.CTL_UP if up else common.CTL_DOWN)
        self.ctl_up_left = 0 if not up else self.CTL_UP_REPEATS
        self.ctl_next = now + self.CTL_REPEAT_S if (not up or self.ctl_up_left) else None

    def send_ctl(self, msg):
        """One control frame to the UDP device side (none for the reference device)."""
        dest = self.dest
        if dest is None or dest[0] != "udp":
            return
        try:
            self.sock.sendmsg((msg, self.zeros[:self.pad_to - len(msg)]), (), 0, dest[1])
            self.ctl_sent += 1
        except OSError:
            pass

    def next_deadline(self):
        return self.ctl_next

    def on_timer(self, now):
        if self.ctl_next is None or now < self.ctl_next:
            return
        if not self.down.up:
            self.send_ctl(common.CTL_DOWN)
            self.ctl_next = now + self.CTL_REPEAT_S
        elif self.ctl_up_left > 0:
            self.send_ctl(common.CTL_UP)
            self.ctl_up_left -= 1
            self.ctl_next = now + self.CTL_REPEAT_S if self.ctl_up_left else None
        else:
            self.ctl_next = None

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
        st["ctl_sent"] = self.ctl_sent
        st["state_changes"] = self.state_changes
        return st


class Emulator:
    def __init__(self, wifi="clean", lte="clean", seed=None, lte_scenario=None):
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
        self.links["lte"] = LteLink("lte", lte or "clean", self, lte_scenario)
        self.scheduler = schedule.Scheduler(self.apply)
        self.timed = [l for l in self.links.values() if hasattr(l, "next_deadline")]
        self.timed.append(self.scheduler)

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
            raise ValueError("link %r is not implemented" % name)
        return link

    def handle_request(self, req):
        """Requests: {"cmd": "status"} | {"cmd": "link", "link": L, "state": "up"|"down"} |
        {"cmd": "set", "link": L, "settings": {...}, "dir": "both"|"up"|"down"} |
        {"cmd": "profile", "link": L, "profile": P} | {"cmd": "reset", "link": L or None} |
        {"cmd": "schedule", "entries": [...], "clear": bool} (see schedule.py) |
        {"cmd": "stop"}.  Replies {"ok": true, ...} or {"ok": false, "error": msg}."""
        cmd = req.get("cmd")
        if cmd == "status":
            return {"ok": True, "status": self.status()}
        if cmd == "link":
            state = req.get("state")
            if state not in ("up", "down"):
                raise ValueError("state must be up or down")
            self.apply({"link": req.get("link"), "action": state})
            return {"ok": True, "status": self.status()}
        if cmd == "set":
            self.apply({"link": req.get("link"), "action": "set",
                        "settings": req.get("settings") or {}, "dir": req.get("dir", "both")})
            return {"ok": True, "status": self.status()}
        if cmd == "schedule":
            now = time.monotonic()
            cleared = self.scheduler.clear() if req.get("clear") else 0
            added = self.scheduler.add(req.get("entries") or [], now)
            return {"ok": True, "added": added, "cleared": cleared,
                    "schedule": self.scheduler.status(now)}
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
                    if hasattr(link, "reset_counters"):
                        link.reset_counters()
                        continue
                    link.up.reset_counters()
                    link.down.reset_counters()
            return {"ok": True}
        if cmd == "stop":
            self.running = False
            return {"ok": True}
        raise ValueError("unknown command %r" % cmd)

    def apply(self, entry):
        """One link action now: {"link", "action": "up"|"down"|"set", "settings", "dir"}
        (control requests and schedule entries alike)."""
        link = self.get_link(entry.get("link"))
        action = entry.get("action")
        if action in ("up", "down"):
            link.set_state(action == "up")
        elif action == "set":
            settings = entry.get("settings") or {}
            if hasattr(link, "configure"):
                link.configure(settings)
            else:
                dirs = link.directions(entry.get("dir", "both"))
                for d in dirs:
                    d.set(**settings)
                link.profile = "custom"
        else:
            raise ValueError("action must be up, down or set, not %r" % (action,))

    def status(self):
        return {"pid": os.getpid(), "uptime_s": round(time.time() - self.started, 1),
                "links": {n: l.status() for n, l in self.links.items()},
                "schedule": self.scheduler.status(time.monotonic())}

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
        timed = self.timed
        while self.running:
            if self.pending:
                now = mono()
                nxt = self.release(now)
                timeout = -1 if nxt is None else max(0.0, nxt - now)
            else:
                timeout = -1
            if timed:
                now = mono()
                for l in timed:
                    d = l.next_deadline()
                    if d is not None and d <= now:
                        l.on_timer(now)
                        d = l.next_deadline()
                        if d is not None and d <= now:
                            d = now + 0.002      # still due (a stale timer): don't spin
                    if d is not None and (timeout < 0 or d - now < timeout):
                        timeout = max(0.0, d - now)
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
    ap.add_argument("--lte", default="clean", choices=sorted(modem_emu.PROFILES))
    ap.add_argument("--lte-scenario", default=None,
                    help="modem emulator scenario as JSON (see modem_emu)")
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args(argv)
    os.makedirs(common.RUN_DIR, exist_ok=True)
    with open(common.PIDFILE, "w") as f:
        f.write("%d\n" % os.getpid())
    emu = Emulator(a.wifi, a.lte, a.seed,
                   json.loads(a.lte_scenario) if a.lte_scenario else None)

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
