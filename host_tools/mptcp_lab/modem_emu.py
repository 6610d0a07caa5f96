"""The lab's LTE modem emulator: a pty the device opens as its modem UART, an AT responder
that follows a scriptable scenario, and after `CONNECT` the network side of PPP
(`ppp_net`, scapy-based) bridging IPv4 to TUN `lte0` in `mplab`.

The serial line's byte rate (baud/10 bytes per second) is enforced in both directions by
reading from and writing to the pty master only as fast as the line would carry the bytes
(a pty is otherwise infinitely fast), and an LTE one-way delay is added to IP packets
(LCP/IPCP are answered by the modem itself, so they see only the serial line).

It is a component for the lab's single-process event loop (all times are
`time.monotonic()` seconds):

    emu = ModemEmulator(tun_fd, baud=921600, delay_ms=30, scenario={...})
    emu.fds()                 # register for reading (one epoll fd that stands for all)
    emu.on_readable(fd, now)  # when one of them is readable
    emu.next_deadline()       # None or the monotonic time to call on_timer
    emu.on_timer(now)
    emu.set(baud=..., delay_ms=...); emu.set_up(False); emu.status(); emu.slave_path
    emu.close()               # does not close tun_fd (the lab owns it)

Scenario keys (all optional): `sim_pin` ("1234": PIN needed), `register_after_s` (seconds
from start until registered), `roaming`, `never_register`, `errors` ({"AT+CGDCONT": 1}
-> that many ERROR replies; or {"ATD": {"count": 2, "reply": "NO CARRIER"}}),
`no_carrier_after_s` (drop the first data session after N s; `no_carrier_repeat` for every
session), `csq` (rssi 0..31, 99 unknown), `echo` (ATE1 at start, default true), `noise`
(junk lines before replies), `rdy` (send RDY at start), `auth` ("pap"/"chap") with `user`,
`password`, `dns` (list of addresses offered by IPCP per RFC 1877), `guard_s` (+++ guard
time, default 1.0), `lcp_echo_s` (network-side LCP echo interval).
"""

import argparse
import collections
import errno
import json
import os
import select
import signal
import sys
import time
import tty

from .ppp_net import PppNet

# LTE link profiles for `mptcp-lab up --lte PROFILE` (serial rate and one-way LTE delay)
PROFILES = {
    "clean": {"baud": 921600, "delay_ms": 30},       # the default: 60 ms RTT
    "uart115k": {"baud": 115200, "delay_ms": 30},
    "far": {"baud": 921600, "delay_ms": 80},
    "catm": {"baud": 115200, "delay_ms": 75},
}

SLACK_S = 0.002          # how early a paced transfer may start
WINDOW_S = 0.004         # bytes moved per paced transfer: this much line time
MAX_CMDLINE = 512
DEV_ADDR = "198.18.2.2"
NET_ADDR = "198.18.2.1"


class ModemEmulator:
    def __init__(self, tun_fd=None, baud=921600, delay_ms=30, scenario=None, log=None,
                 ip_sink=None, clock=time.monotonic):
        self.tun_fd = tun_fd
        self.ip_sink = ip_sink           # tests without a TUN: called with each uplink packet
        self.sc = dict(scenario or {})
        self.log = log or (lambda msg: None)
        self.clock = clock
        self.baud = int(baud)
        self.rate = self.baud / 10.0
        self.delay = delay_ms / 1000.0
        self.link_up = True
        self.t0 = clock()

        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)           # the emulator sees exactly the device's bytes
        tty.setraw(self.master)
        os.set_blocking(self.master, False)
        self.slave_path = os.ttyname(self.slave)   # slave fd stays open: no HUP storms
        self.ep = select.epoll()
        self._mask = 0
        self._set_master_mask(select.EPOLLIN)
        if tun_fd is not None:
            os.set_blocking(tun_fd, False)
            self.ep.register(tun_fd, select.EPOLLIN)

        self.up_free = 0.0               # when the uplink line has carried everything read
        self.down_free = 0.0
        self.down_buf = bytearray()      # serial bytes waiting for the downlink line
        self.down_cap = max(8192, int(self.rate * 0.25))
        self.up_q = collections.deque()  # (due, ip packet) -> TUN
        self.down_q = collections.deque()  # (due, ip packet) -> PPP
        self.out_blocked = False         # pty master full (the device is not reading)
        self.tun_divert = None           # callable(pkt, now) -> True if it took a TUN packet

        # AT state
        self.mode = "command"            # command | data | online_command
        self.echo = bool(self.sc.get("echo", True))
        self.cmee = 0
        self.cereg_n = 0
        self.cmdline = bytearray()
        self.cmd_overflow = False
        self.pin_ok = not self.sc.get("sim_pin")
        self.apn = None
        self.errors = {}
        for k, v in (self.sc.get("errors") or {}).items():
            if isinstance(v, dict):
                self.errors[k.upper()] = [int(v.get("count", 1)), v.get("reply", "ERROR")]
            else:
                self.errors[k.upper()] = [int(v), "ERROR"]
        self.connect_at = None
        self.sessions = 0
        self.last_up_byte = self.t0
        self.plus = 0
        self.escape_at = None
        self._was_registered = False

        dns = self.sc.get("dns")
        self.ppp = PppNet(self._ppp_out, self._ppp_ip, local_ip=NET_ADDR, peer_ip=DEV_ADDR,
                          dns=dns, auth=self.sc.get("auth"), user=self.sc.get("user"),
                          password=self.sc.get("password"), log=self.log,
                          echo_interval_s=float(self.sc.get("lcp_echo_s", 0)))
        self.c = collections.Counter()
        if self.sc.get("rdy"):
            self._reply("RDY")

    # --- lab-facing API ---------------------------------------------------------------------

    def fds(self):
        return [self.ep.fileno()]

    def on_readable(self, fd, now):
        for efd, ev in self.ep.poll(0):
            if efd == self.master:
                if ev & select.EPOLLOUT:
                    self.out_blocked = False
            elif efd == self.tun_fd:
                self._read_tun(now)
        self._pump(now)

    def on_timer(self, now):
        self._pump(now)

    def next_deadline(self):
        ts = []
        if not (self._mask & select.EPOLLIN):
            ts.append(self.up_free - SLACK_S)
        if self.down_buf and not self.out_blocked:
            ts.append(self.down_free - SLACK_S)
        if self.up_q:
            ts.append(self.up_q[0][0])
        if self.down_q:
            ts.append(self.down_q[0][0])
        d = self.ppp.next_deadline()
        if d is not None:
            ts.append(d)
        if self.escape_at is not None:
            ts.append(self.escape_at)
        nc = self._no_carrier_time()
        if nc is not None:
            ts.append(nc)
        r = self._register_time()
        if r is not None and self.cereg_n:
            ts.append(r)
        return min(ts) if ts else None

    def set(self, baud=None, delay_ms=None, profile=None):
        if profile is not None:
            if profile not in PROFILES:
                raise ValueError("unknown LTE profile %r (use %s)" % (profile, ", ".join(PROFILES)))
            self.set(**PROFILES[profile])
        if baud is not None:
            if int(baud) < 300:
                raise ValueError("baud must be >= 300")
            self.baud = int(baud)
            self.rate = self.baud / 10.0
            self.down_cap = max(8192, int(self.rate * 0.25))
        if delay_ms is not None:
            if float(delay_ms) < 0:
                raise ValueError("delay_ms must be >= 0")
            self.delay = float(delay_ms) / 1000.0

    def set_up(self, up):
        """Radio link up/down: down drops a data session (NO CARRIER) and deregisters."""
        up = bool(up)
        if up == self.link_up:
            return
        self.link_up = up
        now = self.clock()
        if not up:
            self.c["link_down_events"] += 1
            if self.mode != "command":
                self._drop_call(now, "link down")
            self.down_q.clear()
            self.up_q.clear()
        self._reg_urc(now)

    def status(self):
        now = self.clock()
        c = dict(self.c)
        c.update({"ppp_" + k: v for k, v in self.ppp.counters().items()})
        return {"implemented": True, "mode": self.mode, "ppp": self.ppp.state,
                "up": self.link_up, "registered": self._registered(now),
                "baud": self.baud, "delay_ms": round(self.delay * 1000, 3),
                "slave_path": self.slave_path, "sessions": self.sessions,
                "down_queue_bytes": len(self.down_buf), "counters": c}

    def close(self):
        self.ppp.stop()
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            self.ep.close()
        except OSError:
            pass

    # --- pacing ------------------------------------------------------------------------------

    def _set_master_mask(self, mask):
        if mask == self._mask:
            return
        if self._mask == 0:
            self.ep.register(self.master, mask)
        elif mask == 0:
            self.ep.unregister(self.master)
        else:
            self.ep.modify(self.master, mask)
        self._mask = mask

    def _pump(self, now):
        self._uplink(now)
        self._timers(now)
        while self.up_q and self.up_q[0][0] <= now:
            self._to_tun(self.up_q.popleft()[1])
        while self.down_q and self.down_q[0][0] <= now:
            pkt = self.down_q.popleft()[1]
            if len(self.down_buf) > self.down_cap:
                self.c["down_drops_queue"] += 1
            elif not self.ppp.send_ip(pkt):
                self.c["down_drops_no_ppp"] += 1
            else:
                self.c["down_packets"] += 1
        self._downlink(now)
        mask = 0
        if self.up_free - SLACK_S <= now:
            mask |= select.EPOLLIN
        if self.down_buf and self.out_blocked:
            mask |= select.EPOLLOUT
        self._set_master_mask(mask)

    def _uplink(self, now):
        chunk = max(16, int(self.rate * WINDOW_S))
        for _ in range(16):
            if self.up_free - SLACK_S > now:
                return
            try:
                data = os.read(self.master, chunk)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno == errno.EIO:
                    return
                raise
            if not data:
                return
            self.up_free = max(self.up_free, now) + len(data) / self.rate
            self.c["up_bytes"] += len(data)
            self._rx(data, now)

    def _downlink(self, now):
        chunk = max(16, int(self.rate * WINDOW_S))
        for _ in range(16):
            if not self.down_buf or self.out_blocked or self.down_free - SLACK_S > now:
                return
            try:
                n = os.write(self.master, self.down_buf[:chunk])
            except BlockingIOError:
                self.out_blocked = True
                self.c["down_blocked"] += 1
                return
            except OSError:
                return
            del self.down_buf[:n]
            self.down_free = max(self.down_free, now) + n / self.rate
            self.c["down_bytes"] += n

    def _read_tun(self, now):
        for _ in range(64):
            try:
                pkt = os.read(self.tun_fd, 65535)
            except BlockingIOError:
                return
            except OSError:
                return
            if not pkt:
                return
            if self.tun_divert is not None and self.tun_divert(pkt, now):
                continue
            if not self.link_up or not self.ppp.opened or self.mode != "data":
                self.c["down_drops_no_link"] += 1
                continue
            self.down_q.append((now + self.delay, pkt))

    def _to_tun(self, pkt):
        if not self.link_up:
            self.c["up_drops_no_link"] += 1
            return
        if self.ip_sink is not None:
            self.ip_sink(pkt)
        if self.tun_fd is None:
            return
        if len(pkt) < 20 or pkt[0] >> 4 != 4:
            self.c["up_drops_not_ipv4"] += 1
            return
        try:
            os.write(self.tun_fd, pkt)
            self.c["up_packets"] += 1
        except OSError:
            self.c["up_drops_tun"] += 1

    # --- PPP hooks ---------------------------------------------------------------------------

    def _ppp_out(self, data):
        if self.mode == "data":
            self.down_buf += data

    def _ppp_ip(self, pkt):
        if not self.link_up:
            self.c["up_drops_no_link"] += 1
            return
        self.up_q.append((self.clock() + self.delay, bytes(pkt)))

    # --- scenario timers ---------------------------------------------------------------------

    def _register_time(self):
        if self.sc.get("never_register") or not self.link_up or not self.pin_ok:
            return None
        return self.t0 + float(self.sc.get("register_after_s", 0))

    def _registered(self, now):
        t = self._register_time()
        return t is not None and now >= t

    def _no_carrier_time(self):
        n = self.sc.get("no_carrier_after_s")
        if n is None or self.connect_at is None or self.mode == "command":
            return None
        if self.sessions > 1 and not self.sc.get("no_carrier_repeat"):
            return None
        return self.connect_at + float(n)

    def _timers(self, now):
        if self.escape_at is not None and now >= self.escape_at:
            self.escape_at = None
            if self.mode == "data" and self.plus == 3:
                self.mode = "online_command"
                self.c["escapes"] += 1
                self.log("modem_emu: +++ -> online command mode")
                self._reply("OK", force=True)
            self.plus = 0
        nc = self._no_carrier_time()
        if nc is not None and now >= nc:
            self._drop_call(now, "scenario no_carrier_after_s")
        self._reg_urc(now)
        self.ppp.on_timer(now)

    def _reg_urc(self, now):
        reg = self._registered(now)
        if reg != self._was_registered:
            self._was_registered = reg
            if self.cereg_n and self.mode == "command":
                self._reply("+CEREG: %d" % self._stat(now))

    def _drop_call(self, now, why):
        self.log("modem_emu: NO CARRIER (%s)" % why)
        self.c["no_carrier"] += 1
        self.ppp.stop()
        self.mode = "command"
        self.down_buf = bytearray()
        self.down_q.clear()
        self.connect_at = None
        self.plus = 0
        self.escape_at = None
        self._reply("NO CARRIER")

    # --- the byte stream from the device -----------------------------------------------------

    def _rx(self, data, now):
        if self.mode == "data":
            guard = float(self.sc.get("guard_s", 1.0))
            # guard times checked with 10% tolerance (our reads are paced in small windows)
            if data.strip(b"+") == b"" and (self.plus or now - self.last_up_byte >= guard * 0.9):
                self.plus += len(data)
                if self.plus == 3:
                    self.escape_at = now + guard * 0.9
                elif self.plus > 3:
                    self.plus = 0
                    self.escape_at = None
            else:
                self.plus = 0
                self.escape_at = None
            self.last_up_byte = now
            self.ppp.feed(data, now)
            return
        self.last_up_byte = now
        for i, b in enumerate(data):
            if self.echo and b not in (10,):
                self.down_buf.append(b)
            if b == 13:
                if self.cmd_overflow:
                    self.cmd_overflow = False
                    self.cmdline = bytearray()
                    self._reply("ERROR")
                    continue
                line = bytes(self.cmdline).decode("ascii", "replace").strip()
                self.cmdline = bytearray()
                if line:
                    self._command(line, now)
                    if self.mode == "data":      # CONNECT: the rest is PPP
                        if i + 1 < len(data):
                            self._rx(data[i + 1:], now)
                        return
            elif b == 10 or b == 0:
                continue
            elif len(self.cmdline) >= MAX_CMDLINE:
                self.cmd_overflow = True
            elif not self.cmd_overflow:
                self.cmdline.append(b)

    def _reply(self, *lines, force=False):
        """Queue response lines in ATV1 format: CR LF line CR LF each."""
        if self.mode == "data" and not force:
            return
        if self.sc.get("noise"):
            self.down_buf += b"\r\n\x00\xfe\x13noise\x7e\x7d\r\n"
        for ln in lines:
            self.down_buf += b"\r\n" + ln.encode() + b"\r\n"

    def _err(self, code):
        self.c["errors"] += 1
        if self.cmee:
            self._reply("+CME ERROR: %d" % code)
        else:
            self._reply("ERROR")

    def _stat(self, now):
        if self._registered(now):
            return 5 if self.sc.get("roaming") else 1
        if self.sc.get("never_register") == "denied":
            return 3
        return 2

    def _command(self, line, now):
        self.c["at_commands"] += 1
        u = line.upper()
        for k, v in self.errors.items():
            if u.startswith(k) and v[0] > 0:
                v[0] -= 1
                self.c["scripted_errors"] += 1
                self._reply(v[1])
                return
        if not u.startswith("AT"):
            self._reply("ERROR")
            return
        body = u[2:]
        if body in ("", "Z", "&F", "V1", "&W", "+IFC=2,2", "&K3", "+IFC=0,0") \
                or body.startswith("+CFUN=") or body.startswith("+CGATT=") \
                or body.startswith("S0="):
            self._reply("OK")
        elif body in ("E0", "E1"):
            self.echo = body == "E1"
            self._reply("OK")
        elif body.startswith("+CMEE="):
            self.cmee = 1 if body[6:].strip() in ("1", "2") else 0
            self._reply("OK")
        elif body in ("I", "+CGMI", "+CGMM", "+CGMR", "+GMI", "+GMM"):
            self._reply("MPLAB emulated LTE modem (SIM7600 class)", "OK")
        elif body in ("+CGSN", "+GSN"):
            self._reply("861234567890123", "OK")
        elif body == "+CPIN?":
            self._reply("+CPIN: READY" if self.pin_ok else "+CPIN: SIM PIN", "OK")
        elif body.startswith("+CPIN="):
            given = line[8:].strip().strip('"')
            if self.pin_ok:
                self._reply("OK")
            elif given == str(self.sc.get("sim_pin")):
                self.pin_ok = True
                self.t0 = max(self.t0, now) if self.sc.get("register_after_s") else self.t0
                self._reply("OK")
                self._reply("+CPIN: READY")
            else:
                self.c["pin_rejected"] += 1
                self._err(16)
        elif body == "+CSQ":
            self._reply("+CSQ: %d,99" % int(self.sc.get("csq", 20)), "OK")
        elif body in ("+CEREG?", "+CREG?", "+CGREG?"):
            if not self.pin_ok:
                self._err(11)
                return
            self._reply("%s: %d,%d" % (body[:-1], self.cereg_n, self._stat(now)), "OK")
        elif body.startswith("+CEREG=") or body.startswith("+CREG=") or \
                body.startswith("+CGREG="):
            try:
                self.cereg_n = int(body.split("=", 1)[1])
            except ValueError:
                self._reply("ERROR")
                return
            self._reply("OK")
        elif body == "+COPS?":
            if self._registered(now):
                self._reply('+COPS: 0,0,"MPLAB",7', "OK")
            else:
                self._reply("+COPS: 0", "OK")
        elif body.startswith("+CGDCONT="):
            if not self.pin_ok:
                self._err(11)
                return
            parts = line.split(",")
            self.apn = parts[2].strip().strip('"') if len(parts) > 2 else ""
            self._reply("OK")
        elif body == "+CGDCONT?":
            self._reply('+CGDCONT: 1,"IP","%s","0.0.0.0",0,0' % (self.apn or ""), "OK")
        elif body.startswith("+IPR"):
            self._reply("+IPR: %d" % self.baud, "OK") if body == "+IPR?" else self._reply("OK")
        elif body.startswith("D*99") or body.startswith('+CGDATA="PPP"') or \
                body.startswith("+CGDATA=PPP"):
            self._dial(now)
        elif body in ("H", "H0"):
            if self.mode != "command":
                self.ppp.stop()
                self.connect_at = None
                self.c["hangups"] += 1
            self.mode = "command"
            self._reply("OK")
        elif body in ("O", "O0"):
            if self.mode == "online_command" and self.ppp.running:
                self._reply("CONNECT %d" % self.baud)
                self.mode = "data"
            else:
                self._reply("NO CARRIER")
        else:
            self._reply("ERROR")

    def _dial(self, now):
        self.c["dials"] += 1
        if not self.pin_ok:
            self._err(11)
            return
        if not self._registered(now):
            self.c["dial_failures"] += 1
            self._reply("NO CARRIER")
            return
        self._reply("CONNECT %d" % self.baud)
        self.mode = "data"
        self.sessions += 1
        self.connect_at = now
        self.plus = 0
        self.last_up_byte = now
        self.ppp.start(now)


# --- standalone --------------------------------------------------------------------------------

def _make_ns_tun(ns):
    """Namespace `ns` with TUN lte0 = 198.18.2.1/24; returns the TUN fd."""
    from . import tun
    from .common import run
    run(["ip", "netns", "add", ns])
    run(["ip", "-n", ns, "link", "set", "lo", "up"])
    run(["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"], ns=ns, check=False)
    tmp = "mpm%d" % (os.getpid() % 100000)
    fd = tun.open_tun(tmp)
    tun.place(tmp, ns, "lte0", NET_ADDR, 24)
    return fd


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m mptcp_lab.modem_emu",
                                 description="LTE modem emulator (pty + AT + PPP -> TUN)")
    ap.add_argument("--tun-fd", type=int, help="inherited TUN fd (default: make a namespace)")
    ap.add_argument("--netns", default="mpmodem-dev",
                    help="namespace to create with TUN lte0 198.18.2.1/24 (no --tun-fd)")
    ap.add_argument("--no-tun", action="store_true", help="no TUN at all (AT/PPP only)")
    ap.add_argument("--baud", type=int, default=921600)
    ap.add_argument("--delay-ms", type=float, default=30.0)
    ap.add_argument("--scenario", default=None, help="JSON text or a JSON file path")
    ap.add_argument("--link", default=None, help="also symlink the pty slave to this path")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    sc = None
    if a.scenario:
        sc = json.loads(open(a.scenario).read() if os.path.exists(a.scenario) else a.scenario)
    made_ns = None
    tun_fd = a.tun_fd
    if tun_fd is None and not a.no_tun:
        if os.path.exists("/run/netns/" + a.netns):
            print("namespace %s exists (another emulator? `ip netns del %s` if stale)"
                  % (a.netns, a.netns), file=sys.stderr)
            return 1
        made_ns = a.netns
        try:
            tun_fd = _make_ns_tun(made_ns)
        except Exception:
            os.system("ip netns del %s 2>/dev/null" % made_ns)
            raise
    log = (lambda m: print(m, file=sys.stderr, flush=True)) if a.verbose else None
    emu = ModemEmulator(tun_fd, a.baud, a.delay_ms, sc, log=log)
    if a.link:
        try:
            os.unlink(a.link)
        except FileNotFoundError:
            pass
        os.symlink(emu.slave_path, a.link)
    print(json.dumps({"slave_path": emu.slave_path, "netns": made_ns}), flush=True)
    stop = []
    signal.signal(signal.SIGTERM, lambda s, f: stop.append(s))
    signal.signal(signal.SIGINT, lambda s, f: stop.append(s))
    ep = select.epoll()
    for fd in emu.fds():
        ep.register(fd, select.EPOLLIN)
    try:
        while not stop:
            now = time.monotonic()
            d = emu.next_deadline()
            timeout = 1.0 if d is None else max(0.0, min(1.0, d - now))
            try:
                ev = ep.poll(timeout)
            except InterruptedError:
                continue
            now = time.monotonic()
            for fd, _ in ev:
                emu.on_readable(fd, now)
            emu.on_timer(now)
    finally:
        emu.close()
        if a.link:
            try:
                os.unlink(a.link)
            except OSError:
                pass
        if tun_fd is not None and a.tun_fd is None:
            os.close(tun_fd)
        if made_ns:
            os.system("ip netns del %s 2>/dev/null" % made_ns)
        print(json.dumps(emu.status()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
