"""Packet schedulers: which subflow carries the next new segment of a connection.

Pull model: when a subflow could send new data it asks `allows(conn, sf)`; the
answer is True only for the subflow the policy picks among those that can carry
data and have room now, so the others leave the data to it. Subflows are ranked
in tiers first (RFC 8684 3.3.8: backup subflows only when no other can carry):
  0  a regular subflow in good health
  1  a backup subflow (our B flag or the peer's) in good health
  2  a subflow in trouble (an RTO outstanding, or stale)
and the policy picks within the best tier that has any member:
  minrtt      the subflow whose queue drains soonest: bytes in flight over its rate
              (cwnd / srtt), as Linux's default scheduler (linger time = wmem_queued /
              pacing rate); ties go to the lowest smoothed RTT. Not "lowest RTT with room":
              with a send ring smaller than the fast path's window that one takes every
              byte and the other link idles (measured: 7044K/123K over Wi-Fi/LTE)
  backup      minrtt with the last link joined as backup (the app and the board pick it,
              see mptcp_runtime.factory): it carries nothing until the regular subflow has an
              RTO or fails, then takes over at once: iOS's handover mode
  roundrobin  the next subflow in turn (tests)
  redundant   minrtt for bulk data; a small write (a segment of at most SMALL_WRITE
              bytes) is also sent on every other subflow that can carry it, so a lost
              or stalled path costs it nothing (latency-critical messages)
No allocation: loops over the connection's short subflow list.
"""
from mptcp.compat import const

MINRTT = const(0)
BACKUP = const(1)
ROUNDROBIN = const(2)
REDUNDANT = const(3)
NAMES = ("minrtt", "backup", "roundrobin", "redundant")
SMALL_WRITE = const(512)


def by_name(name):
    for i in range(len(NAMES)):
        if NAMES[i] == name:
            return Scheduler(i)
    raise ValueError("unknown scheduler %r (known: %s)" % (name, ", ".join(NAMES)))


class Scheduler:
    def __init__(self, kind=MINRTT):
        self.kind = kind
        self.name = NAMES[kind]

    def tier(self, sf):
        """0-2 as in the module docstring; 9: cannot carry data at all."""
        if not sf.can_carry():
            return 9
        if sf.stale or sf.tries > 0:
            return 2
        if sf.backup or sf.peer_backup:
            return 1
        return 0

    def copies(self, n):
        """Does a new segment of n bytes get copies on the other subflows?"""
        return self.kind == REDUNDANT and n <= SMALL_WRITE

    def allows(self, c, sf):
        t = self.tier(sf)
        if t == 9:
            return False
        if c.dup_end > c.dup_nxt and c.dup_sf is not sf and sf.has_room():
            return True                 # a copy of a small write (redundant)
        subs = c.subflows
        best = 9
        for s in subs:
            x = self.tier(s)
            if x < best:
                best = x
        if t != best:
            return False
        if self.kind == ROUNDROBIN:
            # the first subflow of the tier with room after the one that sent last
            n = len(subs)
            start = 0
            for i in range(n):
                if subs[i] is c.last_tx:
                    start = i + 1
                    break
            for i in range(n):
                s = subs[(start + i) % n]
                if self.tier(s) == best and s.has_room():
                    c.last_tx = s if s is sf else c.last_tx
                    return s is sf
            return False
        # minrtt (and backup): the shortest linger time among those with room
        pick = None
        pl = 0
        for s in subs:
            if self.tier(s) == best and s.has_room():
                x = linger(s)
                if pick is None or x < pl or (x == pl and _rtt(s) < _rtt(pick)):
                    pick = s
                    pl = x
        return pick is sf


def _rtt(sf):
    r = sf.rtt
    return r.srtt if r.srtt >= 0 else r.rto


def linger(sf):
    """How long (ms) the subflow's bytes in flight take to drain at its rate cwnd / srtt,
    in 64-byte units with both factors capped so the product stays a small int on a
    32-bit board (< 2**29: no allocation)."""
    q = (sf.snd_max - sf.snd_una) >> 6
    if q <= 0:
        return 0
    if q > 0xFFFF:
        q = 0xFFFF
    r = _rtt(sf)
    if r > 0x1FFF:
        r = 0x1FFF
    w = sf.cc.cwnd >> 6
    return (q * r) // (w if w > 0 else 1)
