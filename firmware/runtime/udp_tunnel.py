"""IP-in-UDP netif: the lab's Wi-Fi link (and a tunnel to a concentrator on a Pi).

Each IPv4 packet travels as one UDP datagram to/from the link emulator.
The emulator pads every downlink datagram to exactly FRAME bytes, because on
MicroPython a datagram socket has only the stream `readinto`, which keeps
reading until its buffer is full: with fixed-size frames one readinto returns
exactly one frame (and never truncates the next one). The IPv4 total length
tells the packet's real size.
"""
import socket

from runtime.netif import Netif, MTU

FRAME = MTU


class UdpTunnel(Netif):
    def __init__(self, name, ifindex, addr4, peer_host, peer_port, local_port=0, pad_tx=False):
        self.name = name
        self.pad_tx = pad_tx      # pad sent datagrams to FRAME (device-to-device tests)
        self.ifindex = ifindex
        self.addr = addr4
        self.up = True
        self._peer = socket.getaddrinfo(peer_host, peer_port)[0][-1]
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(socket.getaddrinfo("127.0.0.1", local_port)[0][-1])
        try:    # unix port and CPython; the Pico's socket has no SO_RCVBUF: skipped there
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)  # pyright: ignore[reportAttributeAccessIssue]
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1024 * 1024)  # pyright: ignore[reportAttributeAccessIssue]
        except Exception:
            pass
        s.connect(self._peer)
        s.setblocking(False)
        self.sock = s
        self._recv_into = getattr(s, "recv_into", None)   # CPython: one datagram per call
        self._frame = memoryview(bytearray(FRAME))
        self.rx_packets = self.tx_packets = self.rx_bytes = self.tx_bytes = 0
        self.tx_errors = self.rx_errors = 0
        # say hello so the emulator learns our address before the first packet
        try:
            s.send(b"")
        except OSError:
            pass

    def pollable(self):
        return self.sock

    def recv_into(self, buf):
        try:
            if self._recv_into is not None:
                n = self._recv_into(buf)
            else:
                n = self.sock.readinto(buf, FRAME) if len(buf) >= FRAME else self.sock.readinto(buf)
        except OSError:
            return 0
        if not n:
            return 0
        if n < 20:
            self.rx_errors += 1
            return 0
        tot = (buf[2] << 8) | buf[3]
        if tot > n or tot < 20:
            self.rx_errors += 1
            return 0
        self.rx_packets += 1
        self.rx_bytes += tot
        return tot

    def send(self, mv, n):
        try:
            m = FRAME if (self.pad_tx and len(mv) >= FRAME) else n
            if self._recv_into is not None:
                self.sock.send(mv[:m])
            else:
                # MicroPython: stream write(buf, len) (py/stream.c; the stub has write(buf))
                self.sock.write(mv, m)  # pyright: ignore[reportCallIssue]
        except OSError:
            self.tx_errors += 1
            return False
        self.tx_packets += 1
        self.tx_bytes += n
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
