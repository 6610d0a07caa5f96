"""PPP HDLC-like framing hot loops in viper (native code); imported by mptcp_net.hdlc.

Compiled per arch by mpy-cross (-march=x64 / armv6m / ...). Same contracts as the
pure-Python versions in mptcp_net.hdlc (which document them); viper does no bounds checks,
so every index is clamped to the buffers' lengths here. The FCS table is an
array('H') read with ptr16 (native order: every target is little-endian, and the
table is built in native order anyway); the state is an array('i') read with ptr32.
"""
import micropython


@micropython.viper
def fcs16(buf, start: int, end: int, fcs: int, tab) -> int:
    """FCS-16 of buf[start:end] continued from fcs (RFC 1662 C.2, table-driven)."""
    n = int(len(buf))
    if end > n:
        end = n
    if start < 0:
        start = 0
    p = ptr8(buf)
    t = ptr16(tab)
    f = fcs & 0xFFFF
    i = start
    while i < end:
        f = (f >> 8) ^ t[(f ^ p[i]) & 0xFF]
        i += 1
    return f


@micropython.viper
def stuff(src, start: int, end: int, dst, dpos: int, esc) -> int:
    """Copy src[start:end] into dst at dpos, escaping each byte b with esc[b] != 0 as
    0x7D, b ^ 0x20. Returns the new dpos, or -1 when dst is too small (dst then holds
    a partial copy the caller discards)."""
    n = int(len(src))
    if end > n:
        end = n
    if start < 0:
        start = 0
    dn = int(len(dst))
    s = ptr8(src)
    d = ptr8(dst)
    e = ptr8(esc)
    i = start
    o = dpos
    lim = dn - 1  # an escaped byte needs two slots
    while i < end:
        b = s[i]
        i += 1
        if e[b]:
            if o >= lim:
                return -1
            d[o] = 0x7D
            d[o + 1] = b ^ 0x20
            o += 2
        else:
            if o >= dn:
                return -1
            d[o] = b
            o += 1
    return o


@micropython.viper
def rx_scan(src, start: int, end: int, frame, cls, tab, st) -> int:
    """Feed src[start:end] to the receive state machine; stop after a flag.

    st (array('i', 4)): [0] bytes stored in frame, [1] flags (1 = escape pending,
    2 = frame overflowed), [2] running FCS, [3] set to 1 if a flag ended the scan
    (frame complete, or empty/aborted) else 0. cls[b]: 0 data, 1 flag, 2 escape,
    3 discard (a control character in the receive ACCM). Returns the index after
    the last byte consumed.
    """
    n = int(len(src))
    if end > n:
        end = n
    if start < 0:
        start = 0
    fmax = int(len(frame))
    s = ptr8(src)
    f = ptr8(frame)
    c = ptr8(cls)
    t = ptr16(tab)
    S = ptr32(st)
    k = S[0]
    fl = S[1]
    fcs = S[2]
    i = start
    while i < end:
        b = s[i]
        i += 1
        cl = c[b]
        if cl:
            if cl == 1:
                S[0] = k
                S[1] = fl
                S[2] = fcs
                S[3] = 1
                return i
            if cl == 2:
                fl = fl | 1
            continue
        if fl & 1:
            b = b ^ 0x20
            fl = fl & 2
        if k < fmax:
            f[k] = b
            k += 1
            fcs = (fcs >> 8) ^ t[(fcs ^ b) & 0xFF]
        else:
            fl = fl | 2
    S[0] = k
    S[1] = fl
    S[2] = fcs
    S[3] = 0
    return i
