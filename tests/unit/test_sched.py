"""mptcp.sched on its own: tiers (regular > backup > in trouble), minrtt's pick, the backup
scheduler's first-RTO switch, round robin's rotation. Stand-in subflows with just the
fields a scheduler reads."""
from mptcp import sched
from mptcp.cc import RttEstimator
from tutil import raises


class _Cc:
    def __init__(self, cwnd):
        self.cwnd = cwnd


class _Sf:
    def __init__(self, name, srtt=10, rto=300, carry=True, room=True, backup=False,
                 peer_backup=False, stale=False, tries=0, flight=0, cwnd=14480):
        self.name = name
        self.snd_una = 1000
        self.snd_max = 1000 + flight
        self.cc = _Cc(cwnd)
        self.rtt = RttEstimator()
        self.rtt.srtt = srtt
        self.rtt.rto = rto
        self.carry = carry
        self.room = room
        self.backup = backup
        self.peer_backup = peer_backup
        self.stale = stale
        self.tries = tries

    def can_carry(self):
        return self.carry

    def has_room(self):
        return self.room

    def __repr__(self):
        return self.name


class _C:
    def __init__(self, *subs):
        self.subflows = list(subs)
        self.last_tx = None
        self.dup_nxt = 0
        self.dup_end = 0
        self.dup_sf = None


def _picked(s, c):
    return [x.name for x in c.subflows if s.allows(c, x)]


def test_by_name_and_unknown_names():
    assert sched.by_name("minrtt").kind == sched.MINRTT
    assert sched.by_name("backup").kind == sched.BACKUP
    assert sched.by_name("roundrobin").name == "roundrobin"
    e = raises(ValueError, sched.by_name, "fancy")
    assert "minrtt" in str(e) and "fancy" in str(e)


def test_tiers():
    m = sched.by_name("minrtt")
    b = sched.by_name("backup")
    assert m.tier(_Sf("a")) == 0
    assert m.tier(_Sf("a", backup=True)) == 1 and m.tier(_Sf("a", peer_backup=True)) == 1
    assert m.tier(_Sf("a", stale=True)) == 2 and m.tier(_Sf("a", stale=True, backup=True)) == 2
    assert m.tier(_Sf("a", tries=1)) == 2          # an RTO outstanding: in trouble
    assert b.tier(_Sf("a", tries=1)) == 2
    assert b.tier(_Sf("a", tries=0)) == 0
    assert m.tier(_Sf("a", carry=False)) == 9


def test_minrtt_picks_the_lowest_rtt_with_room():
    m = sched.by_name("minrtt")
    c = _C(_Sf("wifi", srtt=20), _Sf("lte", srtt=60))
    assert _picked(m, c) == ["wifi"]
    c.subflows[0].room = False                     # the fastest is full: the next one
    assert _picked(m, c) == ["lte"]
    c.subflows[1].room = False
    assert _picked(m, c) == []
    c = _C(_Sf("wifi", srtt=-1, rto=1000), _Sf("lte", srtt=60))   # no sample: its RTO
    assert _picked(m, c) == ["lte"]
    c = _C(_Sf("wifi", srtt=60), _Sf("lte", srtt=60))              # a tie: the first
    assert _picked(m, c) == ["wifi"]


def test_minrtt_picks_the_subflow_whose_queue_drains_soonest():
    m = sched.by_name("minrtt")
    # Wi-Fi: 20 ms, 40 KB in flight in a 64 KB window (12.5 ms of queue); LTE idle at 60 ms
    wifi = _Sf("wifi", srtt=20, flight=40960, cwnd=65536)
    lte = _Sf("lte", srtt=60, flight=0, cwnd=14480)
    c = _C(wifi, lte)
    assert sched.linger(wifi) == 12 and sched.linger(lte) == 0
    assert _picked(m, c) == ["lte"]
    lte.snd_max += 4096                            # LTE: 4 KB at 14.5 KB / 60 ms = 16 ms
    assert sched.linger(lte) == 16
    assert _picked(m, c) == ["wifi"]
    wifi.snd_max = wifi.snd_una                    # both idle: the lower RTT
    lte.snd_max = lte.snd_una
    assert _picked(m, c) == ["wifi"]


def test_linger_stays_a_small_int():
    # 4 MB in flight, an RTO of 60 s, a one-segment window: capped, below 2**29
    s = _Sf("x", srtt=-1, rto=60000, flight=4 << 20, cwnd=1)
    assert sched.linger(s) == 0xFFFF * 0x1FFF
    assert sched.linger(s) < (1 << 29)
    assert sched.linger(_Sf("y", flight=63)) == 0  # less than one unit: idle
    # one unit (64 B) in flight, 1 s RTT, a one-unit window: 1000 ms to drain
    assert sched.linger(_Sf("z", srtt=1000, flight=64, cwnd=64)) == 1000
    # the RTT cap is 0x1FFF ms exactly: 0x2000 is capped, 0x1FFF is not
    assert sched.linger(_Sf("w", srtt=0x2000, flight=64, cwnd=64)) == 0x1FFF
    assert sched.linger(_Sf("v", srtt=0x1FFF, flight=64, cwnd=64)) == 0x1FFF
    assert sched.linger(_Sf("u", srtt=0x1FFE, flight=64, cwnd=64)) == 0x1FFE


def test_backup_subflows_only_when_no_regular_one_can_carry():
    m = sched.by_name("minrtt")
    c = _C(_Sf("wifi", srtt=80), _Sf("lte", srtt=10, backup=True))
    assert _picked(m, c) == ["wifi"]
    c.subflows[0].room = False                     # a regular one full: wait for it
    assert _picked(m, c) == []
    c.subflows[0].carry = False                    # gone: the backup carries
    assert _picked(m, c) == ["lte"]
    c = _C(_Sf("wifi", srtt=10, stale=True), _Sf("lte", srtt=50, peer_backup=True))
    assert _picked(m, c) == ["lte"]                # a stale regular ranks below a backup


def test_the_first_rto_hands_over_to_another_subflow():
    for name in ("backup", "minrtt"):
        s = sched.by_name(name)
        c = _C(_Sf("wifi", srtt=10, tries=1), _Sf("lte", srtt=60, backup=True))
        assert _picked(s, c) == ["lte"]
        c.subflows[0].tries = 0
        assert _picked(s, c) == ["wifi"]
        c.subflows[1].tries = 1                    # both in trouble: the faster
        c.subflows[0].tries = 1
        assert _picked(s, c) == ["wifi"]


def test_roundrobin_rotates_among_those_with_room():
    r = sched.by_name("roundrobin")
    a, b_, d = _Sf("a"), _Sf("b"), _Sf("d")
    c = _C(a, b_, d)
    order = []
    for _ in range(6):
        for x in c.subflows:
            if r.allows(c, x):
                order.append(x.name)
                break
    assert order == ["a", "b", "d", "a", "b", "d"], order
    b_.room = False
    c.last_tx = a
    assert not r.allows(c, b_) and r.allows(c, d) and c.last_tx is d   # b is skipped
    assert not r.allows(c, d) and r.allows(c, a) and c.last_tx is a   # and it wraps
    b_.carry = False
    d.room = False
    a.room = False
    assert [x.name for x in c.subflows if r.allows(c, x)] == []


def test_redundant_copies_small_writes_on_the_other_subflows():
    r = sched.by_name("redundant")
    assert sched.SMALL_WRITE == 512
    assert r.copies(512) and not r.copies(513)
    assert r.copies(sched.SMALL_WRITE) and not r.copies(sched.SMALL_WRITE + 1)
    assert not sched.by_name("minrtt").copies(10)
    w, l = _Sf("wifi", srtt=10), _Sf("lte", srtt=60)
    c = _C(w, l)
    assert _picked(r, c) == ["wifi"]               # bulk: as minrtt
    c.dup_nxt, c.dup_end, c.dup_sf = 1, 100, w     # wifi sent a small write
    assert _picked(r, c) == ["wifi", "lte"]        # lte may send its copy now
    l.room = False
    assert _picked(r, c) == ["wifi"]
    l.room = True
    l.carry = False
    assert _picked(r, c) == ["wifi"]
