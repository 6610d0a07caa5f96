"""An in-memory network for two Stacks: a seeded lossy link and the apps at both ends.

The link loses packets the way networks do: any packet (pure ACKs too), bursts,
whole rounds of one direction or of both, duplicates and reordering; every
decision comes from a seeded generator, so a failure replays exactly.
Runs under MicroPython and CPython (no random module, no f-strings).
"""
import hashlib
from mptcp.stack import Stack
from mptcp import checksum, ipv4
from mptcp import tcpwire as T

A_ADDR = bytes([198, 18, 1, 2])
B_ADDR = bytes([198, 18, 0, 1])


class Rng:
    """xorshift32: the same sequence on every interpreter."""

    def __init__(self, seed):
        self.s = (seed & 0xFFFFFFFF) or 1

    def next(self):
        x = self.s
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.s = x
        return x

    def one_in(self, n):
        return n > 0 and self.next() % n == 0

    def below(self, n):
        return self.next() % n if n > 0 else 0


class Source:
    """Deterministic pseudo-random stream written in chunks (no big allocations)."""

    def __init__(self, size, seed):
        self.size = size
        self.rng = Rng(seed)
        self.h = hashlib.sha256()
        self.chunk = bytearray(4096)
        self.mv = memoryview(self.chunk)
        self.clen = 0
        self.coff = 0
        self.sent = 0

    def _fill(self):
        n = self.size - self.sent - self.clen
        if n > 4096:
            n = 4096
        c = self.chunk
        r = self.rng
        for i in range(0, n, 4):
            x = r.next()
            c[i] = x & 0xFF
            if i + 1 < n:
                c[i + 1] = (x >> 8) & 0xFF
            if i + 2 < n:
                c[i + 2] = (x >> 16) & 0xFF
            if i + 3 < n:
                c[i + 3] = (x >> 24) & 0xFF
        self.h.update(self.mv[:n])
        self.clen = n
        self.coff = 0

    def write_to(self, conn, cap=-1):
        """Write as much as the send ring takes (and no byte at or past `cap` if >= 0);
        True once everything is written."""
        while self.sent < self.size:
            if self.coff == self.clen:
                self.clen = 0
                self._fill()
            end = self.clen
            if cap >= 0:
                if self.sent >= cap:
                    return False
                if end - self.coff > cap - self.sent:
                    end = self.coff + cap - self.sent
            k = conn.write(self.mv[self.coff:end])
            if not k:
                return False
            self.coff += k
            self.sent += k
        return True

    def push(self, conn):
        """Write, then shutdown_write() once everything is written (the caller reads what
        comes and closes at EOF: a close() with data unread would reset, as Linux does)."""
        if self.write_to(conn) and not conn.fin_queued:
            conn.shutdown_write()

    def done(self):
        return self.sent == self.size


class Impair:
    """Seeded impairments of one link; every rate is "one in N" (0 = never).

    loss      any packet, pure ACKs included
    burst     a packet starts a burst: it and the next burst_len - 1 of its direction are lost
              if sent within 2 delays (a burst is short in time, as on a radio link)
    rounds    at a new sending time, the direction goes dark for round_len round trips
              (every packet lost); both=True: the other direction goes dark with it
    dup       a packet is delivered twice
    reorder   a packet is held back (reorder_ms, or 1 to 3 delays; later ones overtake it)
    data_only the random losses (loss, burst) spare packets of <= 80 bytes (the old model:
              no pure ACK is ever lost)
    only      0 (a -> b) or 1 (b -> a): impair one direction only; -1 both
    """

    def __init__(self, seed=7, loss=0, burst=0, burst_len=3, rounds=0, round_len=1,
                 both=False, dup=0, reorder=0, reorder_ms=0, data_only=False, only=-1):
        self.rng = Rng(seed)
        self.loss = loss
        self.burst = burst
        self.burst_len = burst_len
        self.rounds = rounds
        self.round_len = round_len
        self.both = both
        self.dup = dup
        self.reorder = reorder
        self.reorder_ms = reorder_ms
        self.data_only = data_only
        self.only = only
        self.burst_left = [0, 0]
        self.burst_end = [0, 0]
        self.dark_until = [-1, -1]
        self.rolled_at = [-1, -1]
        self.darks = 0              # blackouts started


def payload_len(pkt):
    """TCP payload bytes of an IPv4/TCP packet (0 if it is not one)."""
    if len(pkt) < 40:
        return 0
    return len(pkt) - (pkt[0] & 15) * 4 - (pkt[32] >> 4) * 4


class Link:
    """Carries packets between two stacks after `delay` ms, impaired by an Impair.

    `loss`/`reorder` are the old knobs (one in N data packets; hold one in N back)."""

    def __init__(self, a, b, loss=0, reorder=0, seed=7, delay=5, imp=None):
        self.a = a
        self.b = b
        if imp is None:
            imp = Impair(seed, loss=loss, reorder=reorder, reorder_ms=3, data_only=True)
        self.imp = imp
        self.delay = delay
        self.q = []               # (time, dst, bytes)
        self.buf = bytearray(1600)
        self.now = 0
        self.sent = 0
        self.sent_dir = [0, 0]
        self.dropped = 0
        self.dropped_small = 0    # lost packets without payload (pure ACKs, FIN, RST ...)
        self.duplicated = 0
        self.reordered = 0
        self.fwd = None           # optional filter(pkt, dst) -> pkt or None
        self.wake = -1            # the apps want to run again at this time (-1: no)

    def _lose(self, d, now, pkt):
        im = self.imp
        if im.only >= 0 and im.only != d:
            return False
        r = im.rng
        if im.rounds and im.dark_until[d] <= now and im.rolled_at[d] != now:
            im.rolled_at[d] = now
            if r.one_in(im.rounds):
                until = now + im.round_len * 2 * self.delay
                im.darks += 1
                im.dark_until[d] = until
                if im.both:
                    im.dark_until[1 - d] = until
        if now < im.dark_until[d]:
            return True
        if im.data_only and len(pkt) <= 80:
            return False
        if im.burst_left[d] > 0:
            if now < im.burst_end[d]:
                im.burst_left[d] -= 1
                return True
            im.burst_left[d] = 0
        if r.one_in(im.burst):
            im.burst_left[d] = im.burst_len - 1
            im.burst_end[d] = now + 2 * self.delay
            return True
        return r.one_in(im.loss)

    def pump(self, now):
        moved = 0
        im = self.imp
        for src, dst, d in ((self.a, self.b, 0), (self.b, self.a, 1)):
            while True:
                n = src.output(now, self.buf)
                if not n:
                    break
                moved += 1
                assert n <= 1500, n            # MSS 1460 + 40: never above the MTU
                pkt = bytes(self.buf[:n])
                self.sent += 1
                self.sent_dir[d] += 1
                if self.fwd is not None:
                    pkt = self.fwd(pkt, dst)
                    if pkt is None:
                        continue
                if self._lose(d, now, pkt):
                    self.dropped += 1
                    if payload_len(pkt) == 0:
                        self.dropped_small += 1
                    continue
                t = now + self.delay
                if (im.only < 0 or im.only == d) and im.rng.one_in(im.reorder):
                    t += im.reorder_ms or 1 + im.rng.below(3 * self.delay)
                    self.reordered += 1
                self.q.append((t, dst, pkt))
                if (im.only < 0 or im.only == d) and im.rng.one_in(im.dup):
                    self.q.append((t + 1 + im.rng.below(self.delay), dst, pkt))
                    self.duplicated += 1
        return moved

    def deliver(self, now):
        q = self.q
        i = 0
        got = 0
        while i < len(q):
            t, dst, pkt = q[i]
            if t <= now:
                q.pop(i)
                dst.input(1, bytearray(pkt), len(pkt), now)
                got += 1
            else:
                i += 1
        return got

    def next_time(self, now):
        t = -1
        for s in (self.a, self.b):
            d = s.next_deadline()
            if d >= 0 and (t < 0 or d < t):
                t = d
        for e in self.q:
            if t < 0 or e[0] < t:
                t = e[0]
        if self.wake >= 0 and (t < 0 or self.wake < t):
            t = self.wake
        if t < now:
            t = now
        return t


def pair(snd=16384, rcv=16384, seed=1):
    a = Stack(snd_buf=snd, rcv_buf=rcv, max_conns=2, seed=seed)
    b = Stack(snd_buf=snd, rcv_buf=rcv, max_conns=2, seed=seed + 100)
    a.add_netif(1, A_ADDR)
    b.add_netif(1, B_ADDR)
    return a, b


def run(link, now, cond, limit=600000):
    end = now + limit
    while now < end:
        link.now = now
        link.pump(now)
        link.deliver(now)
        link.pump(now)
        if cond():
            return now
        link.pump(now)          # what the apps just wrote goes out now, not at the next timer
        nt = link.next_time(now)
        if nt <= now:
            nt = now + 1
        now = nt
    raise AssertionError("timeout")


def run_for(link, now, ms, step=None):
    """Run the pair for `ms` of fake time (step() called every round); the new now."""
    end = now + ms
    while now < end:
        link.now = now
        link.pump(now)
        link.deliver(now)
        link.pump(now)
        if step is not None:
            step()
            link.pump(now)
        nt = link.next_time(now)
        if nt <= now:
            nt = now + 1
        now = nt if nt < end else end
    return now


def establish(link, now, ca, b):
    """Run until client connection `ca` is established and stack `b` accepted it:
    (now, the accepted connection)."""
    got = []

    def up():
        if not got:
            c = b.accept()
            if c is not None:
                got.append(c)
        return ca.established and len(got) == 1
    return run(link, now, up), got[0]


class App:
    """One end's application.

    Writes `size` bytes (a Source), then shuts down writing (`close_early`: close() at
    once, for an end that reads nothing). Reads into a SHA-256 from `read_at` on, at most
    `rate` bytes every `period` ms (0: all there is). close() once EOF is read.
    `abandon`: keep the write side open, read that many bytes, then close() with data
    unread (and stop reading); such an app writes nothing.
    """

    def __init__(self, link, conn, size, seed, rate=0, period=20, read_at=0,
                 close_early=False, abandon=-1):
        self.link = link
        self.c = conn
        self.src = Source(size, seed)
        self.h = hashlib.sha256()
        self.got = 0
        self.rate = rate
        self.period = period
        self.next_read = read_at
        self.close_early = close_early
        self.abandon = abandon
        self.closed_at = -1
        self.cap = -1             # >= 0: write no further than this many bytes for now
        self.rbuf = bytearray(2048)
        self.rmv = memoryview(self.rbuf)

    def step(self):
        c = self.c
        now = self.link.now
        if not c.fin_queued and self.abandon < 0 and self.src.write_to(c, self.cap):
            if self.close_early:
                c.close()
            else:
                c.shutdown_write()
        if c.app_closed:
            return
        if now >= self.next_read:
            budget = self.rate if self.rate else -1
            while budget != 0:
                want = 2048 if budget < 0 or budget > 2048 else budget
                if self.abandon >= 0 and self.abandon - self.got < want:
                    want = self.abandon - self.got
                    if want <= 0:
                        c.close()           # unread data stays in the ring
                        self.closed_at = now
                        return
                n = c.readinto(self.rmv[:want])
                if not n:
                    break
                self.h.update(self.rmv[:n])
                self.got += n
                if budget > 0:
                    budget -= n
            if self.rate:
                self.next_read = now + self.period
        if self.next_read > now:
            w = self.link.wake
            if w < 0 or w <= now or self.next_read < w:
                self.link.wake = self.next_read
        if c.eof and self.src.done() and not c.app_closed:
            c.close()

    def finished(self):
        c = self.c
        return c.eof and self.src.done() and c.closed


def tcp_fix(pkt):
    """Recompute the TCP checksum of an IPv4 (IHL 5) packet; a new bytearray."""
    p = bytearray(pkt)
    tl = len(p) - 20
    p[36] = 0
    p[37] = 0
    c = checksum.inet_checksum(p, 20, len(p), ipv4.pseudo_sum(p, p, 6, tl, 12, 16))
    p[36] = c >> 8
    p[37] = c & 0xFF
    return p


def mptcp_opts(p):
    """Offsets of the MPTCP options (kind 30) of an IPv4 (IHL 5) / TCP packet, in order."""
    out = []
    i = 40
    end = 20 + (p[32] >> 4) * 4
    while i < end:
        k = p[i]
        if k == 0:
            break
        if k == 1:
            i += 1
            continue
        ln = p[i + 1]
        if ln < 2:
            break
        if k == 30:
            out.append(i)
        i += ln
    return out


def strip_mptcp(pkt):
    """Replace every MPTCP option by NOPs (a middlebox that strips options); a new
    bytearray, its TCP checksum fixed (IHL 5)."""
    p = bytearray(pkt)
    offs = mptcp_opts(p)
    for i in offs:
        ln = p[i + 1]
        for j in range(ln):
            p[i + j] = 1
    return tcp_fix(p) if offs else p


def craft(sf, flags, opts=b"", payload=b"", seq=None, ack=None, window=None):
    """A segment as subflow `sf` would send it to its peer: relative seq/ack
    (default snd_max / rcv_nxt), the options given (NOP-padded), good checksums."""
    ol = (len(opts) + 3) & ~3
    p = bytearray(40 + ol + len(payload))
    rs = sf.snd_max if seq is None else seq
    ra = sf.rcv_nxt if ack is None else ack
    w = (sf.conn.rcv_window() >> sf.rcv_wscale) if window is None else window
    if w > 0xFFFF:
        w = 0xFFFF
    T.write_header(p, 20, sf.lport, sf.rport, (sf.iss + rs) & 0xFFFFFFFF,
                   (sf.irs + ra) & 0xFFFFFFFF, flags, w, ol)
    for i in range(ol):
        p[40 + i] = opts[i] if i < len(opts) else 1
    for i in range(len(payload)):
        p[40 + ol + i] = payload[i]
    ipv4.write(p, 0, sf.laddr, sf.raddr, 6, 20 + ol + len(payload), 1)
    return tcp_fix(p)
