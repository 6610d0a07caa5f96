"""Raw-socket netif for a Linux board (`rpi`): the device's stack on a real interface (wlan0).

Two sockets, both bound to the interface, both usable from CPython and the MicroPython unix
port (as root; its sockaddrs are raw bytes, so they are built here by hand):

- receive: AF_PACKET / SOCK_DGRAM / ETH_P_IP, bound to the interface. A packet tap sees a
  frame before the kernel's IP layer and before netfilter, so the rule set
  (mptcp_net/rawnet_rules.py) can drop the device's inbound TCP in prerouting:
  the kernel's own TCP never sees it and never answers it with a RST, and this socket still
  gets its copy. A raw IPv4 socket (SOCK_RAW, IPPROTO_TCP) cannot do this: raw delivery
  comes after netfilter's input hook, so the same drop would starve it, and without the
  drop the kernel resets every connection the device opens.
- send: AF_INET / SOCK_RAW / IPPROTO_RAW (implies IP_HDRINCL, never receives) with
  SO_BINDTODEVICE: the stack's packets leave exactly as built; the kernel routes them and
  resolves ARP (an AF_PACKET send would need its own ARP). SO_MARK tags them, so the rule
  set tells the device's RSTs from the kernel's.

Only TCP to the device's address on the device's ports (`ports`: the stack's ephemeral
range and its listening ports) reaches the stack; everything else on the interface (the
kernel's own connections, e.g. ssh to the Pi) is ignored here, or the stack would reset it.
With `rules=True` the netif installs the nftables rule set (mptcp_net.rawnet_rules) and removes
it on close. GRO/LRO must be off on the interface (`ethtool -K IF gro off`): a merged
super-packet carries a stale TCP checksum.

MicroPython's socket has no recv_into: `readinto` on a non-blocking socket reads until its
buffer is full or nothing is left, so one call may return several packets back to back.
They go into a private buffer and are split by the IPv4 total length; an Ethernet frame
pads its payload to 46 bytes, so a shorter packet not followed by an IPv4 header is taken as
padded; a packet cut off by the end of the buffer is dropped (counted, TCP resends it).
"""
import sys

from mptcp.ringbuf import copy
from mptcp_net.netif import Netif, ip_ntoa

# Linux ABI numbers (the MicroPython unix port has few socket constants).
AF_INET = 2
AF_PACKET = 17
SOCK_DGRAM = 2
SOCK_RAW = 3
IPPROTO_RAW = 255
ETH_P_IP = 0x0800
SOL_SOCKET = 1
SO_RCVBUF = 8
SO_RCVBUFFORCE = 33
SO_BINDTODEVICE = 25
SO_MARK = 36
SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23

MARK = 0x6D70                 # SO_MARK of the device's packets ("mp"); the rule set matches it
EPHEMERAL = (49152, 65535)    # the stack's local ports for connect (mptcp.stack.EPHEMERAL_LO)
ETH_MIN_PAYLOAD = 46
RXBUF = 65536                 # MicroPython: room for a burst of back-to-back packets


def ifindex_of(ifname):
    """The kernel's index of an interface (from sysfs; OSError with its name if absent)."""
    try:
        with open("/sys/class/net/%s/ifindex" % ifname) as f:
            return int(f.read().strip())
    except OSError:
        raise OSError(19, "no such interface: %s" % ifname)


def _u16_host(v):
    return bytes((v & 0xFF, v >> 8)) if sys.byteorder == "little" else bytes((v >> 8, v & 0xFF))


def _htons(v):
    return ((v & 0xFF) << 8) | (v >> 8) if sys.byteorder == "little" else v


def sockaddr_ll(ifindex, proto=ETH_P_IP):
    """struct sockaddr_ll for bind (20 bytes): family, protocol (network order), ifindex."""
    i = ifindex.to_bytes(4, sys.byteorder)
    return _u16_host(AF_PACKET) + bytes((proto >> 8, proto & 0xFF)) + i + bytes(12)


def sockaddr_in(addr4, port=0):
    """struct sockaddr_in (16 bytes) as a bytearray, so the address can be changed in place."""
    b = bytearray(16)
    b[0:2] = _u16_host(AF_INET)
    b[2] = port >> 8
    b[3] = port & 0xFF
    b[4:8] = addr4
    return b


def in_ports(port, ports):
    for r in ports:
        if r[0] <= port <= r[1]:
            return True
    return False


def open_sockets(ifname, mark=MARK, rcvbuf=1 << 20):
    """(rx, tx) sockets bound to ifname, non-blocking (needs root / CAP_NET_RAW+ADMIN)."""
    import socket
    idx = ifindex_of(ifname)
    rx = socket.socket(AF_PACKET, SOCK_DGRAM, _htons(ETH_P_IP))
    try:
        if hasattr(rx, "recv_into"):          # CPython: (ifname, proto)
            rx.bind((ifname, ETH_P_IP))
        else:                                  # MicroPython: the raw sockaddr
            rx.bind(sockaddr_ll(idx))
        for opt in (SO_RCVBUFFORCE, SO_RCVBUF):
            try:
                rx.setsockopt(SOL_SOCKET, opt, rcvbuf)
                break
            except OSError:
                pass
        try:                                   # Linux >= 4.20: not our own sent packets
            rx.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        except OSError:
            pass
        rx.setblocking(False)
        tx = socket.socket(AF_INET, SOCK_RAW, IPPROTO_RAW)
    except Exception:
        rx.close()
        raise
    try:
        tx.setsockopt(SOL_SOCKET, SO_BINDTODEVICE, ifname.encode())
        tx.setsockopt(SOL_SOCKET, SO_MARK, mark)
        tx.setblocking(False)
    except Exception:
        tx.close()
        rx.close()
        raise
    return rx, tx


class RawNetif(Netif):
    """The netif on a Linux interface; `rx`/`tx` may be given (tests), else opened here."""
    eth_pad = True              # AF_PACKET on Ethernet-like links: short frames are padded

    def __init__(self, name, ifindex, ifname, addr4, ports=(EPHEMERAL,), mark=MARK,
                 rx=None, tx=None, rxbuf=RXBUF, rules=False):
        self.name = name
        self.ifindex = ifindex
        self.ifname = ifname
        self.addr = bytes(addr4)
        self.ports = tuple(ports)
        if rx is None or tx is None:
            rx, tx = open_sockets(ifname, mark)
        self.rx = rx
        self.tx = tx
        self._rules = False
        if rules:                 # the runtime installs the rule set and removes it on close
            from mptcp_net.rawnet_rules import install
            try:
                install(ifname, ip_ntoa(self.addr), self.ports, mark)
            except Exception:
                self.close()
                raise
            self._rules = True
        self.up = True
        self._recv_into = getattr(rx, "recv_into", None)   # CPython: one packet per call
        self._sendto = tx.sendto if hasattr(tx, "recv_into") else None   # CPython
        self._rb = bytearray(rxbuf if self._recv_into is None else 0)
        self._pos = 0
        self._end = 0
        self._dst = bytearray(4)          # destination the tx socket is connected to
        self._sa = sockaddr_in(b"\x00\x00\x00\x00")
        self._dst_tuple = None
        self.rx_packets = self.tx_packets = self.rx_bytes = self.tx_bytes = 0
        self.tx_errors = self.rx_errors = 0
        self.rx_other = 0                 # not for the device (kernel's traffic, other hosts)
        self.rx_trunc = 0                 # cut off at the end of a read (MicroPython)

    def pollable(self):
        return self.rx

    def _mine(self, b, off, n):
        """Is the packet at b[off:off+n] TCP for this device's address and ports?"""
        if n < 20 or (b[off] >> 4) != 4 or b[off + 9] != 6:
            return False
        a = self.addr
        if b[off + 16] != a[0] or b[off + 17] != a[1] or b[off + 18] != a[2] or b[off + 19] != a[3]:
            return False
        ihl = (b[off] & 15) * 4
        if ihl < 20 or n < ihl + 4:
            return False
        return in_ports((b[off + ihl + 2] << 8) | b[off + ihl + 3], self.ports)

    def recv_into(self, buf):
        for _ in range(256):      # bounded: other traffic on the interface is skipped
            if self._recv_into is not None:
                n = self._recv_cpython(buf)
            else:
                n = self._recv_split(buf)
            if n == 0:
                return 0
            if n > 0 and self._mine(buf, 0, n):
                self.rx_packets += 1
                self.rx_bytes += n
                return n
            if n > 0:
                self.rx_other += 1
        return 0

    def _recv_cpython(self, buf):
        try:
            n = self._recv_into(buf)  # pyright: ignore[reportOptionalCall]  # CPython only
        except OSError:
            return 0
        if not n:
            return 0
        tot = (buf[2] << 8) | buf[3] if n >= 20 else 0
        if tot < 20 or tot > n:
            self.rx_errors += 1
            return -1             # skipped: the caller reads on
        return tot                # Ethernet padding beyond the total length is not part of it

    def _recv_split(self, buf):
        """Next packet from the private buffer (refilled when empty) into buf; 0 if none."""
        rb = self._rb
        while True:
            if self._pos >= self._end:
                try:
                    n = self.rx.readinto(rb)
                except OSError:
                    n = 0
                self._pos = 0
                self._end = n or 0
                if not n:
                    return 0
            pos = self._pos
            left = self._end - pos
            if left < 20 or (rb[pos] >> 4) != 4:
                self.rx_errors += 1           # lost framing: drop the rest of this read
                self._pos = self._end
                continue
            tot = (rb[pos + 2] << 8) | rb[pos + 3]
            if tot < 20:
                self.rx_errors += 1
                self._pos = self._end
                continue
            if tot > left:
                self.rx_trunc += 1            # the read stopped inside this packet
                self._pos = self._end
                continue
            adv = tot
            if self.eth_pad and tot < ETH_MIN_PAYLOAD and left >= ETH_MIN_PAYLOAD and (
                    left == ETH_MIN_PAYLOAD or (rb[pos + tot] >> 4) != 4):
                adv = ETH_MIN_PAYLOAD         # a padded minimum-size Ethernet frame
            self._pos = pos + adv
            if tot > len(buf):
                self.rx_errors += 1
                continue
            copy(buf, 0, rb, pos, tot)
            return tot

    def send(self, mv, n):
        if n < 20:
            self.tx_errors += 1
            return False
        try:
            d = self._dst
            if d[0] != mv[16] or d[1] != mv[17] or d[2] != mv[18] or d[3] != mv[19]:
                d[0] = mv[16]
                d[1] = mv[17]
                d[2] = mv[18]
                d[3] = mv[19]
                if self._sendto:
                    self._dst_tuple = (ip_ntoa(d), 0)
                else:                 # connect once per destination: write() then allocates nothing
                    sa = self._sa
                    sa[4] = d[0]
                    sa[5] = d[1]
                    sa[6] = d[2]
                    sa[7] = d[3]
                    self.tx.connect(bytes(sa))
            if self._sendto:
                r = self._sendto(mv[:n], self._dst_tuple)  # pyright: ignore[reportArgumentType]  # CPython
            else:
                # MicroPython: stream write(buf, len) (py/stream.c; the stub has write(buf))
                r = self.tx.write(mv, n)  # pyright: ignore[reportCallIssue]
        except OSError:
            self._dst[0] = 0          # reconnect next time (the route may have changed)
            self.tx_errors += 1
            return False
        if not r:
            self.tx_errors += 1
            return False
        self.tx_packets += 1
        self.tx_bytes += n
        return True

    def stats(self):
        return {"rx_packets": self.rx_packets, "tx_packets": self.tx_packets,
                "rx_other": self.rx_other, "rx_trunc": self.rx_trunc,
                "rx_errors": self.rx_errors, "tx_errors": self.tx_errors}

    def close(self):
        self.up = False
        for s in (self.rx, self.tx):
            try:
                s.close()
            except OSError:
                pass
        if self._rules:
            from mptcp_net.rawnet_rules import remove
            remove(self.ifname)
            self._rules = False
