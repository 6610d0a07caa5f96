"""mptcp.stack, the Stack's own duties: IP/TCP input checks and their counters, the
demultiplexer and listeners, the stack-level RST (RFC 9293 3.10.7.1), the challenge-ACK
rate limit (RFC 5961 7), the seeded PRNG (ISS, ports, keys: deterministic tests), keys
and tokens (RFC 8684 3.1), connect/accept, round-robin output and next_deadline.

One device Stack, exact packets in and out (tests/unit/segtest.py).
"""
import hashlib
from tutil import raises, NotApplicable
from mptcp.stack import Stack, EPHEMERAL_LO
from mptcp import tcpwire as W
from mptcp import ipv4
from mptcp import checksum
from segtest import (Peer, Mpc, Dss, build, inject, send, recv, expect, expect_nothing, drain,
                     expect_deadline, at, passive_open, establish_passive, active_open,
                     write_all, DEV_ADDR, PEER_ADDR, IFX, DEV_PORT, PEER_ISN, T0, SYN, ACK,
                     FIN, RST, PSH, MP)

OTHER_ADDR = bytes([192, 0, 2, 77])


def _ctrs(t, *names):
    return tuple(t.ctr(n) for n in names)


def _raw_out(st, now):
    """(ifindex, src, dst, ident, sport, dport, seq, ack, flags, window, option bytes) of
    the next packet, or None; both checksums verified."""
    out = bytearray(1600)
    n = st.output(now, out)
    if not n:
        return None
    ip = ipv4.IPv4Header()
    assert ipv4.parse(out, n, ip) == 0
    ps = ipv4.pseudo_sum(out, out, 6, n - 20, 12, 16)
    assert checksum.ones_sum(out, 20, n, ps) == 0xFFFF, "bad TCP checksum"
    seg = W.TcpSegment()
    assert W.parse(out, 20, n, seg) == 0
    return (st.out_ifindex, bytes(out[12:16]), bytes(out[16:20]), ip.ident, seg.sport,
            seg.dport, seg.seq, seg.ack, seg.flags, seg.window, bytes(out[40:seg.data_off]))


def _sha(key):
    return hashlib.sha256(key).digest()


# ---------------------------------------------------------------- seeded PRNG (ISS, ports, keys)
def test_seed_pins_the_first_port_iss_and_key():
    """Stack(seed=1): xorshift32 gives 1361127282, 3424972597, 1770954068, 4272703622:
    the first ephemeral port, the ISS, then the key (little-endian words)."""
    st = Stack(seed=1)
    assert st.next_port == EPHEMERAL_LO + (1361127282 & 0x3FFF) == 59250
    st.add_netif(IFX, DEV_ADDR)
    c = st.connect(T0, PEER_ADDR, 80)
    assert c.sf.lport == 59250 and c.sf.iss == 3424972597
    assert c.local_key == bytes([0x54, 0x9D, 0x8E, 0x69, 0x86, 0x48, 0xAC, 0xFE])


def test_seed_zero_state_is_replaced():
    """xorshift32 would stay 0 for ever: a seed whose state is 0 starts from 1 (the
    same stream as seed 0, whose state is 0 * K + 1)."""
    a = Stack(seed=4050964655)
    b = Stack(seed=0)
    assert a.next_port == b.next_port == EPHEMERAL_LO + (270369 & 0x3FFF)
    for want in (67634689, 2647435461):
        assert a._rand32() == b._rand32() == want


def test_seeded_stream_continues_across_connections():
    st = Stack(seed=2, max_conns=3)
    st.add_netif(IFX, DEV_ADDR)
    c1 = st.connect(T0, PEER_ADDR, 80, mptcp=False)
    c2 = st.connect(T0, PEER_ADDR, 80, mptcp=False)
    assert (c1.sf.iss, c2.sf.iss) == (2227202063, 2985840911)     # no key drawn between
    assert c1.local_key is None and c2.sf.lport == c1.sf.lport + 1


def test_unseeded_iss_is_32_bits():
    """Without a seed the ISS comes from os.urandom: still a 32-bit number (RFC 9293)."""
    st = Stack(max_conns=4)
    st.add_netif(IFX, DEV_ADDR)
    for _ in range(4):
        c = st.connect(T0, PEER_ADDR, 80)
        assert 0 <= c.sf.iss <= 0xFFFFFFFF
        assert len(c.local_key) == 8
        assert EPHEMERAL_LO <= c.sf.lport <= 65535


# ---------------------------------------------------------------- keys and tokens (RFC 8684 3.1)
def test_token_and_idsn_are_taken_from_sha256_of_the_key():
    """Token: the most significant 32 bits of SHA-256(key); IDSN: the least significant
    64 bits (RFC 8684 3.1)."""
    st = Stack(seed=3)
    st.add_netif(IFX, DEV_ADDR)
    c = st.connect(T0, PEER_ADDR, 80)
    h = _sha(c.local_key)
    assert c.token == int.from_bytes(h[:4], "big")
    assert c.local_idsn == int.from_bytes(h[24:], "big")
    st.set_peer_key(c, bytearray(b"\x01\x02\x03\x04\x05\x06\x07\x08"))
    assert c.peer_key == b"\x01\x02\x03\x04\x05\x06\x07\x08"
    assert c.peer_idsn == int.from_bytes(_sha(c.peer_key)[24:], "big")


def test_a_key_whose_token_is_taken_is_drawn_again():
    """Two connections must not share a token (an MP_JOIN names its connection by it)."""
    st = Stack(seed=3, max_conns=3)
    st.add_netif(IFX, DEV_ADDR)
    k1 = b"\x11" * 8
    k2 = b"\x22" * 8
    keys = [k1, k1, k1, k2]
    st._new_key = lambda: keys.pop(0)
    c1 = st.connect(T0, PEER_ADDR, 80)
    c2 = st.connect(T0, PEER_ADDR, 81)
    assert c1.local_key == k1 and c2.local_key == k2 and keys == []
    assert c1.token != c2.token
    assert c2.token == int.from_bytes(_sha(k2)[:4], "big")
    assert c2.local_idsn == int.from_bytes(_sha(k2)[24:], "big")
    assert st.counters.get("TokenCollision") == 2
    c3 = st.connect(T0, PEER_ADDR, 82, mptcp=False)     # plain TCP: no key, no clash
    assert c3.token == 0 and st.counters.get("TokenCollision") == 2


def test_plain_connection_has_no_key():
    st = Stack(seed=3)
    st.add_netif(IFX, DEV_ADDR)
    c = st.connect(T0, PEER_ADDR, 80, mptcp=False)
    assert c.local_key is None and c.token == 0 and not c.mptcp


def test_passive_connection_key_from_the_prng():
    t = Peer(seed=1)
    passive_open(t, mptcp=True)
    c = t.st.conns[0]
    assert c.local_key == t.dev_key
    assert c.token == int.from_bytes(_sha(t.dev_key)[:4], "big")


# ---------------------------------------------------------------- defaults
def test_defaults():
    """Stack(): 32 KiB rings each way, two connections, MSS 1460, nothing due."""
    st = Stack(seed=1)
    assert st.next_deadline() == -1
    st.add_netif(IFX, DEV_ADDR)
    c = st.connect(T0, PEER_ADDR, 80)
    assert c.snd.size == 32768 and c.rcv.size == 32768
    assert c.subflows == [c.sf]
    assert st.connect(T0, PEER_ADDR, 80) is not None
    assert st.connect(T0, PEER_ADDR, 80) is None
    p = _raw_out(st, T0)
    assert p[8] == SYN and p[10][:4] == bytes([2, 4, 0x05, 0xB4])     # MSS 1460


# ---------------------------------------------------------------- interfaces, connect, ports
def test_connect_default_ifindex_is_the_first_interface():
    st = Stack(seed=1, max_conns=3)
    st.add_netif(5, OTHER_ADDR)
    st.add_netif(IFX, DEV_ADDR)
    c = st.connect(T0, PEER_ADDR, 80)
    assert c.sf.ifindex == 5 and c.sf.laddr == OTHER_ADDR
    p = _raw_out(st, T0)
    assert p[0] == 5 and p[1] == OTHER_ADDR and p[2] == PEER_ADDR and p[8] == SYN
    c = st.connect(T0, PEER_ADDR, 80, ifindex=IFX)
    assert c.sf.ifindex == IFX and c.sf.laddr == DEV_ADDR
    p = _raw_out(st, T0)
    assert p[0] == IFX and p[1] == DEV_ADDR
    c = st.connect(T0, PEER_ADDR, 80, ifindex=9)      # unknown: the first address
    assert c.sf.ifindex == 9 and c.sf.laddr == OTHER_ADDR


def test_connect_reaps_a_closed_connection_for_its_slot():
    t = Peer(max_conns=1)
    c = establish_passive(t)
    send(t, 1, 1, RST)
    assert c.state == "CLOSED" and len(t.st.conns) == 1     # not reaped yet
    c2 = t.st.connect(t.now, PEER_ADDR, 80)
    assert c2 is not None and t.st.conns == [c2]


def test_passive_open_reaps_a_closed_connection_for_its_slot():
    t = Peer(max_conns=1)
    c = establish_passive(t)
    send(t, 1, 1, RST)
    t.peer_port = 40001
    send(t, 0, None, SYN, mss=1460)
    assert t.ctr("ListenOverflows") == 0 and t.ctr("TcpPassiveOpens") == 2
    assert len(t.st.conns) == 1 and t.st.conns[0].sf.rport == 40001


def test_connect_needs_an_interface_and_a_free_slot():
    st = Stack(seed=1, max_conns=1)
    assert st.connect(T0, PEER_ADDR, 80) is None
    st.add_netif(IFX, DEV_ADDR)
    assert st.connect(T0, PEER_ADDR, 80) is not None
    assert st.connect(T0, PEER_ADDR, 81) is None
    assert st.counters.get("TcpActiveOpens") == 1


def test_add_netif_again_replaces_the_address():
    t = Peer()
    t.st.add_netif(IFX, OTHER_ADDR)
    assert t.st.netifs == [[IFX, OTHER_ADDR, True, False]]
    t.st.listen(DEV_PORT)
    send(t, 0, None, SYN, mss=1460)              # to DEV_ADDR: not ours any more
    assert t.ctr("IpInAddrErrors") == 1 and t.ctr("TcpInSegs") == 0
    t.st.add_netif(IFX, DEV_ADDR)
    t.st.add_netif(7, OTHER_ADDR)
    assert t.st.netifs == [[IFX, DEV_ADDR, True, False], [7, OTHER_ADDR, True, False]]
    send(t, 0, None, SYN, mss=1460)
    expect(t, 0, 1, SYN | ACK, window=8192, mss=1460)


def test_ephemeral_port_in_use_is_skipped_and_the_range_wraps():
    st = Stack(seed=1, max_conns=3)
    st.add_netif(IFX, DEV_ADDR)
    c1 = st.connect(T0, PEER_ADDR, 80)
    st.next_port = c1.sf.lport
    c2 = st.connect(T0, PEER_ADDR, 80)
    assert c2.sf.lport == c1.sf.lport + 1
    st.next_port = 65535
    c3 = st.connect(T0, PEER_ADDR, 80)
    assert c3.sf.lport == 65535 and st.next_port == EPHEMERAL_LO


def test_receive_window_scale_follows_the_ring():
    """A ring above 64 KiB needs a window scale in the SYN (RFC 7323): 131072 -> 2."""
    t = Peer(rcv_buf=131072)
    c, syn = active_open(t)
    assert syn.opts["ws"] == 2 and c.sf.rcv_wscale == 2
    t = Peer(rcv_buf=65535)
    c, syn = active_open(t)
    assert c.sf.rcv_wscale == 0


# ---------------------------------------------------------------- listen / accept
def test_listen_again_changes_the_listener():
    t = Peer()
    t.st.listen(DEV_PORT, mptcp=True)
    t.st.listen(DEV_PORT, mptcp=False)
    assert t.st.listeners == [[DEV_PORT, False, False]]
    send(t, 0, None, SYN, mss=1460, mpc=Mpc(MP.CAP_H))
    expect(t, 0, 1, SYN | ACK, window=8192, mss=1460)
    t = Peer()
    t.st.listen(DEV_PORT, mptcp=True)
    t.st.listen(DEV_PORT, mptcp=True, csum=True)
    assert t.st.listeners == [[DEV_PORT, True, True]]
    send(t, 0, None, SYN, mss=1460, mpc=Mpc(MP.CAP_H))
    s = recv(t)
    assert s.opts["mpc"].flags == MP.CAP_H | MP.CAP_A
    c = t.st.conns[0]
    assert c.mptcp and c.csum and c.want_csum


def test_mp_capable_syn_is_found_after_other_options():
    """The subtype is read from the option itself, whatever precedes it (here an MSS
    whose high byte is 0x20)."""
    t = Peer()
    t.st.listen(DEV_PORT, mptcp=True)
    send(t, 0, None, SYN, mss=8192, mpc=Mpc(MP.CAP_H))
    s = recv(t)
    assert s.flags == SYN | ACK and "mpc" in s.opts
    assert t.st.conns[0].mptcp and t.ctr("MPCapableSYNRX") == 1


def test_mp_capable_syn_with_a_key_is_not_accepted():
    """RFC 8684 3.1: MP_CAPABLE in a SYN is 4 bytes (v1 sends no key there); a 12-byte
    one is not a v1 SYN option: plain TCP, as Linux."""
    t = Peer()
    t.st.listen(DEV_PORT, mptcp=True)
    send(t, 0, None, SYN, mss=1460,
         raw_opts=[30, 12, 0x01, MP.CAP_H, 1, 2, 3, 4, 5, 6, 7, 8])
    expect(t, 0, 1, SYN | ACK, window=8192, mss=1460)
    assert not t.st.conns[0].mptcp and t.ctr("MPCapableSYNRX") == 0


def test_other_4_byte_mptcp_option_in_a_syn_is_not_mp_capable():
    """Only MP_CAPABLE opens MPTCP: a SYN with a 4-byte DSS (and no MP_CAPABLE) gets a
    plain SYN/ACK, also after an MP_CAPABLE SYN was parsed."""
    t = Peer()
    passive_open(t, mptcp=True)
    assert t.st.conns[0].mptcp
    t.peer_port = 40001
    send(t, 0, None, SYN, mss=1460, raw_opts=[30, 4, 0x20, 0])
    s = recv(t)
    assert s.flags == SYN | ACK and s.opts == {"mss": 1460}
    assert not t.st.conns[1].mptcp and t.ctr("MPCapableSYNRX") == 1


def test_second_listener_on_another_port():
    t = Peer()
    t.st.listen(81, mptcp=True, csum=True)
    t.st.listen(DEV_PORT, mptcp=False)
    assert t.st.listeners == [[81, True, True], [DEV_PORT, False, False]]
    send(t, 0, None, SYN, mss=1460, mpc=Mpc(MP.CAP_H))
    expect(t, 0, 1, SYN | ACK, window=8192, mss=1460)


def test_mp_capable_syn_negotiates_checksums_from_either_side():
    t = Peer()
    passive_open(t, mptcp=True, csum=False)
    c = t.st.conns[0]
    assert c.mptcp and not c.csum and not c.want_csum
    assert t.ctr("MPCapableSYNRX") == 1 and t.ctr("TcpPassiveOpens") == 1
    t = Peer()
    passive_open(t, mptcp=True, csum=True, listen_mptcp=True)   # the peer sets A
    c = t.st.conns[0]
    assert c.csum


def test_accept_returns_established_connections_in_order():
    t = Peer(max_conns=3)
    assert t.st.accept() is None
    t.st.listen(DEV_PORT, mptcp=False)
    for port in (40001, 40002):
        t.peer_port = port
        send(t, 0, None, SYN, mss=1460)
        s = recv(t)
        t.iss = s.seq if t.iss is None else t.iss
    # third ACKs: each connection has its own ISS
    for i, port in enumerate((40001, 40002)):
        c = t.st.conns[i]
        inject(t, build(t, (PEER_ISN + 1) & 0xFFFFFFFF, (c.sf.iss + 1) & 0xFFFFFFFF, ACK,
                        sport=port, abs_seq=True))
    a = t.st.accept()
    b = t.st.accept()
    assert a is t.st.conns[0] and b is t.st.conns[1]
    assert a.accepted and b.accepted and a.sf.rport == 40001 and b.sf.rport == 40002
    assert t.st.accept() is None
    t.st.conn_ready(a)                      # accepted already: not queued again
    assert t.st.accept() is None


def test_conn_ready_queues_once():
    st = Stack(seed=1)
    st.add_netif(IFX, DEV_ADDR)
    c = st.connect(T0, PEER_ADDR, 80)
    st.conn_ready(c)
    st.conn_ready(c)
    assert st.accept() is c and c.accepted
    assert st.accept() is None


def test_listen_overflow_drops_the_syn():
    """No room for another connection: the SYN is dropped (the peer retries), counted."""
    t = Peer(max_conns=1)
    establish_passive(t)
    t.peer_port = 40009
    send(t, 0, None, SYN, mss=1460)
    assert t.ctr("ListenOverflows") == 1 and t.ctr("TcpPassiveOpens") == 1
    assert len(t.st.conns) == 1
    expect_nothing(t)


def test_syn_with_ack_to_a_listener_is_reset():
    """Only a bare SYN opens; SYN+ACK to a listening port gets a RST (RFC 9293)."""
    t = Peer()
    t.st.listen(DEV_PORT)
    send(t, 77, 0x1000, SYN | ACK, abs_seq=True)
    expect(t, 0x1000, None, RST, window=0)
    assert t.ctr("DroppedNoSocket") == 1 and t.ctr("TcpPassiveOpens") == 0


def test_mp_join_syn_without_a_connection_is_refused_whatever_its_length():
    """An MP_JOIN SYN naming no connection, or malformed, is answered with RST + MP_TCPRST
    (RFC 8684 3.2, reason 1); the subtype is readable from a 3-byte option on."""
    for opt, bad in (([30, 12, 0x10, 0, 1, 2, 3, 4, 5, 6, 7, 8], 0), ([30, 3, 0x10], 1)):
        t = Peer()
        t.st.listen(DEV_PORT, mptcp=True)
        send(t, 5, None, SYN, raw_opts=opt)
        expect(t, 0, 6, RST | ACK, window=0, tcprst=(0, 1))
        assert t.ctr("MPJoinSynRx") == 1 and len(t.st.conns) == 0
        assert t.ctr("MPJoinNoTokenFound") == 1 - bad and t.ctr("TcpInErrsBadMptcp") == bad


def test_short_mptcp_option_in_a_syn_is_not_a_join():
    t = Peer()
    t.st.listen(DEV_PORT, mptcp=True)
    send(t, 0, None, SYN, raw_opts=[30, 2])
    s = recv(t)
    assert s.flags == SYN | ACK and "mpc" not in s.opts
    assert t.ctr("MPJoinSynRx") == 0


def test_subflow_keeps_four_out_of_order_islands():
    """SUBFLOW_OOO_SLOTS: with checksums the data level holds no islands of its own (data
    waits in the ring for its mapping's sum), so the subflow's four slots are the limit: a
    fifth island is dropped (TcpOFODrop) and the peer retransmits it."""
    t = Peer()
    passive_open(t, mptcp=True, csum=True)
    send(t, 1, 1, ACK, mpc=Mpc(MP.CAP_H | MP.CAP_A, t.peer_key, t.dev_key))
    c = t.st.accept()
    assert c.csum
    d = bytes(range(100))
    for seq in (11, 31, 51, 71, 91):
        send(t, seq, 1, ACK, payload=d[seq - 1:seq + 9],
             dss=Dss(ack=1, dsn=seq, ssn=seq, dll=10, csum=True))
    assert _ctrs(t, "TcpOFOQueue", "TcpOFODrop") == (4, 1)
    drain(t)
    for seq in (1, 21, 41, 61, 81):
        send(t, seq, 1, ACK, payload=d[seq - 1:seq + 9],
             dss=Dss(ack=1, dsn=seq, ssn=seq, dll=10, csum=True))
    assert _ctrs(t, "DataCsumErr", "TcpOFODrop") == (0, 1)
    b = bytearray(200)
    assert c.readinto(b) == 90 and bytes(b[:90]) == d[:90]


# ---------------------------------------------------------------- input checks and counters
def test_every_ip_packet_is_counted_in():
    t = Peer()
    inject(t, bytes([0x60]) + bytes(39))                # IPv6
    assert _ctrs(t, "IpInReceives", "IpInNotV4", "IpInHdrErrors") == (1, 1, 0)
    inject(t, bytes([0x45]) + bytes(9))                 # short
    assert _ctrs(t, "IpInReceives", "IpInNotV4", "IpInHdrErrors") == (2, 1, 1)
    p = bytearray(build(t, 0, None, SYN))
    p[10] ^= 0xFF                                       # IP header checksum
    inject(t, p)
    assert _ctrs(t, "IpInReceives", "IpInNotV4", "IpInHdrErrors") == (3, 1, 2)
    assert t.ctr("TcpInSegs") == 0


def test_non_tcp_and_foreign_packets():
    t = Peer()
    b = bytearray(28)
    ipv4.write(b, 0, PEER_ADDR, DEV_ADDR, 17, 8, 1)     # UDP
    inject(t, b)
    assert _ctrs(t, "IpInReceives", "IpInUnknownProtos", "IpInAddrErrors") == (1, 1, 0)
    p = bytearray(build(t, 0, None, SYN))
    p[16:20] = OTHER_ADDR                               # not our address
    ipv4.write(p, 0, PEER_ADDR, OTHER_ADDR, 6, len(p) - 20, 1)
    inject(t, p)
    assert _ctrs(t, "IpInReceives", "IpInUnknownProtos", "IpInAddrErrors") == (2, 1, 1)
    assert t.ctr("TcpInSegs") == 0 and t.ctr("TcpInCsumErrors") == 0
    expect_nothing(t)


def test_tcp_checksum_and_header_errors():
    t = Peer()
    t.st.listen(DEV_PORT)
    p = bytearray(build(t, 0, None, SYN, payload=b"x"))
    p[-1] ^= 1
    inject(t, p)
    assert _ctrs(t, "TcpInCsumErrors", "TcpInErrs", "TcpInSegs") == (1, 0, 0)
    p = bytearray(build(t, 0, None, SYN))
    p[32] = 0x40                                        # data offset 4 words: < 20 bytes
    _fix_tcp_csum(p)
    inject(t, p)
    assert _ctrs(t, "TcpInCsumErrors", "TcpInErrs", "TcpInErrsBadOpt", "TcpInSegs") == (
        1, 1, 0, 0)
    send(t, 0, None, SYN, raw_opts=[2, 3, 5])           # MSS option of length 3
    assert _ctrs(t, "TcpInErrs", "TcpInErrsBadOpt", "TcpInSegs") == (2, 1, 0)
    assert t.ctr("IpInReceives") == 3 and len(t.st.conns) == 0
    expect_nothing(t)
    send(t, 0, None, SYN, mss=1460)
    assert _ctrs(t, "TcpInErrs", "TcpInSegs", "IpInReceives") == (2, 1, 4)


def _fix_tcp_csum(p):
    n = len(p)
    p[36] = p[37] = 0
    ps = ipv4.pseudo_sum(p, p, 6, n - 20, 12, 16)
    W.set_csum(p, 20, checksum.inet_checksum(p, 20, n, ps))


# ---------------------------------------------------------------- stack-level RST (RFC 9293 3.10.7.1)
def test_rst_for_a_segment_with_ack():
    """<SEQ=SEG.ACK><CTL=RST>, no options, window 0, from the address it was sent to."""
    t = Peer()
    send(t, 0x1234, 0xCAFE0001, ACK | PSH, payload=b"hello", abs_seq=True)
    assert t.ctr("DroppedNoSocket") == 1
    p = _raw_out(t.st, t.now)
    assert p == (IFX, DEV_ADDR, PEER_ADDR, 1, DEV_PORT, 40000, 0xCAFE0001, 0, RST, 0, b"")
    assert _ctrs(t, "TcpOutRsts", "TcpOutSegs") == (1, 1)
    expect_nothing(t)


def test_rst_for_a_segment_without_ack():
    """<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>: SYN and FIN count in SEG.LEN."""
    for flags, pay, ln in ((SYN, b"", 1), (SYN | FIN, b"abc", 5), (FIN, b"ab", 3),
                           (0, b"abcd", 4), (PSH, b"", 0)):
        t = Peer()
        send(t, 0xFFFFFFFE, None, flags, payload=pay, abs_seq=True)
        p = _raw_out(t.st, t.now)
        assert p[6:9] == (0, (0xFFFFFFFE + ln) & 0xFFFFFFFF, RST | ACK), (flags, p)


def test_rst_fields_do_not_leak_from_the_previous_rst():
    t = Peer()
    send(t, 0x500, None, SYN, abs_seq=True)
    assert _raw_out(t.st, t.now)[6:9] == (0, 0x501, RST | ACK)
    send(t, 0x600, 0x9000, ACK, abs_seq=True)
    assert _raw_out(t.st, t.now)[6:9] == (0x9000, 0, RST)
    send(t, 0x700, None, FIN, abs_seq=True)
    assert _raw_out(t.st, t.now)[6:9] == (0, 0x701, RST | ACK)


def test_no_rst_for_a_rst():
    t = Peer()
    send(t, 5, 9, RST | ACK, abs_seq=True)
    send(t, 5, None, RST, abs_seq=True)
    assert t.ctr("DroppedNoSocket") == 2
    expect_nothing(t)
    expect_deadline(t, -1)


def test_one_pending_rst_at_a_time():
    """The first unanswered segment is the one answered; the next output sends it."""
    t = Peer()
    send(t, 1, 0x1111, ACK, abs_seq=True)
    expect_deadline(t, T0)
    send(t, 1, 0x2222, ACK, abs_seq=True)
    at(t, T0 + 5)
    p = _raw_out(t.st, t.now)
    assert p[6] == 0x1111
    assert _raw_out(t.st, t.now) is None
    assert t.ctr("TcpOutRsts") == 1


def test_rst_goes_out_on_the_interface_it_came_from():
    t = Peer()
    t.st.add_netif(8, OTHER_ADDR)
    pkt = bytearray(build(t, 1, 0x77, ACK, abs_seq=True))
    pkt[16:20] = OTHER_ADDR
    ipv4.write(pkt, 0, PEER_ADDR, OTHER_ADDR, 6, len(pkt) - 20, 1)
    _fix_tcp_csum(pkt)
    t.inb[:len(pkt)] = pkt
    t.st.input(8, t.inb, len(pkt), t.now)
    p = _raw_out(t.st, t.now)
    assert p[:3] == (8, OTHER_ADDR, PEER_ADDR) and p[6] == 0x77


def test_ip_ident_counts_every_packet_sent():
    """One IP identification counter for the stack: RSTs and segments alike."""
    t = Peer()
    send(t, 1, 5, ACK, abs_seq=True)
    assert _raw_out(t.st, t.now)[3] == 1
    send(t, 1, 6, ACK, abs_seq=True)
    assert _raw_out(t.st, t.now)[3] == 2
    t.st.listen(DEV_PORT)
    send(t, 0, None, SYN, mss=1460)
    assert _raw_out(t.st, t.now)[3] == 3
    assert t.ctr("TcpOutSegs") == 3 and t.ctr("TcpOutRsts") == 2


# ---------------------------------------------------------------- challenge ACKs (RFC 5961 7)
def test_challenge_acks_are_limited_per_second():
    """A SYN in ESTABLISHED gets a challenge ACK, at most 10 a second; more are counted
    (ChallengeAcksLimited) and not sent; the next second starts over."""
    t = Peer()
    establish_passive(t)
    for i in range(10):
        send(t, 1, 1, SYN, abs_seq=False)
        expect(t, 1, 1, ACK, window=8192)
        at(t, t.now + 50)
    assert _ctrs(t, "ChallengeAcks", "ChallengeAcksLimited") == (10, 0)
    at(t, T0 + 999)
    send(t, 1, 1, SYN)
    expect_nothing(t)
    assert _ctrs(t, "ChallengeAcks", "ChallengeAcksLimited") == (10, 1)
    send(t, 1, 1, SYN)
    assert _ctrs(t, "ChallengeAcks", "ChallengeAcksLimited") == (10, 2)
    at(t, T0 + 1000)
    send(t, 1, 1, SYN)
    expect(t, 1, 1, ACK, window=8192)
    assert _ctrs(t, "ChallengeAcks", "ChallengeAcksLimited") == (11, 2)


def test_challenge_ack_window_at_tick_zero():
    """Tick 0 is a time like any other: a window that starts there limits too."""
    t = Peer(now=0)
    establish_passive(t)
    for i in range(11):
        send(t, 1, 1, SYN)
    assert _ctrs(t, "ChallengeAcks", "ChallengeAcksLimited") == (10, 1)


def test_challenge_ack_first_window_starts_at_the_first_challenge():
    t = Peer(now=100)
    establish_passive(t)
    at(t, 500)
    for i in range(10):
        send(t, 1, 1, SYN)
    at(t, 1100)
    send(t, 1, 1, SYN)                      # 600 ms into the window
    assert _ctrs(t, "ChallengeAcks", "ChallengeAcksLimited") == (10, 1)
    at(t, 1500)
    send(t, 1, 1, SYN)
    assert _ctrs(t, "ChallengeAcks", "ChallengeAcksLimited") == (11, 1)


def test_challenge_ack_window_starts_at_the_first_one():
    t = Peer()
    establish_passive(t)
    at(t, T0 + 500)
    for i in range(11):
        send(t, 1, 1, SYN)
    assert _ctrs(t, "ChallengeAcks", "ChallengeAcksLimited") == (10, 1)
    drain(t)
    at(t, T0 + 1499)
    send(t, 1, 1, SYN)
    assert _ctrs(t, "ChallengeAcks", "ChallengeAcksLimited") == (10, 2)
    at(t, T0 + 1500)
    send(t, 1, 1, SYN)
    assert _ctrs(t, "ChallengeAcks", "ChallengeAcksLimited") == (11, 2)


# ---------------------------------------------------------------- internal errors
def test_input_never_raises_unless_strict():
    st = Stack(seed=1, strict=False)
    st.input(IFX, None, 40, T0)             # not a buffer: a bug path, counted
    st.input(IFX, None, 40, T0)
    assert st.counters.get("InternalErrors") == 2
    assert st.counters.get("IpInReceives") == 2        # counted before the failure
    st = Stack(seed=1, strict=True)
    raises(TypeError, st.input, IFX, None, 40, T0)
    assert st.counters.get("InternalErrors") == 1


def test_a_device_is_not_strict_by_default():
    """Stack.strict is False unless a test runner sets it (tests/conftest.py, mpy_run.py
    flip the class attribute): a device counts an internal error and keeps running. A
    fresh copy of the class, from the module source, shows the default."""
    import mptcp.stack
    fn = getattr(mptcp.stack, "__file__", None)
    if fn is None or not fn.endswith(".py"):
        raise NotApplicable("mptcp.stack is not loaded from source (frozen or .mpy)")
    with open(fn) as f:
        src = f.read()
    ns = {"__name__": "fresh_stack"}
    exec(src, ns)
    assert ns["Stack"].strict is False
    st = ns["Stack"](seed=1)
    st.input(IFX, None, 40, T0)
    assert st.counters.get("InternalErrors") == 1


def test_output_never_raises_unless_strict():
    t = Peer()
    t.st.strict = False
    send(t, 1, 5, ACK, abs_seq=True)        # a RST to send
    assert t.st.output(t.now, None) == 0
    assert t.ctr("InternalErrors") == 1
    t.st.strict = True
    send(t, 1, 5, ACK, abs_seq=True)
    raises(TypeError, t.st.output, t.now, None)
    assert t.ctr("InternalErrors") == 2


# ---------------------------------------------------------------- output and timers
def test_output_with_nothing_to_do():
    st = Stack(seed=1)
    out = bytearray(1600)
    assert st.output(T0, out) == 0
    assert st.next_deadline() == -1
    st.add_netif(IFX, DEV_ADDR)
    st.connect(T0, PEER_ADDR, 80)
    assert st.output(T0, out) > 0
    assert st.output(T0, out) == 0          # SYN sent, its timer runs
    assert st.next_deadline() == T0 + 1000


def test_next_deadline_is_the_earliest_connection_timer():
    st = Stack(seed=1, max_conns=3)
    st.add_netif(IFX, DEV_ADDR)
    c0 = st.connect(T0, PEER_ADDR, 80, mptcp=False)
    assert _raw_out(st, T0)[8] == SYN                   # its RTO: T0 + 1000
    st.connect(T0 + 300, PEER_ADDR, 80, mptcp=False)
    assert _raw_out(st, T0 + 300)[8] == SYN             # T0 + 1300
    assert st.next_deadline() == T0 + 1000
    _syn_ack_to(st, c0, T0 + 400)                       # c0 established: an ACK now
    assert st.next_deadline() == T0 + 400
    assert _raw_out(st, T0 + 400)[8] == ACK
    assert st.next_deadline() == T0 + 1300              # c0 has no timer left


def test_next_deadline_now_is_the_last_output_time():
    """What is due at once is due at the latest `now` given to output (or input)."""
    t = Peer()
    establish_passive(t)
    at(t, T0 + 100)
    send(t, 1, 1, SYN)                      # a challenge ACK to send
    send(t, 1, 0x1234, ACK, abs_seq=True, sport=40077)     # and a RST (no socket)
    expect_deadline(t, T0 + 100)
    at(t, T0 + 300)
    p = _raw_out(t.st, t.now)
    assert p[8] == RST and p[5] == 40077
    expect_deadline(t, T0 + 300)            # the ACK, due since T0 + 100
    expect(t, 1, 1, ACK, window=8192)


def test_input_reuses_its_view_of_the_runtime_buffer():
    """The runtime gives every packet in one buffer: one memoryview of it, made once."""
    t = Peer()
    establish_passive(t)
    mv = t.st._in_mv
    assert mv is not None
    send(t, 1, 1, ACK | PSH, payload=b"ab")
    send(t, 3, 1, ACK | PSH, payload=b"cd")
    assert t.st._in_mv is mv
    assert t.conn.rcv.len == 4


def test_pending_rst_is_due_now():
    t = Peer()
    at(t, T0 + 123)
    send(t, 1, 5, ACK, abs_seq=True)
    expect_deadline(t, T0 + 123)


class _Ends:
    """What segtest.build needs to address a segment to one device connection."""
    irs = PEER_ISN
    iss = 0
    peer_port = DEV_PORT
    dev_port = 0


def _syn_ack_to(st, c, now):
    """The peer's SYN/ACK to device connection c (peer ISN PEER_ISN)."""
    t = _Ends()
    t.iss = c.sf.iss
    t.dev_port = c.sf.lport
    pkt = build(t, 0, 1, SYN | ACK, mss=1460)
    buf = bytearray(pkt)
    st.input(IFX, buf, len(buf), now)


def test_output_takes_connections_round_robin():
    """After connection j sent, the next output starts with j + 1: three connections, the
    first idle, the other two each with an ACK to send: the second goes first."""
    st = Stack(seed=1, max_conns=3)
    st.add_netif(IFX, DEV_ADDR)
    cs = [st.connect(T0, PEER_ADDR, 80, mptcp=False) for _ in range(3)]
    order = [_raw_out(st, T0)[4] for _ in range(3)]
    assert order == [c.sf.lport for c in cs]            # the SYNs in connect order
    _syn_ack_to(st, cs[2], T0 + 10)
    _syn_ack_to(st, cs[1], T0 + 10)
    a = _raw_out(st, T0 + 10)
    b = _raw_out(st, T0 + 10)
    assert (a[4], a[8]) == (cs[1].sf.lport, ACK)
    assert (b[4], b[8]) == (cs[2].sf.lport, ACK)
    assert _raw_out(st, T0 + 10) is None


def test_round_robin_continues_after_the_last_sender():
    st = Stack(seed=1, max_conns=3)
    st.add_netif(IFX, DEV_ADDR)
    cs = [st.connect(T0, PEER_ADDR, 80, mptcp=False) for _ in range(3)]
    assert _raw_out(st, T0)[4] == cs[0].sf.lport
    assert _raw_out(st, T0)[4] == cs[1].sf.lport
    _syn_ack_to(st, cs[0], T0)              # conn 0 has an ACK to send, conn 2 its SYN
    assert _raw_out(st, T0)[4] == cs[2].sf.lport
    assert _raw_out(st, T0)[4] == cs[0].sf.lport


def test_closed_connections_are_reaped_and_forgotten():
    """A connection that ended is dropped from the stack, the demux cache included (its
    rings can be freed)."""
    t = Peer()
    c = establish_passive(t)
    assert t.st.last is c.sf                # the demux cache holds the last subflow hit
    send(t, 1, 1, RST)
    assert c.state == "CLOSED" and c.error is not None
    expect_nothing(t)                       # output reaps it
    assert t.st.conns == [] and t.st.last is None
    assert t.st.connect(t.now, PEER_ADDR, 80) is not None


def test_demux_finds_each_connection():
    t = Peer(max_conns=2)
    c = establish_passive(t)
    t.peer_port = 40001
    send(t, 0, None, SYN, mss=1460)
    assert recv(t).flags == SYN | ACK
    c2 = t.st.conns[1]
    assert c2.sf.rport == 40001 and t.st.last is c.sf   # a passive open is no demux hit
    inject(t, build(t, (PEER_ISN + 1) & 0xFFFFFFFF, (c2.sf.iss + 1) & 0xFFFFFFFF, ACK | PSH,
                    payload=b"two", abs_seq=True))
    assert t.st.last is c2.sf and c2.rcv.len == 3 and c.rcv.len == 0
    t.peer_port = 40000
    send(t, 1, 1, ACK | PSH, payload=b"one")
    assert t.st.last is c.sf and c.rcv.len == 3 and c2.rcv.len == 3
