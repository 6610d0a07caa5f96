"""Internet checksum (RFC 1071) for IPv4/TCP and the MPTCP DSS checksum (RFC 8684 §3.3).

Sums are "folded": a 16-bit one's complement sum, not complemented, in the
canonical form 0 only when everything summed was zero, else 1..0xffff. Any
implementation below returns exactly that value, so sums chain through `acc`.
Buffers are bytes, bytearray or memoryview plus start/end, so callers never slice.

Implementation chosen at import (`IMPL`):
  "viper-native"      MicroPython with mptcp._csum_viper (an .mpy for this arch, or
                      source on a port whose runtime compiles viper);
  "cpython-frombytes" CPython: int.from_bytes (C) modulo 0xffff, as 2**16 == 1 mod 0xffff;
  "pure-python"       anywhere else (MicroPython without native code).
"""
import sys


def _fold(x):
    """Canonical folded form of a non-negative int (any size)."""
    if x == 0:
        return 0
    return (x - 1) % 0xFFFF + 1


def _sum_py(buf, start, end, acc):
    """Pure Python loop; folds every 8 KiB so the sum stays a small int on 32-bit boards."""
    n = len(buf)
    if end > n:
        end = n
    if start < 0:
        start = 0
    s = _fold(acc)
    if end <= start:
        return s
    last = end - ((end - start) & 1)  # end of the whole 16-bit words
    i = start
    while i < last:
        lim = i + 8192
        if lim > last:
            lim = last
        for j in range(i, lim, 2):
            s += (buf[j] << 8) | buf[j + 1]
        s = (s & 0xFFFF) + (s >> 16)
        i = lim
    if last < end:
        s += buf[last] << 8  # odd length: pad with a zero byte
    s = (s & 0xFFFF) + (s >> 16)
    return (s & 0xFFFF) + (s >> 16)


def _sum_frombytes(buf, start, end, acc):
    """CPython: the whole range as one big-endian integer; the C bignum does the work."""
    n = len(buf)
    if end > n:
        end = n
    if start < 0:
        start = 0
    if end <= start:
        return _fold(acc)
    x = int.from_bytes(memoryview(buf)[start:end], "big")
    if (end - start) & 1:
        x <<= 8
    return _fold(x + acc)


IMPL = "pure-python"
_sum = _sum_py
if sys.implementation.name == "micropython":
    try:
        from mptcp import _csum_viper
        _sum = _csum_viper.sum_into
        IMPL = "viper-native"
    except (ImportError, ValueError, SyntaxError, NotImplementedError, AttributeError):
        # no .mpy/source, `incompatible .mpy arch`, or no viper emitter on this port
        pass
elif sys.implementation.name == "cpython":
    _sum = _sum_frombytes
    IMPL = "cpython-frombytes"


def ones_sum(buf, start, end, acc=0):
    """Folded one's complement sum of buf[start:end] (odd length zero-padded) plus acc.

    end < 0 means len(buf); out-of-range bounds are clamped, never read past the buffer.
    acc: a previous folded sum (or any int 0 <= acc < 2**30).
    """
    if end < 0:
        end = len(buf)
    return _sum(buf, start, end, acc)


def inet_checksum(buf, start=0, end=-1, acc=0):
    """The 16-bit value for a checksum field (~sum); acc e.g. a TCP pseudo-header sum.

    Verifying a received header: inet_checksum over it (checksum field included) is 0.
    """
    if end < 0:
        end = len(buf)
    return ~_sum(buf, start, end, acc) & 0xFFFF


def swap16(s):
    """Byte-swap a folded sum: what a chunk's sum is worth when it starts at an odd offset."""
    return ((s & 0xFF) << 8) | (s >> 8)


def ones_sum_at(buf, start, end, acc, pos):
    """Continue a running sum over a stream split into chunks (e.g. one DSS mapping over
    several segments): pos = bytes already summed into acc; only its parity matters."""
    if end < 0:
        end = len(buf)
    s = _sum(buf, start, end, 0)
    if pos & 1:
        s = swap16(s)
    s += acc
    return (s & 0xFFFF) + (s >> 16)


def dss_pseudo_sum(dsn64, ssn32, dll):
    """Folded sum of the DSS checksum pseudo-header (RFC 8684 §3.3):
    64-bit DSN, 32-bit relative subflow sequence number, 16-bit data-level length,
    16-bit zero. DSN and SSN are the wire values (DSN always the full 64 bits).
    A 64-bit int is a heap object on every port; a caller avoiding that can keep the
    DSN as 8 bytes in a preallocated buffer and sum it with ones_sum instead."""
    s = ((dsn64 >> 48) & 0xFFFF) + ((dsn64 >> 32) & 0xFFFF)
    s += ((dsn64 >> 16) & 0xFFFF) + (dsn64 & 0xFFFF)
    s += ((ssn32 >> 16) & 0xFFFF) + (ssn32 & 0xFFFF) + (dll & 0xFFFF)
    s = (s & 0xFFFF) + (s >> 16)
    return (s & 0xFFFF) + (s >> 16)


def dss_checksum(dsn64, ssn32, dll, buf, start, end):
    """The checksum to put in a DSS (or MP_CAPABLE-with-data) option for a mapping whose
    payload is all in buf[start:end]. For a mapping over several segments use
    dss_pseudo_sum + ones_sum_at, then ~s & 0xffff."""
    return inet_checksum(buf, start, end, dss_pseudo_sum(dsn64, ssn32, dll))


def dss_checksum_ok(dsn64, ssn32, dll, csum, buf, start, end):
    """True if a received DSS checksum matches: the sum including it folds to 0xffff."""
    return ones_sum(buf, start, end, dss_pseudo_sum(dsn64, ssn32, dll) + (csum & 0xFFFF)) == 0xFFFF
