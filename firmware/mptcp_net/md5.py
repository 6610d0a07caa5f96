"""MD5 (RFC 1321) in pure Python, for CHAP-MD5 where `hashlib` has no md5.

MicroPython builds often leave md5 out of hashlib (the WebAssembly port does);
PPP's CHAP (RFC 1994) still needs it. mptcp_net.ppp_auth uses this module only then.
Not on the data path: CHAP hashes a few dozen bytes per challenge, so the 32-bit
arithmetic may allocate (on a 32-bit port every value >= 2**30 is a heap int);
it only has to be right. Same interface as hashlib.md5: md5(data), update(data),
digest(), hexdigest(), copy().
"""

_MASK = 0xFFFFFFFF

# T[i] = floor(2**32 * abs(sin(i + 1))), written out: a board's single-precision
# float could not compute them.
_T = (0xD76AA478, 0xE8C7B756, 0x242070DB, 0xC1BDCEEE,
      0xF57C0FAF, 0x4787C62A, 0xA8304613, 0xFD469501,
      0x698098D8, 0x8B44F7AF, 0xFFFF5BB1, 0x895CD7BE,
      0x6B901122, 0xFD987193, 0xA679438E, 0x49B40821,
      0xF61E2562, 0xC040B340, 0x265E5A51, 0xE9B6C7AA,
      0xD62F105D, 0x02441453, 0xD8A1E681, 0xE7D3FBC8,
      0x21E1CDE6, 0xC33707D6, 0xF4D50D87, 0x455A14ED,
      0xA9E3E905, 0xFCEFA3F8, 0x676F02D9, 0x8D2A4C8A,
      0xFFFA3942, 0x8771F681, 0x6D9D6122, 0xFDE5380C,
      0xA4BEEA44, 0x4BDECFA9, 0xF6BB4B60, 0xBEBFBC70,
      0x289B7EC6, 0xEAA127FA, 0xD4EF3085, 0x04881D05,
      0xD9D4D039, 0xE6DB99E5, 0x1FA27CF8, 0xC4AC5665,
      0xF4292244, 0x432AFF97, 0xAB9423A7, 0xFC93A039,
      0x655B59C3, 0x8F0CCC92, 0xFFEFF47D, 0x85845DD1,
      0x6FA87E4F, 0xFE2CE6E0, 0xA3014314, 0x4E0811A1,
      0xF7537E82, 0xBD3AF235, 0x2AD7D2BB, 0xEB86D391)

# per-round left rotations (four per round, repeated four times in the round)
_S = (7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21)

_INIT = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476)


def _compress(h, blk, off):
    """One 64-byte block blk[off:off+64] into the state list h (RFC 1321 section 3.4)."""
    x = [blk[off + 4 * i] | (blk[off + 4 * i + 1] << 8) | (blk[off + 4 * i + 2] << 16)
         | (blk[off + 4 * i + 3] << 24) for i in range(16)]
    a, b, c, d = h
    for i in range(64):
        r = i >> 4
        if r == 0:
            f = (b & c) | ((b ^ _MASK) & d)
            g = i
        elif r == 1:
            f = (b & d) | (c & (d ^ _MASK))
            g = (5 * i + 1) & 15
        elif r == 2:
            f = b ^ c ^ d
            g = (3 * i + 5) & 15
        else:
            f = c ^ (b | (d ^ _MASK))
            g = (7 * i) & 15
        s = _S[(r << 2) | (i & 3)]
        v = (a + f + _T[i] + x[g]) & _MASK
        a = d
        d = c
        c = b
        b = (b + (((v << s) | (v >> (32 - s))) & _MASK)) & _MASK
    h[0] = (h[0] + a) & _MASK
    h[1] = (h[1] + b) & _MASK
    h[2] = (h[2] + c) & _MASK
    h[3] = (h[3] + d) & _MASK


class md5:
    digest_size = 16
    block_size = 64

    def __init__(self, data=b""):
        self._h = list(_INIT)
        self._buf = bytearray()     # fewer than 64 bytes not yet compressed
        self._n = 0                 # message length in bytes
        if data:
            self.update(data)

    def update(self, data):
        buf = self._buf
        buf.extend(data)
        self._n += len(data)
        i = 0
        while len(buf) - i >= 64:
            _compress(self._h, buf, i)
            i += 64
        if i:
            self._buf = buf[i:]

    def copy(self):
        o = md5()
        o._h = list(self._h)
        o._buf = bytearray(self._buf)
        o._n = self._n
        return o

    def digest(self):
        """The digest of the data so far; the object can still be updated after."""
        tail = bytearray(self._buf)
        tail.append(0x80)
        while len(tail) % 64 != 56:
            tail.append(0)
        bits = self._n * 8
        for i in range(8):                  # length in bits, 64-bit little-endian
            tail.append((bits >> (8 * i)) & 0xFF)
        h = list(self._h)
        for off in range(0, len(tail), 64):
            _compress(h, tail, off)
        out = bytearray(16)
        for i in range(16):
            out[i] = (h[i >> 2] >> (8 * (i & 3))) & 0xFF
        return bytes(out)

    def hexdigest(self):
        return "".join("%02x" % v for v in self.digest())
