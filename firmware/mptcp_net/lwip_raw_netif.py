"""Pico W Wi-Fi netif: lwIP's raw socket, `socket.socket(AF_INET, SOCK_RAW, 6)` (DESIGN §3).

lwIP hands every received TCP packet to the raw socket with its IPv4 header and no longer
to its own TCP, so no rule set is needed; on send lwIP prepends the IPv4 header itself
(source = the Wi-Fi address), so the stack's header is skipped. The socket is connected
to each new destination (an allocation only when the destination changes) and written
with the stream `write(buf, off, len)` of MicroPython's core (py/stream.c), which sends
from an offset without slicing. lwIP queues only 4 packets per socket: they are read
back to back into a small private buffer and split as in mptcp_net.raw_netif (no Ethernet
padding here: lwIP trims a pbuf to the IPv4 total length).

The link state comes from network.WLAN: `poll` checks `isconnected()` twice a second and
raises on_event("down"/"up") (the loop then tells the stack); the address is the one
DHCP gave (`ifconfig()[0]`).
"""
from mptcp import ticks
from mptcp_net.raw_netif import RawNetif, EPHEMERAL
from mptcp_net.netif import ip_aton, ip_ntoa

LWIP_QUEUE = 4                  # packets lwIP queues on a raw socket
RXBUF = LWIP_QUEUE * 1500 + 512
CHECK_MS = 500


def _wlan():
    import network
    return network.WLAN(network.STA_IF)


def _raw_socket():
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 6)
    s.setblocking(False)
    return s


class LwipRawNetif(RawNetif):
    """The Pico W's Wi-Fi (already associated: wlan.connect(...) done by the app)."""
    eth_pad = False
    on_event = None             # set by the loop

    def __init__(self, name, ifindex, wlan=None, sock=None, ports=(EPHEMERAL,), rxbuf=RXBUF):
        self.wlan = wlan if wlan is not None else _wlan()
        if not self.wlan.isconnected():
            raise OSError(113, "Wi-Fi not connected (wlan.connect first)")
        s = sock if sock is not None else _raw_socket()
        RawNetif.__init__(self, name, ifindex, "wlan0", ip_aton(self.wlan.ifconfig()[0]),
                          ports=ports, rx=s, tx=s, rxbuf=rxbuf)
        self._recv_into = None      # lwIP: the stream readinto, split here
        self._sendto = None
        self._next_check = -1
        self.ups = 1
        self.downs = 0

    def poll(self, now):
        """Follow the association; returns when to look again."""
        if self._next_check >= 0 and ticks.diff(now, self._next_check) < 0:
            return self._next_check
        self._next_check = ticks.add(now, CHECK_MS)
        conn = self.wlan.isconnected()
        if conn != self.up:
            self.up = conn
            if conn:
                self.ups += 1
                self.addr = ip_aton(self.wlan.ifconfig()[0])
                self._dst[0] = 0        # reconnect the socket on the next send
            else:
                self.downs += 1
            if self.on_event is not None:
                self.on_event("up" if conn else "down", self)
        return self._next_check

    def send(self, mv, n):
        hl = (mv[0] & 15) * 4 if n >= 20 else 0
        if hl < 20 or n < hl:
            self.tx_errors += 1
            return False
        try:
            d = self._dst
            if d[0] != mv[16] or d[1] != mv[17] or d[2] != mv[18] or d[3] != mv[19]:
                d[0] = mv[16]
                d[1] = mv[17]
                d[2] = mv[18]
                d[3] = mv[19]
                self.tx.connect((ip_ntoa(d), 0))
            # py/stream.c write(buf, off, len): not in the published stub's signature
            r = self.tx.write(mv, hl, n - hl)  # pyright: ignore[reportCallIssue]
        except OSError:
            self._dst[0] = 0
            self.tx_errors += 1
            return False
        if not r:
            self.tx_errors += 1
            return False
        self.tx_packets += 1
        self.tx_bytes += n
        return True

    def close(self):
        self.up = False
        try:
            self.rx.close()
        except OSError:
            pass
