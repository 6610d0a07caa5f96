"""Assembler: fixed hole slots, merging, front extraction, shift."""
from mptcp.assembler import Assembler


def ranges(a):
    return [(a.start[i], a.end[i]) for i in range(a.n)]


def test_in_order_front():
    a = Assembler(4)
    assert a.add(0, 10)
    assert a.front() == 10
    assert a.take_front() == 10
    assert a.n == 0


def test_islands_and_merge():
    a = Assembler(4)
    assert a.add(10, 5)
    assert a.add(20, 5)
    assert ranges(a) == [(10, 15), (20, 25)]
    assert a.front() == 0
    assert a.add(15, 5)                    # bridges both
    assert ranges(a) == [(10, 25)]
    assert a.add(0, 10)
    assert a.take_front() == 25
    assert a.n == 0


def test_overlaps_and_duplicates():
    a = Assembler(4)
    a.add(5, 10)
    a.add(7, 3)
    assert ranges(a) == [(5, 15)]
    a.add(0, 6)
    assert ranges(a) == [(0, 15)]
    a.add(12, 10)
    assert ranges(a) == [(0, 22)]


def test_slots_run_out():
    a = Assembler(2)
    assert a.add(10, 1)
    assert a.add(20, 1)
    assert not a.can_add(30, 1)
    assert not a.add(30, 1)                # no slot: caller drops
    assert a.can_add(21, 3)                # touches an existing range
    assert a.add(21, 3)
    assert ranges(a) == [(10, 11), (20, 24)]
    assert not a.add(0, 5)                 # in-order data is handled by shift() instead
    a.shift(5)
    assert ranges(a) == [(5, 6), (15, 19)]


def test_shift():
    a = Assembler(4)
    a.add(5, 5)
    a.add(20, 5)
    a.shift(7)
    assert ranges(a) == [(0, 3), (13, 18)]
    assert a.take_front() == 3
    assert ranges(a) == [(10, 15)]
    a.shift(100)
    assert a.n == 0


def test_covered():
    a = Assembler(4)
    a.add(10, 10)
    assert a.covered(12, 3)
    assert not a.covered(5, 10)
