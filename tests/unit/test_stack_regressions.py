"""Minimal reproducers of core bugs found by the lossy pair and the fuzzer (issue 7).

One test per bug, named after its letter; each one failed on the core it was
written against. Two Stacks in memory, with a packet filter or crafted segments.
Runs under MicroPython and CPython.
"""
from mptcp import tcpwire as T
from mptcp import mpopts as MP
from mptcp import ipv4
from netsim import (Link, App, pair, run, run_for, establish, craft, tcp_fix, payload_len,
                    strip_mptcp, A_ADDR, B_ADDR)


def conn_pair(mptcp=True, csum=False, snd=16384, rcv=16384, seed=1):
    a, b = pair(snd, rcv, seed)
    b.listen(5001, mptcp, csum)
    link = Link(a, b)
    now = 1000
    ca = a.connect(now, B_ADDR, 5001, mptcp=mptcp, csum=csum)
    now, cb = establish(link, now, ca, b)
    return a, b, link, now, ca, cb


def finish(link, now, pa, pb, limit=60000):
    """Run both apps to the end; both directions intact, both ends closed without error."""
    def step():
        pa.step()
        pb.step()
        return pa.finished() and pb.finished()
    try:
        now = run(link, now, step, limit)
    except AssertionError:
        raise AssertionError("hung: a %s/%s got %d/%d, b %s/%s got %d/%d" % (
            pa.c.state, pa.c.error, pa.got, pb.src.size, pb.c.state, pb.c.error, pb.got,
            pa.src.size))
    assert pb.got == pa.src.size and pb.h.digest() == pa.src.h.digest()
    assert pa.got == pb.src.size and pa.h.digest() == pb.src.h.digest()
    now = run_for(link, now, 3000)
    for c in (pa.c, pb.c):
        assert c.error is None and c.state == "CLOSED", (c.state, c.error)
    for st in (link.a, link.b):
        assert st.counters.get("InternalErrors") == 0, st.counters.nonzero()
    return now


def is_pure_ack(pkt):
    return payload_len(pkt) == 0 and not (pkt[33] & (T.SYN | T.FIN | T.RST))


# ---------------------------------------------------------------- I
def _bug_i(mptcp):
    a, b, link, now, ca, cb = conn_pair(mptcp)
    pa = App(link, ca, 4000, 1)
    pb = App(link, cb, 4000, 2)
    state = {"drop": True}

    t0 = now

    def no_acks(pkt, dst):
        # both flights arrive; every pure ACK is lost until both ends have timed out (or,
        # when one end's data was acknowledged by the other's data, for 3 s)
        if state["drop"] and is_pure_ack(pkt):
            if (a.counters.get("TcpRTOs") and b.counters.get("TcpRTOs")) \
                    or link.now - t0 > 3000:
                state["drop"] = False
                return pkt
            return None
        return pkt
    link.fwd = no_acks
    finish(link, now, pa, pb)


def test_bug_I_lost_round_of_acks_two_way_plain():
    """One round of ACKs lost both ways in a two-way transfer: after the RTO, the ACKs of
    both ends (seq = snd_nxt < the peer's rcv_nxt) must still be taken by the peer."""
    _bug_i(False)


def test_bug_I_lost_round_of_acks_two_way_mptcp():
    _bug_i(True)


# ---------------------------------------------------------------- H
def _bug_h(mptcp):
    a, b, link, now, ca, cb = conn_pair(mptcp)
    pa = App(link, ca, 60000, 3)       # more than the ring: no FIN in this story
    pb = App(link, cb, 0, 4)
    sf = ca.sf
    pa.cap = 4000                      # 4000 bytes delivered and acked, then quiet
    now = run(link, now, lambda: pa.step() or pb.step() or (
        sf.snd_una == 4001 and not link.q and sf.ack_deadline < 0
        and cb.sf.ack_deadline < 0))
    # the next flight is lost; nothing reaches b until a's RTO
    state = {"drop": True}

    def drop_to_b(pkt, dst):
        if state["drop"] and dst is b:
            if a.counters.get("TcpRTOs"):
                state["drop"] = False
                return pkt
            return None
        return pkt
    link.fwd = drop_to_b
    pa.cap = -1
    pa.step()
    link.pump(now)
    una = sf.snd_una
    assert sf.snd_max - una >= 3 * 1000, (una, sf.snd_max)
    # b claims what is in flight: ack = una, SACK [una, snd_max) (the segment at SND.UNA too)
    sack = bytearray(12)
    sack[0] = T.OPT_NOP
    sack[1] = T.OPT_NOP
    sack[2] = T.OPT_SACK
    sack[3] = 10
    T.put_seq(sack, 4, sf.iss_h, sf.iss_l, una)
    T.put_seq(sack, 8, sf.iss_h, sf.iss_l, sf.snd_max)
    p = craft(cb.sf, T.ACK, bytes(sack), ack=una)
    a.input(1, p, len(p), now)
    finish(link, now, pa, pb)


def test_bug_H_sack_covering_snd_una_then_rto_plain():
    """A SACK block covering the segment at SND.UNA (a reneging receiver, or a forged
    ACK): after the RTO the sender must still retransmit SND.UNA (RFC 2018 section 8)."""
    _bug_h(False)


def test_bug_H_sack_covering_snd_una_then_rto_mptcp():
    _bug_h(True)


# ---------------------------------------------------------------- E
def test_bug_E_fin_acked_after_rto():
    """Data and FIN sent; every ACK lost until the RTO; then one ACK covers the data and
    the FIN (the peer had it all): the sender must see its FIN acknowledged and close."""
    a, b, link, now, ca, cb = conn_pair(False)
    pa = App(link, ca, 4000, 5)
    pb = App(link, cb, 0, 6, read_at=0)
    state = {"drop": True}

    def drop_acks(pkt, dst):
        if state["drop"] and dst is a:
            if a.counters.get("TcpRTOs"):
                state["drop"] = False
                return pkt
            return None
        return pkt
    link.fwd = drop_acks
    # b keeps its side open until it has read everything (App), then closes
    finish(link, now, pa, pb)


# ---------------------------------------------------------------- B
def _bug_b(mptcp):
    a, b, link, now, ca, cb = conn_pair(mptcp)
    # b shuts its side down at once and reads only after both FINs were exchanged
    pa = App(link, ca, 12000, 7)
    pb = App(link, cb, 0, 8, read_at=now + 400)
    finish(link, now, pa, pb)


def test_bug_B_window_update_after_both_fins_plain():
    """b reads the data after both FINs were exchanged (a is CLOSED): b's window updates
    must not be sent (nor answered with a RST turning b's clean close into 'reset')."""
    _bug_b(False)


def test_bug_B_window_update_after_both_fins_mptcp():
    _bug_b(True)


# ---------------------------------------------------------------- F
def test_bug_F_no_ack_storm_between_desynchronised_ends():
    """A blind in-window injection moves b's rcv_nxt past a's snd_max. From then on each
    end finds the other's segments unacceptable and answers with an ACK: those ACKs must
    be rate-limited (Linux: tcp_invalid_ratelimit, 500 ms), not ping-pong for ever."""
    a, b, link, now, ca, cb = conn_pair(False)
    ca.write(b"hello")
    now = run(link, now, lambda: cb.rcv.len == 5 and ca.sf.snd_una == ca.sf.snd_max)
    p = craft(ca.sf, T.ACK | T.PSH, payload=b"z" * 1000)      # as if from a, in window
    b.input(1, p, len(p), now)
    before = link.sent
    run_for(link, now, 10000)
    n = link.sent - before
    print("segments in 10 s between two idle, desynchronised ends:", n)
    assert n <= 60, ("segments in 10 s between two idle, desynchronised ends", n)
    for st in (a, b):
        assert st.counters.get("InternalErrors") == 0


# ---------------------------------------------------------------- C
def test_bug_C_mp_fail_length_checked():
    """An MP_FAIL option of length 4 (MP_FAIL is 12 bytes) is malformed: ignored, the
    connection stays MPTCP, no echo, no infinite mapping."""
    a, b, link, now, ca, cb = conn_pair(True)
    pa = App(link, ca, 20000, 9)
    pb = App(link, cb, 0, 10)
    pa.step()
    now = run(link, now, lambda: pa.step() or pb.step() or ca.sf.snd_una > 5000)
    bogus = bytes([MP.KIND, 4, MP.MP_FAIL << 4, 0])
    p = craft(cb.sf, T.ACK, bogus)
    a.input(1, p, len(p), now)
    finish(link, now, pa, pb)
    assert ca.mptcp and cb.mptcp, (ca.mptcp, cb.mptcp)
    assert a.counters.get("InfiniteMapTx") == 0


# ---------------------------------------------------------------- G
def test_bug_G_options_ignored_on_ack_of_unsent_data():
    """A segment acknowledging data never sent is dropped (RFC 9293 3.10.7.4): its
    MP_FASTCLOSE must not reset the connection."""
    a, b, link, now, ca, cb = conn_pair(True)
    pa = App(link, ca, 20000, 11)
    pb = App(link, cb, 0, 12)
    now = run(link, now, lambda: pa.step() or pb.step() or ca.sf.snd_una > 5000)
    opt = bytearray(12)
    MP.put_mp_fastclose(opt, 0, ca.local_key)
    p = craft(cb.sf, T.ACK, bytes(opt), ack=cb.sf.rcv_nxt + 100000)
    a.input(1, p, len(p), now)
    assert ca.error is None, ca.error
    finish(link, now, pa, pb)


# ---------------------------------------------------------------- D
def test_bug_D_rst_for_bad_ack_in_syn_sent_leaves_on_the_connections_link():
    """A SYN/ACK with a wrong ACK in SYN_SENT is answered with a RST, on the link of the
    connection (ifindex 1 here), not on ifindex 0."""
    a, b = pair()
    now = 1000
    ca = a.connect(now, B_ADDR, 5001)
    out = bytearray(1600)
    assert a.output(now, out) > 0 and a.out_ifindex == 1       # the SYN
    sf = ca.sf
    p = bytearray(40)
    T.write_header(p, 20, 5001, sf.lport, 77777, (sf.iss + 1000) & 0xFFFFFFFF,
                   T.SYN | T.ACK, 8192, 0)
    ipv4.write(p, 0, B_ADDR, A_ADDR, 6, 20, 1)
    p = tcp_fix(p)
    a.input(1, p, len(p), now)
    n = a.output(now, out)
    assert n == 40 and out[33] & T.RST, n
    assert a.out_ifindex == 1, ("RST sent on ifindex", a.out_ifindex)


# ---------------------------------------------------------------- K (new: FIN_WAIT_2 timer)
def test_bug_K_half_closed_end_keeps_receiving_after_60s():
    """a shuts down its side at once (shutdown_write, still reading); b sends, pauses 70 s,
    sends again. The FIN_WAIT_2 timeout is for orphaned sockets (Linux tcp_fin_timeout,
    after close()): a half-closed end must not close silently and lose what follows."""
    for mptcp in (False, True):
        a, b, link, now, ca, cb = conn_pair(mptcp)
        pa = App(link, ca, 0, 13)
        pb = App(link, cb, 4000, 14)
        pb.cap = 2000
        now = run(link, now, lambda: pa.step() or pb.step() or pa.got == 2000)
        now = run_for(link, now, 70000, lambda: pa.step() or pb.step())
        pb.cap = -1
        finish(link, now, pa, pb)


# ---------------------------------------------------------------- L (fuzzer, issue 7)
def test_bug_L_third_ack_without_mp_capable_csum():
    """The third ACK arrives without its MP_CAPABLE (stripped, or malformed and so
    ignored): the server falls back (RFC 8684 3.1, Linux). With DSS checksums
    negotiated, the fallen-back server must still deliver what it receives (plain TCP
    has no checksummed mappings to wait for)."""
    a, b = pair(8192, 8192, 21)
    b.listen(5001, True, True)
    link = Link(a, b)
    state = {"done": False}

    def strip_third_ack(pkt, dst):
        # the first pure ACK to b is the third ACK (MP_CAPABLE with both keys)
        if dst is b and not state["done"] and is_pure_ack(pkt):
            state["done"] = True
            return strip_mptcp(pkt)
        return pkt
    link.fwd = strip_third_ack
    now = 1000
    ca = a.connect(now, B_ADDR, 5001, csum=True)
    now, cb = establish(link, now, ca, b)
    assert state["done"] and not cb.mptcp
    pa = App(link, ca, 6000, 15)
    pb = App(link, cb, 3000, 16)
    finish(link, now, pa, pb)
    assert not ca.mptcp


# ---------------------------------------------------------------- M (fuzzer, issue 7)
def _strip_first_data_ack(link, a, cb):
    """The first pure ACK of a's data loses its MPTCP options on the way: a (the client, no
    DATA_ACK yet) falls back (RFC 8684 3.7) while b has already taken mapped data from a.
    Returns the state dict; state["done"] once it happened."""
    state = {"done": False}

    def strip(pkt, dst):
        if dst is a and not state["done"] and is_pure_ack(pkt) and cb.sf.rcv_nxt > 1:
            state["done"] = True
            return strip_mptcp(pkt)
        return pkt
    link.fwd = strip
    return state


def _bug_m(csum):
    a, b, link, now, ca, cb = conn_pair(True, csum, 8192, 8192, 23)
    state = _strip_first_data_ack(link, a, cb)
    pa = App(link, ca, 12000, 18)
    pb = App(link, cb, 2000, 17)
    pb.cap = 0              # b sends nothing (no DATA_ACK on data, no DATA_FIN) until then
    now = run(link, now, lambda: pa.step() or pb.step() or state["done"])
    pb.cap = -1
    finish(link, now, pa, pb)
    assert not ca.mptcp and not cb.mptcp


def test_bug_M_peer_falls_back_after_mapped_data():
    """The peer falls back after it sent mapped data: from then on its data comes
    without a DSS. In-order data outside every mapping means the peer fell back: follow
    it (Linux: MAPPING_INVALID on a single subflow -> fallback), never drop it for
    ever."""
    _bug_m(False)


def test_bug_M_peer_falls_back_after_mapped_data_csum():
    _bug_m(True)


# ---------------------------------------------------------------- O (fuzzer, issue 7)
def test_bug_O_fallback_releases_data_acked_only_by_the_subflow():
    """a (the client) falls back (its data acked without a DSS, RFC 8684 3.7) while b
    keeps MPTCP: a's ACKs cover b's data but carry no DATA_ACK, so b's send ring fills.
    When b follows (a's next data has no mapping) the subflow ACK is the delivery: the
    ring must be released up to SND.UNA, not wait for ever for a DATA_ACK that cannot
    come."""
    a, b, link, now, ca, cb = conn_pair(True, False, 4096, 4096, 25)
    state = _strip_first_data_ack(link, a, cb)
    pa = App(link, ca, 4000, 20)
    pb = App(link, cb, 12000, 19)
    pb.cap = 0
    pa.cap = 1000           # within a's first segment (MP_CAPABLE + data): all mapped
    now = run(link, now, lambda: pa.step() or pb.step() or (state["done"] and not ca.mptcp))
    pb.cap = -1             # b's ring fills with data a acks without a DATA_ACK
    now = run(link, now, lambda: pa.step() or pb.step() or (
        cb.snd.len == cb.snd.size and cb.sf.snd_una == cb.data_end()))
    assert cb.mptcp
    pa.cap = -1             # a's next data comes without a mapping: b falls back
    finish(link, now, pa, pb)
    assert not cb.mptcp


# ---------------------------------------------------------------- A (issue 7)
def test_bug_A_infinite_mapping_on_a_duplicate_segment_is_followed():
    """The peer's infinite mapping rides on a retransmission of data we already have
    (RFC 8684 3.7: it fell back when it sent it). The duplicate's DSS must still be read:
    fall back, then take the plain data that follows (before: dropped before its DSS was
    read, then all plain data dropped as DSSNoMatchTCP)."""
    from segtest import send, expect, read_all, ACK, Dss
    from test_mptcp_states import _est
    t, c = _est(csum=True)
    send(t, 1, 1, ACK, payload=b"hello", dss=Dss(ack=1, dsn=1, ssn=1, dll=5, csum=0x1234))
    expect(t, 1, 6, ACK, window=8187, dss=Dss(ack=6), mp_fail=1)
    send(t, 6, 1, ACK, dss=Dss(ack=1), mp_fail=1)            # the echo
    # a spurious retransmission of "hello" carries the infinite mapping
    send(t, 1, 1, ACK, payload=b"hello", dss=Dss(ack=1, dsn=1, ssn=1, dll=0, csum=True))
    assert not c.mptcp and t.ctr("InfiniteMapRx") == 1
    send(t, 6, 1, ACK, payload=b"world")                     # plain TCP from now on
    assert read_all(c) == b"helloworld"
    assert t.ctr("DSSNoMatchTCP") == 0


def test_bug_A_infinite_mapping_resent_with_its_segment():
    """Our infinite mapping's segment is lost: its retransmission carries it again (the peer
    falls back only when it sees it), although we fell back when we first sent it."""
    from segtest import send, expect, at, write_all, ACK, PSH, Dss, T0
    from test_mptcp_states import _est
    t, c = _est()
    send(t, 1, 1, ACK, payload=b"hello", dss=Dss(ack=1, dsn=1, ssn=1, dll=5))
    send(t, 6, 1, ACK, dss=Dss(ack=1), mp_fail=1)
    expect(t, 1, 6, ACK, window=8187, dss=Dss(ack=6), mp_fail=6)
    write_all(c, b"abc")
    expect(t, 1, 6, ACK | PSH, window=8187, payload=b"abc",
           dss=Dss(ack=6, dsn=1, ssn=1, dll=0))
    assert not c.mptcp
    at(t, T0 + 3000)                                         # lost: the RTO resends it
    expect(t, 1, 6, ACK | PSH, window=8187, payload=b"abc",
           dss=Dss(ack=6, dsn=1, ssn=1, dll=0))
    send(t, 6, 4, ACK)
    write_all(c, b"def")
    expect(t, 4, 6, ACK | PSH, window=8187, payload=b"def")  # beyond it: plain TCP
