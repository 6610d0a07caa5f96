"""memmove-like copy between buffers in viper (native code); imported by mptcp.ringbuf.

MicroPython allocates a new memoryview for every slice it reads, so copying
through `dst[a:b] = src[c:d]` costs an allocation per packet. This copies
without one. Aligned 32-bit loads/stores only (Cortex-M0+ and Xtensa fault on
unaligned ones); a source misaligned to the destination is merged from two
aligned words with shifts (little-endian: every MicroPython target we build for).
Compiled per arch by mpy-cross like mptcp._csum_viper.
"""
import micropython


@micropython.viper
def copy(dst, doff: int, src, soff: int, n: int) -> int:
    """Copy src[soff:soff+n] to dst[doff:doff+n] (clamped to both buffers); return n copied.

    The ranges must not overlap (different buffers, or the ring's two halves)."""
    if n <= 0 or doff < 0 or soff < 0:
        return 0
    ld = int(len(dst))
    ls = int(len(src))
    if doff + n > ld:
        n = ld - doff
    if soff + n > ls:
        n = ls - soff
    if n <= 0:
        return 0
    d = ptr8(int(ptr8(dst)) + doff)
    s = ptr8(int(ptr8(src)) + soff)
    da = int(d)
    sa = int(s)
    i = 0
    if n >= 16:
        while (da + i) & 3:
            d[i] = s[i]
            i += 1
        nw = (n - i) >> 2
        dw = ptr32(da + i)
        r = (sa + i) & 3
        k = 0
        if r == 0:
            sw = ptr32(sa + i)
            nw4 = nw - 3
            while k < nw4:
                dw[k] = sw[k]
                dw[k + 1] = sw[k + 1]
                dw[k + 2] = sw[k + 2]
                dw[k + 3] = sw[k + 3]
                k += 4
            while k < nw:
                dw[k] = sw[k]
                k += 1
        else:
            sw = ptr32(sa + i - r)
            sh = r << 3
            sh2 = 32 - sh
            w0 = sw[0]
            while k < nw:
                w1 = sw[k + 1]
                dw[k] = (w0 >> sh) | (w1 << sh2)
                w0 = w1
                k += 1
        i += nw << 2
    while i < n:
        d[i] = s[i]
        i += 1
    return n
