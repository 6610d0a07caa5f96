"""Two Stacks back to back in memory with a fake clock (no sockets).

Transfers random data both ways and compares SHA-256 at both ends, with and
without DSS checksums, with loss and reordering, fallback and resets.
Runs under MicroPython and CPython.
"""
import hashlib
from mptcp import counters as C
from netsim import (Rng, Source, Link, Impair, pair, run, establish, tcp_fix as _tcp_fix,
                    strip_mptcp as _strip_mptcp, A_ADDR, B_ADDR)


def transfer(size=200000, direction="c2s", mptcp_client=True, mptcp_server=True,
             csum_c=False, csum_s=False, loss=0, reorder=0, seed=3, snd=16384, rcv=16384,
             read_after=0, both=False):
    a, b = pair(snd, rcv, seed)
    b.listen(5001, mptcp=mptcp_server, csum=csum_s)
    link = Link(a, b, loss=loss, reorder=reorder, seed=seed)
    now = 1000
    ca = a.connect(now, B_ADDR, 5001, mptcp=mptcp_client, csum=csum_c)
    holder = []

    def accepted():
        c = b.accept()
        if c is not None:
            holder.append(c)
        return len(holder) > 0 and ca.established

    now = run(link, now, accepted)
    cb = holder[0]
    if direction == "c2s":
        tx, rx = ca, cb
    else:
        tx, rx = cb, ca
    src = Source(size, seed)
    src2 = Source(size // 2, seed + 1) if both else None
    h_rx = hashlib.sha256()
    h_tx = hashlib.sha256()
    st = {"got": 0, "got2": 0}
    rbuf = bytearray(4096)
    rmv = memoryview(rbuf)
    t_read = now + read_after

    def drain(c, h, key):
        while True:
            n = c.readinto(rbuf)
            if not n:
                break
            h.update(rmv[:n])
            st[key] += n

    def step():
        src.push(tx)
        if src2 is not None:
            src2.push(rx)
        if link.now >= t_read:
            drain(rx, h_rx, "got")
        if src2 is not None:
            drain(tx, h_tx, "got2")
        if rx.eof and not rx.app_closed:
            rx.close()
        return rx.eof and src.done() and tx.closed and rx.closed

    now = run(link, now, step)
    assert st["got"] == size, (st["got"], size)
    assert h_rx.digest() == src.h.digest()
    if src2 is not None:
        assert st["got2"] == src2.size and h_tx.digest() == src2.h.digest()
    return a, b, ca, cb, link


def bad(st):
    cn = st.counters
    for name in ("MPCapableFallbackACK", "MPCapableFallbackSYNACK", "DSSNotMatching",
                 "DataCsumErr", "InternalErrors", "TcpInCsumErrors", "DSSFallback"):
        assert cn.get(name) == 0, (name, cn.nonzero())


def test_c2s_mptcp():
    a, b, ca, cb, link = transfer(direction="c2s")
    assert ca.mptcp and cb.mptcp
    bad(a)
    bad(b)
    assert b.counters.get("MPCapableACKRX") == 1
    assert a.counters.get("DataFinRx") == 1 and b.counters.get("DataFinRx") == 1


def test_s2c_mptcp():
    a, b, ca, cb, link = transfer(direction="s2c")
    assert ca.mptcp and cb.mptcp
    bad(a)
    bad(b)


def test_csum_client():
    a, b, ca, cb, link = transfer(direction="c2s", csum_c=True, size=100000)
    assert ca.csum and cb.csum
    bad(a)
    bad(b)


def test_csum_server_s2c():
    a, b, ca, cb, link = transfer(direction="s2c", csum_s=True, size=100000)
    assert ca.csum and cb.csum
    bad(a)
    bad(b)


def test_loss_reorder_c2s():
    a, b, ca, cb, link = transfer(direction="c2s", loss=13, reorder=7, size=150000)
    assert link.dropped > 0
    bad(a)
    bad(b)
    assert a.counters.get("TcpRetransSegs") > 0


def test_loss_reorder_s2c_csum():
    a, b, ca, cb, link = transfer(direction="s2c", loss=11, reorder=5, csum_c=True,
                                  size=120000, seed=9)
    assert link.dropped > 0
    bad(a)
    bad(b)


def test_fallback_plain_listener():
    a, b, ca, cb, link = transfer(direction="c2s", mptcp_server=False, size=60000)
    assert not ca.mptcp and not cb.mptcp
    assert a.counters.get("MPCapableFallbackSYNACK") == 1


def test_plain_client_to_mptcp_listener():
    a, b, ca, cb, link = transfer(direction="s2c", mptcp_client=False, size=60000)
    assert not ca.mptcp and not cb.mptcp
    assert b.counters.get("MPCapableSYNRX") == 0


def test_rst_no_listener():
    a, b = pair()
    link = Link(a, b)
    now = 1000
    ca = a.connect(now, B_ADDR, 5999)
    run(link, now, lambda: ca.error is not None)
    assert ca.error == "refused"
    assert b.counters.get("DroppedNoSocket") == 1


def test_abort_fastclose():
    a, b = pair()
    b.listen(5001)
    link = Link(a, b)
    now = 1000
    ca = a.connect(now, B_ADDR, 5001)
    holder = []

    def acc():
        c = b.accept()
        if c is not None:
            holder.append(c)
        return bool(holder) and ca.established
    now = run(link, now, acc)
    assert ca.confirmed is False        # no DATA_ACK from the server yet
    ca.write(b"hello")
    now = run(link, now, lambda: holder[0].rcv.len == 5 and ca.snd.len == 0)
    assert ca.confirmed is True         # the server's DATA_ACK proved it has our keys
    ca.abort()
    now = run(link, now, lambda: holder[0].error is not None)
    assert holder[0].error == "reset"
    assert b.counters.get("MPFastcloseRx") == 1


def test_zero_window_persist():
    a, b, ca, cb, link = transfer(direction="c2s", size=40000, rcv=4096, read_after=5000)
    bad(a)
    bad(b)
    assert a.counters.get("TcpZeroWindowProbes") > 0


def test_bidirectional_csum_loss():
    a, b, ca, cb, link = transfer(direction="c2s", size=80000, both=True, csum_s=True,
                                  loss=17, reorder=9, seed=21)
    bad(a)
    bad(b)


def test_syn_and_synack_loss():
    """The first SYN and the first SYN/ACK are lost: both are retransmitted."""
    a, b = pair()
    b.listen(5001)
    link = Link(a, b)
    seen = {"syn": 0, "synack": 0}

    def drop_first(pkt, dst):
        fl = pkt[33]
        if fl & 0x12 == 0x02:
            seen["syn"] += 1
            if seen["syn"] == 1:
                return None
        if fl & 0x12 == 0x12:
            seen["synack"] += 1
            if seen["synack"] == 1:
                return None
        return pkt
    link.fwd = drop_first
    now = 1000
    ca = a.connect(now, B_ADDR, 5001)
    holder = []

    def acc():
        c = b.accept()
        if c is not None:
            holder.append(c)
        return bool(holder) and ca.established
    now = run(link, now, acc)
    assert ca.mptcp and holder[0].mptcp
    assert seen["syn"] == 2 and seen["synack"] >= 2


def test_rfc5961_challenge_ack():
    a, b = pair()
    b.listen(5001)
    link = Link(a, b)
    now = 1000
    ca = a.connect(now, B_ADDR, 5001)
    holder = []
    grab = []

    def acc():
        c = b.accept()
        if c is not None:
            holder.append(c)
        return bool(holder) and ca.established
    now = run(link, now, acc)
    cb = holder[0]

    def keep(pkt, dst):
        if dst is b and len(grab) < 1:
            grab.append(pkt)
        return pkt
    link.fwd = keep
    ca.write(b"x" * 3000)
    now = run(link, now, lambda: cb.rcv.len == 3000)
    pkt = bytearray(grab[0])
    # RST with a sequence number in the window but not rcv_nxt
    seq = int.from_bytes(pkt[24:28], "big")
    rst = bytearray(pkt[:40])
    rst[2] = 0
    rst[3] = 40
    rst[32] = 0x50
    rst[33] = 0x04
    rst[24:28] = ((seq + 5000) & 0xFFFFFFFF).to_bytes(4, "big")
    from mptcp import ipv4
    ipv4.write(rst, 0, A_ADDR, B_ADDR, 6, 20, 7)
    rst = _tcp_fix(rst)
    b.input(1, rst, len(rst), now)
    assert b.counters.get("ChallengeAcks") == 1
    assert cb.error is None
    # a SYN on the established connection: challenge ACK too
    syn = bytearray(rst)
    syn[33] = 0x02
    syn = _tcp_fix(syn)
    b.input(1, syn, len(syn), now)
    assert b.counters.get("ChallengeAcks") == 2
    assert cb.error is None
    # corrupt TCP checksum: counted and dropped
    badp = bytearray(pkt)
    badp[-1] ^= 0xFF
    b.input(1, badp, len(badp), now)
    assert b.counters.get("TcpInCsumErrors") == 1
    ca.write(b"y" * 1000)
    now = run(link, now, lambda: cb.rcv.len == 4000)


def test_fallback_options_stripped_after_handshake():
    """MPTCP options vanish after the handshake: both ends fall back, data intact."""
    a, b = pair()
    b.listen(5001)
    link = Link(a, b)
    cnt = [0]

    def strip(pkt, dst):
        cnt[0] += 1
        if cnt[0] <= 3:
            return pkt
        return _strip_mptcp(pkt)
    link.fwd = strip
    now = 1000
    ca = a.connect(now, B_ADDR, 5001)
    holder = []

    def acc():
        c = b.accept()
        if c is not None:
            holder.append(c)
        return bool(holder) and ca.established
    now = run(link, now, acc)
    cb = holder[0]
    src = Source(30000, 4)
    src2 = Source(20000, 5)
    h1 = hashlib.sha256()
    h2 = hashlib.sha256()
    got = [0, 0]
    rb = bytearray(2048)

    def step():
        src.push(ca)
        src2.push(cb)
        for c, h, i in ((cb, h1, 0), (ca, h2, 1)):
            while True:
                n = c.readinto(rb)
                if not n:
                    break
                h.update(rb[:n])
                got[i] += n
        return cb.eof and ca.eof and ca.closed and cb.closed
    now = run(link, now, step)
    assert got == [30000, 20000]
    assert h1.digest() == src.h.digest() and h2.digest() == src2.h.digest()
    assert not ca.mptcp and not cb.mptcp


def _handshake_with(fwd):
    a, b = pair()
    b.listen(5001)
    link = Link(a, b)
    link.fwd = fwd
    now = 1000
    ca = a.connect(now, B_ADDR, 5001)
    now = run(link, now, lambda: ca.established)
    return a, b, link, now, ca


def _echo_check(a, b, link, now, ca, size=20000):
    src = Source(size, 8)
    h = hashlib.sha256()
    got = [0]
    holder = []
    rb = bytearray(2048)

    def step():
        src.push(ca)
        if not holder:
            c = b.accept()
            if c is not None:
                holder.append(c)
        if holder:
            cb = holder[0]
            while True:
                n = cb.readinto(rb)
                if not n:
                    break
                h.update(rb[:n])
                got[0] += n
            if cb.eof and not cb.app_closed:
                cb.close()
            return cb.eof and ca.closed and cb.closed
        return False
    run(link, now, step)
    assert got[0] == size and h.digest() == src.h.digest()
    return holder[0]


def test_third_ack_lost_keys_from_first_data():
    """The pure third ACK is lost: the server learns the keys from MP_CAPABLE+data."""
    cnt = [0]

    def drop3(pkt, dst):
        cnt[0] += 1
        return None if cnt[0] == 3 else pkt
    a, b, link, now, ca = _handshake_with(drop3)
    cb = _echo_check(a, b, link, now, ca)
    assert ca.mptcp and cb.mptcp
    assert b.counters.get("MPCapableACKRX") == 1
    bad(a)
    bad(b)


def test_third_ack_without_mp_capable_falls_back():
    """A middlebox strips MP_CAPABLE from the third ACK: the server falls back, then the client."""
    cnt = [0]

    def strip3(pkt, dst):
        cnt[0] += 1
        if cnt[0] != 3:
            return pkt
        # the third packet is the client's third ACK to the server's port, with MP_CAPABLE
        assert pkt[33] & 0x17 == 0x10 and (pkt[22] << 8 | pkt[23]) == 5001, pkt
        out = _strip_mptcp(pkt)
        assert out != pkt, "no MPTCP option to strip in the third ACK"
        return out
    a, b, link, now, ca = _handshake_with(strip3)
    cb = _echo_check(a, b, link, now, ca)
    assert not cb.mptcp and not ca.mptcp
    assert b.counters.get("MPCapableFallbackACK") == 1


def test_sequence_wrap():
    """ISS just below 2**32 on both sides: the 32-bit wire numbers wrap mid-transfer."""
    a, b = pair()
    a._rand32 = lambda: 0xFFFFFF00
    b._rand32 = lambda: 0xFFFF0000
    b.listen(5001, csum=True)
    link = Link(a, b, loss=23, seed=4)
    now = 1000
    ca = a.connect(now, B_ADDR, 5001)
    now = run(link, now, lambda: ca.established)
    assert ca.sf.iss == 0xFFFFFF00
    cb = _echo_check(a, b, link, now, ca, size=100000)
    assert ca.mptcp and cb.mptcp
    bad(a)
    bad(b)


def test_data_fin_and_fin_lost():
    """The first data-less packets after close() (DATA_FIN, FIN) are lost: retransmitted."""
    a, b = pair()
    b.listen(5001)
    link = Link(a, b)
    state = {"drop": 0, "ca": None}

    def drop_fins(pkt, dst):
        ca = state["ca"]
        if ca is not None and ca.fin_queued and len(pkt) < 100 and state["drop"] < 3:
            state["drop"] += 1
            return None
        return pkt
    link.fwd = drop_fins
    now = 1000
    ca = a.connect(now, B_ADDR, 5001)
    state["ca"] = ca
    now = run(link, now, lambda: ca.established)
    cb = _echo_check(a, b, link, now, ca, size=5000)
    assert state["drop"] == 3
    assert ca.mptcp and cb.mptcp
    assert a.counters.get("MPTCPRetrans") + a.counters.get("TcpRTOs") > 0


def test_mp_join_syn_refused():
    """A SYN with MP_JOIN (no path manager yet) gets a RST, not a plain connection."""
    from mptcp import ipv4, tcpwire as T, mpopts as MP
    a, b = pair()
    b.listen(5001)
    p = bytearray(52)
    T.write_header(p, 20, 40000, 5001, 12345, 0, T.SYN, 65535, 12)
    MP.put_mp_join_syn(p, 40, 1, 0x11223344, b"abcd")
    ipv4.write(p, 0, A_ADDR, B_ADDR, 6, 32, 1)
    p = _tcp_fix(p)
    b.input(1, p, len(p), 1000)
    assert b.counters.get("MPJoinSynRx") == 1
    assert b.accept() is None and not b.conns
    out = bytearray(1600)
    n = b.output(1000, out)
    assert n == 44 and out[33] & T.RST       # with MP_TCPRST (4 bytes): unknown token
    assert out[40] == 30 and out[41] == 4 and out[42] >> 4 == MP.MP_TCPRST and out[43] == 1


def test_fast_retransmit_armed_then_full_ack():
    """A retransmission armed at snd_una (3 dupACKs) while a later ACK in the same batch
    acked everything: it must not turn the unsent ring data into one oversized packet
    (found in the lab: the emulator dropped the >MTU datagrams and the transfer stalled)."""
    from mptcp import tcpwire as T
    a, b = pair(snd=16384)
    b.listen(5001)
    link = Link(a, b)
    now = 1000
    ca = a.connect(now, B_ADDR, 5001)
    now = run(link, now, lambda: ca.established and b.accept() is not None)
    sf = ca.sf
    ca.write(bytearray(100))         # first data: the peer confirms the keys
    now = run(link, now, lambda: ca.confirmed and sf.snd_una == 101)
    ca.write(bytearray(16000))
    out = bytearray(1600)
    for _ in range(2):               # two segments reach the peer, the rest stays in the ring
        n = a.output(now, out)
        assert n > 1000
        b.input(1, bytearray(out[:n]), n, now)
    now += 300                       # past the peer's delayed-ACK timer
    while True:
        n = b.output(now, out)
        if not n:
            break
        a.input(1, bytearray(out[:n]), n, now)
    assert sf.snd_una == sf.snd_max > 1
    assert ca.data_end() - sf.snd_max > 4 * sf.mss
    sf.rexmit = True                 # as _process_ack leaves it after the 3rd dupACK
    sf.rexmit_at = sf.snd_una
    seg = T.TcpSegment()
    sent = 0
    while True:
        n = a.output(now, out)
        if not n:
            break
        assert n <= 1500, n
        assert T.parse(out, 20, n, seg) == 0
        assert seg.data_len <= sf.mss
        sent += 1
    assert a.counters.get("InternalErrors") == 0
    assert sf.snd_max <= ca.data_end()
    # and the connection still completes
    now = run(link, now, lambda: sf.snd_una == ca.data_end())
    bad(a)
    bad(b)


def _corrupt_once(state):
    """A middlebox that flips one payload byte of the Nth data packet and fixes the TCP
    checksum, so only the DSS checksum can tell."""
    def fwd(pkt, dst):
        if dst is not state["dst"] or len(pkt) <= 100:
            return pkt
        state["seen"] += 1
        if state["seen"] != state["nth"]:
            return pkt
        p = bytearray(pkt)
        p[-10] ^= 0xFF
        state["done"] = True
        return bytes(_tcp_fix(p))
    return fwd


def _mp_fail_run(direction, nth=20, size=60000, csum_c=True, csum_s=True):
    a, b = pair()
    b.listen(5001, True, csum_s)
    link = Link(a, b)
    now = 1000
    ca = a.connect(now, B_ADDR, 5001, 1, True, csum_c)
    now, cb = establish(link, now, ca, b)
    tx, rx = (ca, cb) if direction == "c2s" else (cb, ca)
    st_tx, st_rx = (a, b) if direction == "c2s" else (b, a)
    state = {"dst": st_rx, "seen": 0, "nth": nth, "done": False}
    link.fwd = _corrupt_once(state)
    data = bytearray(size)
    for i in range(size):
        data[i] = (i * 131 + 7) & 0xFF
    out = bytearray()
    rbuf = bytearray(4096)
    pos = [0]

    def step():
        if pos[0] < size:
            pos[0] += tx.write(memoryview(data)[pos[0]:])
            if pos[0] == size:
                tx.close()
        while True:
            k = rx.readinto(rbuf)
            if not k:
                break
            out.extend(rbuf[:k])
        if rx.eof and not rx.app_closed:
            rx.close()
        return rx.eof and tx.closed and rx.closed

    run(link, now, step)
    assert state["done"]
    assert len(out) == size, (len(out), size)
    diff = [i for i in range(size) if out[i] != data[i]]
    assert len(diff) == 1, diff[:10]      # the middlebox's byte, nothing lost or added
    assert not tx.mptcp and not rx.mptcp   # both fell back to TCP (RFC 8684 3.7)
    crx, ctx = st_rx.counters, st_tx.counters
    assert crx.get("DataCsumErr") == 1 and crx.get("MPFailTx") == 1, crx.nonzero()
    assert ctx.get("MPFailRx") == 1 and ctx.get("MPFailTx") == 1, ctx.nonzero()
    assert ctx.get("InfiniteMapTx") == 1 and crx.get("InfiniteMapRx") == 1
    assert crx.get("MPFailRx") == 1                  # the echo
    for cn in (crx, ctx):
        assert cn.get("InternalErrors") == 0 and cn.get("TcpInCsumErrors") == 0
    assert tx.error is None and rx.error is None


def test_dss_checksum_failure_mp_fail_and_infinite_mapping_c2s():
    _mp_fail_run("c2s")


def test_dss_checksum_failure_mp_fail_and_infinite_mapping_s2c():
    _mp_fail_run("s2c", nth=7)
