"""Monotonic milliseconds for the poll loop (the core itself never reads a clock).

MicroPython's ticks_ms() wraps (2**30 on the unix port); we extend it into an
ever-growing small int so the core can compare deadlines without wrap logic.
"""
import time

try:
    _ticks_ms = time.ticks_ms
    _ticks_diff = time.ticks_diff
    _last = _ticks_ms()
    _base = 0

    def now_ms():
        global _last, _base
        t = _ticks_ms()
        _base += _ticks_diff(t, _last)
        _last = t
        return _base

    def now_us():
        return time.ticks_us()

    def us_diff(a, b):
        return time.ticks_diff(a, b)

except AttributeError:  # CPython
    _t0 = time.monotonic()

    def now_ms():
        return int((time.monotonic() - _t0) * 1000)

    def now_us():
        return int(time.perf_counter() * 1000000)

    def us_diff(a, b):
        return a - b


def sleep_ms(ms):
    if ms > 0:
        time.sleep(ms / 1000)
