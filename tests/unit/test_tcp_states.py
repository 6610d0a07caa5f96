"""Plain TCP, one endpoint, exact segments (smoltcp style): RFC 9293 states, RFC 5961,
RFC 6298, RFC 5681/6582/3042/6675, RFC 1122 delayed ACK and SWS avoidance.

The device is a Stack driven only through its packet interface; the test is
its peer (tests/unit/segtest.py). Sequence numbers are relative (SYN = 0).
Default device: 8 KiB buffers (window 8192, no scaling), MSS 1460; the peer's
SYN carries MSS 1460 only unless a test says otherwise.
"""
from segtest import (Peer, send, expect, expect_nothing, expect_deadline, recv, drain, at,
                     passive_open, establish_passive, active_open, establish_active,
                     write_all, read_all, pattern, Seg,
                     SYN, ACK, FIN, RST, PSH, T0)

MSS = 1460


def _sent(segs):
    """[(seq, len(payload), flags)] of a list of Segs."""
    return [(s.seq, len(s.payload), s.flags) for s in segs]


def _rtt(t, rtt):
    """Establish (passive) with a handshake RTT of `rtt` ms: RTO = 3 * rtt (RFC 6298)."""
    passive_open(t)
    at(t, t.now + rtt)
    send(t, 1, 1, ACK)
    c = t.st.accept()
    assert c is not None
    t.conn = c
    return c


# ---------------------------------------------------------------- LISTEN / SYN_RCVD
def test_listen_syn_answered_with_synack_exact():
    """SYN/ACK: our ISS, ack = peer ISN + 1, window = buffer, options echo the peer's."""
    t = Peer()
    s = passive_open(t, mss=1200, ws=7, sackp=True, ts=(777, 0))
    assert s == expect_seg(0, 1, SYN | ACK, 8192, mss=1460, ws=0, sackp=True, ts=(T0, 777))
    expect_nothing(t)
    expect_deadline(t, T0 + 1000)          # RFC 6298 2.1: initial RTO 1 s


def expect_seg(seq, ack, flags, window, payload=b"", **opts):
    return Seg(seq, ack, flags, window, payload, opts)


def test_listen_syn_without_options_gets_mss_only():
    t = Peer()
    s = passive_open(t, mss=None)
    assert s == expect_seg(0, 1, SYN | ACK, 8192, mss=1460)


def test_synack_retransmitted_with_doubling_backoff():
    t = Peer()
    passive_open(t)
    for when, nxt in ((T0 + 1000, T0 + 3000), (T0 + 3000, T0 + 7000), (T0 + 7000, T0 + 15000)):
        at(t, when - 1)
        expect_nothing(t)
        at(t, when)
        expect(t, 0, 1, SYN | ACK, mss=1460)
        expect_nothing(t)
        expect_deadline(t, nxt)


def test_syn_rcvd_retransmitted_syn_gets_synack_again():
    t = Peer()
    passive_open(t)
    at(t, T0 + 100)
    send(t, 0, None, SYN, mss=1460)
    expect(t, 0, 1, SYN | ACK, mss=1460)
    expect_nothing(t)


def test_syn_rcvd_ack_establishes():
    t = Peer()
    passive_open(t)
    assert t.st.accept() is None
    send(t, 1, 1, ACK)
    c = t.st.accept()
    assert c is not None and c.state == "ESTABLISHED" and c.error is None
    expect_nothing(t)
    expect_deadline(t, -1)


def test_syn_rcvd_unacceptable_ack_gets_rst():
    """RFC 9293 3.10.7.4: SYN-RECEIVED, bad ACK: <SEQ=SEG.ACK><CTL=RST>; stays SYN-RECEIVED."""
    t = Peer()
    passive_open(t)
    send(t, 1, 5, ACK)
    expect(t, 5, None, RST, window=0)
    expect_nothing(t)
    send(t, 1, 1, ACK)
    c = t.st.accept()
    assert c is not None and c.state == "ESTABLISHED"


def test_syn_rcvd_data_with_third_ack_is_delivered():
    t = Peer()
    passive_open(t)
    send(t, 1, 1, ACK | PSH, payload=b"abc")
    c = t.st.accept()
    assert c is not None
    expect_nothing(t)
    expect_deadline(t, T0 + 40)
    at(t, T0 + 40)
    expect(t, 1, 4, ACK, window=8189)
    assert read_all(c) == b"abc"
    expect_nothing(t)


def test_first_read_after_passive_handshake_sends_no_window_update():
    """SWS avoidance (RFC 1122 4.2.3.3): reading 3 bytes reopens the window by 3 only
    (relative to what the SYN/ACK advertised): no update, the ACK stays delayed."""
    t = Peer()
    passive_open(t)
    send(t, 1, 1, ACK | PSH, payload=b"abc")
    c = t.st.accept()
    assert read_all(c) == b"abc"
    expect_nothing(t)
    expect_deadline(t, T0 + 40)


def test_syn_to_closed_port_gets_rst_ack():
    """RFC 9293 3.10.7.1: no socket, no ACK: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>."""
    t = Peer()
    t.iss = 0
    t.dev_port = 81
    send(t, 0, None, SYN, mss=1460)
    expect(t, 0, 1, RST | ACK, window=0)
    expect_nothing(t)
    assert t.ctr("DroppedNoSocket") == 1


def test_ack_to_closed_port_gets_rst():
    """No socket, ACK set: <SEQ=SEG.ACK><CTL=RST>."""
    t = Peer()
    t.iss = 0
    send(t, 5, 12345, ACK, payload=b"xy")
    expect(t, 12345, None, RST, window=0)
    expect_nothing(t)


def test_rst_to_closed_port_is_not_answered():
    t = Peer()
    t.iss = 0
    send(t, 5, 12345, RST | ACK)
    expect_nothing(t)


# ---------------------------------------------------------------- SYN_SENT
def test_connect_sends_syn_exact():
    t = Peer()
    c, syn = active_open(t)
    assert syn == expect_seg(0, None, SYN, 8192, mss=1460, ws=0, sackp=True, ts=(T0, 0))
    assert c.state == "SYN_SENT"
    expect_nothing(t)
    expect_deadline(t, T0 + 1000)


def test_syn_retransmitted_with_doubling_backoff():
    t = Peer()
    active_open(t)
    for when, nxt in ((T0 + 1000, T0 + 3000), (T0 + 3000, T0 + 7000)):
        at(t, when)
        expect(t, 0, None, SYN, mss=1460, ws=0, sackp=True, ts=(when, 0))
        expect_deadline(t, nxt)


def test_syn_sent_gives_up_after_six_retries():
    """Like Linux tcp_syn_retries = 6: 1+2+4+...+64 s, then the attempt fails."""
    t = Peer()
    c, syn = active_open(t)
    when = T0
    rto = 1000
    for i in range(6):
        when += rto
        rto = min(2 * rto, 60000)             # RFC 6298 2.5: at least 60 s max
        at(t, when)
        s = recv(t)
        assert s is not None and s.flags == SYN, (i, s)
        expect_deadline(t, when + rto)
    at(t, when + rto)
    expect_nothing(t)
    assert c.state == "CLOSED" and c.error == "timeout"
    expect_deadline(t, -1)


def test_syn_sent_synack_establishes_and_acks():
    t = Peer()
    c, syn = active_open(t)
    at(t, T0 + 50)
    send(t, 0, 1, SYN | ACK, mss=1000)
    expect(t, 1, 1, ACK)
    assert c.state == "ESTABLISHED"
    expect_nothing(t)
    expect_deadline(t, -1)


def test_syn_sent_negotiated_mss_sizes_segments():
    t = Peer()
    c = establish_active(t, mss=1000)
    write_all(c, pattern(2500))
    expect(t, 1, 1, ACK, payload=pattern(1000))
    expect(t, 1001, 1, ACK, payload=pattern(1000, 1000))
    expect(t, 2001, 1, ACK | PSH, payload=pattern(500, 2000))
    expect_nothing(t)


def test_syn_sent_synack_without_mss_uses_536():
    """RFC 9293 3.7.1: no MSS option means 536."""
    t = Peer()
    c = establish_active(t, mss=None)
    write_all(c, pattern(600))
    expect(t, 1, 1, ACK, payload=pattern(536))
    expect(t, 537, 1, ACK | PSH, payload=pattern(64, 536))


def test_syn_sent_rst_ack_refused():
    t = Peer()
    c, syn = active_open(t)
    send(t, 0, 1, RST | ACK)
    assert c.state == "CLOSED" and c.error == "refused"
    expect_nothing(t)
    expect_deadline(t, -1)


def test_syn_sent_rst_without_ack_ignored():
    """RFC 9293 3.10.7.3: a RST without ACK in SYN-SENT is dropped."""
    t = Peer()
    c, syn = active_open(t)
    send(t, 0, None, RST)
    assert c.state == "SYN_SENT" and c.error is None
    expect_nothing(t)
    expect_deadline(t, T0 + 1000)


def test_syn_sent_rst_with_wrong_ack_ignored():
    t = Peer()
    c, syn = active_open(t)
    send(t, 0, 7, RST | ACK)
    assert c.state == "SYN_SENT" and c.error is None
    expect_nothing(t)


# ---------------------------------------------------------------- ESTABLISHED: receiving
def test_single_segment_acked_after_40ms():
    """RFC 1122 4.2.3.2 delayed ACK (Linux: 40 ms minimum)."""
    t = Peer()
    c = establish_passive(t)
    send(t, 1, 1, ACK | PSH, payload=b"hello")
    expect_nothing(t)
    expect_deadline(t, T0 + 40)
    at(t, T0 + 39)
    expect_nothing(t)
    at(t, T0 + 40)
    expect(t, 1, 6, ACK, window=8192 - 5)
    expect_nothing(t)
    expect_deadline(t, -1)
    assert read_all(c) == b"hello"


def test_every_second_full_segment_acked_at_once():
    t = Peer()
    establish_passive(t)
    send(t, 1, 1, ACK, payload=pattern(MSS))
    expect_nothing(t)
    send(t, 1 + MSS, 1, ACK, payload=pattern(MSS, MSS))
    expect(t, 1, 1 + 2 * MSS, ACK, window=8192 - 2 * MSS)
    expect_nothing(t)
    expect_deadline(t, -1)


def test_delayed_ack_piggybacked_on_data():
    t = Peer()
    c = establish_passive(t)
    send(t, 1, 1, ACK, payload=b"q")
    write_all(c, b"answer")
    expect(t, 1, 2, ACK | PSH, window=8191, payload=b"answer")
    expect_nothing(t)
    at(t, T0 + 40)
    expect_nothing(t)


def test_out_of_order_segment_gets_immediate_dupack_and_hole_fill_acks():
    t = Peer()
    c = establish_passive(t)
    send(t, 1 + 100, 1, ACK, payload=pattern(100, 100))
    expect(t, 1, 1, ACK)
    expect_nothing(t)
    send(t, 1, 1, ACK, payload=pattern(100))
    expect(t, 1, 201, ACK, window=8192 - 200)
    expect_nothing(t)
    assert read_all(c) == pattern(200)


def test_each_out_of_order_segment_gets_its_own_dupack():
    """RFC 5681 4.2: one immediate duplicate ACK per out-of-order segment, even when
    several arrive before the device gets to send (the sender counts them)."""
    t = Peer()
    establish_passive(t)
    send(t, 101, 1, ACK, payload=pattern(100, 100))
    send(t, 201, 1, ACK, payload=pattern(100, 200))
    send(t, 301, 1, ACK, payload=pattern(100, 300))
    assert _sent(drain(t)) == [(1, 0, ACK)] * 3


def test_out_of_order_segment_dupack_carries_sack_block():
    """RFC 2018: the duplicate ACK reports the island received."""
    t = Peer()
    establish_passive(t, sackp=True)
    send(t, 1 + 100, 1, ACK, payload=pattern(100, 100))
    expect(t, 1, 1, ACK, sack=[(101, 201)])
    send(t, 1 + 300, 1, ACK, payload=pattern(50, 300))
    expect(t, 1, 1, ACK, sack=[(101, 201), (301, 351)])
    send(t, 1, 1, ACK, payload=pattern(100))
    expect(t, 1, 201, ACK, window=8192 - 200, sack=[(301, 351)])


def test_duplicate_data_segment_acked_at_once():
    """RFC 9293 3.10.7.4: an unacceptable (old) segment is answered with an ACK."""
    t = Peer()
    c = establish_passive(t)
    send(t, 1, 1, ACK, payload=pattern(10))
    at(t, T0 + 40)
    expect(t, 1, 11, ACK, window=8182)
    send(t, 1, 1, ACK, payload=pattern(10))
    expect(t, 1, 11, ACK, window=8182)
    expect_nothing(t)
    assert read_all(c) == pattern(10)


def test_overlapping_segment_only_new_part_delivered():
    t = Peer()
    c = establish_passive(t)
    send(t, 1, 1, ACK, payload=pattern(10))
    send(t, 6, 1, ACK, payload=pattern(10, 5))
    expect(t, 1, 16, ACK, window=8192 - 15)
    assert read_all(c) == pattern(15)


def test_segment_beyond_window_dropped_and_acked():
    t = Peer()
    c = establish_passive(t)
    send(t, 1 + 8192, 1, ACK, payload=b"zz")
    expect(t, 1, 1, ACK)
    expect_nothing(t)
    assert read_all(c) == b""
    assert t.ctr("TcpInErrsOutOfWindow") == 1


def test_segment_straddling_right_edge_trimmed():
    t = Peer(rcv_buf=2000)
    c = establish_passive(t)
    send(t, 1, 1, ACK, payload=pattern(1000))
    send(t, 1001, 1, ACK, payload=pattern(1400, 1000))   # 400 beyond the window
    expect(t, 1, 2001, ACK, window=0)
    assert read_all(c) == pattern(2000)


def test_zero_window_advertised_and_probe_answered():
    t = Peer(rcv_buf=2000)
    c = establish_passive(t)
    send(t, 1, 1, ACK, payload=pattern(1000))
    send(t, 1001, 1, ACK, payload=pattern(1000, 1000))
    expect(t, 1, 2001, ACK, window=0)
    # a 1-byte probe into the zero window: dropped, ACKed with the same window
    send(t, 2001, 1, ACK, payload=b"P")
    expect(t, 1, 2001, ACK, window=0)
    expect_nothing(t)
    assert read_all(c) == pattern(2000)
    expect(t, 1, 2001, ACK, window=2000)       # the window reopened: update at once


def test_receiver_sws_window_update_needs_two_mss_or_half_buffer():
    """RFC 1122 4.2.3.3: no update for a small increase."""
    t = Peer(rcv_buf=8192)
    c = establish_passive(t)
    for i in range(5):
        send(t, 1 + i * 1460, 1, ACK, payload=pattern(1460, i * 1460))
        drain(t)
    send(t, 1 + 7300, 1, ACK, payload=pattern(892, 7300))
    expect(t, 1, 8193, ACK, window=0)
    b = bytearray(1500)
    assert c.readinto(b) == 1500
    expect_nothing(t)                        # +1500 < 2 MSS
    b = bytearray(1420)
    assert c.readinto(b) == 1420
    expect(t, 1, 8193, ACK, window=2920)     # +2920 = 2 MSS
    expect_nothing(t)


def test_receive_buffer_read_without_closing_window_sends_nothing():
    t = Peer()
    c = establish_passive(t)
    send(t, 1, 1, ACK, payload=b"abc")
    at(t, T0 + 40)
    expect(t, 1, 4, ACK, window=8189)
    assert read_all(c) == b"abc"
    expect_nothing(t)


# ---------------------------------------------------------------- closing
def test_out_of_order_fin_not_processed():
    """A FIN beyond a hole is not in sequence: no CLOSE_WAIT, a duplicate ACK."""
    t = Peer()
    c = establish_passive(t)
    send(t, 11, 1, ACK | FIN, payload=b"tail")
    expect(t, 1, 1, ACK)
    assert c.state == "ESTABLISHED" and not c.eof
    send(t, 1, 1, ACK, payload=pattern(10))
    s = recv(t)
    assert s is not None and s.ack in (15, 16), s      # the FIN may be kept or not


def test_fin_received_close_wait_and_eof():
    t = Peer()
    c = establish_passive(t)
    send(t, 1, 1, ACK | FIN | PSH, payload=b"bye")
    expect(t, 1, 5, ACK, window=8189)
    expect_nothing(t)
    assert c.state == "CLOSE_WAIT" and not c.eof
    assert read_all(c) == b"bye" and c.eof


def test_close_wait_close_sends_fin_last_ack_then_closed():
    t = Peer()
    c = establish_passive(t)
    send(t, 1, 1, ACK | FIN)
    expect(t, 1, 2, ACK)
    at(t, T0 + 10)
    c.close()
    expect(t, 1, 2, ACK | FIN)
    assert c.state == "LAST_ACK"
    expect_nothing(t)
    expect_deadline(t, T0 + 10 + 200)
    send(t, 2, 2, ACK)
    assert c.state == "CLOSED" and c.error is None
    expect_nothing(t)
    expect_deadline(t, -1)


def test_last_ack_fin_retransmitted_on_rto():
    t = Peer()
    c = establish_passive(t)
    send(t, 1, 1, ACK | FIN)
    expect(t, 1, 2, ACK)
    c.close()
    expect(t, 1, 2, ACK | FIN)
    at(t, T0 + 200)
    expect(t, 1, 2, ACK | FIN)
    expect_deadline(t, T0 + 200 + 400)
    send(t, 2, 2, ACK)
    assert c.state == "CLOSED"


def test_close_fin_wait_1_2_then_timeout_60s():
    t = Peer()
    c = establish_passive(t)
    c.close()
    expect(t, 1, 1, ACK | FIN)
    assert c.state == "FIN_WAIT_1"
    expect_deadline(t, T0 + 200)
    at(t, T0 + 5)
    send(t, 1, 2, ACK)
    assert c.state == "FIN_WAIT_2"
    expect_nothing(t)
    expect_deadline(t, T0 + 5 + 60000)
    at(t, T0 + 5 + 59999)
    expect_nothing(t)
    assert c.state == "FIN_WAIT_2"
    at(t, T0 + 5 + 60000)
    expect_nothing(t)
    assert c.state == "CLOSED"
    expect_deadline(t, -1)


def test_fin_wait_2_receives_data_and_fin_then_time_wait_1s():
    t = Peer()
    c = establish_passive(t)
    c.shutdown_write()
    expect(t, 1, 1, ACK | FIN)
    send(t, 1, 2, ACK)
    assert c.state == "FIN_WAIT_2"
    send(t, 1, 2, ACK | PSH, payload=b"more")
    expect_nothing(t)
    send(t, 5, 2, ACK | FIN)
    expect(t, 2, 6, ACK, window=8188)
    assert c.state == "TIME_WAIT"
    expect_deadline(t, T0 + 1000)
    at(t, T0 + 999)
    expect_nothing(t)
    assert c.state == "TIME_WAIT"
    at(t, T0 + 1000)
    expect_nothing(t)
    assert c.state == "CLOSED"
    assert read_all(c) == b"more" and c.eof


def test_simultaneous_close_closing_then_time_wait():
    t = Peer()
    c = establish_passive(t)
    c.close()
    expect(t, 1, 1, ACK | FIN)
    send(t, 1, 1, ACK | FIN)                   # their FIN crosses ours
    expect(t, 2, 2, ACK)
    assert c.state == "CLOSING"
    send(t, 2, 2, ACK)
    assert c.state == "TIME_WAIT"
    expect_nothing(t)
    expect_deadline(t, T0 + 1000)


def test_fin_wait_1_fin_acking_our_fin_goes_to_time_wait():
    t = Peer()
    c = establish_passive(t)
    c.close()
    expect(t, 1, 1, ACK | FIN)
    send(t, 1, 2, ACK | FIN)
    expect(t, 2, 2, ACK)
    assert c.state == "TIME_WAIT"
    expect_deadline(t, T0 + 1000)


def test_time_wait_retransmitted_fin_reacked_and_timer_restarted():
    """RFC 9293: TIME-WAIT acknowledges a retransmitted FIN and restarts the 2 MSL timer."""
    t = Peer()
    c = establish_passive(t)
    c.close()
    expect(t, 1, 1, ACK | FIN)
    send(t, 1, 2, ACK | FIN)
    expect(t, 2, 2, ACK)
    at(t, T0 + 500)
    send(t, 1, 2, ACK | FIN)
    expect(t, 2, 2, ACK)
    expect_nothing(t)
    expect_deadline(t, T0 + 1500)
    assert c.state == "TIME_WAIT"


def test_fin_wait_1_fin_retransmitted_on_rto():
    t = Peer()
    c = establish_passive(t)
    c.close()
    expect(t, 1, 1, ACK | FIN)
    at(t, T0 + 200)
    expect(t, 1, 1, ACK | FIN)
    expect_deadline(t, T0 + 600)


def test_fin_after_data_acked_separately():
    """The FIN follows the last data byte (seq = data end + 1 relative)."""
    t = Peer()
    c = establish_passive(t)
    write_all(c, b"0123456789")
    c.close()
    segs = drain(t)
    got = b"".join(s.payload for s in segs)
    assert got == b"0123456789"
    assert segs[-1].flags & FIN and segs[-1].seq + len(segs[-1].payload) == 11
    send(t, 1, 12, ACK)
    assert c.state == "FIN_WAIT_2"


def test_abort_sends_rst_and_closes():
    t = Peer()
    c = establish_passive(t)
    send(t, 1, 1, ACK, payload=b"abc")
    c.abort()
    expect(t, 1, 4, RST | ACK, window=0)
    expect_nothing(t)
    assert c.state == "CLOSED" and c.error == "aborted"
    expect_deadline(t, -1)


def test_segment_after_close_gets_rst_from_stack():
    t = Peer()
    c = establish_passive(t)
    c.abort()
    expect(t, 1, 1, RST | ACK, window=0)
    send(t, 1, 1, ACK, payload=b"late")
    expect(t, 1, None, RST, window=0)


# ---------------------------------------------------------------- RFC 5961
def test_rst_exact_seq_resets():
    t = Peer()
    c = establish_passive(t)
    send(t, 1, 1, RST | ACK)
    assert c.state == "CLOSED" and c.error == "reset"
    expect_nothing(t)
    expect_deadline(t, -1)


def test_rst_without_ack_exact_seq_resets():
    t = Peer()
    c = establish_passive(t)
    send(t, 1, None, RST)
    assert c.state == "CLOSED" and c.error == "reset"


def test_rst_in_window_not_exact_gets_challenge_ack():
    """RFC 5961 3.2."""
    t = Peer()
    c = establish_passive(t)
    send(t, 100, 1, RST | ACK)
    expect(t, 1, 1, ACK)
    expect_nothing(t)
    assert c.state == "ESTABLISHED" and c.error is None
    assert t.ctr("ChallengeAcks") == 1


def test_rst_out_of_window_silently_dropped():
    t = Peer()
    c = establish_passive(t)
    send(t, 1 + 8192, 1, RST | ACK)
    expect_nothing(t)
    send(t, 0, 1, RST | ACK)                 # just below rcv_nxt
    expect_nothing(t)
    assert c.state == "ESTABLISHED"


def test_syn_in_established_gets_challenge_ack():
    """RFC 5961 4.2: any SYN in a synchronized state, in window or not."""
    t = Peer()
    c = establish_passive(t)
    send(t, 50, None, SYN, mss=1460)
    expect(t, 1, 1, ACK)
    expect_nothing(t)
    assert t.ctr("ChallengeAcks") == 1
    send(t, 0x1000000, None, SYN, mss=1460)
    expect(t, 1, 1, ACK)
    assert c.state == "ESTABLISHED"


def test_challenge_acks_limited_per_second():
    t = Peer()
    c = establish_passive(t)
    at(t, 5000)
    for i in range(10):
        send(t, 100 + i, 1, RST | ACK)
        expect(t, 1, 1, ACK)
    send(t, 200, 1, RST | ACK)
    expect_nothing(t)
    send(t, 50, None, SYN)
    expect_nothing(t)
    assert t.ctr("ChallengeAcksLimited") == 2
    at(t, 6000)
    send(t, 300, 1, RST | ACK)
    expect(t, 1, 1, ACK)
    assert c.state == "ESTABLISHED"


def test_ack_for_unsent_data_answered_and_segment_dropped():
    """RFC 9293: SEG.ACK > SND.NXT: send an ACK, drop the segment (its data too)."""
    t = Peer()
    c = establish_passive(t)
    send(t, 1, 500, ACK, payload=b"data")
    expect(t, 1, 1, ACK)
    expect_nothing(t)
    assert read_all(c) == b""
    assert t.ctr("TcpInErrsBadAck") == 1


def test_old_ack_with_data_accepted():
    t = Peer()
    c = establish_passive(t)
    write_all(c, b"abc")
    expect(t, 1, 1, ACK | PSH, payload=b"abc")
    send(t, 1, 4, ACK)
    send(t, 1, 1, ACK, payload=b"xy")         # an old ACK: data still taken
    assert read_all(c) == b"xy"


# ---------------------------------------------------------------- RFC 6298 RTO
def test_rto_from_handshake_rtt_then_doubling():
    """RTT 300 ms: SRTT 300, RTTVAR 150, RTO 900; each expiry doubles it."""
    t = Peer()
    c = _rtt(t, 300)
    now = t.now
    write_all(c, b"abc")
    expect(t, 1, 1, ACK | PSH, payload=b"abc")
    expect_deadline(t, now + 900)
    at(t, now + 899)
    expect_nothing(t)
    at(t, now + 900)
    expect(t, 1, 1, ACK | PSH, payload=b"abc")
    expect_nothing(t)
    expect_deadline(t, now + 900 + 1800)
    at(t, now + 2700)
    expect(t, 1, 1, ACK | PSH, payload=b"abc")
    expect_deadline(t, now + 2700 + 3600)
    assert t.ctr("TcpRTOs") == 2


def test_rto_min_200ms():
    t = Peer()
    c = _rtt(t, 1)
    now = t.now
    write_all(c, b"abc")
    expect(t, 1, 1, ACK | PSH, payload=b"abc")
    expect_deadline(t, now + 200)
    at(t, now + 20)
    send(t, 1, 4, ACK)
    expect_deadline(t, -1)
    write_all(c, b"def")
    expect(t, 4, 1, ACK | PSH, payload=b"def")
    expect_deadline(t, now + 20 + 200)


def test_rtt_sample_from_data_updates_rto():
    """RTT 300 then a 500 ms sample: SRTT 325, RTTVAR 162, RTO 325 + 648 = 973."""
    t = Peer()
    c = _rtt(t, 300)
    now = t.now
    write_all(c, b"abc")
    expect(t, 1, 1, ACK | PSH, payload=b"abc")
    at(t, now + 500)
    send(t, 1, 4, ACK)
    write_all(c, b"d")
    expect(t, 4, 1, ACK | PSH, payload=b"d")
    expect_deadline(t, now + 500 + 973)


def test_karn_no_rtt_sample_from_retransmission_backoff_kept():
    """RFC 6298 5 / Karn: an ACK for retransmitted data gives no sample, and the
    backed-off RTO stays until a valid sample (Linux: tcp_ack_update_rtt)."""
    t = Peer()
    c = _rtt(t, 300)                          # RTO 900
    now = t.now
    write_all(c, b"abc")
    expect(t, 1, 1, ACK | PSH, payload=b"abc")
    at(t, now + 900)
    expect(t, 1, 1, ACK | PSH, payload=b"abc")   # RTO now 1800
    at(t, now + 1000)
    send(t, 1, 4, ACK)
    write_all(c, b"d")
    expect(t, 4, 1, ACK | PSH, payload=b"d")
    expect_deadline(t, now + 1000 + 1800)


def test_karn_later_valid_sample_ignores_the_retransmitted_one():
    """Karn: the ACK of a retransmitted segment is no sample. The next valid sample
    (300 ms) then gives SRTT 300, RTTVAR 112, RTO 748; had the ambiguous ACK been
    timed (1000 ms) SRTT/RTTVAR would be 376/237 and the RTO 1324."""
    t = Peer()
    c = _rtt(t, 300)                          # RTO 900
    now = t.now
    write_all(c, b"abc")
    expect(t, 1, 1, ACK | PSH, payload=b"abc")
    at(t, now + 900)
    expect(t, 1, 1, ACK | PSH, payload=b"abc")
    at(t, now + 1000)
    send(t, 1, 4, ACK)
    write_all(c, b"d")
    expect(t, 4, 1, ACK | PSH, payload=b"d")
    at(t, now + 1300)
    send(t, 1, 5, ACK)
    write_all(c, b"e")
    expect(t, 5, 1, ACK | PSH, payload=b"e")
    expect_deadline(t, now + 1300 + 748)


def test_rto_retransmits_one_segment_then_slow_start():
    """After an RTO cwnd is one segment (RFC 5681 3.1): go back to snd_una, one segment."""
    t = Peer(snd_buf=16384)
    c = _rtt(t, 100)                          # RTO 300
    now = t.now
    write_all(c, pattern(3 * MSS))
    assert _sent(drain(t)) == [(1, MSS, ACK), (1 + MSS, MSS, ACK), (1 + 2 * MSS, MSS, ACK | PSH)]
    at(t, now + 300)
    assert _sent(drain(t)) == [(1, MSS, ACK)]
    send(t, 1, 1 + MSS, ACK)
    assert _sent(drain(t)) == [(1 + MSS, MSS, ACK), (1 + 2 * MSS, MSS, ACK | PSH)]


def test_syn_retransmitted_rto_is_3s_for_data():
    """RFC 6298 5.7: SYN retransmitted and no sample: RTO 3 s when data begins (Linux)."""
    t = Peer()
    c, syn = active_open(t)
    at(t, T0 + 1000)
    expect(t, 0, None, SYN, mss=1460, ws=0, sackp=True, ts=(T0 + 1000, 0))
    at(t, T0 + 1100)
    send(t, 0, 1, SYN | ACK, mss=1460)
    expect(t, 1, 1, ACK)
    write_all(c, b"x")
    expect(t, 1, 1, ACK | PSH, payload=b"x")
    expect_deadline(t, T0 + 1100 + 3000)


def test_data_retransmission_gives_up_with_rst():
    t = Peer()
    c = _rtt(t, 100)                          # RTO 300
    write_all(c, b"abc")
    expect(t, 1, 1, ACK | PSH, payload=b"abc")
    n = 0
    while True:
        d = t.deadline()
        assert d > t.now
        at(t, d)
        s = recv(t)
        if s.flags & RST:
            break
        assert s == expect_seg(1, 1, ACK | PSH, 8192, b"abc")
        n += 1
    assert n == 12
    assert s == expect_seg(4, 1, RST | ACK, 0)
    assert c.state == "CLOSED" and c.error == "timeout"


# ---------------------------------------------------------------- RFC 5681 / 6582 / 3042
def _flight(t, nseg, total=None, sackp=False):
    """Established with RTT 100 ms (RTO 300); `total` segments written, the first
    `nseg` (the initial window allows 10) sent and checked."""
    if sackp:
        passive_open(t, sackp=True)
        at(t, t.now + 100)
        send(t, 1, 1, ACK)
        c = t.st.accept()
        t.conn = c
    else:
        c = _rtt(t, 100)
    write_all(c, pattern((total or nseg) * MSS))
    segs = drain(t)
    assert [(s.seq, len(s.payload)) for s in segs] == [(1 + i * MSS, MSS) for i in range(nseg)]
    return c


def test_initial_window_is_ten_segments():
    """RFC 6928 / Linux: IW 10."""
    t = Peer(snd_buf=65536)
    _flight(t, 10, 20)
    expect_nothing(t)


def test_slow_start_two_segments_per_ack():
    t = Peer(snd_buf=65536)
    _flight(t, 10, 30)
    send(t, 1, 1 + MSS, ACK)
    assert _sent(drain(t)) == [(1 + 10 * MSS, MSS, ACK), (1 + 11 * MSS, MSS, ACK)]


def test_three_dupacks_fast_retransmit():
    t = Peer(snd_buf=65536)
    _flight(t, 10)
    send(t, 1, 1, ACK)
    expect_nothing(t)
    send(t, 1, 1, ACK)
    expect_nothing(t)
    send(t, 1, 1, ACK)
    expect(t, 1, 1, ACK, payload=pattern(MSS))
    assert t.ctr("TcpFastRetrans") == 1 and t.ctr("TcpDupAcks") == 3


def test_fast_retransmit_resends_only_the_lost_segment():
    """RFC 5681 3.2 step 3 / RFC 6582: one segment at SND.UNA, not the whole window."""
    t = Peer(snd_buf=65536)
    _flight(t, 10)
    for i in range(3):
        send(t, 1, 1, ACK)
    expect(t, 1, 1, ACK, payload=pattern(MSS))
    expect_nothing(t)
    send(t, 1, 1, ACK)                        # a 4th dupack: cwnd inflates, no new data
    expect_nothing(t)
    assert t.ctr("TcpRetransSegs") == 1


def test_acks_with_changing_window_are_not_dupacks():
    """RFC 5681 2: a duplicate ACK carries the same window."""
    t = Peer(snd_buf=65536)
    _flight(t, 10)
    for w in (60000, 50000, 40000):
        send(t, 1, 1, ACK, window=w)
        expect_nothing(t)
    assert t.ctr("TcpFastRetrans") == 0


def test_data_segments_are_not_dupacks():
    t = Peer(snd_buf=65536)
    _flight(t, 10)
    send(t, 1, 1, ACK, payload=b"a")
    send(t, 2, 1, ACK, payload=b"b")
    expect(t, 1 + 10 * MSS, 3, ACK, window=8190)   # 2 segments: ACK at once, no retransmission
    send(t, 3, 1, ACK, payload=b"c")
    expect_nothing(t)
    assert t.ctr("TcpFastRetrans") == 0


def test_partial_ack_retransmits_next_segment():
    """RFC 6582 3.2 step 5: a partial ACK retransmits the first unacknowledged segment."""
    t = Peer(snd_buf=65536)
    _flight(t, 10)
    for i in range(3):
        send(t, 1, 1, ACK)
    expect(t, 1, 1, ACK, payload=pattern(MSS))
    send(t, 1, 1 + 3 * MSS, ACK)
    expect(t, 1 + 3 * MSS, 1, ACK, payload=pattern(MSS, 3 * MSS))
    assert t.ctr("TcpPartialAcks") == 1


def test_full_ack_exits_recovery_with_cwnd_ssthresh():
    """Flight 10 segments: ssthresh 5 segments; after the full ACK cwnd = ssthresh."""
    t = Peer(snd_buf=65536)
    c = _flight(t, 10)
    for i in range(3):
        send(t, 1, 1, ACK)
    expect(t, 1, 1, ACK, payload=pattern(MSS))
    send(t, 1, 1 + 10 * MSS, ACK)
    expect_nothing(t)
    write_all(c, pattern(10 * MSS))
    assert [len(s.payload) for s in drain(t)] == [MSS] * 5


def test_recovery_inflates_cwnd_per_dupack():
    """RFC 5681 3.2 step 4-5: cwnd = ssthresh + 3 MSS (5 + 3 = 8 segments against a
    flight of 10); each further dupack adds one MSS: the third one allows new data."""
    t = Peer(snd_buf=65536)
    c = _flight(t, 10)
    for i in range(3):
        send(t, 1, 1, ACK)
    expect(t, 1, 1, ACK, payload=pattern(MSS))
    write_all(c, pattern(5 * MSS, 10 * MSS))
    expect_nothing(t)
    for i in range(2):
        send(t, 1, 1, ACK)
        expect_nothing(t)
    send(t, 1, 1, ACK)
    assert _sent(drain(t)) == [(1 + 10 * MSS, MSS, ACK)]
    send(t, 1, 1, ACK)
    assert _sent(drain(t)) == [(1 + 11 * MSS, MSS, ACK)]


def test_limited_transmit_one_new_segment_per_first_two_dupacks():
    """RFC 3042."""
    t = Peer(snd_buf=65536)
    _flight(t, 10, 20)
    send(t, 1, 1, ACK)
    assert _sent(drain(t)) == [(1 + 10 * MSS, MSS, ACK)]
    send(t, 1, 1, ACK)
    assert _sent(drain(t)) == [(1 + 11 * MSS, MSS, ACK)]
    send(t, 1, 1, ACK)
    expect(t, 1, 1, ACK, payload=pattern(MSS))     # the third: fast retransmit


def test_ssthresh_excludes_limited_transmit_segments():
    """RFC 5681 3.2 step 2: data sent by limited transmit MUST NOT count in the
    FlightSize that sets ssthresh: 10 segments -> ssthresh 5 (Linux: cwnd / 2)."""
    t = Peer(snd_buf=65536)
    c = _flight(t, 10, 12)
    send(t, 1, 1, ACK)
    send(t, 1, 1, ACK)
    assert len(drain(t)) == 2                 # limited transmit
    send(t, 1, 1, ACK)
    expect(t, 1, 1, ACK, payload=pattern(MSS))
    send(t, 1, 1 + 12 * MSS, ACK)             # full ACK: cwnd = ssthresh
    write_all(c, pattern(10 * MSS))
    assert [len(s.payload) for s in drain(t)] == [MSS] * 5


def test_rto_during_recovery_restarts_from_snd_una():
    t = Peer(snd_buf=65536)
    now = T0 + 100
    _flight(t, 10)
    for i in range(3):
        send(t, 1, 1, ACK)
    expect(t, 1, 1, ACK, payload=pattern(MSS))
    expect_deadline(t, now + 300)
    at(t, now + 300)
    assert _sent(drain(t)) == [(1, MSS, ACK)]
    assert t.ctr("TcpRTOs") == 1


# ---------------------------------------------------------------- RFC 6675 SACK recovery
def test_sack_three_segments_above_hole_triggers_retransmit():
    """RFC 6675 IsLost: three segments SACKed above snd_una: retransmit it at once."""
    t = Peer(snd_buf=65536)
    _flight(t, 10, sackp=True)
    send(t, 1, 1, ACK, sack=[(1 + MSS, 1 + 4 * MSS)])
    expect(t, 1, 1, ACK, payload=pattern(MSS))


def test_sack_third_dupack_retransmits_first_hole():
    t = Peer(snd_buf=65536)
    _flight(t, 10, sackp=True)
    s2 = (1 + MSS, 1 + 2 * MSS)
    send(t, 1, 1, ACK, sack=[s2])
    expect_nothing(t)
    send(t, 1, 1, ACK, sack=[(1 + 3 * MSS, 1 + 4 * MSS), s2])
    expect_nothing(t)
    send(t, 1, 1, ACK, sack=[(1 + 3 * MSS, 1 + 5 * MSS), s2])
    expect(t, 1, 1, ACK, payload=pattern(MSS))


def test_sack_retransmits_first_hole_then_next_hole():
    """RFC 6675: the hole at 2 MSS is lost (IsLost) only once 3 segments above it are
    SACKed: it is retransmitted then, not with the first hole."""
    t = Peer(snd_buf=65536)
    _flight(t, 10, sackp=True)
    s2 = (1 + MSS, 1 + 2 * MSS)
    send(t, 1, 1, ACK, sack=[s2])
    expect_nothing(t)
    send(t, 1, 1, ACK, sack=[(1 + 3 * MSS, 1 + 4 * MSS), s2])
    expect_nothing(t)
    send(t, 1, 1, ACK, sack=[(1 + 3 * MSS, 1 + 5 * MSS), s2])
    expect(t, 1, 1, ACK, payload=pattern(MSS))          # first hole
    expect_nothing(t)
    send(t, 1, 1, ACK, sack=[(1 + 3 * MSS, 1 + 6 * MSS), s2])
    expect(t, 1 + 2 * MSS, 1, ACK, payload=pattern(MSS, 2 * MSS))   # the next hole
    expect_nothing(t)


def test_sack_partial_ack_retransmits_next_hole_not_sacked_data():
    t = Peer(snd_buf=65536)
    _flight(t, 10, sackp=True)
    blk = [(1 + 3 * MSS, 1 + 10 * MSS), (1 + MSS, 1 + 2 * MSS)]
    send(t, 1, 1, ACK, sack=blk)
    expect(t, 1, 1, ACK, payload=pattern(MSS))
    send(t, 1, 1 + 2 * MSS, ACK, sack=[(1 + 3 * MSS, 1 + 10 * MSS)])
    expect(t, 1 + 2 * MSS, 1, ACK, payload=pattern(MSS, 2 * MSS))
    expect_nothing(t)


def test_rto_skips_sacked_segments():
    t = Peer(snd_buf=65536)
    now = T0 + 100
    _flight(t, 4, sackp=True)
    send(t, 1, 1, ACK, sack=[(1 + 2 * MSS, 1 + 3 * MSS)])
    expect_nothing(t)
    at(t, now + 300)
    expect(t, 1, 1, ACK, payload=pattern(MSS))
    send(t, 1, 1 + MSS, ACK, sack=[(1 + 2 * MSS, 1 + 3 * MSS)])
    segs = drain(t)
    # the go-back resends the second segment, steps over the SACKed third one (how
    # many follow is cwnd's business)
    assert segs and (segs[0].seq, len(segs[0].payload)) == (1 + MSS, MSS)
    assert 1 + 2 * MSS not in [s.seq for s in segs]


def test_rto_resends_a_sacked_segment_at_snd_una():
    """RFC 2018 8 (issue 7, bug H): a SACK block covering the segment at SND.UNA is not
    believed (the receiver may have reneged): after the RTO that segment is resent."""
    t = Peer(snd_buf=65536)
    now = T0 + 100
    _flight(t, 4, sackp=True)
    send(t, 1, 1, ACK, sack=[(1, 1 + MSS)])
    at(t, now + 300)
    expect(t, 1, 1, ACK, payload=pattern(MSS))


# ---------------------------------------------------------------- sender SWS, persist
def test_sender_sws_no_small_segment_while_data_in_flight():
    """RFC 1122 4.2.3.4: with data in flight only full segments go into a small window."""
    t = Peer()
    passive_open(t)
    send(t, 1, 1, ACK, window=2000)
    c = t.st.accept()
    write_all(c, pattern(4000))
    expect(t, 1, 1, ACK, payload=pattern(MSS))
    expect_nothing(t)                                  # 540 usable: not sent
    send(t, 1, 1 + MSS, ACK, window=2000)
    expect(t, 1 + MSS, 1, ACK, payload=pattern(MSS, MSS))
    expect_nothing(t)
    send(t, 1, 1 + 2 * MSS, ACK, window=2000)
    expect(t, 1 + 2 * MSS, 1, ACK | PSH, payload=pattern(4000 - 2 * MSS, 2 * MSS))


def test_sender_fills_small_window_when_nothing_in_flight():
    t = Peer()
    passive_open(t)
    send(t, 1, 1, ACK, window=1000)
    c = t.st.accept()
    write_all(c, pattern(3000))
    expect(t, 1, 1, ACK, payload=pattern(1000))
    expect_nothing(t)


def test_zero_window_persist_probe_with_backoff():
    t = Peer()
    passive_open(t)
    at(t, t.now + 100)
    send(t, 1, 1, ACK, window=0)                      # RTT 100: RTO 300
    c = t.st.accept()
    now = t.now
    write_all(c, pattern(100))
    expect_nothing(t)
    expect_deadline(t, now + 300)
    at(t, now + 299)
    expect_nothing(t)
    when = now + 300
    gap = 300
    for i in range(4):
        at(t, when)
        expect(t, 1, 1, ACK, payload=pattern(1))      # one byte into the zero window
        expect_nothing(t)
        send(t, 1, 1, ACK, window=0)
        expect_nothing(t)
        gap *= 2
        when += gap
        expect_deadline(t, when)
    assert c.state == "ESTABLISHED" and c.error is None
    send(t, 1, 1, ACK, window=8192)                   # window opens
    expect(t, 2, 1, ACK | PSH, payload=pattern(99, 1))


def test_zero_window_probe_acked_window_opens():
    t = Peer()
    passive_open(t)
    at(t, t.now + 100)
    send(t, 1, 1, ACK, window=0)
    c = t.st.accept()
    now = t.now
    write_all(c, pattern(100))
    expect_nothing(t)
    at(t, now + 300)
    expect(t, 1, 1, ACK, payload=pattern(1))
    send(t, 1, 2, ACK, window=4000)
    expect(t, 2, 1, ACK | PSH, payload=pattern(99, 1))
    send(t, 1, 101, ACK, window=4000)
    expect_nothing(t)
    expect_deadline(t, -1)


def test_window_update_from_peer_restarts_sending():
    t = Peer()
    passive_open(t)
    send(t, 1, 1, ACK, window=0)
    c = t.st.accept()
    write_all(c, b"abc")
    expect_nothing(t)
    send(t, 1, 1, ACK, window=100)
    expect(t, 1, 1, ACK | PSH, payload=b"abc")


# ---------------------------------------------------------------- RFC 7323 timestamps
def test_timestamps_on_every_segment_echo_ts_recent():
    t = Peer()
    passive_open(t, ts=(5000, 0))
    send(t, 1, 1, ACK, ts=(5001, T0))
    c = t.st.accept()
    send(t, 1, 1, ACK | PSH, payload=b"hi", ts=(5002, T0))
    at(t, T0 + 40)
    expect(t, 1, 3, ACK, window=8190, ts=(T0 + 40, 5002))
    write_all(c, b"yo")
    expect(t, 1, 3, ACK | PSH, window=8190, payload=b"yo", ts=(T0 + 40, 5002))


def test_timestamp_rtt_sample_even_from_retransmission():
    """RFC 7323 4: with timestamps the echoed TSval times the retransmission itself."""
    t = Peer()
    passive_open(t, ts=(5000, 0))
    at(t, T0 + 100)
    send(t, 1, 1, ACK, ts=(5001, T0))                 # RTT 100: RTO 300
    c = t.st.accept()
    write_all(c, b"abc")
    expect(t, 1, 1, ACK | PSH, payload=b"abc", ts=(T0 + 100, 5001))
    at(t, T0 + 400)
    expect(t, 1, 1, ACK | PSH, payload=b"abc", ts=(T0 + 400, 5001))
    at(t, T0 + 500)
    send(t, 1, 4, ACK, ts=(5002, T0 + 400))   # sample 100: SRTT 100, RTTVAR 37, RTO 248
    write_all(c, b"d")
    expect(t, 4, 1, ACK | PSH, payload=b"d", ts=(T0 + 500, 5002))
    expect_deadline(t, T0 + 500 + 248)
