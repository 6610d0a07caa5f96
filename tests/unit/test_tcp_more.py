"""More exact-segment tests of one subflow (mptcp.tcp): counters, timers at the tick
wrap, RTT arithmetic, byte statistics past 1 MiB, window-scale limits, stale option state.

Same harness as test_tcp_states.py / test_mptcp_states.py (tests/unit/segtest.py): one
device Stack, the test is its peer, sequence numbers relative (SYN = 0).
"""
from segtest import (Peer, Mpc, Dss, send, expect, expect_nothing, expect_deadline, recv,
                     drain, at, passive_open, establish_passive, active_open,
                     establish_active, write_all, read_all, pattern, Seg,
                     SYN, ACK, FIN, RST, PSH, T0, MP, PEER_ADDR, DEV_PORT)
from mptcp import ticks

MSS = 1460
H = MP.CAP_H


def _rtt(t, rtt, **kw):
    """Passive open with a handshake RTT of `rtt` ms (RTO = 3 * rtt, at least 200)."""
    passive_open(t, **kw)
    at(t, t.now + rtt)
    send(t, 1, 1, ACK, ts=kw.get("ts"))
    c = t.st.accept()
    assert c is not None
    t.conn = c
    return c


def _est_mptcp(**kw):
    """Passive MPTCP connection: SYN, SYN/ACK, third ACK with both keys (RTO 200)."""
    t = Peer(**kw)
    passive_open(t, mptcp=True)
    send(t, 1, 1, ACK, mpc=Mpc(H, t.peer_key, t.dev_key))
    c = t.st.accept()
    assert c is not None and c.mptcp
    t.conn = c
    return t, c


# ---------------------------------------------------------------- RFC 7323 window scale
def test_window_scale_shift_is_capped_at_14():
    """RFC 7323 2.3: the shift count is at most 14, however large the buffer (a
    shift of 15 would make the peer discard the option and assume no scaling)."""
    t = Peer()
    c = t.st.connect(t.now, PEER_ADDR, DEV_PORT, mptcp=False)
    sf = c.sf
    sf.set_rcv_wscale(0x10000 << 14)          # needs a shift of 15 to fit 16 bits
    assert sf.rcv_wscale == 14
    sf.set_rcv_wscale(0xFFFF << 14)           # fits with exactly 14
    assert sf.rcv_wscale == 14
    sf.set_rcv_wscale(0x20000)                # 128 KiB: 2
    assert sf.rcv_wscale == 2
    sf.set_rcv_wscale(0xFFFF)
    assert sf.rcv_wscale == 0


# ---------------------------------------------------------------- SYN_SENT
def test_data_written_in_syn_sent_waits_for_the_synack():
    """RFC 9293 3.10.2: data queued in SYN-SENT goes out only once ESTABLISHED."""
    t = Peer()
    c, syn = active_open(t)
    write_all(c, b"early")
    expect_nothing(t)
    expect_deadline(t, T0 + 1000)             # only the SYN's retransmission timer
    at(t, T0 + 30)
    send(t, 0, 1, SYN | ACK, mss=1460)
    expect(t, 1, 1, ACK | PSH, payload=b"early")
    expect_nothing(t)


def test_syn_rcvd_unacceptable_segment_leaves_no_ack_behind():
    """SYN-RECEIVED: a segment far outside the window is dropped; the ACK it would be
    owed is not carried into ESTABLISHED (no stray duplicate ACK after the third ACK,
    no timer spinning at `now` meanwhile)."""
    t = Peer()
    passive_open(t)
    send(t, 1 + 9000, 1, ACK, payload=b"zz")
    assert t.ctr("TcpInErrsOutOfWindow") == 1
    expect_nothing(t)
    expect_deadline(t, T0 + 1000)             # only the SYN/ACK's retransmission
    at(t, T0 + 10)
    send(t, 1, 1, ACK)
    c = t.st.accept()
    assert c is not None and c.state == "ESTABLISHED"
    expect_nothing(t)
    expect_deadline(t, -1)


# ---------------------------------------------------------------- abort / RST / timers
def test_abort_after_retransmitted_syn_crossed_still_sends_rst():
    """The peer's retransmitted SYN crossed our SYN/ACK and its ACK established the
    connection before we resent anything: abort() must still send a RST."""
    t = Peer()
    passive_open(t)
    send(t, 0, None, SYN, mss=1460)           # retransmitted SYN (SYN/ACK lost, it thinks)
    send(t, 1, 1, ACK)                        # ... then our first SYN/ACK arrives there
    c = t.st.accept()
    assert c is not None and c.state == "ESTABLISHED"
    c.abort()
    expect(t, 1, 1, RST | ACK, window=0)
    expect_nothing(t)
    assert c.state == "CLOSED" and t.ctr("TcpOutRsts") == 1


def test_reset_cancels_a_pending_delayed_ack():
    """A RST closes the subflow: its delayed-ACK timer goes with it (no deadline, no
    delayed ACK counted, nothing sent)."""
    t = Peer()
    c = establish_passive(t)
    send(t, 1, 1, ACK, payload=b"abc")
    expect_deadline(t, T0 + 40)
    send(t, 4, 1, RST | ACK)
    assert c.state == "CLOSED" and c.error == "reset"
    expect_deadline(t, -1)
    at(t, T0 + 40)
    expect_nothing(t)
    assert t.ctr("TcpDelayedAcks") == 0 and t.ctr("TcpInRsts") == 1
    assert t.ctr("TcpEstabResets") == 1


def test_rst_with_mp_tcprst_counted():
    """RFC 8684 3.6: a RST carrying MP_TCPRST (reason 'unspecified', T flag) resets the
    subflow (the connection waits for another) and is counted (MPRstRx, as Linux's
    MPTcpExtMPRstRx)."""
    t, c = _est_mptcp()
    send(t, 1, 1, RST | ACK, raw_opts=bytes([30, 4, (MP.MP_TCPRST << 4) | 1, 0]))
    assert c.sf.state_name() == "CLOSED" and c.error is None and not c.closed
    assert t.ctr("MPRstRx") == 1 and t.ctr("MPFastcloseRx") == 0
    expect_nothing(t)


def test_timers_at_half_the_tick_space_read_as_future():
    """ticks convention (mptcp.ticks.due, time.ticks_diff): a deadline exactly HALF
    ticks behind `now` is HALF ahead: the persist timer does not fire then."""
    t = Peer()
    passive_open(t)
    at(t, t.now + 100)
    send(t, 1, 1, ACK, window=0)              # RTO 300, zero window
    c = t.st.accept()
    now = t.now
    write_all(c, pattern(10))
    expect_nothing(t)
    expect_deadline(t, now + 300)             # the persist timer
    at(t, now + 300 + ticks.HALF)
    assert not ticks.due(t.now, now + 300)
    expect_nothing(t)
    assert t.ctr("TcpZeroWindowProbes") == 0


def test_zero_window_probes_answered_never_give_up():
    """RFC 1122 4.2.2.17: the connection stays open as long as the receiver answers the
    zero-window probes, past the 12 retransmissions that end an unanswered one."""
    t = Peer()
    passive_open(t)
    at(t, t.now + 100)
    send(t, 1, 1, ACK, window=0)              # RTO 300
    c = t.st.accept()
    write_all(c, pattern(10))
    expect_nothing(t)
    for i in range(16):
        d = t.deadline()
        assert d > t.now
        at(t, d)
        expect(t, 1, 1, ACK, payload=pattern(1))
        expect_nothing(t)
        send(t, 1, 1, ACK, window=0)
    assert c.state == "ESTABLISHED" and c.error is None
    assert t.ctr("TcpOutRsts") == 0
    send(t, 1, 1, ACK, window=8192)
    expect(t, 2, 1, ACK | PSH, payload=pattern(9, 1))


# ---------------------------------------------------------------- the tick wrap
def test_rto_deadline_at_tick_zero_not_restarted_by_new_data():
    """RFC 6298 5.1: a running retransmission timer is not restarted when more data is
    sent, also when its deadline is tick 0 (the clock wraps at 2**30)."""
    t = Peer(now=ticks.PERIOD - 400)
    c = _rtt(t, 100)                          # RTO 300, now PERIOD - 300
    write_all(c, b"a")
    expect(t, 1, 1, ACK | PSH, payload=b"a")
    expect_deadline(t, 0)
    at(t, ticks.PERIOD - 290)
    write_all(c, b"b")
    expect(t, 2, 1, ACK | PSH, payload=b"b")
    expect_deadline(t, 0)
    t.now = 0
    expect(t, 1, 1, ACK, payload=b"a")        # the RTO at tick 0: one segment resent
    assert t.ctr("TcpRTOs") == 1


def test_data_fin_retransmitted_when_its_deadline_is_tick_zero():
    """The DATA_FIN timer expires at tick 0 like any other tick (RFC 8684 3.3.3)."""
    t, c = _est_mptcp(now=ticks.PERIOD - 200)
    c.shutdown_write()
    expect(t, 1, 1, ACK, dss=Dss(ack=1, dsn=1, ssn=0, dll=1, fin=True))
    expect_deadline(t, 0)
    t.now = 0
    expect(t, 1, 1, ACK, dss=Dss(ack=1, dsn=1, ssn=0, dll=1, fin=True))
    expect_deadline(t, 400)
    assert t.ctr("DataFinTx") == 2 and t.ctr("MPTCPRetrans") == 1


# ---------------------------------------------------------------- RFC 7323 timestamps
def test_timestamp_clock_keeps_counting_over_a_long_idle():
    """RFC 7323 5.4: TSval follows the ms clock; after 70 s idle (more than 2**16 ms,
    the low half of the clock wraps) it is exactly 70 000 ms later."""
    t = Peer()
    passive_open(t, ts=(5000, 0))
    send(t, 1, 1, ACK, ts=(5001, T0))
    c = t.st.accept()
    write_all(c, b"a")
    expect(t, 1, 1, ACK | PSH, payload=b"a", ts=(T0, 5001))
    send(t, 1, 2, ACK, ts=(5002, T0))
    at(t, T0 + 70000)
    write_all(c, b"b")
    expect(t, 2, 1, ACK | PSH, payload=b"b", ts=(T0 + 70000, 5002))
    send(t, 1, 3, ACK, ts=(5003, T0 + 70000))
    at(t, T0 + 70000 + 140000)
    write_all(c, b"c")
    expect(t, 3, 1, ACK | PSH, payload=b"c", ts=(T0 + 210000, 5003))


# ---------------------------------------------------------------- acceptability
def test_old_segment_before_rcv_wup_counted_as_old():
    """Linux tcp_sequence(): a segment ending before RCV.WUP (RCV.NXT when we last
    advertised) is old: counted (TcpInOldSegs) and answered with an ACK."""
    t = Peer()
    c = establish_passive(t)
    send(t, 1, 1, ACK, payload=pattern(10))
    send(t, 11, 1, ACK, payload=pattern(10, 10))
    expect(t, 1, 21, ACK, window=8192 - 20)
    send(t, 1, 1, ACK, payload=pattern(10))   # ends at 11 < RCV.WUP 21
    expect(t, 1, 21, ACK, window=8192 - 20)
    expect_nothing(t)
    assert t.ctr("TcpInOldSegs") == 1 and t.ctr("TcpInErrsOutOfWindow") == 0
    send(t, 11, 1, ACK, payload=pattern(10, 10))   # ends at RCV.WUP: acceptable, trimmed
    expect(t, 1, 21, ACK, window=8192 - 20)
    assert t.ctr("TcpInOldSegs") == 1
    assert read_all(c) == pattern(20)


# ---------------------------------------------------------------- MPTCP DATA_FIN details
def test_data_fin_alone_with_4_byte_dsn():
    """RFC 8684 3.3: the DSN may be sent as 4 bytes (lower 32 bits), also for a
    DATA_FIN without data."""
    t, c = _est_mptcp()
    send(t, 1, 1, ACK, payload=b"abc", dss=Dss(ack=1, dsn=1, ssn=1, dll=3, dsn8=False))
    send(t, 4, 1, ACK, dss=Dss(ack=1, dsn=4, ssn=0, dll=1, fin=True, dsn8=False))
    expect(t, 1, 4, ACK, window=8189, dss=Dss(ack=5))
    assert read_all(c) == b"abc" and c.eof
    assert t.ctr("DataFinRx") == 1


def test_segment_without_dss_after_data_fin_does_not_reack():
    """A pure ACK without a DSS after the peer's DATA_FIN: the DATA_FIN is not handled
    again (no option state from the earlier segment is reused): nothing is sent."""
    t, c = _est_mptcp()
    send(t, 1, 1, ACK, dss=Dss(ack=1, dsn=1, ssn=0, dll=1, fin=True))
    expect(t, 1, 1, ACK, dss=Dss(ack=2))
    assert c.eof
    send(t, 1, 1, ACK)
    expect_nothing(t)
    expect_deadline(t, -1)
    assert c.mptcp


def test_segment_without_dss_after_1_byte_mapping_is_not_a_data_fin():
    """The last mapping was one byte long (like a DATA_FIN's): a later pure ACK without
    a DSS must not be taken for a DATA_FIN; the byte's ACK stays delayed."""
    t, c = _est_mptcp()
    send(t, 1, 1, ACK, payload=b"x", dss=Dss(ack=1, dsn=1, ssn=1, dll=1))
    expect_nothing(t)
    send(t, 2, 1, ACK)
    expect_nothing(t)
    expect_deadline(t, T0 + 40)
    at(t, T0 + 40)
    expect(t, 1, 2, ACK, window=8191, dss=Dss(ack=2))
    assert read_all(c) == b"x" and not c.eof


# ---------------------------------------------------------------- byte statistics
def test_bytes_rx_exact_past_one_mib():
    """Per-subflow byte statistics (perf JSON "bytes_rx") stay exact past 1 MiB, where
    they carry into the MiB count."""
    t = Peer()
    c = establish_passive(t)
    total = (1 << 20) + 1000
    seq = 1
    while seq - 1 < total:
        for i in range(5):
            n = total - (seq - 1)
            if n <= 0:
                break
            if n > MSS:
                n = MSS
            send(t, seq, 1, ACK, payload=b"\x55" * n)
            seq += n
        assert len(read_all(c)) > 0
        drain(t)
    assert c.sf.bytes_rx() == total
    assert c.sf.bytes_tx() == 0


def test_bytes_tx_exact_past_one_mib():
    """bytes_tx counts every payload byte sent, exact past 1 MiB."""
    t = Peer(snd_buf=16384)
    c = establish_passive(t)
    total = (1 << 20) + 1000
    blk = b"\xaa" * 4096
    written = 0
    hi = 1
    while hi - 1 < total:
        while written < total:
            k = total - written
            n = c.write(blk if k >= 4096 else blk[:k])
            if n == 0:
                break
            written += n
        for s in drain(t):
            e = s.seq + len(s.payload)
            if e > hi:
                hi = e
        send(t, 1, hi, ACK)
    assert c.sf.bytes_tx() == total
    assert c.sf.bytes_rx() == 0


# ---------------------------------------------------------------- seed-2 areas
def test_window_scale_for_a_64k_buffer_is_one():
    """RFC 7323 2.2: a 65536-byte buffer does not fit 16 bits: shift 1 in our SYN."""
    t = Peer(rcv_buf=65536)
    c, syn = active_open(t)
    assert syn.opts["ws"] == 1 and syn.window == 65535
    t2 = Peer(rcv_buf=65535)
    c2, syn2 = active_open(t2)
    assert syn2.opts["ws"] == 0 and syn2.window == 65535


def test_no_window_update_after_the_peers_fin():
    """Reading after the peer's FIN opens the window by 2 MSS, but the peer has ended its
    stream: no window update (it would only draw a RST)."""
    t = Peer()
    c = establish_passive(t)
    send(t, 1, 1, ACK, payload=pattern(MSS))
    send(t, 1 + MSS, 1, ACK, payload=pattern(MSS, MSS))
    expect(t, 1, 1 + 2 * MSS, ACK, window=8192 - 2 * MSS)
    send(t, 1 + 2 * MSS, 1, ACK | FIN, payload=pattern(80, 2 * MSS))
    expect(t, 1, 2 + 2 * MSS + 80, ACK, window=8192 - 2 * MSS - 80)
    assert c.state == "CLOSE_WAIT"
    assert read_all(c) == pattern(2 * MSS + 80)
    expect_nothing(t)
    expect_deadline(t, -1)


def test_delayed_duplicate_of_the_peers_syn_is_answered_with_an_ack():
    """The peer's original SYN (seq 0) arriving late in ESTABLISHED is an old segment:
    answered with an ACK (RFC 9293 3.10.7.4, RFC 5961 4.2), nothing else changes."""
    t = Peer()
    c = establish_passive(t)
    send(t, 0, None, SYN, mss=1460)
    expect(t, 1, 1, ACK)
    expect_nothing(t)
    assert c.state == "ESTABLISHED" and t.ctr("TcpInOldSegs") == 1


def test_out_of_window_data_always_answered_pure_acks_rate_limited():
    """Linux tcp_oow_rate_limited: only segments without data are limited (one answer
    per 500 ms); a 1-byte segment outside the window is answered every time."""
    t = Peer()
    c = establish_passive(t)
    send(t, 1 + 8192 + 10, 1, ACK, payload=b"x")
    expect(t, 1, 1, ACK)
    at(t, t.now + 100)
    send(t, 1 + 8192 + 10, 1, ACK, payload=b"x")
    expect(t, 1, 1, ACK)
    assert t.ctr("TcpAckSkipped") == 0 and t.ctr("TcpInErrsOutOfWindow") == 2
    send(t, 1, 500, ACK)                      # ACK of unsent data, no data: answered ...
    expect(t, 1, 1, ACK)
    at(t, t.now + 100)
    send(t, 1, 500, ACK)                      # ... once per 500 ms
    expect_nothing(t)
    assert t.ctr("TcpAckSkipped") == 1 and t.ctr("TcpInErrsBadAck") == 2
    at(t, t.now + 400)
    send(t, 1, 500, ACK)
    expect(t, 1, 1, ACK)


def test_old_duplicate_with_infinite_mapping_falls_back():
    """RFC 8684 3.7: the peer fell back and resent old data with an infinite mapping; the
    segment is old (before RCV.WUP) but its mapping still makes us fall back."""
    t, c = _est_mptcp()
    send(t, 1, 1, ACK, payload=b"abc", dss=Dss(ack=1, dsn=1, ssn=1, dll=3))
    send(t, 4, 1, ACK, payload=b"def", dss=Dss(ack=1, dsn=4, ssn=4, dll=3))
    expect(t, 1, 7, ACK, window=8186, dss=Dss(ack=7))
    send(t, 1, 1, ACK, payload=b"abc", dss=Dss(ack=1, dsn=1, ssn=1, dll=0))
    assert not c.mptcp
    assert t.ctr("InfiniteMapRx") == 1 and t.ctr("TcpInOldSegs") == 1
    expect(t, 1, 7, ACK, window=8186)
    send(t, 7, 1, ACK, payload=b"ghi")
    assert read_all(c) == b"abcdefghi"


def test_duplicate_in_window_with_infinite_mapping_falls_back():
    """The same, for a duplicate that ends at RCV.NXT (acceptable, all already had)."""
    t, c = _est_mptcp()
    send(t, 1, 1, ACK, payload=b"abc", dss=Dss(ack=1, dsn=1, ssn=1, dll=3))
    send(t, 1, 1, ACK, payload=b"abc", dss=Dss(ack=1, dsn=1, ssn=1, dll=0))
    assert not c.mptcp and t.ctr("InfiniteMapRx") == 1
    expect(t, 1, 4, ACK, window=8189)
    send(t, 4, 1, ACK, payload=b"def")
    assert read_all(c) == b"abcdef"


def _flight_sack(t, nseg):
    """SACK-permitted connection, RTT 100 ms; nseg full segments sent and checked."""
    passive_open(t, sackp=True)
    at(t, t.now + 100)
    send(t, 1, 1, ACK)
    c = t.st.accept()
    t.conn = c
    write_all(c, pattern(nseg * MSS))
    segs = drain(t)
    assert [(s.seq, len(s.payload)) for s in segs] == [(1 + i * MSS, MSS) for i in range(nseg)]
    return c


def test_sack_blocks_on_a_data_segment_start_loss_recovery():
    """RFC 6675: SACK information on any segment counts, here on the peer's data (not a
    duplicate ACK): three segments SACKed above SND.UNA make it lost: resent at once."""
    t = Peer(snd_buf=65536)
    _flight_sack(t, 10)
    send(t, 1, 1, ACK, payload=b"q", sack=[(1 + MSS, 1 + 4 * MSS)])
    expect(t, 1, 2, ACK, window=8191, payload=pattern(MSS))
    assert t.ctr("TcpFastRetrans") == 1 and t.ctr("TcpRetransSegs") == 1
    assert t.ctr("TcpDupAcks") == 0


def test_sack_loss_detection_counts_one_fast_retransmit():
    t = Peer(snd_buf=65536)
    _flight_sack(t, 10)
    send(t, 1, 1, ACK, sack=[(1 + MSS, 1 + 4 * MSS)])
    expect(t, 1, 1, ACK, payload=pattern(MSS))
    assert t.ctr("TcpFastRetrans") == 1 and t.ctr("TcpDupAcks") == 1


def test_zero_window_data_not_taken_after_a_small_read():
    """After a small read (no window update: SWS avoidance) the advertised window is
    still 0: data at the old right edge is not accepted, though the buffer has room."""
    t = Peer(rcv_buf=2000)
    c = establish_passive(t)
    send(t, 1, 1, ACK, payload=pattern(1000))
    send(t, 1001, 1, ACK, payload=pattern(1000, 1000))
    expect(t, 1, 2001, ACK, window=0)
    b = bytearray(100)
    assert c.readinto(b) == 100
    expect_nothing(t)
    send(t, 2001, 1, ACK, payload=pattern(100, 2000))
    expect(t, 1, 2001, ACK, window=100)
    assert read_all(c) == pattern(1900, 100)


def test_out_of_order_islands_beyond_the_tracking_slots_dropped_and_counted():
    """Four out-of-order islands are tracked; a fifth is dropped (TcpOFODrop) but still
    answered with a duplicate ACK."""
    t = Peer()
    c = establish_passive(t)
    for i in range(5):
        send(t, 101 + 200 * i, 1, ACK, payload=pattern(50, 100 + 200 * i))
        expect(t, 1, 1, ACK)
    expect_nothing(t)
    assert t.ctr("TcpOFOQueue") == 4 and t.ctr("TcpOFODrop") == 1


def test_three_sack_blocks_fit_next_to_timestamps():
    """RFC 2018 3: with the timestamp option (12 bytes) three SACK blocks fit in the
    40 option bytes; the dupack for a fourth island carries three."""
    t = Peer()
    passive_open(t, sackp=True, ts=(5000, 0))
    send(t, 1, 1, ACK, ts=(5001, T0))
    c = t.st.accept()
    for i in range(4):
        send(t, 101 + 200 * i, 1, ACK, payload=pattern(50, 100 + 200 * i), ts=(5002, T0))
        s = recv(t)
        assert s is not None and s.ack == 1 and s.payload == b"", s
    assert len(s.opts["sack"]) == 3, s
    assert s.opts["ts"] == (T0, 5001)


def test_karn_retransmitting_the_segment_after_the_timed_one_keeps_the_sample():
    """Karn / RFC 6298 3: only a retransmission of the timed segment (or of data before
    it) makes its ACK ambiguous. During SACK recovery new segment S11 is timed; the hole
    S12 right after it is resent: the ACK covering S11 100 ms later is still a sample
    (SRTT 100, RTTVAR 37, RTO 248; timing only the new S14, sent 50 ms before that
    ACK, would give SRTT 93, RTTVAR 50, RTO 293)."""
    t = Peer(snd_buf=65536)
    c = _flight_sack(t, 10)                   # RTT 100: SRTT 100, RTTVAR 50, RTO 300

    def seg(i):
        return 1 + (i - 1) * MSS              # start of segment i (S1 = 1)

    def sent():
        return [(s.seq, len(s.payload)) for s in drain(t)]

    write_all(c, pattern(10 * MSS, 10 * MSS))
    at(t, t.now + 10)
    send(t, 1, 1, ACK, sack=[(seg(2), seg(5))])     # S1 lost (3 SACKed above)
    assert sent() == [(seg(1), MSS)]
    for i in range(2):                               # inflation: cwnd 9, 10 MSS
        send(t, 1, 1, ACK, sack=[(seg(2), seg(5))])
        assert sent() == []
    send(t, 1, 1, ACK, sack=[(seg(2), seg(5))])
    assert sent() == [(seg(11), MSS)]                # new data: timed
    send(t, 1, 1, ACK, sack=[(seg(2), seg(5))])
    assert sent() == [(seg(12), MSS)]
    send(t, 1, 1, ACK, sack=[(seg(2), seg(5))])
    assert sent() == [(seg(13), MSS)]
    at(t, t.now + 50)
    send(t, 1, 1, ACK, sack=[(seg(2), seg(12)), (seg(13), seg(14))])
    assert sent() == [(seg(12), MSS), (seg(14), MSS)]   # the hole S12 resent
    at(t, t.now + 50)
    send(t, 1, seg(15), ACK)                         # everything: S11 timed 100 ms
    assert sent() == [(seg(i), MSS) for i in range(15, 20)]   # cwnd = ssthresh 5 MSS
    expect_deadline(t, t.now + 248)


def test_sack_on_an_ack_that_advances_snd_una_updates_the_scoreboard():
    """RFC 6675 5: the scoreboard is updated by ANY ACK carrying SACK information. S1 is
    acked, S2 lost, S3..S5 SACKed on the same ACK: three SACKed segments above the hole
    (IsLost) start recovery at once with S2, not one duplicate ACK later."""
    mss = 1460
    t = Peer(snd_buf=65536)
    passive_open(t, sackp=True)
    at(t, t.now + 100)
    send(t, 1, 1, ACK)
    c = t.st.accept()
    write_all(c, pattern(10 * mss))
    drain(t)
    s2 = 1 + mss
    send(t, 1, s2, ACK, sack=[(1 + 2 * mss, 1 + 5 * mss)])
    segs = drain(t)
    assert segs and (segs[0].seq, len(segs[0].payload)) == (s2, mss), \
        [(x.seq, len(x.payload)) for x in segs]
    assert t.ctr("TcpFastRetrans") == 1
