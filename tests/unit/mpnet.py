"""Two links between a two-homed device stack (Wi-Fi and LTE addresses) and a
single-homed server stack, in memory: each path has its own delay and impairments
and can be taken down silently (every packet dropped) or with a signal to the
device (Stack.netif_down, as a Wi-Fi disassociation). Packets are routed by the
device's address (source a -> b, destination b -> a). Runs under MicroPython.
"""
from mptcp.stack import Stack
from netsim import Link, Impair, payload_len, B_ADDR

WIFI_ADDR = bytes([198, 18, 1, 2])
LTE_ADDR = bytes([198, 18, 2, 2])
WIFI = 1
LTE = 2


class Path:
    def __init__(self, name, ifindex, addr, delay, imp):
        self.name = name
        self.ifindex = ifindex
        self.addr = addr
        self.delay = delay
        self.imp = imp
        self.up = True
        self.pkts = [0, 0]          # packets carried a -> b, b -> a
        self.payload = [0, 0]       # TCP payload bytes carried
        self.dropped = 0


def mp_pair(snd=16384, rcv=16384, seed=1, scheduler="minrtt", lte_backup=False):
    a = Stack(snd_buf=snd, rcv_buf=rcv, max_conns=2, seed=seed, scheduler=scheduler)
    b = Stack(snd_buf=snd, rcv_buf=rcv, max_conns=2, seed=seed + 100, scheduler=scheduler)
    a.add_netif(WIFI, WIFI_ADDR)
    a.add_netif(LTE, LTE_ADDR, backup=lte_backup)
    b.add_netif(1, B_ADDR)
    return a, b


class MpLink(Link):
    """Link's run/pump interface (netsim.run, run_for, establish work on it) over paths."""

    def __init__(self, a, b, wifi_delay=5, lte_delay=20, seed=7, wifi_imp=None, lte_imp=None):
        Link.__init__(self, a, b, delay=wifi_delay, imp=Impair(seed))
        self.paths = [Path("wifi", WIFI, WIFI_ADDR, wifi_delay, wifi_imp or Impair(seed + 1)),
                      Path("lte", LTE, LTE_ADDR, lte_delay, lte_imp or Impair(seed + 2))]

    def path(self, name):
        for p in self.paths:
            if p.name == name:
                return p
        raise KeyError(name)

    def _route(self, pkt, d):
        at = 12 if d == 0 else 16
        for p in self.paths:
            if pkt[at:at + 4] == p.addr:
                return p
        return None

    def down(self, name, signal=True):
        """The path drops everything; with signal the device's netif reports it."""
        p = self.path(name)
        p.up = False
        if signal:
            self.a.netif_down(p.ifindex)

    def restore(self, name, signal=True):
        p = self.path(name)
        p.up = True
        if signal:
            self.a.add_netif(p.ifindex, p.addr, backup=self.a._is_backup(p.ifindex))

    def pump(self, now):
        moved = 0
        for src, dst, d in ((self.a, self.b, 0), (self.b, self.a, 1)):
            while True:
                n = src.output(now, self.buf)
                if not n:
                    break
                moved += 1
                assert n <= 1500, n
                pkt = bytes(self.buf[:n])
                self.sent += 1
                self.sent_dir[d] += 1
                if self.fwd is not None:
                    pkt = self.fwd(pkt, dst)
                    if pkt is None:
                        continue
                p = self._route(pkt, d)
                if p is None or not p.up:
                    self.dropped += 1
                    if p is not None:
                        p.dropped += 1
                    continue
                self.imp = p.imp
                self.delay = p.delay
                if self._lose(d, now, pkt):
                    self.dropped += 1
                    p.dropped += 1
                    continue
                p.pkts[d] += 1
                p.payload[d] += payload_len(pkt)
                self.q.append((now + p.delay, dst, pkt))
        return moved
