"""Multipath end to end between two stacks over two in-memory links (tests/unit/mpnet.py):
MP_JOIN in both roles, data over both subflows, link failure signalled and silent,
break-before-make, the backup scheduler, refused joins. Every transfer is checked by
SHA-256 both ways."""
from netsim import App, run, run_for, establish, B_ADDR, tcp_fix, mptcp_opts
from mpnet import MpLink, mp_pair, WIFI, LTE
from mptcp import mpopts as MP

SIZE = 300000


def _start(scheduler="minrtt", lte_backup=False, seed=1, size=SIZE, **kw):
    a, b = mp_pair(snd=16384, rcv=16384, seed=seed, scheduler=scheduler, lte_backup=lte_backup)
    link = MpLink(a, b, seed=seed, **kw)
    b.listen(5001)
    ca = a.connect(1000, B_ADDR, 5001, ifindex=WIFI)
    now, cb = establish(link, 1000, ca, b)
    pa = App(link, ca, size, 11)
    pb = App(link, cb, size, 12)
    return a, b, link, ca, cb, pa, pb, now


def _step(pa, pb):
    def f():
        pa.step()
        pb.step()
        return pa.finished() and pb.finished()
    return f


def _joined(c):
    return [sf for sf in c.subflows if sf.state_name() == "ESTABLISHED" and sf.join_acked]


def _check(pa, pb, ca, cb):
    assert ca.error is None and cb.error is None, (ca.error, cb.error)
    assert pb.h.digest() == pa.src.h.digest(), "a -> b corrupted"
    assert pa.h.digest() == pb.src.h.digest(), "b -> a corrupted"
    assert pa.got == SIZE and pb.got == SIZE


def test_two_subflows_join_and_carry_data_both_ways():
    a, b, link, ca, cb, pa, pb, now = _start("roundrobin")
    now = run(link, now, lambda: (pa.step() or pb.step() or True) and len(_joined(ca)) == 2
              and len(_joined(cb)) == 2)
    # the device (a) joined from LTE; the server (b) accepted it
    assert a.counters.get("MPJoinSynTx") == 1 and a.counters.get("MPJoinSynAckRx") == 1
    assert b.counters.get("MPJoinSynRx") == 1 and b.counters.get("MPJoinAckRx") == 1
    for st in (a, b):
        for name in ("MPJoinSynAckHMacFailure", "MPJoinAckHMacFailure", "MPJoinNoTokenFound",
                     "MPJoinRejected", "InternalErrors", "DSSNotMatching"):
            assert st.counters.get(name) == 0, (name, st.counters.nonzero())
    lte = [sf for sf in ca.subflows if sf.ifindex == LTE][0]
    assert lte.join and lte.addr_id == 2 and lte.laddr == bytes([198, 18, 2, 2])
    run(link, now, _step(pa, pb))
    _check(pa, pb, ca, cb)
    for p in link.paths:
        assert p.payload[0] > SIZE // 5 and p.payload[1] > SIZE // 5, (p.name, p.payload)


def test_minrtt_prefers_the_faster_path_but_uses_both():
    a, b, link, ca, cb, pa, pb, now = _start("minrtt", wifi_delay=5, lte_delay=40)
    run(link, now, _step(pa, pb))
    _check(pa, pb, ca, cb)
    w = link.path("wifi").payload[0]
    l = link.path("lte").payload[0]
    assert w > l, (w, l)


def test_wifi_down_signalled_mid_transfer_completes_on_lte_and_rejoins():
    a, b, link, ca, cb, pa, pb, now = _start("minrtt")
    now = run(link, now, lambda: (pa.step() or pb.step() or True) and pb.got > SIZE // 3
              and len(_joined(ca)) == 2)
    link.down("wifi")
    assert a.counters.get("LinkDown") == 1 and a.counters.get("RmSubflow") == 1
    assert ca.error is None and len(_joined(ca)) == 1
    now = run(link, now, lambda: (pa.step() or pb.step() or True) and pb.got > 2 * SIZE // 3)
    link.restore("wifi")
    now = run(link, now, lambda: (pa.step() or pb.step() or True) and len(_joined(ca)) == 2)
    assert a.counters.get("SubflowRecreate") >= 1
    run(link, now, _step(pa, pb))
    _check(pa, pb, ca, cb)


def test_wifi_silent_failure_reinjects_on_lte():
    a, b, link, ca, cb, pa, pb, now = _start("minrtt")
    now = run(link, now, lambda: (pa.step() or pb.step() or True) and pb.got > SIZE // 3
              and len(_joined(ca)) == 2)
    link.down("wifi", signal=False)
    now = run(link, now, _step(pa, pb))
    _check(pa, pb, ca, cb)
    assert a.counters.get("MPTCPReinject") > 0 and a.counters.get("LinkDown") == 0


def test_all_links_down_ten_seconds_then_back():
    """Break-before-make: no subflow for 10 s; the connection resumes on a new join."""
    a, b, link, ca, cb, pa, pb, now = _start("minrtt")
    now = run(link, now, lambda: (pa.step() or pb.step() or True) and pb.got > SIZE // 3
              and len(_joined(ca)) == 2)
    link.down("wifi")
    link.down("lte")
    assert ca.live() is None and ca.error is None and ca.orphan_deadline >= 0
    got = (pa.got, pb.got)
    now = run_for(link, now, 10000, lambda: (pa.step(), pb.step()))
    assert (pa.got, pb.got) == got and ca.error is None
    link.restore("lte")
    link.restore("wifi")
    run(link, now, _step(pa, pb))
    _check(pa, pb, ca, cb)
    assert ca.orphan_deadline == -1


def test_backup_scheduler_keeps_lte_idle_until_wifi_fails():
    a, b, link, ca, cb, pa, pb, now = _start("backup", lte_backup=True)
    now = run(link, now, lambda: (pa.step() or pb.step() or True) and pa.got > SIZE // 3
              and len(_joined(ca)) == 2)
    lte = [sf for sf in ca.subflows if sf.ifindex == LTE][0]
    assert lte.backup and lte.bytes_tx() == 0, lte.bytes_tx()
    link.down("wifi")
    run(link, now, _step(pa, pb))
    _check(pa, pb, ca, cb)
    assert lte.bytes_tx() > 0


def _corrupt_join(length):
    """A forwarding filter flipping one HMAC byte of every MP_JOIN option of `length`."""
    def fwd(pkt, dst):
        p = bytearray(pkt)
        for i in mptcp_opts(p):
            if p[i + 1] == length and p[i + 2] >> 4 == MP.MP_JOIN:
                p[i + 4] ^= 0x55            # inside the HMAC for both lengths
                return tcp_fix(p)
        return pkt
    return fwd


def test_join_with_a_bad_third_ack_hmac_is_refused_and_the_connection_goes_on():
    a, b, link, ca, cb, pa, pb, now = _start("minrtt")
    link.fwd = _corrupt_join(24)
    now = run(link, now, lambda: (pa.step() or pb.step() or True)
              and b.counters.get("MPJoinAckHMacFailure") >= 1)
    assert b.counters.get("MPRstTx") >= 1 and b.counters.get("MPJoinAckRx") == 0
    run(link, now, _step(pa, pb))
    _check(pa, pb, ca, cb)
    assert a.counters.get("MPRstRx") >= 1       # the initiator got the refusal
    assert link.path("lte").payload[0] == 0


def test_join_with_a_bad_syn_ack_hmac_is_reset_by_the_initiator():
    a, b, link, ca, cb, pa, pb, now = _start("minrtt")
    link.fwd = _corrupt_join(16)
    now = run(link, now, lambda: (pa.step() or pb.step() or True)
              and a.counters.get("MPJoinSynAckHMacFailure") >= 1)
    assert a.counters.get("MPJoinSynAckRx") == 0 and a.counters.get("MPRstTx") >= 1
    run(link, now, _step(pa, pb))
    _check(pa, pb, ca, cb)


# ---------------------------------------------------------------- address signalling
B2_ADDR = bytes([198, 18, 0, 2])


def _start_b2(fwd=None, **kw):
    """The server has a second address (198.18.0.2): it announces it with ADD_ADDR."""
    a, b = mp_pair(snd=16384, rcv=16384, seed=3)
    b.add_netif(2, B2_ADDR)
    link = MpLink(a, b, seed=3, **kw)
    link.fwd = fwd
    b.listen(5001)
    ca = a.connect(1000, B_ADDR, 5001, ifindex=WIFI)
    now, cb = establish(link, 1000, ca, b)
    pa = App(link, ca, SIZE, 11)
    pb = App(link, cb, SIZE, 12)
    return a, b, link, ca, cb, pa, pb, now


def _to(c, addr):
    return [sf for sf in c.subflows if sf.raddr == addr and sf.state_name() == "ESTABLISHED"]


def _opt_filter(subtype, action, limit=1, echo=None):
    """fwd filter applying action(p, i) -> p or None to the first `limit` packets carrying
    an MPTCP option of `subtype` (echo: only ADD_ADDR echoes / only announcements)."""
    left = [limit]

    def fwd(pkt, dst):
        if left[0] <= 0:
            return pkt
        p = bytearray(pkt)
        for i in mptcp_opts(p):
            if p[i + 2] >> 4 == subtype and (echo is None or bool(p[i + 2] & 1) == echo):
                left[0] -= 1
                return action(p, i)
        return pkt
    return fwd


def test_add_addr_from_the_server_is_checked_echoed_and_joined():
    a, b, link, ca, cb, pa, pb, now = _start_b2()
    now = run(link, now, lambda: (pa.step() or pb.step() or True) and len(_to(ca, B2_ADDR)) == 1)
    assert b.counters.get("AddAddrTx") == 1 and a.counters.get("AddAddr") == 1
    assert a.counters.get("EchoAddTx") == 1
    run(link, now, _step(pa, pb))
    _check(pa, pb, ca, cb)
    assert b.counters.get("EchoAdd") == 1 and a.counters.get("AddAddrDrop") == 0
    sf = [s for s in ca.subflows if s.raddr == B2_ADDR][0]
    assert sf.join and sf.peer_addr_id == 2 and sf.ifindex == WIFI


def test_add_addr_echo_lost_is_retransmitted():
    a, b, link, ca, cb, pa, pb, now = _start_b2(
        _opt_filter(MP.ADD_ADDR, lambda p, i: None, limit=1, echo=True))
    t0 = now
    now = run(link, now, lambda: b.counters.get("EchoAdd") >= 1)     # idle: only the timer
    assert b.counters.get("AddAddrTx") == 2, b.counters.nonzero()     # resent once ...
    assert 2000 <= now - t0 < 2100, now - t0                          # ... after 2 s
    assert a.counters.get("AddAddr") == 2 and a.counters.get("EchoAddTx") == 2
    run(link, now, _step(pa, pb))
    _check(pa, pb, ca, cb)


def _flip_hmac(p, i):
    p[i + p[i + 1] - 1] ^= 0x01          # the HMAC is the option's last 8 bytes
    return tcp_fix(p)


def test_add_addr_with_a_bad_hmac_is_dropped():
    a, b, link, ca, cb, pa, pb, now = _start_b2(
        _opt_filter(MP.ADD_ADDR, _flip_hmac, limit=10, echo=False))
    run(link, now, _step(pa, pb))
    _check(pa, pb, ca, cb)
    assert a.counters.get("AddAddrDrop") >= 1 and a.counters.get("AddAddr") == 0
    assert not [s for s in ca.subflows if s.raddr == B2_ADDR]


def test_remove_addr_closes_that_subflow_and_the_transfer_goes_on():
    a, b, link, ca, cb, pa, pb, now = _start_b2()
    now = run(link, now, lambda: (pa.step() or pb.step() or True) and len(_to(ca, B2_ADDR)) == 1
              and pb.got > SIZE // 4)
    b.netif_down(2)                          # the server withdraws 198.18.0.2
    now = run(link, now, lambda: (pa.step() or pb.step() or True) and a.counters.get("RmAddr") == 1)
    assert b.counters.get("RmAddrTx") == 1
    assert not _to(ca, B2_ADDR) and ca.addrs.r_id == [-1, -1, -1, -1]
    run(link, now, _step(pa, pb))
    _check(pa, pb, ca, cb)
    assert not [s for s in ca.subflows if s.raddr == B2_ADDR and not s.is_closed()]


def test_mp_prio_makes_the_peer_treat_lte_as_backup():
    a, b, link, ca, cb, pa, pb, now = _start("minrtt")
    now = run(link, now, lambda: (pa.step() or pb.step() or True) and len(_joined(cb)) == 2)
    a.set_backup(LTE, True)
    now = run(link, now, lambda: (pa.step() or pb.step() or True) and b.counters.get("MPPrioRx") == 1)
    assert a.counters.get("MPPrioTx") == 1
    blte = [sf for sf in cb.subflows if sf.join][0]
    assert blte.peer_backup
    sent = link.path("lte").payload[1]
    run(link, now, _step(pa, pb))
    _check(pa, pb, ca, cb)
    # b -> a: nothing more on LTE once Wi-Fi can carry (a retransmission at most)
    assert link.path("lte").payload[1] - sent <= 2 * 1460, (sent, link.path("lte").payload)


def _corrupt_lte_payload(link):
    """fwd filter: the first data segment b -> a on LTE gets one payload byte flipped
    (TCP checksum fixed: only the DSS checksum can tell)."""
    done = [False]

    def fwd(pkt, dst):
        if done[0] or dst is not link.a or pkt[16:20] != bytes([198, 18, 2, 2]):
            return pkt
        hl = 20 + (pkt[32] >> 4) * 4
        if len(pkt) - hl < 100:
            return pkt
        p = bytearray(pkt)
        p[hl + 50] ^= 0xFF
        done[0] = True
        return tcp_fix(p)
    return fwd


def test_dss_checksum_failure_with_two_subflows_resets_that_subflow():
    """RFC 8684 3.7: with more than one subflow a bad DSS checksum resets that subflow
    (MP_TCPRST) instead of falling back; the data arrives intact over the other."""
    a, b = mp_pair(snd=16384, rcv=16384, seed=5, scheduler="roundrobin")
    link = MpLink(a, b, seed=5)
    b.listen(5001, csum=True)
    ca = a.connect(1000, B_ADDR, 5001, ifindex=WIFI, csum=True)
    now, cb = establish(link, 1000, ca, b)
    pa = App(link, ca, SIZE, 11)
    pb = App(link, cb, SIZE, 12)
    now = run(link, now, lambda: (pa.step() or pb.step() or True) and len(_joined(ca)) == 2)
    link.fwd = _corrupt_lte_payload(link)
    run(link, now, _step(pa, pb))
    _check(pa, pb, ca, cb)
    assert ca.csum and ca.mptcp and cb.mptcp
    assert a.counters.get("DataCsumErr") == 1 and a.counters.get("MPRstTx") >= 1
    assert a.counters.get("MPFailTx") == 0 and b.counters.get("TcpInRsts") >= 1
    # (b may see the MP_TCPRST only as a challenge-ACK away RST: RFC 5961 wants the RST at
    # RCV.NXT exactly, and a's RST carries SND.MAX as Linux's does)
    assert b.counters.get("MPTCPReinject") >= 1


def _count_out(t):
    """Packets the device sends now (any address: the join goes elsewhere), at most 50."""
    n = 0
    while n < 50 and t.st.output(t.now, t.out):
        n += 1
    return n


def test_add_addr_before_the_peer_confirms_sends_no_ack_storm():
    """Linux announces right after the third ACK, before its first DSS confirms our keys
    (found against the kernel): the device must neither storm pure ACKs (it cannot echo
    yet: its ACKs still carry MP_CAPABLE) nor lose the echo once confirmed."""
    from test_mptcp_states import _est_active
    from segtest import send, ACK, Dss
    from mptcp import crypto
    t, c, s = _est_active()
    opt = bytearray(16)
    MP.put_add_addr(opt, 0, 5, B2_ADDR, 0,
                    crypto.add_addr_hmac(t.peer_key, t.dev_key, 5, B2_ADDR, 0))
    send(t, 1, 1, ACK, raw_opts=bytes(opt))
    n = _count_out(t)       # its ACK (MP_CAPABLE: no room for the echo yet), the join's SYN
    assert n <= 2 and t.ctr("AddAddr") == 1 and t.ctr("EchoAddTx") == 0, n
    assert t.st.next_deadline() != t.now            # nothing due at once either
    send(t, 1, 1, ACK, dss=Dss(ack=1))                   # the peer's first DSS confirms
    n = _count_out(t)
    assert t.ctr("EchoAddTx") == 1 and n <= 3, n         # the echo (and the join SYN)
    assert c.confirmed and c.addrs.echo == 0
    assert t.ctr("MPJoinSynTx") == 1


def test_a_blocked_link_pauses_its_subflow_only():
    """A slow link's full transmit queue (the loop's Stack.set_blocked) stops its subflow;
    the scheduler gives the data to the other one meanwhile (a full serial line must not
    stall Wi-Fi)."""
    a, b, link, ca, cb, pa, pb, now = _start("roundrobin")
    now = run(link, now, lambda: (pa.step() or pb.step() or True) and len(_joined(ca)) == 2)
    a.set_blocked(LTE, True)
    lte0 = link.path("lte").payload[0]
    got0 = pb.got
    now = run_for(link, now, 60, lambda: (pa.step(), pb.step()))
    assert link.path("lte").payload[0] == lte0          # nothing on the blocked link
    assert pb.got - got0 > 20000, pb.got - got0         # Wi-Fi carried on
    a.set_blocked(LTE, False)
    now = run_for(link, now, 30, lambda: (pa.step(), pb.step()))
    assert link.path("lte").payload[0] > lte0           # and LTE again once it has room
    run(link, now, _step(pa, pb))
    _check(pa, pb, ca, cb)


def test_reading_while_only_a_join_is_trying_does_not_spin():
    """No subflow but a join in SYN-SENT (the link is back but silent): the app reading
    must not ask that join for a window update (it cannot send one: the loop would spin
    on a deadline of 'now' for ever)."""
    a, b, link, ca, cb, pa, pb, now = _start("minrtt")
    now = run(link, now, lambda: (pa.step() or pb.step() or True) and len(_joined(ca)) == 2
              and pa.got > SIZE // 4)
    now = run_for(link, now, 50, lambda: pb.step())          # b -> a data waits unread
    assert ca.rcv.len > 0
    link.down("wifi")
    link.down("lte")
    link.a.add_netif(LTE, link.path("lte").addr)            # "up", but the path drops all
    now = run_for(link, now, 10, lambda: None)
    assert [sf.state_name() for sf in ca.subflows if not sf.is_closed()] == ["SYN_SENT"]
    pa.step()                                                # the app reads
    link.pump(now)
    d = a.next_deadline()
    assert d != now and d >= 0, (d, now)


def test_a_lost_subflow_is_recreated_with_backoff():
    """LTE comes back "up" but drops everything: the path manager's joins time out and
    are retried after 1 s, 2 s, 4 s ... (doubling, at most 30 s); the connection goes on
    over Wi-Fi meanwhile, and a join that succeeds resets the backoff."""
    from mptcp.pm import PM_BACKOFF_MS, PM_BACKOFF_MAX_MS
    a, b, link, ca, cb, pa, pb, now = _start("minrtt", size=SIZE)
    now = run(link, now, lambda: (pa.step() or pb.step() or True) and len(_joined(ca)) == 2)
    link.down("lte")
    assert ca.pm_backoff == 2 * PM_BACKOFF_MS          # the loss doubled it
    link.path("lte").up = False
    a.add_netif(LTE, link.path("lte").addr)       # signalled up, silently dead
    now = run_for(link, now, 300000, lambda: None)  # a join gives up after its SYN retries (~127 s)
    # every join tries its SYN (with SYN retries) and gives up; the next comes later
    assert a.counters.get("TcpAttemptFails") >= 2, a.counters.nonzero()
    assert ca.pm_backoff == PM_BACKOFF_MAX_MS or ca.pm_backoff >= 4 * PM_BACKOFF_MS, ca.pm_backoff
    assert ca.error is None and ca.live() is not None          # Wi-Fi carries the connection
    link.path("lte").up = True
    now = run(link, now, lambda: len(_joined(ca)) == 2, 120000)
    assert ca.pm_backoff == PM_BACKOFF_MS and a.counters.get("SubflowRecreate") >= 2


def test_server_announces_a_link_that_comes_up_later():
    a, b, link, ca, cb, pa, pb, now = _start_b2()
    now = run(link, now, lambda: (pa.step() or pb.step() or True) and len(_to(ca, B2_ADDR)) == 1)
    b.netif_down(2)
    now = run(link, now, lambda: (pa.step() or pb.step() or True) and a.counters.get("RmAddr") == 1)
    b.add_netif(2, B2_ADDR)                       # back: announced again, joined again
    now = run(link, now, lambda: (pa.step() or pb.step() or True) and len(_to(ca, B2_ADDR)) == 1)
    assert b.counters.get("AddAddrTx") == 2 and a.counters.get("AddAddr") == 2
    run(link, now, _step(pa, pb))
    _check(pa, pb, ca, cb)


def _message_latency(scheduler):
    """A 100-byte message written while Wi-Fi (the faster path) silently drops everything:
    ms until the other end has it."""
    a, b, link, ca, cb, pa, pb, now = _start(scheduler, size=0)
    buf = bytearray(200)
    assert ca.write(b"hello") == 5                     # the peer's DATA_ACK confirms: joins
    now = run(link, now, lambda: cb.readinto(memoryview(buf)) == 0 and len(_joined(ca)) == 2
              and len(_joined(cb)) == 2)
    now = run_for(link, now, 500, lambda: None)        # RTTs measured, idle
    link.path("wifi").up = False
    assert ca.write(b"m" * 100) == 100
    t0 = now
    got = [0]

    def arrived():
        got[0] += cb.readinto(memoryview(buf))
        return got[0] == 100
    now = run(link, now, arrived, 10000)
    return now - t0, a


def test_redundant_scheduler_delivers_a_small_write_despite_a_dead_path():
    ms, a = _message_latency("redundant")
    assert ms < 100 and a.counters.get("MPTCPDupTx") >= 1, ms      # LTE's copy: one LTE trip
    ms, a = _message_latency("minrtt")
    assert ms >= 200 and a.counters.get("MPTCPDupTx") == 0, ms     # minrtt waits for an RTO


def test_the_path_manager_keeps_to_max_subflows():
    """Two links and a second server address, but max_subflows 2: two subflows, no more."""
    a, b = mp_pair(snd=16384, rcv=16384, seed=3)
    a.max_subflows = 2
    b.add_netif(2, B2_ADDR)
    link = MpLink(a, b, seed=3)
    b.listen(5001)
    ca = a.connect(1000, B_ADDR, 5001, ifindex=WIFI)
    now, cb = establish(link, 1000, ca, b)
    pa = App(link, ca, SIZE, 11)
    pb = App(link, cb, SIZE, 12)
    run(link, now, _step(pa, pb))
    _check(pa, pb, ca, cb)
    assert len(ca.subflows) == 2 and a.counters.get("MPJoinSynTx") == 1
    assert a.counters.get("AddAddr") == 1             # announced, not joined: no room


def test_no_fallback_once_a_subflow_joined():
    """RFC 8684 3.7 / Linux's allow_infinite_fallback: after a join, MP_FAIL is not answered
    with an infinite mapping, and an infinite mapping received resets that subflow only."""
    from netsim import craft
    a, b, link, ca, cb, pa, pb, now = _start("roundrobin")
    now = run(link, now, lambda: (pa.step() or pb.step() or True) and len(_joined(ca)) == 2
              and len(_joined(cb)) == 2)
    assert not ca.allow_fallback and not cb.allow_fallback
    ca.on_mp_fail()
    assert not ca.infinite_tx and not ca.fail_tx and ca.mptcp
    blte = [sf for sf in cb.subflows if sf.join][0]
    opt = bytearray(20)
    n = MP.put_dss(opt, 0, MP.DSS_MAP | MP.DSS_DSN8, dsn=cb.peer_idsn, ssn=blte.snd_max, dll=0)
    pkt = craft(blte, 0x10, bytes(opt[:n]), payload=b"x" * 10)
    a.input(LTE, pkt, len(pkt), now)
    alte = [sf for sf in ca.subflows if sf.join][0]
    assert alte.state_name() == "CLOSED" and ca.mptcp and ca.error is None
    assert a.counters.get("InfiniteMapRx") == 1 and a.counters.get("MPRstTx") == 0
    run(link, now, _step(pa, pb))
    _check(pa, pb, ca, cb)
    assert a.counters.get("MPRstTx") == 1


def test_a_plain_tcp_connection_survives_a_link_flap():
    """netif_down leaves a plain TCP connection alone (it may outlive a short outage) and
    add_netif gives its subflow the link back: the transfer completes."""
    a, b = mp_pair(snd=16384, rcv=16384, seed=9)
    link = MpLink(a, b, seed=9)
    b.listen(5001, mptcp=False)
    ca = a.connect(1000, B_ADDR, 5001, ifindex=WIFI, mptcp=False)
    now, cb = establish(link, 1000, ca, b)
    pa = App(link, ca, SIZE, 11)
    pb = App(link, cb, SIZE, 12)
    now = run(link, now, lambda: (pa.step() or pb.step() or True) and pb.got > SIZE // 3)
    link.down("wifi")
    assert not ca.mptcp and ca.sf.state_name() == "ESTABLISHED" and not ca.sf.link_up
    now = run_for(link, now, 500, lambda: (pa.step(), pb.step()))
    link.restore("wifi")
    assert ca.sf.link_up
    run(link, now, _step(pa, pb))
    _check(pa, pb, ca, cb)


def test_a_join_on_a_blocked_link_starts_blocked():
    a, b, link, ca, cb, pa, pb, now = _start("roundrobin", size=0)
    a.set_blocked(LTE, True)
    buf = bytearray(16)
    assert ca.write(b"hello") == 5
    now = run(link, now, lambda: cb.readinto(memoryview(buf)) == 0 and len(ca.subflows) == 2)
    lte = [sf for sf in ca.subflows if sf.ifindex == LTE][0]
    assert lte.blocked and lte.state_name() == "SYN_SENT"      # its SYN waits for the link
    a.set_blocked(LTE, False)
    run(link, now, lambda: len(_joined(ca)) == 2)


def test_a_closing_connection_that_loses_every_subflow_rejoins():
    """The app wrote everything and shut down writing (DATA_FIN queued) while the tail of
    its data is still in flight; then every link goes down for 5 s. The connection joins
    again when a link returns and delivers the tail and the DATA_FIN (no orphan timeout)."""
    a, b, link, ca, cb, pa, pb, now = _start("minrtt")
    now = run(link, now, lambda: (pa.step() or pb.step() or True) and ca.fin_queued
              and pb.got < SIZE and len(_joined(ca)) == 2)
    link.down("wifi")
    link.down("lte")
    assert ca.live() is None and ca.error is None
    now = run_for(link, now, 5000, lambda: (pa.step(), pb.step()))
    assert pb.got < SIZE and ca.error is None
    link.restore("wifi")
    link.restore("lte")
    run(link, now, _step(pa, pb))
    _check(pa, pb, ca, cb)
    assert a.counters.get("OrphanTimeout") == 0
    assert a.counters.get("MPJoinSynTx") >= 3, a.counters.nonzero()


def test_remove_addr_id_0_closes_the_initial_subflow_and_it_is_not_rejoined():
    """The server withdraws its initial address (REMOVE_ADDR id 0, RFC 8684 3.4.2): the
    device closes the initial subflow (and any join to that address), the transfer goes on
    over the subflow to the announced address, and no new join goes to the withdrawn one."""
    a, b, link, ca, cb, pa, pb, now = _start_b2()
    for p in (pa, pb):              # readers at 100 KB/s: the transfer outlasts the backoff
        p.rate = 2000
    now = run(link, now, lambda: (pa.step() or pb.step() or True) and len(_to(ca, B2_ADDR)) >= 1
              and pb.got > SIZE // 4)
    assert _to(ca, B_ADDR)
    cb.addrs.rm_ids[0] = 0          # the server's REMOVE_ADDR for id 0, sent on the wire
    cb.addrs.rm_n = 1
    now = run(link, now, lambda: (pa.step() or pb.step() or True) and a.counters.get("RmAddr") == 1)
    assert ca.addrs.r0_gone and not _to(ca, B_ADDR), [(s.raddr, s.state_name()) for s in ca.subflows]
    joins = a.counters.get("MPJoinSynTx")
    end = run(link, now, _step(pa, pb))
    _check(pa, pb, ca, cb)
    assert end - now > 1500          # (the path manager's first re-join would be at 1 s)
    assert a.counters.get("MPJoinSynTx") == joins, "joined the withdrawn address again"
    assert not [s for s in ca.subflows if s.raddr == B_ADDR and not s.is_closed()]


def test_a_link_up_again_keeps_its_subflows_unless_its_address_changed():
    """add_netif for a link that is up: with the same address (a re-association) its
    subflows go on; with a new one (an LTE re-dial) they are failed (the old address is
    gone) and the path manager joins from the new address."""
    a, b, link, ca, cb, pa, pb, now = _start("roundrobin")
    now = run(link, now, lambda: (pa.step() or pb.step() or True) and len(_joined(ca)) == 2
              and pb.got > SIZE // 4)
    wifi = [s for s in ca.subflows if s.ifindex == WIFI][0]
    a.add_netif(WIFI, bytes([198, 18, 1, 2]))          # the same address
    assert wifi.state_name() == "ESTABLISHED" and a.counters.get("RmSubflow") == 0
    lte = [s for s in ca.subflows if s.ifindex == LTE][0]
    a.add_netif(LTE, bytes([198, 18, 2, 9]))           # a new address on LTE
    assert lte.is_closed() and a.counters.get("RmSubflow") == 1
    assert wifi.state_name() == "ESTABLISHED"


def test_a_stale_subflow_recovers_and_carries_again():
    """Both paths drop everything silently: after STALE_RTOS RTOs the Wi-Fi subflow is
    stale (Linux's stale_loss_cnt). Wi-Fi works again first: the first ACK of its
    retransmission clears the mark (SubflowRecover) and it carries the rest. (Had LTE
    DATA_ACKed the reinjected data meanwhile, Wi-Fi's retransmission would have nothing
    left to resend and the subflow is reset instead: _dsn_gone.)"""
    a, b, link, ca, cb, pa, pb, now = _start("minrtt")
    now = run(link, now, lambda: (pa.step() or pb.step() or True) and pb.got > SIZE // 4
              and len(_joined(ca)) == 2)
    wifi = ca.sf
    link.down("wifi", signal=False)
    link.down("lte", signal=False)
    now = run(link, now, lambda: (pa.step() or pb.step() or True) and wifi.stale)
    assert a.counters.get("SubflowStale") >= 1 and a.counters.get("SubflowRecover") == 0
    assert not pa.finished() and not wifi.is_closed()
    link.restore("wifi", signal=False)
    now = run(link, now, lambda: (pa.step() or pb.step() or True)
              and a.counters.get("SubflowRecover") >= 1)
    assert not wifi.stale and not wifi.is_closed()
    sent = link.path("wifi").payload[0]
    run(link, now, _step(pa, pb))
    _check(pa, pb, ca, cb)
    assert link.path("wifi").payload[0] - sent > 20 * 1460     # Wi-Fi carries again


def test_mp_prio_goes_out_at_once_on_an_idle_connection():
    """set_backup with no data to send: the MP_PRIO leaves on a pure ACK of that subflow at
    the next output (RFC 8684 3.3.8), not with some later data segment."""
    a, b, link, ca, cb, pa, pb, now = _start("minrtt")
    pa.cap = pb.cap = 4000                          # 4000 bytes each way, then nothing
    now = run(link, now, lambda: (pa.step() or pb.step() or True) and len(_joined(ca)) == 2
              and pa.got == 4000 and pb.got == 4000)
    now = run_for(link, now, 2000)                  # delayed ACKs and timers settle
    buf = bytearray(1500)
    assert a.output(now, buf) == 0                  # idle: nothing to send
    a.set_backup(LTE, True)
    n = a.output(now, buf)
    assert n > 0 and buf[16:20] == bytes(B_ADDR) and buf[12:16] == bytes(link.path("lte").addr)
    subs = [buf[i + 2] >> 4 for i in mptcp_opts(buf[:n])]
    assert MP.MP_PRIO in subs and a.counters.get("MPPrioTx") == 1
    i = mptcp_opts(buf[:n])[subs.index(MP.MP_PRIO)]
    assert buf[i + 2] & MP.JOIN_B                   # the B flag set
    assert n == 20 + (buf[32] >> 4) * 4             # a pure ACK
