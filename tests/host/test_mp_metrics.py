"""The multipath benchmark's arithmetic (mptcp_tools.mp_metrics): ideal time and Linux's pass
mark for aggregation, and stalls computed from capture fields for handover."""

import pytest


from mptcp_tools import mp_metrics as mm


def test_ideal_and_pass_mark_balanced():
    size = 8 * 1000 * 1000                   # 64 Mbit at 20 Mbit/s: 3.2 s
    assert mm.ideal_seconds(size, (10, 10)) == pytest.approx(3.2)
    assert mm.pass_factor(10, 10) == 1.18
    assert mm.pass_mark(size, 10, 10) == pytest.approx(3.2 * 1.18 + 0.45)


def test_ideal_and_pass_mark_unbalanced():
    size = 13 * 1000 * 1000 // 8 * 3         # 3 s at 13 Mbit/s
    assert mm.ideal_seconds(size, (10, 3)) == pytest.approx(3.0)
    assert mm.pass_factor(10, 3) == 1.155
    assert mm.pass_mark(size, 10, 3) == pytest.approx(3.0 * 1.155 + 0.45)


def test_ideal_rejects_no_rate():
    with pytest.raises(ValueError):
        mm.ideal_seconds(1000, (0, 0))


def test_baud_rate_conversions():
    assert mm.baud_for_mbit(10) == 12_500_000
    assert mm.baud_for_mbit(3) == 3_750_000
    assert mm.mbit_of_baud(921600) == pytest.approx(0.73728)
    assert mm.mbit_of_baud(mm.baud_for_mbit(3)) == pytest.approx(3.0)


def test_longest_gap():
    assert mm.longest_gap([]) == (0.0, None, None)
    assert mm.longest_gap([5.0]) == (0.0, None, None)
    gap, a, b = mm.longest_gap([1.0, 1.1, 3.0, 1.2, 3.05])    # unsorted input
    assert gap == pytest.approx(1.8) and a == 1.2 and b == 3.0


def test_progress_in_order_waits_for_the_hole():
    # 0..100 at t0, 200..300 arrives first (hole 100..200), the hole filled at t=2.5
    segs = [(0.0, 1000, 100), (0.1, 1200, 100), (0.2, 1300, 100), (2.5, 1100, 100),
            (2.6, 1400, 100)]
    assert mm.progress_times(segs, in_order=True) == [0.0, 2.5, 2.6]
    assert mm.progress_times(segs, in_order=False) == [0.0, 0.1, 0.2, 2.5, 2.6]
    st = mm.stall(segs, cut_time=0.05, in_order=True)
    assert st["stall_s"] == pytest.approx(2.5) and st["from_cut_s"] == pytest.approx(-0.05)
    assert mm.stall(segs, in_order=False)["stall_s"] == pytest.approx(2.3)


def test_progress_ignores_duplicates_and_old_data():
    # a reinjected copy of data already delivered is no progress; data before the first
    # segment (older than the capture's start) neither
    segs = [(0.0, 5000, 100), (0.5, 5100, 100), (1.0, 5000, 100), (1.2, 4900, 100),
            (3.0, 5200, 50)]
    assert mm.progress_times(segs) == [0.0, 0.5, 3.0]
    assert mm.progress_times(segs, in_order=False) == [0.0, 0.5, 3.0]
    assert mm.stall(segs)["stall_s"] == pytest.approx(2.5)


def test_progress_wraps_modulo_2_32():
    top = (1 << 32) - 50
    segs = [(0.0, top, 50), (0.1, 0, 100), (0.2, 100, 100)]
    assert mm.progress_times(segs) == [0.0, 0.1, 0.2]


def _line(t, stream, seq, length, dsn="", ssn="", dlen=""):
    return "\t".join(str(x) for x in (t, stream, seq, length, dsn, ssn, dlen))


def test_segments_from_tshark_fields_mapping_spans_packets():
    lines = [
        _line(1.0, 0, 1, 1448),                             # MP_CAPABLE data: no DSN, skipped
        _line(1.1, 0, 1449, 1448, 70000, 1449, 1448),       # own mapping
        _line(1.2, 1, 1, 1448, 80000, 1, 4344),             # kernel-style: 3 packets, 1 map
        _line(1.3, 1, 1449, 1448, 80000, 1, 4344),
        _line(1.4, 1, 2897, 1448),                          # no option: last mapping
        _line(1.5, 1, 4345, 100),                           # outside it: unknown, skipped
        _line(1.6, 0, 2897, 1448, "71448,0", "2897", "1448"),   # repeated field: first value
        "garbage",
    ]
    segs = mm.segments_from_fields(lines, tag="w")
    assert segs == [(1.1, 70000, 1448), (1.2, 80000, 1448), (1.3, 81448, 1448),
                    (1.4, 82896, 1448), (1.6, 71448, 1448)]


def test_segments_then_stall_across_two_links():
    wifi = [_line(10.0 + i * 0.01, 0, 1 + i * 1000, 1000, 5000 + i * 1000, 1 + i * 1000, 1000)
            for i in range(5)]
    # the cut after t=10.04; LTE carries on from DSN 10000 at t=10.9
    lte = [_line(10.9 + i * 0.05, 0, 1 + i * 1000, 1000, 10000 + i * 1000, 1 + i * 1000, 1000)
           for i in range(3)]
    segs = mm.segments_from_fields(wifi, "w") + mm.segments_from_fields(lte, "l")
    st = mm.stall(segs, cut_time=10.05)
    assert st["stall_s"] == pytest.approx(0.86) and st["from_cut_s"] == pytest.approx(-0.01)
    assert st["progress_events"] == 8


def test_handover_goals():
    g = mm.handover_goals(60)
    assert g == {"signalled": 0.26, "silent": 1.0}
