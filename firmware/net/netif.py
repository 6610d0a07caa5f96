"""The interface every link driver ("netif") implements for the poll loop.

A netif moves whole IPv4 packets. It never blocks: recv_into returns 0 when
nothing is waiting. `fileno()` gives what select.poll can wait on (or None for
drivers that must be polled, e.g. a UART without a file descriptor).
"""

MTU = 1500


class Netif:
    name = "?"
    ifindex = 0
    addr = b"\x00\x00\x00\x00"   # local IPv4 address, 4 bytes
    up = False

    def pollable(self):
        """Object to register with select.poll, or None."""
        return None

    def recv_into(self, buf):
        """Copy one whole IPv4 packet into buf; return its length or 0."""
        raise NotImplementedError

    def send(self, mv, n):
        """Send the first n bytes of mv as one IPv4 packet; True if handed to the link."""
        raise NotImplementedError

    def close(self):
        pass

    # statistics every netif keeps
    rx_packets = 0
    tx_packets = 0
    rx_bytes = 0
    tx_bytes = 0
    tx_errors = 0


def ip_aton(s):
    """'198.18.1.2' -> b'\\xc6\\x12\\x01\\x02' (ValueError on bad input)."""
    parts = s.split(".")
    if len(parts) != 4:
        raise ValueError("bad IPv4 address: %r" % (s,))
    out = bytearray(4)
    for i in range(4):
        v = int(parts[i])
        if v < 0 or v > 255:
            raise ValueError("bad IPv4 address: %r" % (s,))
        out[i] = v
    return bytes(out)


def ip_ntoa(b):
    return "%d.%d.%d.%d" % (b[0], b[1], b[2], b[3])
