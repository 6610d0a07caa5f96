"""The device's PPP checked by scapy's PPP layers, with an independent HDLC codec.

A scripted network side built on scapy (HDLC/PPP/PPP_LCP/PPP_IPCP/PPP_PAP/PPP_CHAP)
negotiates with the device's PppNetif over an in-memory serial pair. Every frame
the device sends is unstuffed by the codec below (not the device's), must pass
the FCS and parse with scapy; every frame the network sends is built by scapy and
stuffed by the codec below, and the device must accept it.
"""
import hashlib
import os

import pytest

from scapy.all import raw
from scapy.layers.inet import IP, UDP
from scapy.layers.ppp import (HDLC, PPP, PPP_LCP_Configure, PPP_LCP_Echo,
                              PPP_LCP_Option, PPP_LCP_MRU_Option, PPP_LCP_ACCM_Option,
                              PPP_LCP_Magic_Number_Option, PPP_LCP_Auth_Protocol_Option,
                              PPP_LCP_Protocol_Reject, PPP_LCP_Terminate, PPP_IPCP,
                              PPP_IPCP_Option, PPP_IPCP_Option_IPAddress, PPP_IPCP_Option_DNS1,
                              PPP_IPCP_Option_DNS2, PPP_PAP_Request, PPP_PAP_Response,
                              PPP_CHAP, PPP_CHAP_ChallengeResponse)

from mptcp_net.ppp_netif import PppNetif
from mptcp_net.netif import ip_aton

DEV = "198.18.2.2"
NETA = "198.18.2.1"
DNS1 = "198.18.0.53"
DNS2 = "198.18.0.54"


# ---- an independent HDLC-like codec (RFC 1662), bit by bit ----

def crc_x25(data, fcs=0xFFFF):
    for byte in data:
        for bit in range(8):
            mix = (fcs ^ (byte >> bit)) & 1
            fcs >>= 1
            if mix:
                fcs ^= 0x8408
    return fcs


def hdlc_wrap(content, accm=0xFFFFFFFF):
    f = crc_x25(content) ^ 0xFFFF
    out = bytearray([0x7E])
    for b in bytes(content) + f.to_bytes(2, "little"):
        if b == 0x7E or b == 0x7D or (b < 32 and accm & (1 << b)):
            out += bytes([0x7D, b ^ 0x20])
        else:
            out.append(b)
    out.append(0x7E)
    return bytes(out)


def hdlc_split(stream):
    """[(content, raw_bytes_between_flags)] of every frame; asserts the FCS."""
    frames = []
    for chunk in bytes(stream).split(b"\x7e"):
        if not chunk:
            continue
        data = bytearray()
        it = iter(chunk)
        for b in it:
            if b == 0x7D:
                data.append(next(it) ^ 0x20)
            else:
                data.append(b)
        assert len(data) >= 4, chunk
        assert crc_x25(data) == 0xF0B8, "bad FCS from the device: " + chunk.hex()
        frames.append((bytes(data[:-2]), chunk))
    return frames


def parse(content):
    """scapy view of a frame's content (address/control optional, PFC allowed)."""
    if content[:2] == b"\xff\x03":
        return HDLC(content)[PPP]
    return PPP(content)


# ---- the serial pair ----

class Line:
    def __init__(self):
        self.to_dev = bytearray()
        self.from_dev = bytearray()


class DevSerial:
    def __init__(self, line):
        self.line = line

    def write(self, b):
        self.line.from_dev += bytes(b)
        return len(b)

    def readinto(self, b):
        q = self.line.to_dev
        n = min(len(b), len(q))
        b[:n] = q[:n]
        del q[:n]
        return n

    def pollable(self):
        return None


class ScapyNetwork:
    """A scripted PPP network side on scapy layers: acks LCP, authenticates, hands out
    198.18.2.2 and two DNS servers by IPCP Nak, then carries IP."""

    def __init__(self, auth=None, user=b"", password=b"", offer_vj=True):
        self.line = Line()
        self.auth = auth
        self.user = user
        self.password = password
        self.offer_vj = offer_vj
        self.t = 0
        self.dev = PppNetif(DevSerial(self.line), clock=lambda: self.t, echo_interval_ms=0,
                           auth=(auth, user.decode(), password.decode()) if auth else None)
        self.accm = 0xFFFFFFFF      # what we use to send until LCP opens
        self.lcp_open_tx = False    # we acked the device's request
        self.lcp_open_rx = False    # it acked ours
        self.seen = []              # every (scapy packet, raw frame) the device sent
        self.ipcp_rx = []
        self.ip_rx = []
        self.other = []
        self.vj_rejected = False
        self.dev_magic = None
        self.our_id = 0x40
        self.challenge = os.urandom(16)
        self.authed = auth is None

    def send(self, pkt):
        self.line.to_dev += hdlc_wrap(raw(pkt), self.accm)

    def lcp_request(self):
        opts = [PPP_LCP_MRU_Option(max_recv_unit=1500), PPP_LCP_ACCM_Option(accm=0),
                PPP_LCP_Magic_Number_Option(magic_number=0x0BADCAFE),
                PPP_LCP_Option(type=7), PPP_LCP_Option(type=8)]
        if self.auth == "pap":
            opts.insert(2, PPP_LCP_Auth_Protocol_Option(auth_protocol=0xC023))
        elif self.auth == "chap":
            opts.insert(2, PPP_LCP_Auth_Protocol_Option(auth_protocol=0xC223, algorithm=5))
        self.send(HDLC() / PPP(proto=0xC021) / PPP_LCP_Configure(code=1, id=self.our_id,
                                                                 options=opts))

    def ipcp_request(self, vj):
        opts = [PPP_IPCP_Option_IPAddress(data=NETA)]
        if vj:
            opts.append(PPP_IPCP_Option(type=2, data=b"\x00\x2d\x0f\x01"))
        self.send(HDLC() / PPP(proto=0x8021) / PPP_IPCP(code=1, id=0x60 + int(vj),
                                                         options=opts))

    def start(self):
        self.dev.start(self.t)
        self.lcp_request()

    def pump(self, steps=10):
        buf = bytearray(2048)
        for _ in range(steps):
            self.t += 10
            self.dev.poll(self.t)
            while True:
                n = self.dev.recv_into(buf)
                if not n:
                    break
                self.ip_rx.append(bytes(buf[:n]))
            out = bytes(self.line.from_dev)
            self.line.from_dev.clear()
            for content, chunk in hdlc_split(out):
                self.handle(content, chunk)

    def handle(self, content, chunk):
        p = parse(content)
        self.seen.append((p, content, chunk))
        proto = p.proto
        if proto == 0xC021:
            # LCP always has address/control; codes 1..7 escape every control character
            assert content[:2] == b"\xff\x03"
            lcp = p.payload
            if 1 <= lcp.code <= 7:
                assert not any(b < 0x20 for b in chunk), chunk.hex()
            if lcp.code == 1:
                for o in lcp.options:
                    if o.type == 5:
                        self.dev_magic = o.magic_number
                self.send(HDLC() / PPP(proto=0xC021) / PPP_LCP_Configure(
                    code=2, id=lcp.id, options=lcp.options))
                self.lcp_open_tx = True
            elif lcp.code == 2:
                assert lcp.id == self.our_id
                self.lcp_open_rx = True
                self.accm = 0                          # the device asked for ACCM 0
                if self.auth == "chap":
                    self.send(HDLC() / PPP(proto=0xC223) / PPP_CHAP_ChallengeResponse(
                        code=1, id=7, value=self.challenge, optional_name=b"net"))
            elif lcp.code == 9 or lcp.code == 10:
                self.other.append(p)
            elif lcp.code in (5, 6, 8):
                self.other.append(p)
                if lcp.code == 5:
                    self.send(HDLC() / PPP(proto=0xC021) / PPP_LCP_Terminate(code=6,
                                                                             id=lcp.id))
            else:
                self.other.append(p)
        elif proto == 0xC023:
            r = p[PPP_PAP_Request]
            ok = r.username == self.user and r.password == self.password
            self.authed = ok
            self.send(HDLC() / PPP(proto=0xC023) / PPP_PAP_Response(code=2 if ok else 3,
                                                                    id=r.id, message=b""))
            if ok:
                self.ipcp_request(self.offer_vj)
        elif proto == 0xC223:
            r = p[PPP_CHAP_ChallengeResponse]
            assert r.code == 2 and r.id == 7
            want = hashlib.md5(bytes([7]) + self.password + self.challenge).digest()
            ok = r.value == want and r.optional_name == self.user
            self.authed = ok
            self.send(HDLC() / PPP(proto=0xC223) / PPP_CHAP(code=3 if ok else 4, id=7,
                                                            data=b"welcome"))
            if ok:
                self.ipcp_request(self.offer_vj)
        elif proto == 0x8021:
            ip = p[PPP_IPCP]
            self.ipcp_rx.append(ip)
            if ip.code == 1:
                got = {o.type: o.data for o in ip.options}
                want = {3: DEV, 129: DNS1, 131: DNS2}
                if got == want:
                    self.send(HDLC() / PPP(proto=0x8021) / PPP_IPCP(code=2, id=ip.id,
                                                                     options=ip.options))
                else:
                    self.send(HDLC() / PPP(proto=0x8021) / PPP_IPCP(code=3, id=ip.id, options=[
                        PPP_IPCP_Option_IPAddress(data=DEV), PPP_IPCP_Option_DNS1(data=DNS1),
                        PPP_IPCP_Option_DNS2(data=DNS2)]))
            elif ip.code == 4:
                assert [o.type for o in ip.options] == [2]
                self.vj_rejected = True
                self.ipcp_request(False)
        elif proto == 0x0021:
            self.other.append(p)
        else:
            self.other.append(p)

    def negotiate(self):
        self.start()
        self.pump(5)
        if self.auth is None:
            self.ipcp_request(self.offer_vj)
        self.pump(10)


@pytest.mark.parametrize("auth", [None, "pap", "chap"])
def test_negotiation_checked_by_scapy(auth):
    net = ScapyNetwork(auth, b"user", b"secret")
    net.negotiate()
    d = net.dev
    assert d.up and d.state == "running", d.state
    assert d.addr == ip_aton(DEV)
    assert d.dns == [ip_aton(DNS1), ip_aton(DNS2)]
    assert net.authed
    assert net.vj_rejected
    # the device's LCP Configure-Request: ACCM 0, magic, PFC, ACFC; no MRU (default 1500)
    creqs = [p for p, c, ch in net.seen if p.proto == 0xC021 and p.payload.code == 1]
    assert len(creqs) == 1
    types = [o.type for o in creqs[0].payload.options]
    assert types == [2, 5, 7, 8]
    accm = creqs[0].payload.options[0]
    assert accm.accm == 0
    assert net.dev_magic not in (None, 0)
    # the first IPCP request asks for 0.0.0.0 and both DNS; the second takes the Nak'ed values
    reqs = [x for x in net.ipcp_rx if x.code == 1]
    assert {o.type: o.data for o in reqs[0].options} == {3: "0.0.0.0", 129: "0.0.0.0",
                                                         131: "0.0.0.0"}
    assert {o.type: o.data for o in reqs[-1].options} == {3: DEV, 129: DNS1, 131: DNS2}
    # IPCP frames after LCP opened: ACFC (no FF 03), protocol not compressible (0x8021)
    for p, content, chunk in net.seen:
        if p.proto == 0x8021:
            assert content[:2] == b"\x80\x21"
    if auth:
        assert d.ses.lcp.auth_peer == (0xC023 if auth == "pap" else 0xC223)


def _up(auth=None):
    net = ScapyNetwork(auth, b"user", b"secret")
    net.negotiate()
    assert net.dev.up
    return net


def test_ip_both_ways_checked_by_scapy():
    net = _up()
    d = net.dev
    for size in (28, 200, 1472):
        pkt = IP(src=DEV, dst="198.18.0.1", id=size) / UDP(sport=1000, dport=2000) / (
            bytes(range(256)) * 6)[:size - 28]
        b = bytearray(raw(pkt))
        assert d.send(memoryview(b), len(b))
    net.pump(1)
    ips = [(p, c) for p, c, ch in net.seen if p.proto == 0x0021]
    assert len(ips) == 3
    for (p, content), size in zip(ips, (28, 200, 1472)):
        assert content[:1] == b"\x21"                # ACFC + PFC on the wire
        ip = p[IP]
        assert ip.src == DEV and ip.len == size and ip.id == size
        assert ip[UDP].dport == 2000
    # the network sends IP in all three header forms; the device takes them all
    down = IP(src="198.18.0.1", dst=DEV) / UDP(sport=5, dport=6) / (b"x" * 100)
    net.line.to_dev += hdlc_wrap(b"\xff\x03\x00\x21" + raw(down), 0)
    net.line.to_dev += hdlc_wrap(b"\x00\x21" + raw(down), 0)
    net.line.to_dev += hdlc_wrap(b"\x21" + raw(down), 0xFFFFFFFF)
    net.pump(1)
    assert net.ip_rx == [raw(down)] * 3


def test_echo_request_answered():
    net = _up("pap")
    net.send(HDLC() / PPP(proto=0xC021) / PPP_LCP_Echo(code=9, id=0x33,
                                                       magic_number=0x0BADCAFE,
                                                       data=b"ping-data"))
    net.pump(1)
    rep = [p for p in net.other if p.payload.code == 10]
    assert len(rep) == 1
    e = rep[0][PPP_LCP_Echo]
    assert e.id == 0x33 and e.data == b"ping-data" and e.magic_number == net.dev_magic


def test_device_echo_requests_carry_its_magic():
    net = _up()
    net.dev.ses.echo_interval_ms = 1000
    net.dev.ses.echo_deadline = net.t + 1000
    net.pump(120)
    reqs = [p for p in net.other if p.payload.code == 9]
    assert len(reqs) >= 1
    assert all(p[PPP_LCP_Echo].magic_number == net.dev_magic for p in reqs)


def test_protocol_reject_for_ipv6cp():
    net = _up()
    v6cp = b"\x01\x05\x00\x0e\x01\x0a\x11\x22\x33\x44\x55\x66\x77\x88"
    net.line.to_dev += hdlc_wrap(b"\xff\x03\x80\x57" + v6cp, 0)
    net.pump(1)
    rej = [p for p in net.other if p.payload.code == 8]
    assert len(rej) == 1
    r = rej[0][PPP_LCP_Protocol_Reject]
    assert r.rejected_protocol == 0x8057
    assert bytes(r.rejected_information) == v6cp
    assert net.dev.up


def test_terminate_seen_by_scapy():
    net = _up("chap")
    net.dev.close(net.t)
    net.pump(2)
    trs = [p for p in net.other if p.payload.code == 5]
    assert len(trs) == 1
    assert net.dev.state == "dead"


def test_scapy_frames_with_noise_accepted():
    net = ScapyNetwork()
    net.line.to_dev += b"\r\nCONNECT 921600\r\n"          # the modem's last words before PPP
    net.start()
    net.line.to_dev += b"\x7e\x7d\x7e" + os.urandom(40).replace(b"\x7e", b"")
    net.pump(5)
    net.ipcp_request(True)
    net.pump(10)
    assert net.dev.up
    st = net.dev.stats()
    assert st["rx_bad_fcs"] + st["rx_short"] >= 1 and st["rx_bad_escape"] >= 1
