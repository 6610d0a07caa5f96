"""The clock of the poll loop (the core itself never reads a clock): ticks in ms.

now_ms() is a tick in [0, 2**30) (mptcp.ticks): a small int on every port for any
uptime, compared only through ticks.diff. MicroPython's ticks_ms() counts modulo
the port's ticks period, MP_SMALL_INT_POSITIVE_MASK + 1: 2**30 on a 32-bit port
(RP2040, the WebAssembly port), 2**62 on the 64-bit unix port. Both are multiples
of 2**30, so `ticks_ms() & MASK` counts on without a jump at the port's own wrap.
On CPython the monotonic clock in ms is masked the same way.

now_us()/us_diff() time short intervals for benchmarks (ticks_us/ticks_diff on
MicroPython; on CPython a growing int, which costs nothing there).
"""
import time

from mptcp.ticks import MASK

try:
    _ticks_ms = time.ticks_ms

    def now_ms():  # pyright: ignore[reportRedeclaration]
        # the stub types ticks as opaque; on the boards they are small ints
        return _ticks_ms() & MASK  # pyright: ignore[reportOperatorIssue]

    def now_us():  # pyright: ignore[reportRedeclaration]
        return time.ticks_us()

    def us_diff(a, b):  # pyright: ignore[reportRedeclaration]
        return time.ticks_diff(a, b)

except AttributeError:  # CPython: no ticks_ms (the lines marked pyright: ignore)
    _monotonic = time.monotonic  # pyright: ignore[reportAttributeAccessIssue]

    def now_ms():
        return int(_monotonic() * 1000) & MASK

    def now_us():
        return int(time.perf_counter() * 1000000)  # pyright: ignore[reportAttributeAccessIssue]

    def us_diff(a, b):
        return a - b


def sleep_ms(ms):
    if ms > 0:
        time.sleep(ms / 1000)
