"""The raw-socket netifs (mptcp_net.raw_netif, mptcp_net.lwip_raw_netif) over fake sockets.

What a real socket cannot show on demand: several packets returned by one MicroPython
`readinto` (split by the IPv4 total length), a padded minimum-size Ethernet frame, a
packet cut off by the end of the buffer, other traffic on the interface (ignored, or the
stack would reset the kernel's connections), and the send path (one connect per
destination, the lwIP variant skipping the IPv4 header that lwIP prepends itself).
"""
from mptcp import ipv4
from mptcp_net.raw_netif import RawNetif, in_ports, sockaddr_ll, sockaddr_in
from mptcp_net.lwip_raw_netif import LwipRawNetif
from mptcp_net import rawnet_rules

DEV = b"\xc6\x12\x03\x02"
PEER = b"\xc6\x12\x03\x01"
OTHER = b"\xc6\x12\x03\x07"


def pkt(dst=DEV, dport=50000, size=60, proto=6, seed=1):
    b = bytearray(size)
    ipv4.write(b, 0, PEER, dst, proto, size - 20, seed)
    b[20] = 0x13
    b[21] = 0x89
    b[22] = dport >> 8
    b[23] = dport & 0xFF
    for i in range(24, size):
        b[i] = (i * 7 + seed) & 0xFF
    return bytes(b)


class StreamSock:
    """MicroPython's socket: readinto concatenates what is queued until the buffer is full."""

    def __init__(self, reads):
        self.reads = list(reads)      # each entry: the bytes one readinto returns
        self.connects = []
        self.writes = []

    def readinto(self, buf):
        if not self.reads:
            return None
        data = self.reads.pop(0)
        n = min(len(data), len(buf))
        buf[0:n] = data[:n]
        return n

    def connect(self, addr):
        self.connects.append(bytes(addr) if not isinstance(addr, tuple) else addr)

    def write(self, mv, a, b=None):
        if b is None:
            self.writes.append(bytes(mv[:a]))
            return a
        self.writes.append(bytes(mv[a:a + b]))
        return b

    def close(self):
        pass


class DgramSock(StreamSock):
    """CPython's socket: recv_into returns one packet."""

    def recv_into(self, buf):
        if not self.reads:
            raise OSError(11, "EAGAIN")
        return self.readinto(buf)

    def sendto(self, data, addr):
        self.writes.append((bytes(data), addr))
        return len(data)


def _drain(nif):
    out = []
    buf = bytearray(2048)
    while True:
        n = nif.recv_into(buf)
        if n == 0:
            return out
        out.append(bytes(buf[:n]))


def _nif(reads, rxbuf=65536):
    s = StreamSock(reads)
    return RawNetif("wifi", 0, "test0", DEV, rx=s, tx=s, rxbuf=rxbuf), s


def test_one_read_with_several_packets_is_split():
    a, b, c = pkt(size=60), pkt(size=1500, seed=2), pkt(size=52, seed=3)
    nif, _ = _nif([a + b + c])
    assert _drain(nif) == [a, b, c]
    assert nif.rx_packets == 3 and nif.rx_errors == 0 and nif.rx_trunc == 0


def test_padded_ethernet_frame():
    a = pkt(size=40)             # a bare ACK: padded to 46 bytes on Ethernet
    b = pkt(size=100, seed=5)
    nif, _ = _nif([a + bytes(6) + b, a + bytes(6)])
    assert _drain(nif) == [a, b, a]
    assert nif.rx_errors == 0


def test_short_packet_not_padded_on_lwip_is_not_skipped():
    a = pkt(size=40)
    b = pkt(size=100, seed=5)
    s = StreamSock([a + b])
    nif = LwipRawNetif("wifi", 0, wlan=FakeWlan(), sock=s)
    assert _drain(nif) == [a, b]


def test_packet_cut_at_the_end_of_the_buffer_is_dropped():
    a, b = pkt(size=1000), pkt(size=1000, seed=2)
    nif, _ = _nif([a + b], rxbuf=1500)
    assert _drain(nif) == [a]
    assert nif.rx_trunc == 1


def test_other_traffic_is_ignored():
    mine = pkt(seed=9)
    others = [pkt(dst=OTHER), pkt(dport=22), pkt(proto=17), pkt(dport=49151)]
    nif, _ = _nif([b"".join(others) + mine])
    assert _drain(nif) == [mine]
    assert nif.rx_other == 4


def test_listening_port_is_the_devices():
    nif, _ = _nif([pkt(dport=5201)])
    nif.ports = ((49152, 65535), (5201, 5201))
    assert len(_drain(nif)) == 1
    assert in_ports(5201, nif.ports) and not in_ports(5202, nif.ports)


def test_cpython_path_one_packet_per_call_and_padding_trimmed():
    a, b = pkt(size=40), pkt(size=200, seed=4)
    s = DgramSock([a + bytes(6), pkt(dst=OTHER), b])
    nif = RawNetif("wifi", 0, "test0", DEV, rx=s, tx=s)
    assert _drain(nif) == [a, b]
    assert nif.rx_other == 1


def test_send_connects_once_per_destination():
    nif, s = _nif([])
    p1 = bytearray(pkt(dst=PEER))
    p1[16:20] = PEER
    p2 = bytearray(p1)
    p2[16:20] = OTHER
    mv = memoryview(bytearray(2048))
    for p in (p1, p1, p2):
        mv[:len(p)] = p
        assert nif.send(mv, len(p))
    assert s.writes == [bytes(p1), bytes(p1), bytes(p2)]
    assert s.connects == [bytes(sockaddr_in(PEER)), bytes(sockaddr_in(OTHER))]
    assert nif.tx_packets == 3 and nif.tx_errors == 0


def test_sockaddrs():
    ll = sockaddr_ll(7)
    assert len(ll) == 20 and ll[2:4] == b"\x08\x00"       # ETH_P_IP, network order
    assert ll[0] | (ll[1] << 8) in (17, 17 << 8) and 7 in (ll[4], ll[7])
    sa = sockaddr_in(PEER, 0x1234)
    assert len(sa) == 16 and sa[2:4] == b"\x12\x34" and sa[4:8] == PEER


class FakeWlan:
    def __init__(self):
        self.conn = True
        self.ip = "198.18.3.2"

    def isconnected(self):
        return self.conn

    def ifconfig(self):
        return (self.ip, "255.255.255.0", "198.18.3.1", "198.18.3.1")


def test_lwip_send_skips_the_ip_header_and_follows_the_link():
    w = FakeWlan()
    s = StreamSock([])
    nif = LwipRawNetif("wifi", 0, wlan=w, sock=s)
    assert nif.addr == DEV
    p = bytearray(pkt(dst=PEER, size=80))
    p[16:20] = PEER
    mv = memoryview(bytearray(2048))
    mv[:80] = p
    assert nif.send(mv, 80)
    assert s.writes == [bytes(p[20:80])] and s.connects == [("198.18.3.1", 0)]
    events = []
    nif.on_event = lambda name, n: events.append(name)
    nif.poll(1000)
    w.conn = False
    nif.poll(1100)                        # not yet: checked every CHECK_MS
    assert events == []
    nif.poll(1600)
    w.conn = True
    w.ip = "198.18.3.9"
    nif.poll(2200)
    assert events == ["down", "up"] and nif.addr == b"\xc6\x12\x03\x09"


def test_lwip_refuses_an_unassociated_wlan():
    w = FakeWlan()
    w.conn = False
    try:
        LwipRawNetif("wifi", 0, wlan=w, sock=StreamSock([]))
    except OSError as e:
        assert "not connected" in str(e)
    else:
        assert False, "no error"


def test_ruleset_text():
    t = rawnet_rules.ruleset("wlan0", "192.168.1.20", ((49152, 65535), (5201, 5201)), 0x6D70)
    assert "table inet mptcp_raw_wlan0 {" in t
    assert 'iifname "wlan0" ip daddr 192.168.1.20 tcp dport { 49152-65535, 5201 }' in t
    assert "meta mark 0x6d70" in t and "notrack accept" in t
    assert "tcp flags & rst == rst" in t and "hook prerouting priority raw" in t
    assert rawnet_rules.table_name("mpraw-dev.1") == "mptcp_raw_mpraw_dev_1"
