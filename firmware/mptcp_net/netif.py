"""The netif interface: what every link driver provides to the poll loop (mptcp_runtime.loop).

A netif moves whole IPv4 packets (header included) between the stack and one link. It
never blocks and never raises on the data path: errors are counted and the packet is
dropped. Drivers here: udp_tunnel.UdpTunnel (IP-in-UDP, the lab's Wi-Fi), raw_netif.RawNetif
(a Linux interface), lwip_raw_netif.LwipRawNetif (Pico W Wi-Fi), ppp_netif.PppNetif (IPv4
over PPP on a serial line) and lte_link.LteNetif (modem + PPP as one netif).

Every netif has:
  name           the link's name ("wifi", "lte"): apps and logs only
  ifindex        the stack's index for the link (stack.add_netif(ifindex, addr))
  addr           local IPv4 address, 4 bytes (0.0.0.0 until known, e.g. before IPCP)
  up             bool: the link can carry packets now; the loop sends only on an up netif
  pollable()     what select.poll waits on for received data: an int fd or an object
                 with fileno(); None: the loop drains it every iteration (waits <= 2 ms)
  recv_into(buf) copy ONE whole IPv4 packet to buf[0:] and return its length, or 0
                 when nothing (more) is waiting; control traffic (PPP's LCP/IPCP, the
                 lab's link-state messages) is handled inside and never returned
  send(mv, n)    the first n bytes of memoryview mv are one IPv4 packet: True if handed
                 to the link, False if dropped (counted: tx_errors or the driver's own)
  close()        release the link (socket, serial line); the loop's close() calls it
  rx_packets, tx_packets, rx_bytes, tx_bytes, tx_errors   counters
Some have, as the link needs (the loop looks them up with hasattr, so this base class
must not define them):
  on_event       None until the loop sets it to callable(event, netif); the driver calls
                 it with "up" (addr is valid, maybe new) or "down" on a change of `up`
                 (Wi-Fi association, the lab's link state, IPCP opened or closed)
  poll(now)      the driver's own timers (PPP keepalive and retransmits, the modem's AT
                 dialogue, the Wi-Fi association check); now and the returned deadline
                 are ticks (mptcp.ticks), -1 for none; called every loop iteration
  writable()     transmit back-pressure of a slow link: False while its queue has no
                 room for a full packet; the loop then pauses the link's subflows
                 (stack.set_blocked) instead of sending into a full queue
  mtu            the largest packet send() takes when negotiated (PPP: the peer's MRU)
  backup         set by the app: the stack joins subflows on this link as backups
  stats()        every counter by name (the perf and trial apps report it)
The net layer has no clock of its own: poll(now) gets the time, and a driver that also
needs it inside recv_into or close takes the runtime's clock as an argument.
"""

MTU = 1500


class Netif:
    """Base of the link drivers: the attributes and methods every netif has."""
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
