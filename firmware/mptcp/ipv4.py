"""IPv4 header codec (RFC 791), zero-copy.

`parse` reads the header in place and fills a reusable `IPv4Header`; the
addresses stay in the packet (`src`/`dst` are offsets 12/16 into buf) so no
bytes objects are made per packet. Use `addr_eq` to compare them and
`pseudo_sum(buf, buf, 6, n, 12, 16)` for the TCP pseudo-header.
Fragments are refused (E_FRAG): TCP here never needs them (DF is set).
"""
from mptcp.compat import const
from mptcp.errors import OK, E_SHORT, E_BADLEN, E_CSUM, E_FRAG, E_NOTV4
from mptcp import checksum

HLEN = const(20)
PROTO_TCP = const(6)
PROTO_UDP = const(17)
FLAG_DF = const(0x4000)
FLAG_MF = const(0x2000)


class IPv4Header:
    """Result of `parse`; one instance is reused for every packet."""

    def __init__(self):
        self.hlen = 0      # header length in bytes (20..60)
        self.total = 0     # total length (header + payload)
        self.proto = 0
        self.src = 12      # offset of the source address in buf
        self.dst = 16      # offset of the destination address in buf
        self.ttl = 0
        self.ident = 0
        self.tos = 0
        self.df = False


def parse(buf, n, hdr, verify=True):
    """Parse the IPv4 header at buf[0:n]; return OK or a reason code.

    n may exceed hdr.total (a TUN read can hold several packets): the caller
    uses hdr.total to find the end. verify=False skips the header checksum.
    """
    if n > len(buf):
        n = len(buf)
    if n < 20:
        return E_SHORT
    b0 = buf[0]
    if (b0 >> 4) != 4:
        return E_NOTV4
    hlen = (b0 & 0x0F) << 2
    if hlen < 20:
        return E_BADLEN
    if hlen > n:
        return E_SHORT
    total = (buf[2] << 8) | buf[3]
    if total < hlen:
        return E_BADLEN
    if total > n:
        return E_SHORT
    frag = (buf[6] << 8) | buf[7]
    if frag & 0x3FFF:  # MF set or a non-zero fragment offset
        return E_FRAG
    if verify and checksum.ones_sum(buf, 0, hlen, 0) != 0xFFFF:
        return E_CSUM
    hdr.hlen = hlen
    hdr.total = total
    hdr.proto = buf[9]
    hdr.ttl = buf[8]
    hdr.ident = (buf[4] << 8) | buf[5]
    hdr.tos = buf[1]
    hdr.df = (frag & FLAG_DF) != 0
    hdr.src = 12
    hdr.dst = 16
    return OK


def write(buf, off, src4, dst4, proto, payload_len, ident, ttl=64, df=True):
    """Write a 20-byte header (with checksum) at buf[off]; return 20."""
    total = 20 + payload_len
    buf[off] = 0x45
    buf[off + 1] = 0
    buf[off + 2] = (total >> 8) & 0xFF
    buf[off + 3] = total & 0xFF
    buf[off + 4] = (ident >> 8) & 0xFF
    buf[off + 5] = ident & 0xFF
    buf[off + 6] = 0x40 if df else 0
    buf[off + 7] = 0
    buf[off + 8] = ttl & 0xFF
    buf[off + 9] = proto & 0xFF
    buf[off + 10] = 0
    buf[off + 11] = 0
    for i in range(4):
        buf[off + 12 + i] = src4[i]
        buf[off + 16 + i] = dst4[i]
    c = 0xFFFF - checksum.ones_sum(buf, off, off + 20, 0)
    buf[off + 10] = c >> 8
    buf[off + 11] = c & 0xFF
    return 20


def pseudo_sum(src, dst, proto, length, src_off=0, dst_off=0):
    """Folded one's-complement sum of the TCP/UDP pseudo-header.

    src/dst are 4-byte addresses, or any buffer with the address at
    src_off/dst_off (e.g. the received packet: offsets 12 and 16).
    Result is 0..0xFFFF, not inverted: pass it as `acc` to the checksum.
    """
    s = (((src[src_off] << 8) | src[src_off + 1]) + ((src[src_off + 2] << 8) | src[src_off + 3])
         + ((dst[dst_off] << 8) | dst[dst_off + 1]) + ((dst[dst_off + 2] << 8) | dst[dst_off + 3])
         + proto + length)
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def addr_eq(buf, off, addr4):
    """True if the 4 bytes at buf[off] equal addr4 (no allocation)."""
    return (buf[off] == addr4[0] and buf[off + 1] == addr4[1]
            and buf[off + 2] == addr4[2] and buf[off + 3] == addr4[3])


def addr_at(buf, off):
    """Copy the address at buf[off] out as 4-byte bytes (slow path only)."""
    return bytes(buf[off:off + 4])
