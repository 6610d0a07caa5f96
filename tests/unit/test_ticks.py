"""mptcp.ticks: wrap-safe time (milliseconds modulo 2**30)."""
from mptcp import ticks


def test_add_wraps():
    assert ticks.add(ticks.MASK, 1) == 0
    assert ticks.add(5, -10) == ticks.PERIOD - 5
    assert ticks.add(100, 50) == 150


def test_diff_across_the_wrap():
    assert ticks.diff(3, ticks.MASK) == 4
    assert ticks.diff(ticks.MASK, 3) == -4
    assert ticks.diff(10, 10) == 0
    assert ticks.diff(ticks.HALF - 1, 0) == ticks.HALF - 1
    assert ticks.diff(ticks.HALF, 0) == -ticks.HALF


def test_due():
    assert not ticks.due(100, -1)
    assert ticks.due(100, 100)
    assert ticks.due(101, 100)
    assert not ticks.due(99, 100)
    assert ticks.due(2, ticks.MASK - 1)          # deadline just before the wrap, now after
    assert not ticks.due(ticks.MASK - 1, 2)      # deadline just after the wrap


def test_earlier():
    assert ticks.earlier(-1, 5) == 5
    assert ticks.earlier(5, -1) == 5
    assert ticks.earlier(-1, -1) == -1
    assert ticks.earlier(7, 5) == 5
    assert ticks.earlier(3, ticks.MASK) == ticks.MASK    # MASK comes before 3 (wrapped)


def test_boundaries_exactly():
    """The edges of each branch (found by make mutants): no value leaves [0, PERIOD)."""
    assert ticks.add(ticks.MASK - 5, 5) == ticks.MASK       # t + ms == MASK: no wrap yet
    assert ticks.add(ticks.MASK - 5, 6) == 0
    assert ticks.add(5, -5) == 0                            # t + ms == 0: no wrap
    assert ticks.add(5, -6) == ticks.MASK
    assert ticks.diff(0, ticks.HALF) == -ticks.HALF         # -HALF is in range
    assert ticks.earlier(5, 0) == 0                         # tick 0 is a real deadline
    assert ticks.earlier(0, 5) == 0
    assert ticks.earlier(ticks.HALF, 0) == ticks.HALF       # as diff(HALF, 0) == -HALF
