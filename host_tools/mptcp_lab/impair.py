"""Link impairments for one direction of a link: delay, jitter, loss, rate, up/down.

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
Release times are therefore non-decreasing per direction, so a FIFO (deque) per direction
holds the delayed packets in O(1) (a heap would only be needed if packets could overtake);
the emulator's next wake-up is the earliest FIFO head over the few directions.
"""

import collections
import random
import re

PARAMS = ("rate", "delay", "jitter", "loss")

# Profiles for `mptcp-lab up --wifi PROFILE` (values apply to each direction).
PROFILES = {
    "clean": {"rate": 0, "delay": 0.0, "jitter": 0.0, "loss": 0.0},
    # 10 ms each way = 20 ms RTT, 2 % independent loss each way.
    "lossy": {"rate": 0, "delay": 10.0, "jitter": 0.0, "loss": 2.0},
    # 20 Mbit/s each way, 5 ms each way (10 ms RTT).
    "wifi": {"rate": 20_000_000, "delay": 5.0, "jitter": 0.0, "loss": 0.0},
    # 2 Mbit/s each way, 25 ms each way (50 ms RTT).
    "slow": {"rate": 2_000_000, "delay": 25.0, "jitter": 0.0, "loss": 0.0},
}

PROFILE_HELP = ("clean: no impairment; lossy: 10 ms each way (20 ms RTT) and 2%% loss each way; "
                "wifi: 20 Mbit/s and 5 ms each way; slow: 2 Mbit/s and 25 ms each way")

MIN_QUEUE_PKTS = 64
MTU = 1500

_RATE_UNITS = {"": 1, "bit": 1, "bps": 1, "k": 1e3, "kbit": 1e3, "kbps": 1e3, "m": 1e6,
               "mbit": 1e6, "mbps": 1e6, "g": 1e9, "gbit": 1e9, "gbps": 1e9}
_TIME_UNITS = {"": 1.0, "ms": 1.0, "s": 1000.0, "us": 0.001}


def parse_value(name, text):
    """Parse one `name=value` setting into its canonical unit (bit/s, ms, percent)."""
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
        self.fifo = collections.deque()   # (release_time_s, packet)
        self.busy_until = 0.0             # serializer: time the last queued packet is sent
        self.serial = collections.deque() # serialization finish times of queued packets
        self.last_release = 0.0
        self.queue_limit = MIN_QUEUE_PKTS
        self.reset_counters()

    def reset_counters(self):
        self.fwd_pkts = 0
        self.fwd_bytes = 0
        self.drops = {"down": [0, 0], "loss": [0, 0], "queue": [0, 0], "tx": [0, 0],
                      "nodest": [0, 0], "bad": [0, 0]}

    def set(self, **kw):
        for k, v in kw.items():
            if k not in PARAMS:
                raise ValueError("unknown setting %r" % k)
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

    def drop(self, reason, n):
        d = self.drops[reason]
        d[0] += 1
        d[1] += n

    def admit(self, pkt, now):
        """Decide the fate of a packet arriving at `now` (seconds).

        Returns False if dropped, else True after queuing it in `fifo` (release time set).
        Loss and `down` are checked by the caller first (hot path); this handles rate/delay.
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
                "loss": self.loss, "queue_limit": self.queue_limit}

    def counters(self):
        return {"forwarded_pkts": self.fwd_pkts, "forwarded_bytes": self.fwd_bytes,
                "queued_pkts": len(self.fifo),
                "dropped": {k: {"pkts": v[0], "bytes": v[1]} for k, v in self.drops.items()}}
