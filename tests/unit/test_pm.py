"""mptcp.pm on its own: which connections the path manager acts on, when (backoff 1000 ms
doubling to 30000, immediate schedules), which links it joins from, what it announces and
withdraws. Stand-in stack, connections, subflows and address slots with just the fields
pm.py reads, so every rule is pinned without a network."""
from mptcp.pm import PathManager
from mptcp.counters import Counters

L1 = bytes([10, 0, 1, 2])
L2 = bytes([10, 0, 2, 2])
L3 = bytes([10, 0, 3, 2])
R0 = bytes([198, 18, 0, 1])
R1 = bytes([198, 18, 0, 9])


class _Sf:
    def __init__(self, ifindex, laddr, raddr=R0, rport=80, closed=False):
        self.ifindex = ifindex
        self.laddr = laddr
        self.raddr = raddr
        self.rport = rport
        self.closed = closed

    def is_closed(self):
        return self.closed


class _Addrs:
    """The slots pm.py reads, and a record of the announcements and withdrawals it asks for."""
    def __init__(self):
        self.r_id = [-1] * 4
        self.r_addr = [None] * 4
        self.r_port = [0] * 4
        self.r0_gone = False
        self.calls = []

    def announce(self, addr_id, addr, now):
        self.calls.append(("announce", addr_id, bytes(addr), now))

    def withdraw(self, addr_id):
        self.calls.append(("withdraw", addr_id))


class _C:
    def __init__(self, client=True, mptcp=True, ifindex=1, laddr=L1):
        self.client = client
        self.mptcp = mptcp
        self.error = None
        self.confirmed = True
        self.established = True
        self.peer_key = b"\x02" * 8
        self.dfin_acked = False
        self.fin_rcvd = False
        self.orphan_deadline = -1
        self.ever_lost = False
        self.pm_due = -1
        self.pm_backoff = 1000
        self.sf = _Sf(ifindex, laddr)
        self.subflows = [self.sf]
        self.addrs = _Addrs()

    def live_count(self):
        n = 0
        for sf in self.subflows:
            if not sf.is_closed():
                n += 1
        return n


class _Stack:
    def __init__(self, up=(True, True, True), conns=(), max_subflows=8):
        self.netifs = [[1, L1, up[0], False], [2, L2, up[1], False], [3, L3, up[2], False]]
        self.conns = list(conns)
        self.max_subflows = max_subflows
        self.counters = Counters()
        self.ctr = self.counters.v
        self.joins = []

    def join(self, c, ifindex, now, raddr, rport):
        self.joins.append((ifindex, raddr, rport, now))
        c.subflows.append(_Sf(ifindex, self.netifs[ifindex - 1][1], raddr, rport))


def test_backoff_starts_at_1000_ms_and_doubles_to_exactly_30000():
    c = _C()
    pm = PathManager(_Stack(conns=[c]))
    c.pm_backoff = 7
    pm.subflow_up(c, c.sf)
    assert c.pm_backoff == 1000
    delays = []
    for _ in range(8):
        c.pm_due = -1
        pm.subflow_gone(c, c.sf, 100)
        delays.append(c.pm_due - 100)
    assert delays == [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
    assert c.pm_backoff == 30000
    pm.subflow_up(c, c.sf)
    assert c.pm_backoff == 1000


def test_a_schedule_keeps_an_earlier_deadline():
    c = _C()
    pm = PathManager(_Stack(conns=[c]))
    c.pm_due = 50
    pm.subflow_gone(c, c.sf, 100)
    assert c.pm_due == 50 and c.pm_backoff == 2000


def test_addr_added_and_confirmed_schedule_at_once():
    c = _C()
    pm = PathManager(_Stack(conns=[c]))
    pm.addr_added(c, 500)
    assert c.pm_due == 500
    c.pm_due = -1
    pm.confirmed(c, 700)
    assert c.pm_due == 700
    for c2 in (_C(mptcp=False), _C(client=False)):      # fallen back, or one we accepted
        pm.confirmed(c2, 700)
        assert c2.pm_due == -1


def test_link_down_withdraws_on_accepted_mptcp_connections_only():
    srv = _C(client=False)
    cli = _C()
    tcp = _C(client=False, mptcp=False)
    bad = _C(client=False)
    bad.error = 104
    pm = PathManager(_Stack(conns=[srv, cli, tcp, bad]))
    pm.link_down(3, 10)
    assert srv.addrs.calls == [("withdraw", 3)]         # id = the link's index + 1
    assert cli.addrs.calls == [] and tcp.addrs.calls == [] and bad.addrs.calls == []
    pm.link_down(9, 10)                                 # not a link of ours
    assert srv.addrs.calls == [("withdraw", 3)]


def test_link_up_rejoins_confirmed_client_connections_at_once_with_the_backoff_reset():
    ok = _C()
    ok.pm_backoff = 8000
    unconfirmed = _C()
    unconfirmed.confirmed = False                       # (it has the peer's key already)
    bad = _C()
    bad.error = 110
    tcp = _C(mptcp=False)
    tcp.pm_backoff = 8000
    pm = PathManager(_Stack(conns=[ok, unconfirmed, bad, tcp]))
    pm.link_up(2, 300)
    assert ok.pm_due == 300 and ok.pm_backoff == 1000
    for c in (unconfirmed, bad, tcp):
        assert c.pm_due == -1 and c.addrs.calls == []
    assert tcp.pm_backoff == 8000


def test_link_up_on_an_accepted_connection_announces_the_other_links():
    c = _C(client=False)                                # on link 1
    pm = PathManager(_Stack(up=(True, True, False), conns=[c]))
    pm.link_up(2, 40)
    assert c.addrs.calls == [("announce", 2, L2, 40)]   # not its own link, not a link down
    assert c.pm_due == -1                               # the peer announced nothing
    c.addrs.r_id[1] = 4
    pm.link_up(2, 50)
    assert c.pm_due == 50                               # join the peer's addresses again


def test_an_announced_address_with_id_0_counts():
    c = _C(client=False)
    pm = PathManager(_Stack(conns=[c]))
    c.addrs.r_id[2] = 0
    c.addrs.r_addr[2] = R1
    pm.link_up(2, 60)
    assert c.pm_due == 60
    c.pm_due = -1
    pm.subflow_gone(c, c.sf, 70)
    assert c.pm_due == 70 + 1000
    pm.poll(70 + 1000)
    assert pm.stack.joins == [(1, R1, 80, 1070)]


def test_link_up_skips_accepted_connections_not_established_or_without_the_peers_key():
    early = _C(client=False)
    early.established = False
    nokey = _C(client=False)
    nokey.peer_key = None
    for c in (early, nokey):
        c.addrs.r_id[0] = 3
    pm = PathManager(_Stack(conns=[early, nokey]))
    pm.link_up(2, 10)
    for c in (early, nokey):
        assert c.addrs.calls == [] and c.pm_due == -1


def test_established_passive_announces_ids_by_link_index():
    c = _C(client=False, ifindex=2, laddr=L2)
    pm = PathManager(_Stack(conns=[c]))
    pm.established_passive(c, 5)
    assert c.addrs.calls == [("announce", 1, L1, 5), ("announce", 3, L3, 5)]


def test_no_more_subflows_after_an_error_a_fallback_or_both_streams_over():
    def gone(c):
        PathManager(_Stack(conns=[c])).subflow_gone(c, c.sf, 100)
        return c.pm_due

    c = _C()
    c.error = 104
    assert gone(c) == -1 and c.pm_backoff == 1000
    assert gone(_C(mptcp=False)) == -1
    c = _C()
    c.dfin_acked = True                                 # our side over, the peer's not yet
    assert gone(c) == 1100
    c = _C()
    c.fin_rcvd = True                                   # the peer's over, ours not yet
    assert gone(c) == 1100
    c.dfin_acked = True
    c.pm_due = -1
    assert gone(c) == -1


def test_an_accepted_connection_rejoins_only_the_peers_announced_addresses():
    c = _C(client=False)
    pm = PathManager(_Stack(conns=[c]))
    pm.subflow_gone(c, c.sf, 100)
    assert c.pm_due == -1 and c.pm_backoff == 1000
    c.addrs.r_id[3] = 6
    pm.subflow_gone(c, c.sf, 100)
    assert c.pm_due == 1100 and c.pm_backoff == 2000


def test_next_deadline_is_the_earliest_of_the_connections():
    a, b, d = _C(), _C(), _C()
    pm = PathManager(_Stack(conns=[a, b, d]))
    assert pm.next_deadline() == -1
    b.pm_due = 700
    d.pm_due = 300
    assert pm.next_deadline() == 300


def test_poll_clears_the_deadline_of_the_connections_it_looks_at():
    a, b, done = _C(), _C(), _C()
    done.error = 104
    a.pm_due = 100
    b.pm_due = 200
    done.pm_due = 50
    pm = PathManager(_Stack(conns=[a, b, done]))
    pm.poll(100)
    assert a.pm_due == -1 and done.pm_due == -1 and b.pm_due == 200
    assert pm.next_deadline() == 200
    assert pm.stack.joins == [(2, R0, 80, 100), (3, R0, 80, 100)]   # a only, not done


def test_a_client_joins_the_peers_first_address_from_every_link_up_without_one():
    c = _C()
    c.subflows.append(_Sf(3, L3, closed=True))          # a lost one: joined again
    st = _Stack(up=(True, False, True), conns=[c])
    pm = PathManager(st)
    c.pm_due = 0
    pm.poll(0)
    assert st.joins == [(3, R0, 80, 0)]
    c.pm_due = 5
    pm.poll(5)                                          # each link has one now
    assert st.joins == [(3, R0, 80, 0)]
    c2 = _C()
    c2.addrs.r0_gone = True                             # the peer withdrew it
    st2 = _Stack(conns=[c2])
    c2.pm_due = 0
    PathManager(st2).poll(0)
    assert st2.joins == []


def test_an_announced_address_is_joined_from_the_first_link_up_after_the_initial_subflows():
    c = _C(client=False, ifindex=2, laddr=L2)           # the initial subflow is on link 2
    c.addrs.r_id[1] = 0
    c.addrs.r_addr[1] = R1
    st = _Stack(conns=[c])
    c.pm_due = 10
    PathManager(st).poll(10)
    assert st.joins == [(2, R1, 80, 10)]                # the initial subflow's port by default
    c = _C(client=False, ifindex=2, laddr=L2)
    c.addrs.r_id[0] = 5
    c.addrs.r_addr[0] = R1
    c.addrs.r_port[0] = 8080
    st = _Stack(up=(True, False, True), conns=[c])
    c.pm_due = 10
    PathManager(st).poll(10)
    assert st.joins == [(3, R1, 8080, 10)]              # link 2 down: the next one
    c.pm_due = 20
    PathManager(st).poll(20)                            # it has a subflow now
    assert len(st.joins) == 1


def test_an_announced_address_with_the_initial_subflow_on_an_unknown_link_starts_at_the_first():
    c = _C(client=False, ifindex=9, laddr=L2)
    c.addrs.r_id[0] = 5
    c.addrs.r_addr[0] = R1
    st = _Stack(conns=[c])
    c.pm_due = 10
    PathManager(st).poll(10)
    assert st.joins == [(1, R1, 80, 10)]


def test_joins_count_as_recreations_after_a_loss_or_while_orphaned():
    def joined(orphan, lost, maxsf=8):
        c = _C(client=False)
        c.orphan_deadline = orphan
        c.ever_lost = lost
        c.addrs.r_id[0] = 5
        c.addrs.r_addr[0] = R1
        c.pm_due = 0
        st = _Stack(conns=[c], max_subflows=maxsf)
        PathManager(st).poll(0)
        return len(st.joins), st.counters.get("SubflowRecreate")

    assert joined(-1, False) == (1, 0)
    assert joined(0, False) == (1, 1)                   # tick 0 is a deadline too
    assert joined(7000, False) == (1, 1)
    assert joined(-1, True) == (1, 1)
    assert joined(-1, True, maxsf=1) == (0, 0)          # no room: no join
