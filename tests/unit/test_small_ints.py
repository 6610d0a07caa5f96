"""Sequence state stays in small ints (DESIGN 2.3).

On a 32-bit board MicroPython's small ints hold 31 bits; a raw 32-bit sequence number or a
64-bit DSN is a heap object, allocated on every use. The x86-64 unix port cannot show that
cost, so this test checks the values instead: after a lossy bulk transfer between peers whose
ISNs, IDSNs and timestamps are all beyond 2**30, every int the data path keeps (connection,
subflow, parse scratch, tables) is within the 31-bit range, except the per-connection bases
that are set once at the handshake.
"""
from test_stack_pair import transfer, Link, _tcp_fix, pair, run, B_ADDR
from mptcp.stack import Stack

SMALL = 1 << 30
# written once at connection set-up, never on the data path
SETUP_ONLY = ("iss", "irs", "local_idsn", "peer_idsn", "token", "peer_token")
TS_SHIFT = 0xC0000000
_TO = [None]        # the stack whose incoming TSvals are shifted (set per Link)


def _big_ts(pkt, dst):
    """Packets towards `a` carry TSvals beyond 2**31 (as a Linux peer's random offset would)."""
    p = bytearray(pkt)
    hl = (p[32] >> 4) * 4
    i = 40
    while i < 20 + hl:
        k = p[i]
        if k == 0 or k == 1:
            i += 1
            continue
        if k == 8 and p[i + 1] == 10 and dst is _TO[0]:
            v = (p[i + 2] << 24) | (p[i + 3] << 16) | (p[i + 4] << 8) | p[i + 5]
            v = (v + TS_SHIFT) & 0xFFFFFFFF
            p[i + 2] = v >> 24
            p[i + 3] = (v >> 16) & 0xFF
            p[i + 4] = (v >> 8) & 0xFF
            p[i + 5] = v & 0xFF
            return bytes(_tcp_fix(p))
        i += p[i + 1] if p[i + 1] >= 2 else 1
    return pkt


def _big_ints(obj, where, out):
    for k in obj.__dict__:
        v = obj.__dict__[k]
        if isinstance(v, bool):
            continue
        if isinstance(v, int):
            if not (-SMALL <= v < SMALL) and k not in SETUP_ONLY:
                out.append("%s.%s=%d" % (where, k, v))
        elif isinstance(v, list):
            for x in v:
                if isinstance(x, int) and not isinstance(x, bool) and not (-SMALL <= x < SMALL):
                    out.append("%s.%s[]=%d" % (where, k, x))
                    break


def _seeds_with_big_bases():
    """Seeds whose ISNs are beyond 2**30 on both sides (so raw values would be big)."""
    found = []
    s = 1
    while len(found) < 2:
        a, b = Stack(seed=s), Stack(seed=s + 100)
        if a._rand32() >= SMALL and b._rand32() >= SMALL:
            found.append(s)
        s += 1
    return found


def test_data_path_state_stays_small():
    from mptcp import tcpwire as T
    orig = Link.__init__

    def init(self, a, b, **kw):
        orig(self, a, b, **kw)
        _TO[0] = a
        self.fwd = _big_ts
    Link.__init__ = init
    try:
        for seed in _seeds_with_big_bases():
            a, b, ca, cb, link = transfer(size=150000, direction="c2s", loss=13, reorder=7,
                                          seed=seed)
            assert ca.sf.tsr_h >= 0x4000, "the peer's TSvals were not shifted"
            out = []
            for st, c, name in ((a, ca, "a"), (b, cb, "b")):
                _big_ints(c, name + ".conn", out)
                _big_ints(c.sf, name + ".sf", out)
                _big_ints(c.sf.cc, name + ".cc", out)
                _big_ints(c.sf.sb, name + ".sb", out)
                _big_ints(c.asm, name + ".asm", out)
                _big_ints(c.sf.ooo, name + ".ooo", out)
                _big_ints(st.seg, name + ".seg", out)
                _big_ints(st.mo, name + ".mo", out)
            assert not out, out
    finally:
        Link.__init__ = orig
