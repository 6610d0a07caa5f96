"""NewReno (RFC 5681/6582/3042) and the SACK scoreboard, through their public methods.

Each test pins one rule with exact numbers, boundaries included, so that an off-by-one
or a flipped condition in cc.py shows (see `make mutants`).
"""
from mptcp.cc import NewReno, Scoreboard, CWND_MAX
from mptcp.tcpwire import TcpSegment

MSS = 1000


def slow_start_to(cc, target):
    """ACK one MSS at a time while in slow start until cwnd reaches target."""
    while cc.cwnd < target:
        cc.on_ack(MSS, 0, cc.cwnd)


def test_initial_window_and_set_mss():
    cc = NewReno(MSS)
    assert cc.cwnd == 10 * MSS and cc.mss == MSS
    assert cc.ssthresh == 0x3FFFFFFF
    assert cc.dupacks == 0 and not cc.in_recovery and cc.recover == 0
    assert cc.limited() == 0
    cc.set_mss(1400)
    assert cc.mss == 1400 and cc.cwnd == 14000


def test_slow_start_grows_by_acked_bytes_at_most_one_mss():
    cc = NewReno(MSS)
    assert cc.on_ack(300, 300, cc.cwnd) is False
    assert cc.cwnd == 10 * MSS + 300
    assert cc.on_ack(MSS + 500, 1800, cc.cwnd) is False      # a stretch ACK counts one MSS
    assert cc.cwnd == 11 * MSS + 300


def test_rto_collapses_the_window():
    cc = NewReno(MSS)
    cc.on_dupack(0, 5000, 5000)
    cc.on_dupack(0, 5000, 5000)
    cc.on_rto(10000, 7777)
    assert cc.ssthresh == 5000                          # half the flight
    assert cc.cwnd == MSS
    assert cc.dupacks == 0 and not cc.in_recovery
    assert cc.recover == 7777
    cc.on_rto(3000, 9000)                               # half is below 2 MSS: floor
    assert cc.ssthresh == 2 * MSS and cc.recover == 9000
    cc.on_rto(4001 * 2, 9000)
    assert cc.ssthresh == 4001


def test_congestion_avoidance_starts_at_ssthresh():
    cc = NewReno(MSS)
    cc.on_rto(10000, 0)                                 # ssthresh 5000, cwnd 1000
    for want in (2000, 3000, 4000, 5000):
        cc.on_ack(MSS, 1, cc.cwnd)
        assert cc.cwnd == want
    cc.on_ack(MSS, 1, cc.cwnd)                                # cwnd == ssthresh: avoidance
    assert cc.cwnd == 5000 + MSS * MSS // 5000


def test_congestion_avoidance_adds_at_least_one_byte():
    cc = NewReno(100)
    cc.on_rto(30000, 0)                                 # ssthresh 15000, cwnd 100
    while cc.cwnd < cc.ssthresh:
        cc.on_ack(100, 1, cc.cwnd)
    assert cc.cwnd == 15000
    cc.on_ack(100, 1, cc.cwnd)                                # 100*100 // 15000 == 0
    assert cc.cwnd == 15001


def test_two_dupacks_allow_limited_transmit():
    cc = NewReno(MSS)
    cc.on_rto(20000, 0)
    cc.on_ack(MSS, 10, cc.cwnd)
    assert cc.on_dupack(10, 5000, 4990) is False
    assert cc.dupacks == 1 and cc.limited() == MSS
    assert cc.on_dupack(10, 5000, 4990) is False
    assert cc.dupacks == 2 and cc.limited() == 2 * MSS
    cc.on_ack(500, 510, cc.cwnd)                              # new data: the count restarts
    assert cc.dupacks == 0 and cc.limited() == 0


def test_third_dupack_enters_fast_recovery():
    cc = NewReno(MSS)
    assert not cc.on_dupack(100, 9100, 9000)
    assert not cc.on_dupack(100, 9100, 9000)
    assert cc.on_dupack(100, 9100, 9000) is True
    assert cc.in_recovery and cc.recover == 9100
    assert cc.ssthresh == 4500 and cc.cwnd == 4500 + 3 * MSS
    assert cc.limited() == 0                            # not during recovery
    assert cc.on_dupack(100, 9100, 9000) is False       # inflate by one MSS per dupack
    assert cc.cwnd == 4500 + 4 * MSS and cc.dupacks == 3


def test_recovery_halving_has_a_two_mss_floor():
    cc = NewReno(MSS)
    cc.enter_recovery(700, 3000)
    assert cc.ssthresh == 2 * MSS and cc.cwnd == 5 * MSS and cc.recover == 700
    cc = NewReno(MSS)
    cc.enter_recovery(700, 2 * 2001)
    assert cc.ssthresh == 2001


def test_no_second_recovery_before_the_recovery_point():
    cc = NewReno(MSS)
    cc.on_rto(8000, 500)                                # recover = 500
    for _ in range(2):
        assert not cc.on_dupack(500, 900, 400)
    assert cc.on_dupack(500, 900, 400) is False         # snd_una == recover: RFC 6582 4.1
    assert not cc.in_recovery and cc.dupacks == 3
    assert cc.limited() == 0                            # three dupacks: no more limited sends
    assert cc.on_dupack(500, 900, 400) is False         # only the third one counts
    assert not cc.in_recovery and cc.dupacks == 4


def test_partial_ack_deflates_and_asks_for_the_next_hole():
    cc = NewReno(MSS)
    cc.enter_recovery(20000, 10000)                     # ssthresh 5000, cwnd 8000
    cc.on_dupack(0, 20000, 10000)                       # inflate: 9000
    assert cc.on_ack(MSS, 5000, 0) is True              # acked == MSS: deflate, add one back
    assert cc.cwnd == 9000 and cc.dupacks == 0 and cc.in_recovery
    assert cc.on_ack(400, 5400, 0) is True              # less than one MSS: deflate only
    assert cc.cwnd == 8600
    assert cc.on_ack(8000, 13400, 0) is True            # never below one MSS
    assert cc.cwnd == 1600
    assert cc.on_ack(900, 14300, 0) is True
    assert cc.cwnd == MSS


def test_full_ack_leaves_recovery_at_ssthresh():
    cc = NewReno(MSS)
    cc.enter_recovery(20000, 10000)
    assert cc.on_ack(MSS, 20000, 0) is False            # snd_una == recover: a full ACK
    assert not cc.in_recovery and cc.cwnd == 5000 and cc.dupacks == 0
    cc.on_ack(MSS, 21000, cc.cwnd)                            # back in congestion avoidance
    assert cc.cwnd == 5000 + MSS * MSS // 5000


def test_full_ack_never_leaves_less_than_one_mss():
    cc = NewReno(MSS)
    cc.enter_recovery(20000, 1000)                      # ssthresh 2000
    cc.set_mss(3000)                                    # a larger MSS learned meanwhile
    assert cc.on_ack(10, 20000, 0) is False
    assert cc.cwnd == 3000


# -- Scoreboard ---------------------------------------------------------------------------
def board(ends, slots=4, popped=0):
    """A scoreboard holding segments ending at `ends`, after `popped` segments came and went
    (so the ring's head is not at 0)."""
    sb = Scoreboard(slots)
    for k in range(popped):
        sb.push(k + 1)
    sb.pop(popped)
    for e in ends:
        sb.push(e)
    return sb


def sack(blocks, iss=0):
    """A received segment carrying SACK blocks (relative edges; wire = iss + rel)."""
    seg = TcpSegment()
    for k, (left, right) in enumerate(blocks):
        for j, rel in ((2 * k, left), (2 * k + 1, right)):
            v = (iss + rel) & 0xFFFFFFFF
            seg.sack_h[j] = v >> 16
            seg.sack_l[j] = v & 0xFFFF
    seg.sack_n = len(blocks)
    return seg


def marks(sb):
    return [sb.sacked[(sb.head + i) % sb.cap] for i in range(sb.n)]


def test_push_pop_end_after_across_the_ring_edge():
    for popped in (0, 3):
        sb = board([100, 200, 300], popped=popped)
        assert sb.n == 3
        sb.pop(150)
        assert sb.n == 2 and sb.end_after(0) == 200
        sb.pop(200)                                      # an ACK exactly at the end
        assert sb.n == 1 and sb.end_after(0) == 300
        sb.push(400)
        sb.push(500)
        sb.push(600)
        assert sb.n == 4
        assert sb.end_after(299) == 300
        assert sb.end_after(300) == 400                  # the segment that starts there
        assert sb.end_after(599) == 600
        assert sb.end_after(600) == -1
        sb.pop(1000)
        assert sb.n == 0 and sb.end_after(0) == -1


def test_a_pushed_slot_starts_unsacked():
    sb = Scoreboard(2)
    sb.push(100)
    sb.push(200)
    sb.on_sack(sack([(100, 200)]), 0, 0, 0, 200)
    assert marks(sb) == [0, 1]
    sb.pop(200)
    sb.push(300)
    sb.push(400)                                         # reuses the SACKed slot
    assert marks(sb) == [0, 0] and sb.sacked_count() == 0


def test_sack_marks_only_whole_segments():
    for popped in (0, 2):
        sb = board([100, 200, 300, 400], popped=popped)
        sb.on_sack(sack([(150, 400)]), 0, 0, 0, 400)
        assert marks(sb) == [0, 0, 1, 1] and sb.sacked_count() == 2
        sb.on_sack(sack([(100, 200)]), 0, 0, 0, 400)
        assert marks(sb) == [0, 1, 1, 1] and sb.sacked_count() == 3


def test_sack_blocks_two_of_them_relative_to_the_iss():
    for iss in (0xFFFFFF00, 0x0001FFF0):                 # the edges wrap past 2**32 / 2**16
        for popped in (0, 1):
            sb = board([100, 200, 300, 400], popped=popped)
            sb.on_sack(sack([(100, 200), (300, 400)], iss), iss >> 16, iss & 0xFFFF, 0, 400)
            assert marks(sb) == [0, 1, 0, 1]


def test_sack_block_not_above_una_counts_from_una():
    sb = board([1100, 1200, 1300])
    sb.on_sack(sack([(1100, 1200)]), 0, 0, 1000, 1300)   # una = 1000: first segment from 1000
    assert marks(sb) == [0, 1, 0]
    # a block starting at (or below) SND.UNA is not believed (RFC 2018 8, issue 7 bug H):
    # the receiver may renege; the segment at SND.UNA stays to be resent
    sb = board([1100, 1200, 1300])
    sb.on_sack(sack([(1000, 1100)]), 0, 0, 1000, 1300)
    assert marks(sb) == [0, 0, 0]
    sb.on_sack(sack([(900, 1200)]), 0, 0, 1000, 1300)
    assert marks(sb) == [0, 0, 0]


def test_bogus_sack_blocks_are_ignored():
    sb = board([100, 200, 300])
    sb.on_sack(sack([(100, 100)]), 0, 0, 0, 300)         # empty
    sb.on_sack(sack([(200, 100)]), 0, 0, 0, 300)         # reversed
    sb.on_sack(sack([(200, 301)]), 0, 0, 0, 300)         # beyond what was sent
    assert marks(sb) == [0, 0, 0]
    sb.on_sack(sack([(200, 300)]), 0, 0, 0, 300)         # up to snd_max exactly is fine
    assert marks(sb) == [0, 0, 1]


def test_next_hole_needs_sacked_data_above_it():
    for popped in (0, 3):
        sb = board([100, 200, 300, 400], popped=popped)
        assert sb.next_hole(0, 0) == -1                  # nothing SACKed: no hole
        sb.on_sack(sack([(100, 200), (300, 400)]), 0, 0, 0, 400)
        assert marks(sb) == [0, 1, 0, 1]
        assert sb.next_hole(0, 0) == 0
        assert sb.next_hole(0, 1) == 200                 # the first hole was retransmitted
        assert sb.next_hole(0, 200) == 200
        assert sb.next_hole(0, 201) == -1


def test_next_hole_not_above_the_last_sacked_segment():
    sb = board([100, 200, 300])
    sb.on_sack(sack([(0, 100)]), 0, 0, 0, 300)
    assert sb.next_hole(0, 0) == -1                      # holes after it: plain loss, not SACK


def test_skip_sacked_after_rto():
    for popped in (0, 2):
        sb = board([100, 200, 300, 400], popped=popped)
        sb.on_sack(sack([(100, 300)]), 0, 0, 0, 400)
        assert marks(sb) == [0, 1, 1, 0]
        assert sb.skip_sacked(0, 0) == 0                 # not SACKed: send it
        assert sb.skip_sacked(100, 0) == 300             # step over both SACKed ones
        assert sb.skip_sacked(200, 0) == 300
        assert sb.skip_sacked(150, 0) == 150             # mid-segment: no skipping
        assert sb.skip_sacked(300, 0) == 300
        assert sb.skip_sacked(400, 0) == 400


def test_rto_ends_fast_recovery():
    cc = NewReno(MSS)
    for _ in range(3):
        cc.on_dupack(100, 9100, 9000)
    assert cc.in_recovery
    cc.on_rto(9000, 9100)
    assert not cc.in_recovery and cc.cwnd == MSS
    assert cc.on_ack(MSS, 200, cc.cwnd) is False               # slow start again, not a partial ACK
    assert cc.cwnd == 2 * MSS


def test_sacked_count_ignores_forgotten_segments():
    sb = board([100, 200, 300, 400])
    sb.on_sack(sack([(100, 300)]), 0, 0, 0, 400)
    assert sb.sacked_count() == 2
    sb.pop(300)                                          # the SACKed ones are acked now
    assert sb.n == 1 and sb.sacked_count() == 0


def test_next_hole_is_the_first_one():
    sb = board([100, 200, 300])
    sb.on_sack(sack([(200, 300)]), 0, 0, 0, 300)
    assert sb.next_hole(0, 0) == 0                       # not 100: the lowest hole first
    assert sb.next_hole(0, 1) == 100


def test_cwnd_is_capped_so_it_stays_a_small_int():
    """cwnd grows while the receive window limits the sender: capped at CWND_MAX (16 MiB,
    DESIGN 2.3), exactly."""
    assert CWND_MAX == 0x1000000
    cc = NewReno(1460)
    cc.ssthresh = 2920
    cc.cwnd = CWND_MAX - 1
    cc.on_ack(1460, 100, cc.cwnd)
    assert cc.cwnd == CWND_MAX
    cc.on_ack(1460, 200, cc.cwnd)
    assert cc.cwnd == CWND_MAX
    cc.cwnd = CWND_MAX
    cc.in_recovery = True
    cc.on_dupack(0, 100, 100)                            # no inflation past the cap either
    assert cc.cwnd == CWND_MAX


def test_congestion_avoidance_grows_by_one_byte_when_mss_squared_over_cwnd_is_zero():
    cc = NewReno(1460)
    cc.ssthresh = 2920
    cc.cwnd = 3000000                                    # 1460 * 1460 // 3e6 == 0
    cc.on_ack(1460, 100, cc.cwnd)
    assert cc.cwnd == 3000001


def test_rebase_moves_the_recovery_point_and_clamps_it_at_zero():
    cc = NewReno(1460)
    cc.recover = 5000
    cc.rebase(1000)
    assert cc.recover == 4000
    cc.rebase(4000)
    assert cc.recover == 0                              # behind snd_una: clamped, not negative
    cc.rebase(1000)
    assert cc.recover == 0


def test_scoreboard_rebase_moves_every_end():
    sb = board([1100, 1200, 1300], popped=2)
    sb.rebase(1000)
    assert sb.end_after(0) == 100 and sb.end_after(150) == 200 and sb.end_after(250) == 300
    sb.rebase(-1000)
    assert sb.end_after(1150) == 1200


def test_three_sack_blocks_all_marked():
    sb = board([100, 200, 300, 400, 500, 600], slots=8)
    sb.on_sack(sack([(100, 200), (300, 400), (500, 600)]), 0, 0, 0, 600)
    assert marks(sb) == [0, 1, 0, 1, 0, 1]


def test_go_back_resends_a_sacked_segment_at_snd_una():
    """RFC 2018 8 (bug H): after an RTO the segment at SND.UNA is resent even if it was
    SACKed earlier (the receiver may have reneged); SACKed segments above it are skipped."""
    sb = board([100, 200, 300, 400])
    sb.on_sack(sack([(100, 300)]), 0, 0, 0, 400)         # segments 2 and 3 SACKed
    sb.pop(100)                                          # then SND.UNA reached segment 2
    assert sb.skip_sacked(100, 100) == 100               # at SND.UNA: not skipped
    assert sb.skip_sacked(200, 100) == 300               # above it: skipped


def test_scoreboard_keeps_each_segments_mapping_through_both_rebases():
    """DSN - seq per segment: a subflow rebase (seq drops) raises it, a data-level rebase
    (DSN drops) lowers it; delta_at finds the segment holding a seq."""
    from mptcp.cc import Scoreboard
    sb = Scoreboard(4)
    sb.push(101, 0)
    sb.push(201, 5000)
    assert sb.delta_at(50, -7) == 0 and sb.delta_at(150, -7) == 5000
    assert sb.delta_at(201, -7) == -7                  # past every segment: the default
    assert sb.max_dsn_end() == 201 + 5000
    sb.rebase(100)                                     # the subflow's space dropped by 100
    assert sb.end[0] == 1 and sb.delta_at(50, -7) == 5000 + 100
    sb.rebase_dsn(1000)                                # the connection's space dropped
    assert sb.delta_at(0, -7) == 100 - 1000 and sb.delta_at(50, -7) == 5100 - 1000
    assert sb.max_dsn_end() == 101 + 4100


def test_the_window_grows_only_while_it_limits_the_sender():
    """cwnd validation (Linux's tcp_is_cwnd_limited, RFC 7661): an ACK after a flight that
    did not fill the window (the send ring, the app or the scheduler held the sender back)
    leaves cwnd as it is. Slow start: grows while cwnd < 2 x the flight before the ACK;
    congestion avoidance: while that flight was within one MSS of cwnd."""
    cc = NewReno(MSS)                                   # slow start, cwnd 10 MSS
    cc.on_ack(MSS, 1, 4 * MSS)                          # flight before: 5 MSS, 10 == 2 x 5
    assert cc.cwnd == 10 * MSS
    cc.on_ack(MSS, 1, 4 * MSS + 1)                      # 10 MSS < 2 x (5 MSS + 1)
    assert cc.cwnd == 11 * MSS
    cc.on_rto(20000, 0)                                 # ssthresh 10000, cwnd 1000
    cc.cwnd = 10000                                     # congestion avoidance
    cc.on_ack(MSS, 1, 8000)                             # 9000 + 1000 == cwnd: not limited
    assert cc.cwnd == 10000
    cc.on_ack(MSS, 1, 8001)                             # 9001 + 1000 > cwnd: limited
    assert cc.cwnd == 10000 + MSS * MSS // 10000
