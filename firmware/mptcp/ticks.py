"""Time as MicroPython's ticks: milliseconds modulo 2**30, compared by wrap-safe differences.

Every `now` the core and the link drivers see is in [0, PERIOD): a small int on every
port (31-bit small ints on a 32-bit board), so time arithmetic never allocates, for any
uptime, as long as it goes through these functions (t + ms itself may pass 2**30).
PERIOD is not a small int on a 32-bit board: it is for tests and tools, not for arithmetic. A deadline is a tick value, or -1 for "none". Compare times only through
`diff` (like time.ticks_diff): two times are at most PERIOD/2 (~6.2 days) apart.
"""
from mptcp.compat import const

PERIOD = const(0x40000000)
MASK = const(0x3FFFFFFF)
HALF = const(0x20000000)


def add(t, ms):
    """The tick `ms` milliseconds after t (ms may be negative, |ms| < HALF).
    No intermediate value leaves the small-int range (a 32-bit board's is below 2**30)."""
    if ms >= 0:
        u = MASK - ms
        return t - u - 1 if t > u else t + ms
    t += ms
    return t + MASK + 1 if t < 0 else t


def diff(a, b):
    """a - b as a signed number of ms in [-HALF, HALF) (time.ticks_diff), for ticks a, b."""
    d = a - b
    if d >= HALF:
        return d - MASK - 1
    if d < -HALF:
        return d + MASK + 1
    return d


def due(now, deadline):
    """The deadline (a tick, or -1 = none) has come."""
    return deadline >= 0 and ((now - deadline) & MASK) < HALF


def earlier(a, b):
    """The earlier of two deadlines; -1 means none."""
    if a < 0:
        return b
    if b < 0:
        return a
    return a if ((a - b) & MASK) >= HALF else b
