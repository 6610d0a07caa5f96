"""Lab pieces that need no root: impairment model, setting parser, data stream, tshark parser."""

import random

import pytest

import hostenv

from mptcp_lab import impair, peer
from mptcp_lab.emulator import TunUdpLink
from mptcp_lab.impair import Direction, parse_settings


def test_parse_settings_units():
    s = parse_settings(["rate=20mbit", "delay=20ms", "jitter=2ms", "loss=2"])
    assert s == {"rate": 20_000_000, "delay": 20.0, "jitter": 2.0, "loss": 2.0}
    assert parse_settings(["rate=500kbit", "delay=0.1s", "loss=0.5%"]) == \
        {"rate": 500_000, "delay": 100.0, "loss": 0.5}
    assert parse_settings(["rate=0"]) == {"rate": 0}
    for bad in (["rate=fast"], ["loss=101"], ["bogus=1"], ["delay"], ["delay=3parsecs"]):
        with pytest.raises(ValueError):
            parse_settings(bad)


def test_profiles_documented_values():
    assert impair.PROFILES["lossy"]["delay"] == 10 and impair.PROFILES["lossy"]["loss"] == 2
    assert impair.PROFILES["wifi"]["rate"] == 20_000_000
    assert impair.PROFILES["slow"]["rate"] == 2_000_000
    assert all(v == 0 for v in impair.PROFILES["clean"].values())


def test_rate_serializes_and_tail_drops():
    d = Direction("up", random.Random(1))
    d.set(rate=8_000_000)              # 1000-byte packet = 1 ms on the wire
    pkt = bytes(1000)
    for i in range(d.queue_limit):
        assert d.admit(pkt, 0.0)
    assert not d.admit(pkt, 0.0)       # queue full: tail drop
    assert d.drops["queue"] == [1, 1000]
    times = [t for t, _ in d.fifo]
    assert times[0] == pytest.approx(0.001) and times[-1] == pytest.approx(0.001 * d.queue_limit)
    assert d.admit(pkt, 0.0105)        # ten have left the serializer: room again


def test_delay_and_jitter_never_reorder():
    d = Direction("down", random.Random(2))
    d.set(delay=20.0, jitter=15.0)
    for i in range(2000):
        d.admit(bytes(100), i * 0.0001)
    times = [t for t, _ in d.fifo]
    assert times == sorted(times)
    assert min(times) >= 0.005 and times[0] >= 0.005


def test_queue_limit_follows_bdp():
    d = Direction("up")
    d.set(rate=100_000_000, delay=50.0)   # BDP = 12.5e6 B/s * 0.1 s = 1.25 MB
    assert d.queue_limit == int(2 * 1_250_000 / 1500) + 1
    d.set(rate=1_000_000, delay=1.0)
    assert d.queue_limit == impair.MIN_QUEUE_PKTS


class _Emu:
    def wake(self, d, link):
        pass


def test_link_loss_and_down_counters():
    link = TunUdpLink("wifi", "clean", random.Random(3), _Emu())
    sent = []
    send = lambda d, p: sent.append(p)
    link.up.set(loss=2.0)
    n = 20000
    for _ in range(n):
        link.ingress(link.up, b"\x45" + bytes(99), 0.0, send)
    lost = link.up.drops["loss"][0]
    assert lost + len(sent) == n
    assert 0.015 * n < lost < 0.025 * n
    link.set_state(False)
    link.ingress(link.down, b"\x45" + bytes(99), 0.0, send)
    assert link.down.drops["down"][0] == 1
    st = link.status()
    assert st["state"] == "down" and st["uplink"]["params"]["loss"] == 2.0


def test_parse_bytes_and_stream():
    assert peer.parse_bytes("8M") == 8 << 20 and peer.parse_bytes("64MiB") == 64 << 20
    assert peer.parse_bytes("1000") == 1000 and peer.parse_bytes("4k") == 4096
    s = peer.Stream()
    a = bytes(s.block(0))
    b = bytes(s.block(1))
    assert a != b and a[8:] == b[8:] and len(a) == peer.BLOCK


def test_mptcp_expert_warnings_finds_mptcp_only(tmp_path):
    hostenv.tshark()
    from scapy.all import IP, TCP, wrpcap
    from mptcp_lab.capture import mptcp_expert_warnings
    ka, kb = b"\x11" * 8, b"\x22" * 8
    c, s = dict(src="198.18.1.2", dst="198.18.0.1"), dict(src="198.18.0.1", dst="198.18.1.2")
    pk = [IP(**c) / TCP(sport=1000, dport=80, flags="S", seq=1, options=[(30, b"\x01\x81")]),
          IP(**s) / TCP(sport=80, dport=1000, flags="SA", seq=100, ack=2,
                        options=[(30, b"\x01\x81" + kb)]),
          # the ACK echoes a key that is not the SYN/ACK's: tshark flags it (MPTCP warning)
          IP(**c) / TCP(sport=1000, dport=80, flags="A", seq=2, ack=101,
                        options=[(30, b"\x01\x81" + ka + b"\x33" * 8)])]
    f = str(tmp_path / "bad.pcap")
    wrpcap(f, pk)
    w = mptcp_expert_warnings(f)
    assert len(w) == 1 and w[0].startswith("warning: ") and "echoed key" in w[0]
