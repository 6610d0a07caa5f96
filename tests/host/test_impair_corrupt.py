"""The `corrupt` impairment: payload rewrite with a fixed-up TCP checksum (no root needed)."""

import json
import random

import pytest
from scapy.layers.inet import IP, TCP, UDP, IPOption_RR, IPOption_Router_Alert
from scapy.packet import Raw

from mptcp_lab import api, cli, impair, lab
from mptcp_lab.common import LabError
from mptcp_lab.emulator import Emulator, TunUdpLink
from mptcp_lab.impair import Direction, corrupt_tcp_payload, parse_settings

SRC, DST = "198.18.1.2", "198.18.0.1"
# An MPTCP-like option (kind 30): DSS subtype 2 with a DATA_ACK, a DSN map and a checksum.
MPTCP_DSS = bytes((0x20, 0x15)) + bytes(range(16)) + b"\xab\xcd"


def tcp_pkt(payload=b"", ip_opts=None, tcp_opts=None, **ip_kw):
    ip = IP(src=SRC, dst=DST, id=4321, ttl=61, **ip_kw)
    if ip_opts:
        ip.options = ip_opts
    tcp = TCP(sport=40000, dport=5001, seq=0x11223344, ack=0x55667788, flags="PA",
              window=6000, options=tcp_opts or [])
    p = ip / tcp
    if payload:
        p = p / Raw(payload)
    return bytes(p)


def tcp_ok(raw):
    """True if scapy computes the same TCP checksum as the one in the packet."""
    p = IP(raw)
    q = p.copy()
    del q[TCP].chksum
    return IP(bytes(q))[TCP].chksum == p[TCP].chksum


def ip_ok(raw):
    p = IP(raw)
    q = p.copy()
    del q[IP].chksum
    return IP(bytes(q)).chksum == p.chksum


def payload_offset(raw):
    p = IP(raw)
    return p.ihl * 4 + p[TCP].dataofs * 4


def check_corrupted(orig, out):
    assert out is not None and isinstance(out, bytes) and len(out) == len(orig)
    assert tcp_ok(orig) and ip_ok(orig)
    ihl = (orig[0] & 0x0F) * 4
    off = payload_offset(orig)
    plen = len(IP(orig)[Raw].load)
    mid = off + plen // 2
    diff = [i for i in range(len(orig)) if orig[i] != out[i]]
    # the middle payload byte, plus at most the two TCP checksum bytes
    assert mid in diff and out[mid] == orig[mid] ^ 0xFF
    assert set(diff) - {mid} <= {ihl + 16, ihl + 17}
    assert out[:ihl] == orig[:ihl]                              # IP header with options
    assert out[ihl:ihl + 16] == orig[ihl:ihl + 16]              # TCP header before chksum
    assert out[ihl + 18:off] == orig[ihl + 18:off]              # urgent ptr and TCP options
    assert tcp_ok(out) and ip_ok(out)
    po, pc = IP(orig), IP(out)
    for f in ("src", "dst", "id", "ttl", "len", "ihl", "options", "flags", "frag"):
        assert getattr(po, f) == getattr(pc, f)
    for f in ("sport", "dport", "seq", "ack", "flags", "window", "dataofs", "options"):
        assert getattr(po[TCP], f) == getattr(pc[TCP], f)
    assert pc[TCP].chksum != po[TCP].chksum
    lo, lc = po[Raw].load, pc[Raw].load
    assert [i for i in range(len(lo)) if lo[i] != lc[i]] == [plen // 2]


# --- the pure function ---------------------------------------------------------------------

@pytest.mark.parametrize("plen", [1, 2, 3, 100, 101, 1460])
def test_corrupts_middle_byte_and_fixes_checksum(plen):
    orig = tcp_pkt(bytes((i * 7 + 3) & 0xFF for i in range(plen)))
    check_corrupted(orig, corrupt_tcp_payload(orig))


def test_ip_options():
    orig = tcp_pkt(b"hello, world!", ip_opts=[IPOption_RR(routers=["10.0.0.1", "10.0.0.2"]),
                                              IPOption_Router_Alert()])
    assert IP(orig).ihl > 5
    check_corrupted(orig, corrupt_tcp_payload(orig))


def test_tcp_options_timestamps_and_mptcp():
    opts = [("NOP", None), ("NOP", None), ("Timestamp", (123456, 654321)), (30, MPTCP_DSS)]
    orig = tcp_pkt(b"x" * 999, tcp_opts=opts)
    assert IP(orig)[TCP].dataofs > 5
    check_corrupted(orig, corrupt_tcp_payload(orig))
    # both kinds of options at once
    orig = tcp_pkt(b"y" * 536, ip_opts=[IPOption_Router_Alert()], tcp_opts=opts)
    check_corrupted(orig, corrupt_tcp_payload(orig))


def test_df_flag_is_not_a_fragment():
    orig = tcp_pkt(b"abcdef", flags="DF")
    check_corrupted(orig, corrupt_tcp_payload(orig))


def test_random_packets_match_scapy():
    rng = random.Random(7)
    for _ in range(300):
        n = rng.randrange(1, 1461)
        orig = tcp_pkt(bytes(rng.randrange(256) for _ in range(n)))
        check_corrupted(orig, corrupt_tcp_payload(orig))


def test_bytes_after_total_length_kept():
    orig = tcp_pkt(b"payload!")
    out = corrupt_tcp_payload(orig + bytes(20))
    assert out[len(orig):] == bytes(20)
    check_corrupted(orig, out[:len(orig)])


def test_accepts_bytearray_and_memoryview():
    orig = tcp_pkt(b"abc")
    assert corrupt_tcp_payload(bytearray(orig)) == corrupt_tcp_payload(memoryview(orig)) \
        == corrupt_tcp_payload(orig)


def test_ones_sum_matches_word_loop():
    def slow(data):
        if len(data) & 1:
            data += b"\0"
        s = 0
        for i in range(0, len(data), 2):
            s += (data[i] << 8) | data[i + 1]
            s = (s & 0xFFFF) + (s >> 16)
        return s
    rng = random.Random(3)
    cases = [b"", b"\0\0", b"\xff\xff", b"\xff\xff\xff\xff", b"\xff\xfe\x00\x01", b"\x01",
             b"\xff", b"\x80\x00\x80\x00"]
    cases += [bytes(rng.randrange(256) for _ in range(rng.randrange(64))) for _ in range(500)]
    for c in cases:
        assert impair._ones_sum(c) == slow(c), c


def test_not_eligible_returns_none():
    syn = bytes(IP(src=SRC, dst=DST) / TCP(flags="S", options=[("MSS", 1460), (30, b"\x01\x81")]))
    udp = bytes(IP(src=SRC, dst=DST) / UDP(sport=1, dport=2) / Raw(b"data" * 10))
    mf = tcp_pkt(b"z" * 40, flags="MF")
    off = tcp_pkt(b"z" * 40, frag=3)
    good = tcp_pkt(b"some payload", tcp_opts=[("NOP", None), ("NOP", None),
                                              ("Timestamp", (1, 2))])
    bad_ihl = bytes([0x44]) + good[1:]
    bad_doff_small = bytearray(good)
    bad_doff_small[20 + 12] = 0x40
    bad_doff_big = bytearray(good)
    bad_doff_big[20 + 12] = 0xF0        # 60-byte header, longer than the segment
    short_len = bytearray(good)
    short_len[2:4] = (30).to_bytes(2, "big")     # total length cuts the TCP header
    v6 = bytes([0x60]) + good[1:]
    for p in (syn, tcp_pkt(), udp, mf, off, bad_ihl, bytes(bad_doff_small),
              bytes(bad_doff_big), bytes(short_len), v6, good[:-1], good[:40], good[:25],
              good[:20], good[:19], b"", b"\x45", None, "not bytes", 12345):
        assert corrupt_tcp_payload(p) is None, p


def test_garbage_never_raises():
    rng = random.Random(11)
    base = [tcp_pkt(b"q" * 64), tcp_pkt(b"r" * 7, ip_opts=[IPOption_Router_Alert()],
                                        tcp_opts=[("Timestamp", (5, 6)), (30, MPTCP_DSS)])]
    for i in range(5000):
        if i % 3 == 0:
            p = bytes(rng.randrange(256) for _ in range(rng.randrange(80)))
            if p and i % 2:
                p = bytes([0x40 | (p[0] & 0x0F)]) + p[1:]        # looks like IPv4
        else:
            b = bytearray(rng.choice(base))
            for _ in range(rng.randrange(1, 4)):
                b[rng.randrange(min(len(b), 60))] = rng.randrange(256)
            p = bytes(b[:rng.randrange(len(b) + 1)]) if i % 5 == 0 else bytes(b)
        out = corrupt_tcp_payload(p)
        assert out is None or len(out) == len(p)


# --- the countdown, per direction ----------------------------------------------------------

class _Emu:
    def wake(self, d, link):
        pass


def test_direction_countdown_and_rearm():
    d = Direction("up", random.Random(1))
    assert d.corrupt == 0 and d.params()["corrupt"] == 0
    data = tcp_pkt(b"D" * 100)
    assert d.corrupt_next(data) is data and d.corrupted_pkts == 0     # not armed
    d.set(corrupt=2)
    ack = tcp_pkt()
    udp = bytes(IP(src=SRC, dst=DST) / UDP() / Raw(b"u" * 30))
    assert d.corrupt_next(ack) is ack and d.corrupt_next(udp) is udp    # do not count
    assert d.corrupt == 2
    assert d.corrupt_next(data) != data and d.corrupt == 1
    assert d.corrupt_next(data) != data and d.corrupt == 0
    assert d.counters()["corrupted_pkts"] == 2 and d.params()["corrupt"] == 0
    d.set(corrupt=1)
    assert d.corrupt_next(data) != data and d.corrupt == 0
    assert d.counters()["corrupted_pkts"] == 3
    d.reset_counters()                      # counters reset; the armed count is a setting
    d.set(corrupt=5)
    d.reset_counters()
    assert d.counters()["corrupted_pkts"] == 0 and d.corrupt == 5


def test_link_ingress_plain_path_counts_down():
    link = TunUdpLink("wifi", "clean", random.Random(3), _Emu())
    sent = []
    send = lambda d, p: sent.append(p)
    data = tcp_pkt(bytes(range(200)))
    ack = tcp_pkt()
    link.up.set(corrupt=3)
    for p in (ack, data, ack, data, data, data, data):
        link.ingress(link.up, p, 0.0, send)
    assert sent[0] == ack and sent[2] == ack
    for i in (1, 3, 4):
        check_corrupted(data, sent[i])
    assert sent[5] == data and sent[6] == data
    assert link.up.corrupt == 0 and link.up.corrupted_pkts == 3
    assert link.down.corrupted_pkts == 0
    st = json.loads(json.dumps(link.status()))
    assert st["uplink"]["counters"]["corrupted_pkts"] == 3
    assert st["uplink"]["params"]["corrupt"] == 0
    assert st["downlink"]["counters"]["corrupted_pkts"] == 0


def test_link_one_direction_only():
    link = TunUdpLink("wifi", "clean", random.Random(3), _Emu())
    for d in link.directions("down"):
        d.set(corrupt=1)
    data = tcp_pkt(b"M" * 50)
    up, down = [], []
    link.ingress(link.up, data, 0.0, lambda d, p: up.append(p))
    link.ingress(link.down, data, 0.0, lambda d, p: down.append(p))
    link.ingress(link.down, data, 0.0, lambda d, p: down.append(p))
    assert up == [data] and down[0] != data and down[1] == data
    assert (link.up.corrupted_pkts, link.down.corrupted_pkts) == (0, 1)


def test_lost_packets_do_not_count():
    link = TunUdpLink("wifi", "clean", random.Random(3), _Emu())
    link.up.set(loss=100.0, corrupt=1)
    data = tcp_pkt(b"L" * 50)
    sent = []
    for _ in range(10):
        link.ingress(link.up, data, 0.0, lambda d, p: sent.append(p))
    assert sent == [] and link.up.corrupt == 1 and link.up.corrupted_pkts == 0
    link.up.set(loss=0.0)
    link.ingress(link.up, data, 0.0, lambda d, p: sent.append(p))
    assert sent[0] != data and link.up.corrupt == 0


def test_queued_path_and_tail_drop():
    d = Direction("down", random.Random(4))
    d.set(rate=8_000_000, corrupt=1)        # queued path (admit), 64-packet queue
    data = tcp_pkt(b"Q" * 900)
    for _ in range(d.queue_limit):
        assert d.admit(tcp_pkt(), 0.0)      # fill the queue with pure ACKs: not counted
    assert d.corrupt == 1
    assert not d.admit(data, 0.0)           # tail-dropped: not counted
    assert d.corrupt == 1 and d.corrupted_pkts == 0
    assert d.admit(data, 0.0105)            # room again: admitted and corrupted
    assert d.corrupt == 0 and d.corrupted_pkts == 1
    check_corrupted(data, d.fifo[-1][1])
    assert d.admit(data, 0.0105) and d.fifo[-1][1] == data


def test_delay_path_via_ingress():
    link = TunUdpLink("wifi", "clean", random.Random(5), _Emu())
    link.down.set(delay=10.0, corrupt=1)
    data = tcp_pkt(b"W" * 77)
    link.ingress(link.down, data, 0.0, None)     # queued, never sent directly
    link.ingress(link.down, data, 0.0, None)
    assert [p != data for _, p in link.down.fifo] == [True, False]


def test_profiles_disarm_and_keep_zero():
    assert all(p["corrupt"] == 0 for p in impair.PROFILES.values())
    link = TunUdpLink("wifi", "clean", random.Random(3), _Emu())
    link.up.set(corrupt=4)
    link.down.set(corrupt=4)
    link.apply_profile("lossy")
    assert link.up.corrupt == 0 and link.down.corrupt == 0


def test_direction_set_validates_corrupt():
    d = Direction("up")
    for bad in (-1, 1.5, "3", True, None):
        with pytest.raises(ValueError):
            d.set(corrupt=bad)
    with pytest.raises(ValueError):
        d.set(loss=5.0, corrupt=-1)         # nothing applied on error
    assert d.loss == 0.0 and d.corrupt == 0


# --- parsing, CLI, API, emulator control -----------------------------------------------------

def test_parse_corrupt():
    assert parse_settings(["corrupt=2"]) == {"corrupt": 2}
    assert parse_settings(["corrupt=0", "loss=1"]) == {"corrupt": 0, "loss": 1.0}
    assert parse_settings([" Corrupt = 10 "]) == {"corrupt": 10}
    with pytest.raises(ValueError, match=r"corrupt must be >= 0"):
        parse_settings(["corrupt=-1"])
    for bad in ("x", "1.5", "", "2pkts", "1e3"):
        with pytest.raises(ValueError, match=r"bad value for corrupt.*integer >= 0"):
            parse_settings(["corrupt=" + bad])
    with pytest.raises(ValueError, match="corrupt"):     # listed among the known settings
        parse_settings(["bogus=1"])


def test_cli_link_set_corrupt_one_direction(monkeypatch, capsys):
    calls = []

    def fake_link_set(name, settings, direction="both"):
        calls.append((name, settings, direction))
        lk = TunUdpLink("wifi", "clean", random.Random(1), _Emu())
        for d in lk.directions(direction):
            d.set(**settings)
        lk.down.corrupted_pkts = 2
        return {"links": {"wifi": json.loads(json.dumps(lk.status()))}}
    monkeypatch.setattr(lab, "link_set", fake_link_set)
    p = cli.build_parser()
    for argv, want_dir in ((["link", "wifi", "set", "corrupt=1", "--dir", "down"], "down"),
                           (["link", "--dir", "up", "wifi", "set", "corrupt=1"], "up"),
                           (["link", "wifi", "set", "corrupt=1"], "both")):
        a = p.parse_args(argv)
        assert a.fn(a) == 0
        assert calls[-1] == ("wifi", {"corrupt": 1}, want_dir)
    out = capsys.readouterr().out
    assert "corrupt 1" in out and "corrupted 2 pkts" in out
    a = p.parse_args(["link", "wifi", "set", "corrupt=-1"])
    with pytest.raises(LabError, match=">= 0"):
        a.fn(a)


def test_cli_lte_corrupt_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(lab, "link_set", lambda *a, **k: pytest.fail("must not be called"))
    p = cli.build_parser()
    for argv in (["link", "lte", "set", "corrupt=1"],
                 ["link", "lte", "set", "corrupt=1", "--dir", "up"]):
        a = p.parse_args(argv)
        with pytest.raises(LabError, match="only supported on the wifi link"):
            a.fn(a)
    with pytest.raises(ValueError, match="only supported on the wifi link"):
        api.link_set("lte", corrupt=1)


def test_api_link_set_direction(monkeypatch):
    calls = []
    monkeypatch.setattr(lab, "link_set", lambda *a: calls.append(a) or {})
    api.link_set("wifi", direction="down", corrupt=1)
    api.link_set("wifi", corrupt="2", delay="5ms")
    assert calls == [("wifi", {"corrupt": 1}, "down"),
                     ("wifi", {"corrupt": 2, "delay": 5.0}, "both")]


def test_fmt_dir_old_emulator_status():
    d = {"params": {"up": True, "rate": 0, "delay": 0.0, "jitter": 0.0, "loss": 0.0,
                    "queue_limit": 64},
         "counters": {"forwarded_pkts": 1, "forwarded_bytes": 60, "queued_pkts": 0,
                      "dropped": {}}}
    assert "corrupt" not in cli._fmt_dir(d)          # status from an emulator without corrupt


def test_help_documents_corrupt_and_dir(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["link", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "corrupt=N" in out and "--dir down" in out and "--dir {both,up,down}" in out


def test_emulator_control_set(monkeypatch):
    emu = Emulator(seed=1)
    try:
        monkeypatch.setattr(emu, "status", lambda: {})
        rep = emu.handle_request({"cmd": "set", "link": "wifi", "settings": {"corrupt": 2},
                                  "dir": "up"})
        assert rep["ok"]
        w = emu.links["wifi"]
        assert (w.up.corrupt, w.down.corrupt) == (2, 0)
        with pytest.raises(ValueError, match="only supported on the wifi link"):
            emu.handle_request({"cmd": "set", "link": "lte", "settings": {"corrupt": 1}})
        with pytest.raises(ValueError, match="corrupt must be an integer"):
            emu.handle_request({"cmd": "set", "link": "wifi", "settings": {"corrupt": -3}})
    finally:
        emu.ep.close()
