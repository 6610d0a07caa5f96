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


def test_default_has_four_slots():
    a = Assembler()
    for k in range(4):
        assert a.add(10 * k + 10, 1)
    assert not a.add(100, 1)
    assert ranges(a) == [(10, 11), (20, 21), (30, 31), (40, 41)]


def test_clear_forgets_everything():
    a = Assembler(4)
    a.add(5, 5)
    a.add(20, 5)
    a.clear()
    assert a.n == 0 and a.front() == 0 and not a.covered(5, 5)
    assert a.add(30, 5)
    assert ranges(a) == [(30, 35)]


def test_empty_add_records_nothing():
    a = Assembler(1)
    assert a.add(5, 0) is True
    assert a.add(7, -3) is True
    assert a.n == 0
    assert a.add(9, 2)                     # the only slot is still free
    assert ranges(a) == [(9, 11)]


def test_insert_before_existing_ranges():
    a = Assembler(4)
    assert a.add(30, 5)
    assert a.add(10, 5)                    # in front: the others move up
    assert a.add(20, 5)                    # in the middle
    assert ranges(a) == [(10, 15), (20, 25), (30, 35)]


def test_merge_compacts_the_ranges_after_it():
    a = Assembler(4)
    for off in (10, 20, 30, 40):
        a.add(off, 5)
    assert a.add(12, 10)                   # joins (10,15) and (20,25)
    assert ranges(a) == [(10, 25), (30, 35), (40, 45)]
    assert a.add(24, 20)                   # joins the three left
    assert ranges(a) == [(10, 45)]


def test_front_needs_data_at_offset_zero():
    a = Assembler(4)
    a.add(1, 5)
    assert a.front() == 0 and a.take_front() == 0
    assert ranges(a) == [(1, 6)]


def test_shift_boundaries():
    a = Assembler(4)
    a.add(5, 5)
    a.shift(4)
    assert ranges(a) == [(1, 6)]           # one byte still missing in front
    a.shift(5)
    assert ranges(a) == [(0, 1)]           # one byte left of it
    a.shift(1)
    assert a.n == 0                        # ends exactly at the new base: gone


def test_can_add_with_free_slots_and_left_neighbour():
    a = Assembler(2)
    assert a.can_add(50, 5)                # empty: room
    a.add(20, 4)
    assert a.can_add(50, 5)                # a slot is free
    a.add(40, 4)
    assert a.can_add(15, 5)                # ends where (20,24) starts: merges
    assert not a.can_add(14, 5)
    assert a.can_add(44, 1)                # starts where (40,44) ends
    assert not a.can_add(45, 1)


def test_covered_boundaries():
    a = Assembler(4)
    a.add(10, 10)
    assert a.covered(10, 10)               # exactly the range
    assert not a.covered(9, 2)
    assert not a.covered(19, 2)
    assert not a.covered(15, 10)
    assert a.covered(19, 1)
