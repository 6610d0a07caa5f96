"""Hypothesis fuzzing of Stack.input: random and mutated packets in every state.

Properties:
- nothing raises and the last-resort guard never fires (InternalErrors == 0),
  whatever is injected, whenever (handshake, data, DATA_FIN, FIN, TIME-WAIT);
- packets the TCP checksum rejects (and garbage) never disturb a concurrent
  transfer: it completes with the right SHA-256;
- with DSS checksums on, a data segment whose payload was altered (TCP
  checksum recomputed, as a middlebox would) is never delivered to the app:
  what the app reads is always a prefix of what was sent.
"""
import hashlib

from hypothesis import given, settings, strategies as st, HealthCheck

from mptcp import checksum, ipv4
from unit.test_stack_pair import pair, Link, Source, run, A_ADDR, B_ADDR

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def fix_csums(p):
    """Recompute the IPv4 header and TCP checksums of packet p (bytearray) in place."""
    if len(p) < 40 or p[0] >> 4 != 4:
        return p
    hl = (p[0] & 15) * 4
    if hl < 20 or hl > len(p):
        return p
    tot = len(p)
    p[2] = tot >> 8
    p[3] = tot & 0xFF
    p[10] = p[11] = 0
    c = checksum.inet_checksum(p, 0, hl)
    p[10] = c >> 8
    p[11] = c & 0xFF
    if p[9] == 6 and tot - hl >= 20:
        p[hl + 16] = p[hl + 17] = 0
        c = checksum.inet_checksum(p, hl, tot, ipv4.pseudo_sum(p, p, 6, tot - hl, 12, 16))
        p[hl + 16] = c >> 8
        p[hl + 17] = c & 0xFF
    return p


def tcp_valid(q):
    """True if the stack's IPv4 + TCP checksum checks would accept q."""
    h = ipv4.IPv4Header()
    if ipv4.parse(q, len(q), h) != 0 or h.proto != 6:
        return False
    return checksum.ones_sum(q, h.hlen, h.total,
                             ipv4.pseudo_sum(q, q, 6, h.total - h.hlen, 12, 16)) == 0xFFFF


# one mutation: (kind, position seed, value)
MUT = st.tuples(st.sampled_from(["flip", "set", "trunc", "opt", "flags", "seqack", "extend"]),
                st.integers(0, 1 << 16), st.integers(0, 255))


def mutate(pkt, muts):
    p = bytearray(pkt)
    for kind, pos, val in muts:
        n = len(p)
        if n == 0:
            break
        if kind == "flip":
            p[pos % n] ^= 1 << (val & 7)
        elif kind == "set":
            p[pos % n] = val
        elif kind == "trunc":
            p = p[:pos % (n + 1)]
        elif kind == "opt" and n > 40:
            # inside the TCP options area, where the MPTCP options live
            hl = 40 + ((p[32] >> 4) * 4 - 20 if n > 32 else 0)
            if hl > 40:
                p[40 + pos % (min(hl, n) - 40)] = val
        elif kind == "flags" and n > 33:
            p[33] = val
        elif kind == "seqack" and n > 31:
            i = 24 + pos % 8
            p[i] = (p[i] + val) & 0xFF
        elif kind == "extend":
            p.extend(bytes([val]) * (pos % 64))
    return p


def transfer_with(inject, size=30000, csum=True, direction="c2s", limit=120000):
    """A pair transfer; inject(pkt, dst, now) -> list of extra packets for dst."""
    a, b = pair(8192, 8192, seed=5)
    b.listen(5001, csum=csum)
    link = Link(a, b, seed=5)
    extra = []

    def fwd(pkt, dst):
        for q in inject(pkt, dst):
            extra.append((dst, q))
        return pkt
    link.fwd = fwd
    now = 1000
    ca = a.connect(now, B_ADDR, 5001, csum=csum)
    holder = []
    src = Source(size, 3)
    h = hashlib.sha256()
    got = bytearray()
    rbuf = bytearray(2048)
    state = {}

    def step():
        while extra:
            dst, q = extra.pop(0)
            dst.input(1, q, len(q), link.now)
        if not holder:
            c = b.accept()
            if c is not None:
                holder.append(c)
            return False
        if "go" not in state:
            if not ca.established:
                return False
            state["go"] = 1
        tx, rx = (ca, holder[0]) if direction == "c2s" else (holder[0], ca)
        src.push(tx)
        while True:
            n = rx.readinto(rbuf)
            if not n:
                break
            h.update(rbuf[:n])
            got.extend(rbuf[:n])
        if rx.eof and not rx.app_closed:
            rx.close()
        if tx.error is not None or rx.error is not None:
            state["err"] = tx.error or rx.error
            return True
        return rx.eof and src.done() and tx.closed and rx.closed

    try:
        run(link, now, step, limit)
        finished = "err" not in state
    except AssertionError as e:
        if str(e) != "timeout":      # only run()'s time limit; a broken invariant fails
            raise
        finished = False
    for s in (a, b):
        assert s.counters.get("InternalErrors") == 0, s.counters.nonzero()
        for c in s.conns:
            sf = c.sf
            assert sf.snd_una <= sf.snd_nxt <= sf.snd_max + 1
            assert 0 <= c.rcv.len <= c.rcv.size and 0 <= c.snd.len <= c.snd.size
    return finished, bytes(got), h.digest(), src, a, b


def expected_prefix(n, seed=3):
    s = Source(n, seed)
    s._fill_all = True
    out = bytearray()
    while len(out) < n:
        s.clen = 0
        s._fill()
        out.extend(s.chunk[:s.clen])
        s.sent += s.clen
    return bytes(out[:n])


@SETTINGS
@given(muts=st.lists(MUT, min_size=1, max_size=4), every=st.integers(1, 40),
       fix=st.booleans(), csum=st.booleans(), direction=st.sampled_from(["c2s", "s2c"]))
def test_mutated_packets_never_raise(muts, every, fix, csum, direction):
    cnt = [0]

    def inject(pkt, dst):
        cnt[0] += 1
        if cnt[0] % every:
            return ()
        q = mutate(pkt, muts)
        if fix:
            q = fix_csums(q)
        return (q,)
    transfer_with(inject, size=12000, csum=csum, direction=direction, limit=30000)


@SETTINGS
@given(muts=st.lists(MUT, min_size=1, max_size=4), every=st.integers(1, 10),
       direction=st.sampled_from(["c2s", "s2c"]))
def test_rejected_packets_do_not_disturb(muts, every, direction):
    """Mutated copies with a stale TCP checksum: the transfer is untouched."""
    cnt = [0]

    def inject(pkt, dst):
        cnt[0] += 1
        if cnt[0] % every:
            return ()
        q = mutate(pkt, muts)
        if tcp_valid(q):
            return ()       # still a valid packet (e.g. a checksum-neutral change)
        return (q,)
    ok, got, dig, src, a, b = transfer_with(inject, direction=direction)
    assert ok
    assert dig == src.h.digest()


@SETTINGS
@given(data=st.lists(st.binary(min_size=0, max_size=120), min_size=1, max_size=20),
       ipfix=st.booleans())
def test_garbage_does_not_disturb(data, ipfix):
    """Random bytes (optionally dressed as IPv4/TCP to our address with good checksums)."""
    pkts = []
    for d in data:
        p = bytearray(d)
        if ipfix:
            p = bytearray(40) + p
            p[0] = 0x45
            p[8] = 64
            p[9] = 6
            p[12:16] = A_ADDR
            p[16:20] = B_ADDR
            p[32] = 0x50 if not d else ((5 + (d[0] % 11)) << 4)
            p[33] = d[-1] if d else 0x10
            p[20:24] = bytes([0xC0, 0x01, 0x13, 0x89])
            fix_csums(p)
        pkts.append(p)
    it = iter(pkts)

    def inject(pkt, dst):
        q = next(it, None)
        return (q,) if q is not None else ()
    ok, got, dig, src, a, b = transfer_with(inject)
    assert ok
    assert dig == src.h.digest()


@SETTINGS
@given(pos=st.integers(0, 1 << 16), val=st.integers(1, 255), which=st.integers(1, 12))
def test_dss_checksum_detects_corrupted_payload(pos, val, which):
    """A forged copy of a data segment with altered payload and a valid TCP checksum.

    If the copy wins the race against the original, only the DSS checksum can tell: the
    receiver must detect it and answer as Linux does on one subflow (RFC 8684 3.7): MP_FAIL,
    the data delivered, both ends fall back to TCP. Nothing is lost or added either way:
    the stream equals the source except inside the one altered segment."""
    cnt = [0]
    span = []

    def inject(pkt, dst):
        if len(pkt) < 200:
            return ()
        cnt[0] += 1
        if cnt[0] != which:
            return ()
        q = bytearray(pkt)
        hl = 20 + (q[32] >> 4) * 4
        if hl >= len(q):
            return ()
        q[hl + pos % (len(q) - hl)] ^= val
        span.append(len(q) - hl)
        return (fix_csums(q),)
    ok, got, dig, src, a, b = transfer_with(inject, size=20000, csum=True, limit=20000)
    assert ok
    ref = expected_prefix(20000)
    assert len(got) == len(ref)
    diff = [i for i in range(len(ref)) if got[i] != ref[i]]
    if diff:
        assert len(diff) == 1 and span, diff[:5]        # one byte, of the forged segment
        cb = b.counters
        assert cb.get("DataCsumErr") >= 1 and cb.get("MPFailTx") == 1, cb.nonzero()
        assert a.counters.get("InfiniteMapTx") == 1
    else:
        assert dig == src.h.digest()
