"""The network side of PPP for the lab's modem emulator, built on scapy's PPP layers.

Deliberately independent of the device's firmware/mptcp_net PPP code, so that a bug cannot hide
on both ends: packets are parsed and built with scapy (PPP, PPP_LCP*, PPP_IPCP, PPP_PAP,
PPP_CHAP); only the RFC 1662 async framing (flags, byte stuffing, FCS-16), which scapy
lacks, is written here, table-driven and by the RFC rather than by the firmware.

`PppNet(send_bytes, on_ip, ...)`: feed serial bytes in with `feed(data, now)`, get serial
bytes out through `send_bytes(b)`, IPv4 packets out through `on_ip(pkt)`, and send IPv4
packets with `send_ip(pkt)`. Timers: `next_deadline()` / `on_timer(now)` (seconds).
"""

import hashlib
import os
import random
import re
import struct

from scapy.layers.ppp import (
    PPP_CHAP, PPP_CHAP_ChallengeResponse, PPP_IPCP, PPP_IPCP_Option,
    PPP_IPCP_Option_IPAddress, PPP_LCP, PPP_LCP_ACCM_Option, PPP_LCP_Auth_Protocol_Option,
    PPP_LCP_Configure, PPP_LCP_Echo, PPP_LCP_Magic_Number_Option, PPP_LCP_Terminate,
    PPP_PAP, PPP_PAP_Request, PPP_PAP_Response,
)

PROTO_IP = 0x0021
PROTO_LCP = 0xC021
PROTO_PAP = 0xC023
PROTO_CHAP = 0xC223
PROTO_IPCP = 0x8021

FLAG = 0x7E
ESC = 0x7D
GOOD_FCS = 0xF0B8
MAX_FRAME = 4096        # decoded bytes; longer frames are dropped (counted)

RESTART_S = 3.0         # RFC 1661 restart timer
MAX_CONFIGURE = 10
MAX_TERMINATE = 2


def _fcs_table():
    t = []
    for b in range(256):
        v = b
        for _ in range(8):
            v = (v >> 1) ^ 0x8408 if v & 1 else v >> 1
        t.append(v)
    return t


_FCS = _fcs_table()


def fcs16(data, fcs=0xFFFF):
    """RFC 1662 appendix C FCS-16 (not complemented)."""
    t = _FCS
    for b in data:
        fcs = (fcs >> 8) ^ t[(fcs ^ b) & 0xFF]
    return fcs


_UNESC = re.compile(rb"\x7d(.)", re.S)


def hdlc_encode(payload, accm=0xFFFFFFFF):
    """One async-HDLC frame: flag, payload + FCS (little end first) stuffed per `accm`, flag."""
    fcs = fcs16(payload) ^ 0xFFFF
    raw = bytes(payload) + bytes((fcs & 0xFF, fcs >> 8))
    esc = {FLAG, ESC} | {c for c in range(32) if accm >> c & 1}
    out = bytearray((FLAG,))
    for b in raw:
        if b in esc:
            out.append(ESC)
            out.append(b ^ 0x20)
        else:
            out.append(b)
    out.append(FLAG)
    return bytes(out)


class HdlcDeframer:
    """Splits a byte stream into frames; drops bad FCS/short/oversized/broken ones (counted)."""

    def __init__(self):
        self.buf = bytearray()
        self.overflow = False
        self.frames = 0
        self.bad_fcs = 0
        self.too_short = 0
        self.too_long = 0
        self.bad_escape = 0

    def feed(self, data):
        """Returns the list of good frames (FCS stripped, still with address/control if sent)."""
        out = []
        parts = bytes(data).split(b"\x7e")
        for i, part in enumerate(parts):
            if i > 0:                      # a flag ended the previous piece
                self._end(out)
            if part:
                if not self.overflow:
                    self.buf += part
                    if len(self.buf) > 2 * MAX_FRAME + 8:
                        self.overflow = True
                        self.buf = bytearray()
        return out

    def _end(self, out):
        raw = bytes(self.buf)
        self.buf = bytearray()
        if self.overflow:
            self.overflow = False
            self.too_long += 1
            return
        if not raw:
            return                          # back-to-back flags
        if raw.endswith(b"\x7d"):
            self.bad_escape += 1            # abort sequence / cut frame
            return
        frame = _UNESC.sub(lambda m: bytes((m.group(1)[0] ^ 0x20,)), raw)
        if len(frame) < 4:
            self.too_short += 1
            return
        if len(frame) > MAX_FRAME + 2:
            self.too_long += 1
            return
        if fcs16(frame) != GOOD_FCS:
            self.bad_fcs += 1
            return
        self.frames += 1
        out.append(frame[:-2])


def split_ppp(frame):
    """Strip address/control (ACFC-aware) and the protocol (PFC-aware): -> (proto, info) or None."""
    if frame[:2] == b"\xff\x03":
        frame = frame[2:]
    if not frame:
        return None
    if frame[0] & 1:                        # compressed 1-byte protocol
        return frame[0], frame[1:]
    if len(frame) < 2:
        return None
    return (frame[0] << 8) | frame[1], frame[2:]


class Fsm:
    """The RFC 1661 option-negotiation automaton, reduced to what a network side needs."""

    def __init__(self, name):
        self.name = name
        self.state = "initial"      # initial, req_sent, ack_rcvd, ack_sent, opened, closing, closed
        self.id = random.randrange(256)
        self.last_req_id = None
        self.timer = None
        self.count = 0

    def next_id(self):
        self.id = (self.id + 1) & 0xFF
        return self.id


class PppNet:
    def __init__(self, send_bytes, on_ip, local_ip="198.18.2.1", peer_ip="198.18.2.2",
                 dns=None, auth=None, user=None, password=None, name="mplab", log=None,
                 echo_interval_s=0):
        self.send_bytes = send_bytes
        self.on_ip = on_ip
        self.local_ip = local_ip
        self.peer_ip = peer_ip
        self.dns = list(dns or [])
        self.auth = auth            # None, "pap" or "chap"
        self.user = user
        self.password = password
        self.name = name
        self.log = log or (lambda *a: None)
        self.echo_interval_s = echo_interval_s
        self.rx = HdlcDeframer()
        self.lcp = Fsm("lcp")
        self.ipcp = Fsm("ipcp")
        self.magic = random.getrandbits(32) or 1
        self.peer_magic = None
        self.reset_link()
        self.c = {"rx_frames": 0, "tx_frames": 0, "rx_ip": 0, "tx_ip": 0, "rx_ip_dropped": 0,
                  "tx_ip_dropped": 0, "lcp_echo_replies": 0, "lcp_echo_requests": 0,
                  "unknown_proto": 0, "bad_packets": 0, "auth_failures": 0,
                  "loopback_detected": 0, "terminate_rx": 0}

    def reset_link(self):
        self.tx_accm = 0xFFFFFFFF    # until LCP opens
        self.peer_acfc = False
        self.peer_pfc = False
        self.peer_mru = 1500
        self.our_opts = self._initial_lcp_opts()
        self.authed = self.auth is None
        self.chap_value = None
        self.chap_id = 0
        self.auth_timer = None
        self.auth_count = 0
        self.echo_timer = None
        self.lcp = Fsm("lcp")
        self.ipcp = Fsm("ipcp")
        self.ipcp_opts = {"addr": self.local_ip}
        self.running = False

    def _initial_lcp_opts(self):
        o = {"accm": 0, "magic": True}
        if self.auth:
            o["auth"] = self.auth
        return o

    # --- public -----------------------------------------------------------------------------

    @property
    def opened(self):
        return self.ipcp.state == "opened"

    @property
    def state(self):
        if not self.running:
            return "dead"
        if self.lcp.state != "opened":
            return "establish"
        if not self.authed:
            return "authenticate"
        return "network" if self.ipcp.state == "opened" else "ipcp"

    def start(self, now):
        """Carrier up (CONNECT sent): begin LCP by sending our Configure-Request."""
        self.reset_link()
        self.running = True
        self._send_confreq(self.lcp, now)

    def stop(self):
        """Carrier down: forget everything, send nothing."""
        self.running = False
        self.lcp.state = "initial"
        self.ipcp.state = "initial"

    def terminate(self, now):
        if self.running and self.lcp.state not in ("closed", "initial"):
            self.lcp.state = "closing"
            self.lcp.count = 0
            self._send_lcp(PPP_LCP_Terminate(code=5, id=self.lcp.next_id()))
            self.lcp.timer = now + RESTART_S

    def feed(self, data, now):
        for frame in self.rx.feed(data):
            if self.running:
                self._frame(frame, now)

    def send_ip(self, pkt):
        if not self.running or self.ipcp.state != "opened":
            self.c["tx_ip_dropped"] += 1
            return False
        if len(pkt) > self.peer_mru:
            self.c["tx_ip_dropped"] += 1
            return False
        self._send(PROTO_IP, bytes(pkt))
        self.c["tx_ip"] += 1
        return True

    def next_deadline(self):
        ts = [t for t in (self.lcp.timer, self.ipcp.timer, self.auth_timer, self.echo_timer)
              if t is not None]
        return min(ts) if ts else None

    def on_timer(self, now):
        if not self.running:
            return
        for fsm in (self.lcp, self.ipcp):
            if fsm.timer is not None and now >= fsm.timer:
                fsm.timer = None
                self._timeout(fsm, now)
        if self.auth_timer is not None and now >= self.auth_timer:
            self.auth_timer = None
            if self.auth == "chap" and not self.authed:
                self.auth_count += 1
                if self.auth_count > MAX_CONFIGURE:
                    self.terminate(now)
                else:
                    self._send_chap_challenge(now, again=True)
        if self.echo_timer is not None and now >= self.echo_timer:
            self._send_lcp(PPP_LCP_Echo(code=9, id=self.lcp.next_id(), magic_number=self.magic))
            self.c["lcp_echo_requests"] += 1
            self.echo_timer = now + self.echo_interval_s

    def counters(self):
        c = dict(self.c)
        for k in ("frames", "bad_fcs", "too_short", "too_long", "bad_escape"):
            c["hdlc_" + k] = getattr(self.rx, k)
        return c

    # --- framing ----------------------------------------------------------------------------

    def _send(self, proto, info):
        lcp = proto == PROTO_LCP
        hdr = b""
        if lcp or not self.peer_acfc:      # RFC 1661 6.6: never compress on LCP packets
            hdr = b"\xff\x03"
        if proto < 0x100 and proto & 1 and self.peer_pfc and not lcp:
            hdr += bytes((proto,))
        else:
            hdr += struct.pack("!H", proto)
        accm = 0xFFFFFFFF if lcp else self.tx_accm
        self.send_bytes(hdlc_encode(hdr + info, accm))
        self.c["tx_frames"] += 1

    def _send_lcp(self, pkt):
        self._send(PROTO_LCP, bytes(pkt))

    def _frame(self, frame, now):
        self.c["rx_frames"] += 1
        sp = split_ppp(frame)
        if sp is None:
            self.c["bad_packets"] += 1
            return
        proto, info = sp
        try:
            if proto == PROTO_LCP:
                self._lcp(PPP_LCP(info), info, now)
            elif self.lcp.state != "opened":
                self.c["bad_packets"] += 1          # RFC 1661: silently discard
            elif proto == PROTO_PAP:
                self._pap(PPP_PAP(info), now)
            elif proto == PROTO_CHAP:
                self._chap(PPP_CHAP(info), now)
            elif not self.authed:
                self.c["bad_packets"] += 1
            elif proto == PROTO_IPCP:
                self._ipcp(PPP_IPCP(info), info, now)
            elif proto == PROTO_IP:
                if self.ipcp.state == "opened":
                    self.c["rx_ip"] += 1
                    self.on_ip(info)
                else:
                    self.c["rx_ip_dropped"] += 1
            else:
                self.c["unknown_proto"] += 1
                data = struct.pack("!H", proto) + bytes(info[:self.peer_mru - 6])
                self._send_lcp_raw(8, self.lcp.next_id(), data)
        except Exception as e:  # scapy choked on a malformed packet: count and drop
            self.c["bad_packets"] += 1
            self.log("ppp_net: bad %04x packet: %r" % (proto, e))

    # --- LCP --------------------------------------------------------------------------------

    def _send_confreq(self, fsm, now):
        ident = fsm.next_id()
        fsm.last_req_id = ident
        if fsm is self.lcp:
            opts = []
            o = self.our_opts
            if "accm" in o:
                opts.append(PPP_LCP_ACCM_Option(accm=o["accm"]))
            if o.get("auth") == "pap":
                opts.append(PPP_LCP_Auth_Protocol_Option(auth_protocol=PROTO_PAP))
            elif o.get("auth") == "chap":
                opts.append(PPP_LCP_Auth_Protocol_Option(auth_protocol=PROTO_CHAP, algorithm=5))
            if o.get("magic"):
                opts.append(PPP_LCP_Magic_Number_Option(magic_number=self.magic))
            self._send_lcp(PPP_LCP_Configure(code=1, id=ident, options=opts))
        else:
            opts = [PPP_IPCP_Option_IPAddress(data=self.ipcp_opts["addr"])]
            self._send(PROTO_IPCP, bytes(PPP_IPCP(code=1, id=ident, options=opts)))
        if fsm.state in ("initial", "closed", "opened", "ack_rcvd"):
            fsm.state = "req_sent"
        fsm.count += 1
        fsm.timer = now + RESTART_S

    def _timeout(self, fsm, now):
        if fsm.state == "closing":
            if fsm.count >= MAX_TERMINATE:
                self.log("ppp_net: terminate timed out")
                self.stop()
            else:
                fsm.count += 1
                self._send_lcp(PPP_LCP_Terminate(code=5, id=fsm.next_id()))
                fsm.timer = now + RESTART_S
            return
        if fsm.state in ("req_sent", "ack_rcvd", "ack_sent"):
            if fsm.count >= MAX_CONFIGURE:
                self.log("ppp_net: %s gave up after %d Configure-Requests" % (fsm.name, fsm.count))
                fsm.state = "closed"
                return
            if fsm.state == "ack_rcvd":
                fsm.state = "req_sent"
            self._send_confreq(fsm, now)

    def _lcp(self, pkt, raw, now):
        code = pkt.code
        fsm = self.lcp
        if code == 1:
            self._lcp_confreq(pkt, now)
        elif code == 2:
            if pkt.id != fsm.last_req_id:
                return
            if fsm.state == "ack_sent":
                self._lcp_up(now)
            elif fsm.state == "req_sent":
                fsm.state = "ack_rcvd"
                fsm.count = 0
            fsm.timer = None if fsm.state == "opened" else fsm.timer
        elif code in (3, 4):
            if pkt.id != fsm.last_req_id:
                return
            for opt in pkt.options:
                t = opt.type
                if t == 2:
                    if code == 4:
                        self.our_opts.pop("accm", None)
                elif t == 5:
                    if code == 4:
                        self.our_opts["magic"] = False
                    else:
                        self.magic = random.getrandbits(32) or 1
                elif t == 3:
                    if code == 4:
                        self.log("ppp_net: peer rejected authentication")
                        self.c["auth_failures"] += 1
                        self.terminate(now)
                        return
                    want = getattr(opt, "auth_protocol", None)
                    if want == PROTO_PAP and self.auth == "chap":
                        # the scenario insists on CHAP: keep asking
                        pass
            if fsm.state == "ack_rcvd":
                fsm.state = "req_sent"
            self._send_confreq(fsm, now)
        elif code == 5:
            self.c["terminate_rx"] += 1
            self._send_lcp(PPP_LCP_Terminate(code=6, id=pkt.id))
            self._lcp_down()
            fsm.state = "closed"
        elif code == 6:
            if fsm.state == "closing":
                self._lcp_down()
                fsm.state = "closed"
                fsm.timer = None
        elif code == 9:
            if fsm.state == "opened":
                if self.peer_magic is not None and pkt.magic_number == self.magic \
                        and self.magic != self.peer_magic:
                    self.c["loopback_detected"] += 1
                rep = PPP_LCP_Echo(code=10, id=pkt.id, magic_number=self.magic
                                   if self.our_opts.get("magic") else 0, data=pkt.data)
                self._send_lcp(rep)
                self.c["lcp_echo_replies"] += 1
        elif code in (7, 8, 10, 11):
            pass                     # Code/Protocol-Reject, Echo-Reply, Discard: nothing to do
        else:
            rej = bytes((7, fsm.next_id())) + struct.pack("!H", 4 + len(raw)) + bytes(raw)
            self._send(PROTO_LCP, rej[:self.peer_mru])

    def _lcp_confreq(self, pkt, now):
        fsm = self.lcp
        if fsm.state == "opened":          # renegotiation: the layer goes down first
            self._lcp_down()
            fsm.state = "req_sent"
            self._send_confreq(fsm, now)
        elif fsm.state in ("initial", "closed"):
            fsm.state = "req_sent"
            self._send_confreq(fsm, now)
        acks, naks, rejs = [], [], []
        pending = {"acfc": False, "pfc": False, "accm": 0xFFFFFFFF, "mru": 1500, "magic": None}
        for opt in pkt.options:
            t = opt.type
            raw = bytes(opt)
            if t == 1 and len(raw) == 4:
                mru = struct.unpack("!H", raw[2:4])[0]
                if mru < 128:
                    naks.append(raw[:2] + struct.pack("!H", 1500))
                else:
                    pending["mru"] = mru
                    acks.append(raw)
            elif t == 2 and len(raw) == 6:
                pending["accm"] = struct.unpack("!I", raw[2:6])[0]
                acks.append(raw)
            elif t == 5 and len(raw) == 6:
                m = struct.unpack("!I", raw[2:6])[0]
                if m == self.magic and self.our_opts.get("magic"):
                    self.c["loopback_detected"] += 1
                    naks.append(raw[:2] + struct.pack("!I", random.getrandbits(32) or 1))
                else:
                    pending["magic"] = m
                    acks.append(raw)
            elif t == 7 and len(raw) == 2:
                pending["pfc"] = True
                acks.append(raw)
            elif t == 8 and len(raw) == 2:
                pending["acfc"] = True
                acks.append(raw)
            else:
                rejs.append(raw)         # auth (we don't authenticate to the device), LQR, ...
        if rejs:
            self._send_lcp_raw(4, pkt.id, b"".join(rejs))
            return
        if naks:
            self._send_lcp_raw(3, pkt.id, b"".join(naks))
            return
        self._send_lcp_raw(2, pkt.id, b"".join(acks))
        self.peer_acfc = pending["acfc"]
        self.peer_pfc = pending["pfc"]
        self.peer_mru = pending["mru"]
        self.peer_magic = pending["magic"]
        self._pending_accm = pending["accm"]
        if fsm.state == "ack_rcvd":
            self._lcp_up(now)
        elif fsm.state in ("req_sent", "ack_sent"):
            fsm.state = "ack_sent"

    def _send_lcp_raw(self, code, ident, opts):
        self._send(PROTO_LCP, bytes((code, ident)) + struct.pack("!H", 4 + len(opts)) + opts)

    def _lcp_up(self, now):
        fsm = self.lcp
        fsm.state = "opened"
        fsm.timer = None
        fsm.count = 0
        self.tx_accm = getattr(self, "_pending_accm", 0xFFFFFFFF)
        self.log("ppp_net: LCP opened (acfc=%s pfc=%s accm=%08x mru=%d)"
                 % (self.peer_acfc, self.peer_pfc, self.tx_accm, self.peer_mru))
        if self.echo_interval_s:
            self.echo_timer = now + self.echo_interval_s
        if self.auth == "chap":
            self.auth_count = 0
            self._send_chap_challenge(now)
        elif self.auth is None:
            self._start_ipcp(now)
        # PAP: wait for the peer's Authenticate-Request

    def _lcp_down(self):
        self.tx_accm = 0xFFFFFFFF
        self.peer_acfc = self.peer_pfc = False
        self.ipcp = Fsm("ipcp")
        self.authed = self.auth is None
        self.auth_timer = None
        self.echo_timer = None

    # --- authentication -------------------------------------------------------------------------

    def _pap(self, pkt, now):
        if self.auth != "pap" or pkt.code != 1:
            return
        req = PPP_PAP_Request(bytes(pkt))
        ok = (self.user is None or req.username == self.user.encode()) and \
             (self.password is None or req.password == self.password.encode())
        rep = PPP_PAP_Response(code=2 if ok else 3, id=req.id,
                               message=b"welcome" if ok else b"denied")
        self._send(PROTO_PAP, bytes(rep))
        if ok:
            if not self.authed:
                self.authed = True
                self._start_ipcp(now)
        else:
            self.c["auth_failures"] += 1
            self.terminate(now)

    def _send_chap_challenge(self, now, again=False):
        if not again or self.chap_value is None:
            self.chap_id = (self.chap_id + 1) & 0xFF
            self.chap_value = os.urandom(16)
        ch = PPP_CHAP_ChallengeResponse(code=1, id=self.chap_id, value=self.chap_value,
                                        optional_name=self.name.encode())
        self._send(PROTO_CHAP, bytes(ch))
        self.auth_timer = now + RESTART_S

    def _chap(self, pkt, now):
        if self.auth != "chap" or pkt.code != 2:
            return
        rsp = PPP_CHAP_ChallengeResponse(bytes(pkt))
        if rsp.id != self.chap_id or self.chap_value is None:
            return
        secret = (self.password or "").encode()
        want = hashlib.md5(bytes((rsp.id,)) + secret + self.chap_value).digest()
        ok = rsp.value == want and (self.user is None or rsp.optional_name == self.user.encode())
        self._send(PROTO_CHAP, bytes(PPP_CHAP(code=3 if ok else 4, id=rsp.id,
                                              data=b"ok" if ok else b"denied")))
        self.auth_timer = None
        if ok:
            if not self.authed:
                self.authed = True
                self._start_ipcp(now)
        else:
            self.c["auth_failures"] += 1
            self.terminate(now)

    # --- IPCP -------------------------------------------------------------------------------

    def _start_ipcp(self, now):
        if self.ipcp.state in ("initial", "closed"):
            self.ipcp.count = 0
            self._send_confreq(self.ipcp, now)

    def _ipcp(self, pkt, raw, now):
        fsm = self.ipcp
        code = pkt.code
        if code == 1:
            self._ipcp_confreq(pkt, now)
        elif code == 2:
            if pkt.id != fsm.last_req_id:
                return
            if fsm.state == "ack_sent":
                self._ipcp_up()
            elif fsm.state == "req_sent":
                fsm.state = "ack_rcvd"
        elif code in (3, 4):
            if pkt.id != fsm.last_req_id:
                return
            if fsm.state == "ack_rcvd":
                fsm.state = "req_sent"
            self._send_confreq(fsm, now)     # we insist on our own address
        elif code == 5:
            self._send(PROTO_IPCP, bytes((6, pkt.id, 0, 4)))
            fsm.state = "closed"
            fsm.timer = None
        elif code == 6:
            fsm.state = "closed"
            fsm.timer = None
        elif code == 7:
            pass
        else:
            rej = bytes((7, fsm.next_id())) + struct.pack("!H", 4 + len(raw)) + bytes(raw)
            self._send(PROTO_IPCP, rej)

    def _ipcp_confreq(self, pkt, now):
        fsm = self.ipcp
        if fsm.state in ("initial", "closed", "opened"):
            if fsm.state == "opened":
                self.log("ppp_net: IPCP renegotiation")
            fsm.state = "req_sent"
            self._send_confreq(fsm, now)
        acks, naks, rejs = [], [], []
        want = {3: self.peer_ip}
        if self.dns:
            want[129] = self.dns[0]
            want[131] = self.dns[1] if len(self.dns) > 1 else self.dns[0]
        for opt in pkt.options:
            raw = bytes(opt)
            t = raw[0]
            if t in want and len(raw) == 6:
                got = ".".join(str(b) for b in raw[2:6])
                if got == want[t]:
                    acks.append(raw)
                else:
                    naks.append(bytes(PPP_IPCP_Option(type=t, data=_aton(want[t]))))
            else:
                rejs.append(raw)     # VJ compression, NBNS, DNS when we have none (RFC 1877)
        if rejs:
            self._send(PROTO_IPCP, bytes((4, pkt.id)) + struct.pack(
                "!H", 4 + sum(map(len, rejs))) + b"".join(rejs))
            return
        if naks:
            self._send(PROTO_IPCP, bytes((3, pkt.id)) + struct.pack(
                "!H", 4 + sum(map(len, naks))) + b"".join(naks))
            return
        self._send(PROTO_IPCP, bytes((2, pkt.id)) + struct.pack(
            "!H", 4 + sum(map(len, acks))) + b"".join(acks))
        if fsm.state == "ack_rcvd":
            self._ipcp_up()
        else:
            fsm.state = "ack_sent"

    def _ipcp_up(self):
        self.ipcp.state = "opened"
        self.ipcp.timer = None
        self.log("ppp_net: IPCP opened: peer %s" % self.peer_ip)


def _aton(s):
    return bytes(int(x) for x in s.split("."))
