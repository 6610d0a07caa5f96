"""Link impairments for one direction of a link: delay, jitter, loss, rate, up/down, corrupt.

Kernel netem is not available on the lab machines, so the link emulator applies these itself.
Model (per direction, independent of the other direction):
  * down: every packet is dropped (reason "down").
  * loss: each packet is dropped with probability loss/100, independently (reason "loss").
  * rate (bit/s, 0 = unlimited): packets are serialized one after the other at that rate
    through a FIFO bounded to max(64 packets, 2 * BDP); a packet arriving to a full queue
    is tail-dropped (reason "queue").  BDP = rate * (2 * delay + 2 * jitter).
  * delay (ms, one way) and jitter (ms): after serialization each packet waits delay plus a
    uniform random value in [-jitter, +jitter] (never below 0).  Packets are never reordered:
    a packet is not released before the one in front of it (like netem over a FIFO), so
    jitter shows as delay variation, not reordering.
  * corrupt (a packet count N, default 0): a middlebox that rewrites TCP payload and fixes up
    the TCP checksum, i.e. what only the MPTCP DSS checksum (RFC 8684 3.3) can detect.  The
    next N IPv4/TCP packets with a non-empty payload that pass the loss (and queue) decision
    get the byte in the middle of their payload XORed with 0xFF and their TCP checksum
    recomputed (IP header untouched); N counts down to 0, then nothing more is corrupted
    until it is set again.  Other packets (not TCP, no payload, IPv4 fragments, malformed)
    pass unchanged and do not count.  Counter: corrupted_pkts.  Profiles set corrupt=0.
    See corrupt_tcp_payload().
Because of the no-reordering rule, release times are non-decreasing per direction, so a
FIFO (deque) per direction holds the delayed packets in O(1) (a heap would only be needed if
packets could overtake); the emulator's next wake-up is the earliest FIFO head over the few
directions.
"""

import collections
import random
import re

PARAMS = ("rate", "delay", "jitter", "loss", "corrupt")

# Profiles for `mptcp-lab up --wifi PROFILE` (values apply to each direction).
# A profile sets every parameter, so applying one also disarms corrupt.
PROFILES = {
    "clean": {"rate": 0, "delay": 0.0, "jitter": 0.0, "loss": 0.0, "corrupt": 0},
    # 10 ms each way = 20 ms RTT, 2 % independent loss each way.
    "lossy": {"rate": 0, "delay": 10.0, "jitter": 0.0, "loss": 2.0, "corrupt": 0},
    # 20 Mbit/s each way, 5 ms each way (10 ms RTT).
    "wifi": {"rate": 20_000_000, "delay": 5.0, "jitter": 0.0, "loss": 0.0, "corrupt": 0},
    # 2 Mbit/s each way, 25 ms each way (50 ms RTT).
    "slow": {"rate": 2_000_000, "delay": 25.0, "jitter": 0.0, "loss": 0.0, "corrupt": 0},
}

PROFILE_HELP = ("clean: no impairment; lossy: 10 ms each way (20 ms RTT) and 2%% loss each way; "
                "wifi: 20 Mbit/s and 5 ms each way; slow: 2 Mbit/s and 25 ms each way")

MIN_QUEUE_PKTS = 64
MTU = 1500

_RATE_UNITS = {"": 1, "bit": 1, "bps": 1, "k": 1e3, "kbit": 1e3, "kbps": 1e3, "m": 1e6,
               "mbit": 1e6, "mbps": 1e6, "g": 1e9, "gbit": 1e9, "gbps": 1e9}
_TIME_UNITS = {"": 1.0, "ms": 1.0, "s": 1000.0, "us": 0.001}


def parse_corrupt(text):
    """corrupt=N: how many packets to corrupt, an integer >= 0."""
    t = str(text).strip()
    if not re.fullmatch(r"[+-]?[0-9]+", t):
        raise ValueError("bad value for corrupt: %r (a packet count, an integer >= 0)" % text)
    n = int(t)
    if n < 0:
        raise ValueError("corrupt must be >= 0 (a packet count), not %d" % n)
    return n


def parse_value(name, text):
    """Parse one `name=value` setting into its canonical unit (bit/s, ms, percent, packets)."""
    if name == "corrupt":
        return parse_corrupt(text)
    t = str(text).strip().lower()
    m = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*([a-z%]*)", t)
    if not m:
        raise ValueError("bad value for %s: %r" % (name, text))
    num, unit = float(m.group(1)), m.group(2)
    if name == "rate":
        if unit not in _RATE_UNITS:
            raise ValueError("bad rate unit %r (use bit, kbit, mbit, gbit)" % unit)
        return int(num * _RATE_UNITS[unit])
    if name in ("delay", "jitter"):
        if unit not in _TIME_UNITS:
            raise ValueError("bad %s unit %r (use ms, s, us)" % (name, unit))
        return num * _TIME_UNITS[unit]
    if name == "loss":
        if unit not in ("", "%"):
            raise ValueError("bad loss unit %r (percent)" % unit)
        if num > 100:
            raise ValueError("loss above 100%")
        return num
    raise ValueError("unknown setting %r (use %s)" % (name, ", ".join(PARAMS)))


def parse_settings(items):
    """['rate=20mbit', 'delay=20ms'] -> {'rate': 20000000, 'delay': 20.0}"""
    out = {}
    for it in items:
        if "=" not in it:
            raise ValueError("expected name=value, got %r" % it)
        k, v = it.split("=", 1)
        k = k.strip().lower()
        out[k] = parse_value(k, v)
    return out


def _ones_sum(data):
    """16-bit one's complement sum (RFC 1071) of `data` (big-endian words, odd length padded
    with a zero byte), folded to 0..0xFFFF.  Uses 2**16 == 1 (mod 0xFFFF): the sum of the
    words is congruent to the whole buffer read as one big integer."""
    if len(data) & 1:
        data = bytes(data) + b"\0"
    n = int.from_bytes(data, "big")
    s = n % 0xFFFF
    if s == 0 and n:
        s = 0xFFFF      # a non-zero sum that folds to all ones, as the adder would give
    return s


def corrupt_tcp_payload(pkt):
    """Return a copy of IPv4/TCP packet `pkt` with the byte in the middle of its TCP payload
    XORed with 0xFF and the TCP checksum recomputed, or None if the packet is not eligible:
    not IPv4/TCP, a fragment (MF or offset set), no payload, or malformed/truncated.

    The IP header (options included) is left as is, so its checksum stays valid.  Bytes
    after the IPv4 total length (padding) are kept unchanged.  Never raises on bad input."""
    if isinstance(pkt, memoryview):
        pkt = pkt.tobytes()
    if not isinstance(pkt, (bytes, bytearray)):
        return None
    n = len(pkt)
    if n < 20:
        return None
    v_ihl = pkt[0]
    if v_ihl >> 4 != 4 or pkt[9] != 6:
        return None
    ihl = (v_ihl & 0x0F) * 4
    tot = (pkt[2] << 8) | pkt[3]
    if ihl < 20 or tot < ihl or tot > n:
        return None
    if ((pkt[6] << 8) | pkt[7]) & 0x3FFF:     # MF flag or fragment offset
        return None
    seg_len = tot - ihl
    if seg_len < 20:
        return None
    doff = (pkt[ihl + 12] >> 4) * 4
    if doff < 20 or doff >= seg_len:          # bad data offset, or no payload
        return None
    payload = ihl + doff
    b = bytearray(pkt)
    b[payload + (tot - payload) // 2] ^= 0xFF
    b[ihl + 16] = b[ihl + 17] = 0
    pseudo = bytes(b[12:20]) + bytes((0, 6, seg_len >> 8, seg_len & 0xFF))
    c = ~_ones_sum(pseudo + bytes(b[ihl:tot])) & 0xFFFF
    b[ihl + 16] = c >> 8
    b[ihl + 17] = c & 0xFF
    return bytes(b)


def fmt_rate(bps):
    if not bps:
        return "unlimited"
    for unit, div in (("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3)):
        if bps >= div:
            return "%g%s" % (bps / div, unit)
    return "%dbit" % bps


class Direction:
    """One direction of a link: impairment state, the delayed-packet FIFO and counters."""

    def __init__(self, name, rng=None):
        self.name = name
        self.rng = rng or random.Random()
        self.up = True
        self.rate = 0
        self.delay = 0.0
        self.jitter = 0.0
        self.loss = 0.0
        self.corrupt = 0                  # packets left to corrupt (see corrupt_tcp_payload)
        self.fifo = collections.deque()   # (release_time_s, packet)
        self.busy_until = 0.0             # serializer: time the last queued packet is sent
        self.serial = collections.deque() # serialization finish times of queued packets
        self.last_release = 0.0
        self.queue_limit = MIN_QUEUE_PKTS
        self.reset_counters()

    def reset_counters(self):
        self.fwd_pkts = 0
        self.fwd_bytes = 0
        self.corrupted_pkts = 0
        self.drops = {"down": [0, 0], "loss": [0, 0], "queue": [0, 0], "tx": [0, 0],
                      "nodest": [0, 0], "bad": [0, 0]}

    def set(self, **kw):
        for k, v in kw.items():
            if k not in PARAMS:
                raise ValueError("unknown setting %r" % k)
            if k == "corrupt" and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise ValueError("corrupt must be an integer >= 0, not %r" % (v,))
        for k, v in kw.items():
            setattr(self, k, v)
        self._update_limit()

    def _update_limit(self):
        if self.rate:
            bdp = self.rate / 8.0 * (2 * self.delay + 2 * self.jitter) / 1000.0
            self.queue_limit = max(MIN_QUEUE_PKTS, int(2 * bdp / MTU) + 1)
        else:
            self.queue_limit = MIN_QUEUE_PKTS

    @property
    def plain(self):
        """True when packets can be forwarded at once (no delay, rate, jitter, nothing queued)."""
        return not (self.rate or self.delay or self.jitter or self.fifo)

    def corrupt_next(self, pkt):
        """Called for a packet that will be forwarded while `corrupt` > 0: corrupt it if it
        is eligible (counting `corrupt` down), else return it unchanged."""
        if self.corrupt <= 0:
            return pkt
        out = corrupt_tcp_payload(pkt)
        if out is None:
            return pkt
        self.corrupt -= 1
        self.corrupted_pkts += 1
        return out

    def drop(self, reason, n):
        d = self.drops[reason]
        d[0] += 1
        d[1] += n

    def admit(self, pkt, now):
        """Decide the fate of a packet arriving at `now` (seconds).

        Returns False if dropped, else True after queuing it in `fifo` (release time set).
        Loss and `down` are checked by the caller first (hot path); this handles rate/delay
        and corrupts an admitted packet while `corrupt` > 0.
        """
        t = now
        if self.rate:
            serial = self.serial
            while serial and serial[0] <= now:
                serial.popleft()
            if len(serial) >= self.queue_limit:
                self.drop("queue", len(pkt))
                return False
            start = self.busy_until if self.busy_until > now else now
            t = start + len(pkt) * 8.0 / self.rate
            self.busy_until = t
            serial.append(t)
        if self.corrupt:
            pkt = self.corrupt_next(pkt)
        if self.delay or self.jitter:
            d = self.delay
            if self.jitter:
                d += self.rng.uniform(-self.jitter, self.jitter)
            if d > 0:
                t += d / 1000.0
        if t < self.last_release:
            t = self.last_release
        self.last_release = t
        self.fifo.append((t, pkt))
        return True

    def params(self):
        return {"up": self.up, "rate": self.rate, "delay": self.delay, "jitter": self.jitter,
                "loss": self.loss, "corrupt": self.corrupt, "queue_limit": self.queue_limit}

    def counters(self):
        return {"forwarded_pkts": self.fwd_pkts, "forwarded_bytes": self.fwd_bytes,
                "queued_pkts": len(self.fifo), "corrupted_pkts": self.corrupted_pkts,
                "dropped": {k: {"pkts": v[0], "bytes": v[1]} for k, v in self.drops.items()}}
