"""Internet checksum hot loop in viper (native code); imported by mptcp.checksum.

Compiled per arch by mpy-cross (-march=x64 / armv6m / ...). Reads aligned
little-endian halfwords and uses RFC 1071's byte-order independence: the sum of
byte-swapped words is the byte-swapped sum, so one final swap gives the
big-endian result. Aligned loads matter: Cortex-M0+ faults on unaligned ones.
"""
import micropython


@micropython.viper
def sum_into(buf, start: int, end: int, acc: int) -> int:
    """Folded 16-bit one's complement sum of buf[start:end] plus acc (0 <= acc < 2**30).

    Bounds are clamped to the buffer here because viper does not check them.
    """
    n = int(len(buf))
    if end > n:
        end = n
    if start < 0:
        start = 0
    p = ptr8(buf)
    s = 0
    a = int(p) + start
    odd = a & 1
    i = start
    if end > i and odd:
        s = p[i] << 8  # first byte sits at an odd address: high byte of its swapped word
        i += 1
        a += 1
    nw = (end - i) >> 1
    if nw < 0:
        nw = 0
    q = ptr16(a)
    k = 0
    while k < nw:
        # at most 16384 halfwords per chunk keeps s below 2**30 on 32-bit ports
        lim = k + 16384
        if lim > nw:
            lim = nw
        lim4 = lim - 3
        while k < lim4:
            s += q[k] + q[k + 1] + q[k + 2] + q[k + 3]
            k += 4
        while k < lim:
            s += q[k]
            k += 1
        s = (s & 0xFFFF) + (s >> 16)
    i += nw << 1
    if i < end:
        s += p[i]  # trailing byte at an even address: low byte of its swapped word
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    if not odd:
        s = ((s & 0xFF) << 8) | (s >> 8)
    s += acc
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return s
