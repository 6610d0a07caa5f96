"""PPP in HDLC-like framing (RFC 1662): FCS-16, byte stuffing, a streaming decoder.

Sans-IO: the Decoder takes bytes from whatever the serial line gave and hands out
whole frames (address/control/protocol/information, FCS stripped) from one
preallocated buffer; the Encoder writes frames into one preallocated output queue
that the caller drains into the line. Line noise never raises: every broken frame
is counted (`bad_fcs`, `bad_escape` (0x7D then flag = abort), `too_long`, `short`)
and dropped, and the next flag starts afresh.

Hot loops, chosen at import (`IMPL`), all with the same results:
  "viper-native"      MicroPython with mptcp_net._hdlc_viper (an .mpy for this arch, or
                      source on a port whose runtime compiles viper);
  "cpython-binascii"  CPython: FCS by binascii.crc_hqx over bit-reversed bytes (the
                      reflected CRC equals the plain one on mirrored bits), stuffing
                      by bytes.replace, unstuffing by split/translate;
  "pure-python"       a table-driven byte loop (MicroPython without native code).
"""
import sys
from array import array

from mptcp.compat import const

FLAG = const(0x7E)
ESC = const(0x7D)
FCS_INIT = const(0xFFFF)
FCS_GOOD = const(0xF0B8)
ACCM_ALL = 0xFFFFFFFF      # the default ACCM until LCP opens (a heap int on 32-bit ports)


def _mk_table():
    t = array("H", range(256))
    for i in range(256):
        v = i
        for _ in range(8):
            v = (v >> 1) ^ 0x8408 if v & 1 else v >> 1
        t[i] = v
    return t


FCS_TABLE = _mk_table()


# --- pure Python (the reference; also the fallback on MicroPython) ---

def _fcs16_py(buf, start, end, fcs, tab):
    n = len(buf)
    if end > n:
        end = n
    if start < 0:
        start = 0
    for i in range(start, end):
        fcs = (fcs >> 8) ^ tab[(fcs ^ buf[i]) & 0xFF]
    return fcs


def _stuff_py(src, start, end, dst, dpos, esc):
    n = len(src)
    if end > n:
        end = n
    if start < 0:
        start = 0
    dn = len(dst)
    o = dpos
    for i in range(start, end):
        b = src[i]
        if esc[b]:
            if o + 1 >= dn:
                return -1
            dst[o] = 0x7D
            dst[o + 1] = b ^ 0x20
            o += 2
        else:
            if o >= dn:
                return -1
            dst[o] = b
            o += 1
    return o


def _rx_scan_py(src, start, end, frame, cls, tab, st):
    n = len(src)
    if end > n:
        end = n
    if start < 0:
        start = 0
    fmax = len(frame)
    k = st[0]
    fl = st[1]
    fcs = st[2]
    i = start
    while i < end:
        b = src[i]
        i += 1
        cl = cls[b]
        if cl:
            if cl == 1:
                st[0] = k
                st[1] = fl
                st[2] = fcs
                st[3] = 1
                return i
            if cl == 2:
                fl |= 1
            continue
        if fl & 1:
            b ^= 0x20
            fl &= 2
        if k < fmax:
            frame[k] = b
            k += 1
            fcs = (fcs >> 8) ^ tab[(fcs ^ b) & 0xFF]
        else:
            fl |= 2
    st[0] = k
    st[1] = fl
    st[2] = fcs
    st[3] = 0
    return i


# --- CPython: C-backed bytes operations; `esc`/`cls` arguments are replaced by the
# Encoder's replacement pairs and the Decoder's delete set (see _arg in each class) ---

_REV = None


def _rev_tables():
    global _REV
    r = bytearray(256)
    for i in range(256):
        v = 0
        for b in range(8):
            if i & (1 << b):
                v |= 0x80 >> b
        r[i] = v
    _REV = bytes(r)


def _fcs16_cpy(buf, start, end, fcs, tab):
    n = len(buf)
    if end > n:
        end = n
    if start < 0:
        start = 0
    if end <= start:
        return fcs
    rev = _REV
    data = bytes(memoryview(buf)[start:end]).translate(rev)
    r = _crc_hqx(data, (rev[fcs & 0xFF] << 8) | rev[(fcs >> 8) & 0xFF])
    return (rev[r & 0xFF] << 8) | rev[r >> 8]


def _stuff_cpy(src, start, end, dst, dpos, pairs):
    n = len(src)
    if end > n:
        end = n
    if start < 0:
        start = 0
    if end <= start:
        return dpos
    data = bytes(memoryview(src)[start:end])
    for a, b in pairs:
        data = data.replace(a, b)
    m = len(data)
    if dpos + m > len(dst):
        return -1
    dst[dpos:dpos + m] = data
    return dpos + m


def _rx_scan_cpy(src, start, end, frame, delete, tab, st):
    n = len(src)
    if end > n:
        end = n
    if start < 0:
        start = 0
    if end <= start:
        st[3] = 0
        return start
    if not isinstance(src, (bytes, bytearray)):
        src = bytes(src)
    j = src.find(b"\x7e", start, end)
    stop = end if j < 0 else j
    if stop > start:
        seg = src[start:stop]
        if delete:
            seg = seg.translate(None, delete)
        fl = st[1]
        if (fl & 1) or (b"\x7d" in seg):
            esc = fl & 1
            out = bytearray()
            first = True
            for p in seg.split(b"\x7d"):
                if not first:
                    esc = 1
                first = False
                if p:
                    if esc:
                        out.append(p[0] ^ 0x20)
                        out += memoryview(p)[1:]
                        esc = 0
                    else:
                        out += p
            fl = (fl & 2) | esc
            seg = out
        k = st[0]
        m = len(seg)
        room = len(frame) - k
        if m > room:
            m = room if room > 0 else 0
            fl |= 2
        if m:
            frame[k:k + m] = memoryview(seg)[:m]
            st[2] = _fcs16_cpy(seg, 0, m, st[2], tab)
            st[0] = k + m
        st[1] = fl
    if j < 0:
        st[3] = 0
        return end
    st[3] = 1
    return j + 1


# name -> (fcs16, stuff, rx_scan, uses the CPython argument forms)
IMPLS = {"pure-python": (_fcs16_py, _stuff_py, _rx_scan_py, False)}  # type: dict
IMPL = "pure-python"
if sys.implementation.name == "micropython":
    try:
        from mptcp_net import _hdlc_viper as _v
        IMPLS["viper-native"] = (_v.fcs16, _v.stuff, _v.rx_scan, False)
        IMPL = "viper-native"
    except (ImportError, ValueError, SyntaxError, NotImplementedError, AttributeError):
        # no .mpy/source, `incompatible .mpy arch`, or no viper emitter on this port
        pass
else:
    try:
        # CPython branch (MicroPython's binascii has no crc_hqx)
        from binascii import crc_hqx as _crc_hqx  # pyright: ignore[reportAttributeAccessIssue]
        _rev_tables()
        IMPLS["cpython-binascii"] = (_fcs16_cpy, _stuff_cpy, _rx_scan_cpy, True)
        IMPL = "cpython-binascii"
    except ImportError:
        pass


def fcs16(buf, start=0, end=-1, fcs=FCS_INIT, impl=None):
    """FCS-16 register after buf[start:end], continued from fcs (not complemented).

    The value to transmit is fcs16(...) ^ 0xFFFF, low byte first; a received frame
    with its FCS is good when fcs16 over all of it is FCS_GOOD (0xF0B8)."""
    if end < 0:
        end = len(buf)
    return IMPLS[impl or IMPL][0](buf, start, end, fcs, FCS_TABLE)


class Decoder:
    """Streaming receiver: bytes in, one whole frame at a time out (in `frame[:flen]`).

    `size` bounds a frame with its FCS (MRU + address, control, protocol, FCS);
    longer frames are counted `too_long`. Receive ACCM (`set_accm`): control
    characters flagged in it that arrive unescaped are removed, as RFC 1662 says.
    """

    def __init__(self, size, impl=None):
        self.impl = impl or IMPL
        f = IMPLS[self.impl]
        self._scan = f[2]
        self._cpy = f[3]
        self.frame = bytearray(size)
        self.st = array("i", [0, 0, FCS_INIT, 0])
        self.cls = bytearray(256)
        self._arg = self.cls
        self.flen = 0
        self.frames = 0
        self.bad_fcs = 0
        self.bad_escape = 0
        self.too_long = 0
        self.short = 0
        self.set_accm(ACCM_ALL)

    def set_accm(self, accm):
        cls = self.cls
        d = bytearray()
        for i in range(256):
            cls[i] = 0
        for i in range(32):
            if (accm >> i) & 1:
                cls[i] = 3
                d.append(i)
        cls[FLAG] = 1
        cls[ESC] = 2
        if self._cpy:
            self._arg = bytes(d)

    def reset(self):
        """Forget a partly received frame (e.g. when the line restarts)."""
        st = self.st
        st[0] = 0
        st[1] = 0
        st[2] = FCS_INIT
        st[3] = 0
        self.flen = 0

    def feed(self, src, start, end):
        """Consume src[start:end] until a good frame is complete.

        Returns the index to continue from. Afterwards `flen` > 0 means frame[:flen]
        holds a good frame (FCS checked and stripped), else all input was consumed."""
        st = self.st
        scan = self._scan
        frame = self.frame
        arg = self._arg
        tab = FCS_TABLE
        self.flen = 0
        while start < end:
            i = scan(src, start, end, frame, arg, tab, st)
            if not st[3]:
                return i
            k = st[0]
            fl = st[1]
            fcs = st[2]
            st[0] = 0
            st[1] = 0
            st[2] = FCS_INIT
            st[3] = 0
            start = i
            if fl & 2:
                self.too_long += 1
            elif fl & 1:
                self.bad_escape += 1
            elif k == 0:
                continue            # flag fill between frames
            elif k < 4:
                self.short += 1
            elif fcs != FCS_GOOD:
                self.bad_fcs += 1
            else:
                self.frames += 1
                self.flen = k - 2
                return i
        return start


class Encoder:
    """Frames into one preallocated output queue (`buf[head:tail]`), drained by the caller.

    Transmit ACCM (`set_accm`): the characters the peer asked to be escaped
    (0xFFFFFFFF until LCP opens); 0x7D and 0x7E are always escaped. `frame(...,
    all_ctl=True)` escapes every control character whatever the ACCM (LCP codes
    1..7, as Linux's ppp_async does). A frame that does not fit is dropped
    (`dropped`) and the queue is left as it was.
    """

    def __init__(self, size, impl=None):
        self.impl = impl or IMPL
        f = IMPLS[self.impl]
        self._fcs = f[0]
        self._stuff = f[1]
        self._cpy = f[3]
        self.buf = bytearray(size)
        self.mv = memoryview(self.buf)
        self.head = 0
        self.tail = 0
        self.esc = bytearray(256)
        self.esc_all = bytearray(256)
        self._fcsb = bytearray(2)
        self.frames = 0
        self.dropped = 0
        self.set_accm(ACCM_ALL)
        self.esc_all[:] = self.esc
        self._arg_all = self._arg if self._cpy else self.esc_all

    def set_accm(self, accm):
        esc = self.esc
        pairs = [(b"\x7d", b"\x7d\x5d"), (b"\x7e", b"\x7d\x5e")]
        for i in range(256):
            esc[i] = 0
        for i in range(32):
            if (accm >> i) & 1:
                esc[i] = 1
                pairs.append((bytes((i,)), bytes((ESC, i ^ 0x20))))
        esc[FLAG] = 1
        esc[ESC] = 1
        self._arg = pairs if self._cpy else esc

    def pending(self):
        return self.tail - self.head

    def consumed(self, n):
        """The caller wrote n bytes of buf[head:tail] to the line."""
        h = self.head + n
        if h >= self.tail:
            self.head = 0
            self.tail = 0
        else:
            self.head = h

    def clear(self):
        self.head = 0
        self.tail = 0

    def _compact(self):
        h = self.head
        t = self.tail
        self.buf[0:t - h] = self.buf[h:t]   # rare (line backed up): a temporary copy
        self.head = 0
        self.tail = t - h

    def frame(self, hdr, hlen, a, aoff, alen, b=None, boff=0, blen=0, all_ctl=False):
        """Queue one frame made of hdr[:hlen] (address/control/protocol as already
        compressed), a[aoff:aoff+alen] and b[boff:boff+blen]; True if queued."""
        tab = FCS_TABLE
        fcsf = self._fcs
        fcs = fcsf(hdr, 0, hlen, FCS_INIT, tab)
        if alen:
            fcs = fcsf(a, aoff, aoff + alen, fcs, tab)
        if blen:
            fcs = fcsf(b, boff, boff + blen, fcs, tab)
        fcs ^= 0xFFFF
        fb = self._fcsb
        fb[0] = fcs & 0xFF
        fb[1] = fcs >> 8
        buf = self.buf
        size = len(buf)
        if self.head == self.tail:
            self.head = 0
            self.tail = 0
        elif self.head and size - self.tail < 2 * (hlen + alen + blen + 2) + 2:
            self._compact()
        o = self.tail
        if o == self.head:          # line idle: open with a flag; else share the last one
            buf[o] = FLAG
            o += 1
        st = self._stuff
        arg = self._arg_all if all_ctl else self._arg
        o = st(hdr, 0, hlen, buf, o, arg)
        if o >= 0 and alen:
            o = st(a, aoff, aoff + alen, buf, o, arg)
        if o >= 0 and blen:
            o = st(b, boff, boff + blen, buf, o, arg)
        if o >= 0:
            o = st(fb, 0, 2, buf, o, arg)
        if o < 0 or o >= size:
            self.dropped += 1
            return False
        buf[o] = FLAG
        self.tail = o + 1
        self.frames += 1
        return True
