"""mptcp.connection, the data level on its own: the receive ring (place, deliver,
DATA_FIN), the send ring (DATA_ACK, release), checksummed mappings (RFC 8684 3.3),
MP_FAIL and fallback (RFC 8684 3.7) and the rebasing of relative sequence numbers
(DESIGN 2.3). The subflow is a stand-in that records what the connection asks of it,
so each rule is checked with exact values, independent of tcp.py.

DSNs are relative: the first data byte has DSN 1 (rcv_read = rcv_nxt = 1 at start).
"""
from mptcp.stack import Stack
from mptcp.connection import Connection, MAP_SLOTS, FAIL_TIMEOUT_MS
from mptcp import mpopts as MP
from mptcp import checksum
from mptcp.ticks import MASK as TMASK

M64 = 0xFFFFFFFFFFFFFFFF
PEER_IDSN = 0x0123456789ABCDEF
LOCAL_IDSN = 0xFEDCBA9876543210


class _Sf:
    """Stands in for the Subflow: the fields and calls the Connection uses."""

    def __init__(self):
        self.grew = []
        self.aborts = 0
        self.map_dsn = 0
        self.adv_base = 0
        self.snd_una = 1
        self.roff_h = 0
        self.hold_dsn = -1          # what hold() answers: the DSN it may still retransmit
        self.state = 3              # ESTABLISHED
        self.tx_delta = 0
        self.sb = _Sb()
        self.released = False
        self.snd_max = 1

    def hold(self):
        return self.hold_dsn

    def window_opened(self, grew):
        self.grew.append(grew)

    def abort(self):
        self.aborts += 1

    def state_name(self):
        return "ESTABLISHED"

    def is_closed(self):
        return False


class _Sb:
    def __init__(self):
        self.rebased = 0

    def rebase_dsn(self, by):
        self.rebased += by

    def max_dsn_end(self):
        return -1


def _conn(rcv=64, snd=64, mptcp=True, csum=False, sf=True):
    st = Stack(seed=1)
    c = Connection(st, snd, rcv, mptcp, csum)
    c.csum = csum
    c.set_local_idsn(LOCAL_IDSN)
    c.set_peer_idsn(PEER_IDSN)
    if sf:
        c.sf = _Sf()
        c.subflows.append(c.sf)
    return st, c


def _ctr(st, name):
    return st.counters.get(name)


def _data(n, start=0):
    return bytes(((start + i) * 7 + 3) % 251 for i in range(n))


def _read(c, n=4096):
    b = bytearray(n)
    k = c.readinto(memoryview(b))
    return bytes(b[:k])


def _csum(dsn, ssn, data, dll=None):
    """The DSS checksum the peer puts on a mapping (RFC 8684 3.3): DSN is relative to
    PEER_IDSN, ssn the relative subflow sequence number as on the wire."""
    if dll is None:
        dll = len(data)
    return checksum.dss_checksum((PEER_IDSN + dsn) & M64, ssn & 0xFFFFFFFF, dll, data, 0,
                                 len(data))


# ---------------------------------------------------------------- app API
def test_new_connection_without_subflow_is_closed_and_refuses_writes():
    st = Stack(seed=1)
    c = Connection(st, 32, 48, True, False)
    assert c.sf is None and c.state == "CLOSED" and c.closed
    assert not c.eof and not c.accepted and c.error is None
    assert c.write(b"abc") == 0
    assert c.data_end() == 1 and c.rcv_window() == 48
    assert _read(c) == b""
    c.abort()                       # no subflow: nothing to abort, no error
    c.close()
    assert c.fin_queued and c.app_closed and c.error is None
    assert c.subflows == []


def test_new_connection_has_no_keys_and_zero_idsns():
    """Until the handshake gives keys: none, and the IDSN bases (also as 16-bit limbs,
    the form the data path uses) are 0."""
    st = Stack(seed=1)
    c = Connection(st, 32, 48, True, False)
    assert c.local_key is None and c.peer_key is None and c.token == 0
    assert c.local_idsn == 0 and c.lidsn4 == MP.limbs64(0)
    assert c.peer_idsn == 0 and c.pidsn4 == MP.limbs64(0)
    c.set_local_idsn(LOCAL_IDSN)
    c.set_peer_idsn(PEER_IDSN)
    assert c.local_idsn == LOCAL_IDSN and c.lidsn4 == [0xFEDC, 0xBA98, 0x7654, 0x3210]
    assert c.peer_idsn == PEER_IDSN and c.pidsn4 == [0x0123, 0x4567, 0x89AB, 0xCDEF]


def test_state_and_closed_follow_the_subflow():
    st, c = _conn()
    assert c.state == "ESTABLISHED" and not c.closed


def test_write_takes_what_fits_until_shutdown_or_error():
    st, c = _conn(snd=8)
    assert c.write(b"hello") == 5
    assert c.write(b"world") == 3           # the ring holds 8
    assert c.data_end() == 9
    st, c = _conn()
    c.shutdown_write()
    assert c.fin_queued and c.write(b"x") == 0
    st, c = _conn()
    c.error = "reset"
    assert c.write(b"x") == 0


def test_readinto_advances_and_reports_the_window_growth():
    """The app reading n bytes moves the window's right edge by n: the subflow is told
    (it decides whether a window update is worth sending)."""
    st, c = _conn(rcv=16)
    d = _data(10)
    assert c.place(1, d, 0, 10)
    assert c.rcv_window() == 6
    assert _read(c, 4) == d[:4]
    assert c.rcv_read == 5 and c.rcv_window() == 10 and c.sf.grew == [4]
    assert _read(c) == d[4:]
    assert c.rcv_read == 11 and c.sf.grew == [4, 6]
    assert _read(c) == b""
    assert c.sf.grew == [4, 6]              # nothing read: no call


def test_eof_needs_the_data_fin_and_an_empty_ring():
    st, c = _conn()
    assert c.place(1, b"ab", 0, 2)
    c.peer_fin = 3
    c.check_fin()
    assert c.fin_rcvd and not c.eof         # two bytes still to read
    assert _read(c) == b"ab"
    assert c.eof
    st, c = _conn()
    assert not c.eof                        # empty ring, no DATA_FIN


def test_close_with_unread_data_aborts_the_subflow():
    """As Linux: close() with data unread resets (the peer must not take it for success)."""
    st, c = _conn()
    assert c.place(1, b"xyz", 0, 3)
    c.close()
    assert c.sf.aborts == 1 and c.fin_queued and c.app_closed


def test_close_with_one_byte_unread_aborts():
    st, c = _conn()
    assert c.place(1, b"xy", 0, 2)
    assert _read(c, 1) == b"x"
    c.close()
    assert c.sf.aborts == 1


def test_close_with_everything_read_does_not_abort():
    st, c = _conn()
    assert c.place(1, b"xyz", 0, 3)
    assert _read(c) == b"xyz"
    c.close()
    assert c.sf.aborts == 0 and c.fin_queued and c.app_closed


def test_abort_goes_to_the_subflow():
    st, c = _conn()
    c.abort()
    assert c.sf.aborts == 1


# ---------------------------------------------------------------- send side
def test_data_ack_frees_the_send_ring():
    st, c = _conn(snd=16)
    assert c.write(_data(10)) == 10             # DSNs 1..10, data_end 11
    c.on_data_ack(6, 11)
    assert c.data_ack == 6 and c.snd_base == 6 and c.snd.len == 5
    c.on_data_ack(11, 11)
    assert c.data_ack == 11 and c.snd_base == 11 and c.snd.len == 0


def test_data_ack_beyond_the_data_or_backwards_is_ignored():
    st, c = _conn(snd=16)
    c.write(_data(10))
    c.on_data_ack(12, 11)                       # acks a byte never written
    assert c.data_ack == 1 and c.snd_base == 1 and c.snd.len == 10
    c.on_data_ack(5, 11)
    c.on_data_ack(3, 11)                        # older than the last one
    assert c.data_ack == 5 and c.snd_base == 5 and c.snd.len == 6


def test_data_ack_is_bounded_by_the_subflow_ack():
    """With MPTCP the ring keeps what a subflow may still retransmit, whatever the DATA_ACK."""
    st, c = _conn(snd=16)
    c.write(_data(10))
    c.sf.hold_dsn = 4
    c.on_data_ack(9, 4)
    assert c.data_ack == 9 and c.snd_base == 4 and c.snd.len == 7


def test_data_ack_of_the_data_fin():
    """The DATA_FIN takes one DSN after the data: a DATA_ACK one past the data acks it."""
    st, c = _conn(snd=16)
    c.write(_data(4))                           # data_end 5, DATA_FIN at DSN 5
    c.on_data_ack(6, 5)                         # not sent yet: out of range
    assert c.data_ack == 1 and not c.dfin_acked
    c.dfin_sent = True
    c.dfin_deadline = 777
    c.on_data_ack(6, 5)
    assert c.data_ack == 6 and c.dfin_acked and c.dfin_deadline == -1
    assert c.snd.len == 0 and c.snd_base == 5


def test_data_ack_of_the_data_only_leaves_the_data_fin_pending():
    st, c = _conn(snd=16)
    c.write(_data(4))
    c.dfin_sent = True
    c.dfin_deadline = 777
    c.on_data_ack(5, 5)
    assert c.data_ack == 5 and not c.dfin_acked and c.dfin_deadline == 777


def test_release_after_fallback_follows_the_subflow_ack_alone():
    st, c = _conn(snd=16)
    c.write(_data(10))
    c.mptcp = False
    c.snd_nxt = 11
    c.sf.hold_dsn = 8
    c.release()                                 # no DATA_ACK (still 1): TCP rules
    assert c.snd_base == 8 and c.snd.len == 3


def test_release_never_passes_the_written_data():
    st, c = _conn(snd=16)
    c.write(_data(10))
    c.mptcp = False
    c.snd_nxt = 12                              # (as if) the FIN's sequence number
    c.release()
    assert c.snd_base == 11 and c.snd.len == 0
    c.sf.hold_dsn = 5
    c.release()                                 # behind: nothing
    assert c.snd_base == 11


# ---------------------------------------------------------------- rebasing (DESIGN 2.3)
def test_rebase_snd_moves_the_send_space_and_its_base():
    """The data-level send space rebases on its own (not with a subflow's): every DSN
    value drops, the IDSN limbs grow, and each subflow's segment mappings follow."""
    by = 0x10000
    st, c = _conn()
    c.snd_base = by + 7
    c.snd_nxt = by + 9
    c.wnd_end = by + 20
    c.data_ack = by + 1
    c.rtx_nxt = by + 2
    c.rtx_end = by + 5
    c.sf.tx_delta = 3
    c.rebase_snd(by)
    assert c.snd_base == 7 and c.data_ack == 1 and c.snd_nxt == 9 and c.wnd_end == 20
    assert c.rtx_nxt == 2 and c.rtx_end == 5
    assert c.sf.tx_delta == 3 - by and c.sf.sb.rebased == by
    assert c.lidsn4 == MP.limbs64((LOCAL_IDSN + by) & M64)
    st, c = _conn()
    c.data_ack = by - 1                         # behind the new base: 0
    c.rtx_nxt = 4                               # an empty reinjection range stays empty
    c.rtx_end = 4
    c.rebase_snd(by)
    assert c.data_ack == 0 and c.rtx_nxt == 0 and c.rtx_end == 0


def test_rebase_sf_rcv_moves_the_pending_mappings():
    by = 0x10000
    st, c = _conn(csum=True)
    c.map_delta = 5
    assert c.add_pending_map(c.sf, by + 1, 1, 10, 10, 0, True)
    assert c.add_pending_map(c.sf, by + 11, 11, 10, 10, 0, False)
    c.rebase_sf_rcv(c.sf, by)
    assert c.map_delta == by + 5
    assert c.m_ssn[:2] == [1, 11] and c.m_dsn[:2] == [1, 11]


def test_rebase_rcv_moves_every_receive_side_value():
    by = 0x10000
    st, c = _conn(csum=True)
    c.rcv_read = by + 3
    c.rcv_nxt = by + 5
    c.peer_fin = by + 9
    c.fail_dsn = by + 4
    c.map_delta = 2
    assert c.add_pending_map(c.sf, 20, by + 5, 4, 4, 0, True)
    c.sf.map_dsn = by + 6
    c.sf.adv_base = by + 8
    c.rebase_rcv(by)
    assert (c.rcv_read, c.rcv_nxt, c.peer_fin, c.fail_dsn) == (3, 5, 9, 4)
    assert c.map_delta == 2 - by
    assert c.m_dsn[0] == 5 and c.m_ssn[0] == 20
    assert c.sf.map_dsn == 6 and c.sf.adv_base == 8
    assert c.pidsn4 == MP.limbs64((PEER_IDSN + by) & M64)
    assert c.lidsn4 == MP.limbs64(LOCAL_IDSN)       # the send side does not move


def test_rebase_rcv_unknown_or_stale_values():
    by = 0x10000
    st, c = _conn(sf=False)
    c.rcv_read = c.rcv_nxt = by + 1
    c.fail_dsn = by - 1                     # an MP_FAIL DSN below the base: 0
    c.rebase_rcv(by)                        # (no subflow: nothing else to move)
    assert c.peer_fin == -1 and c.fail_dsn == 0 and c.rcv_nxt == 1
    st, c = _conn(sf=False)
    c.fail_dsn = by + 1
    c.rebase_rcv(by)
    assert c.fail_dsn == 1
    st, c = _conn()
    c.rcv_read = c.rcv_nxt = by + 1
    c.peer_fin = 0                          # below the new base: no longer known
    c.rebase_rcv(by)
    assert c.peer_fin < 0


# ---------------------------------------------------------------- pending (checksummed) mappings
def test_add_pending_map_ignores_an_exact_repeat_only():
    st, c = _conn(csum=True)
    assert c.add_pending_map(c.sf, 1, 1, 10, 10, 0x1234, True)
    assert c.add_pending_map(c.sf, 1, 1, 10, 10, 0x1234, True)
    assert c.m_n == 1
    assert c.add_pending_map(c.sf, 1, 101, 10, 10, 0, True)      # same ssn, another DSN
    assert c.add_pending_map(c.sf, 1, 1, 9, 9, 0, True)          # same start, shorter
    assert c.add_pending_map(c.sf, 2, 1, 10, 10, 0, True)        # same DSN, another ssn
    assert c.m_n == 4
    assert (c.m_ssn[0], c.m_dsn[0], c.m_len[0], c.m_dll[0], c.m_csum[0]) == (1, 1, 10, 10,
                                                                            0x1234)
    assert (c.m_ssn[1], c.m_dsn[1], c.m_len[1]) == (1, 101, 10)


def test_add_pending_map_keeps_the_last_slot_for_in_order_data():
    """Eight mappings are held (MAP_SLOTS); out-of-order ones can never block the
    connection: the last slot is for the mapping of in-order data."""
    assert MAP_SLOTS == 8
    st, c = _conn(csum=True)
    for i in range(7):
        assert c.add_pending_map(c.sf, 100 + 10 * i, 100 + 10 * i, 10, 10, 0, False)
    assert c.m_n == MAP_SLOTS - 1
    assert not c.add_pending_map(c.sf, 500, 500, 10, 10, 0, False)
    assert c.m_n == MAP_SLOTS - 1
    assert c.add_pending_map(c.sf, 1, 1, 10, 10, 0, True)
    assert c.m_n == MAP_SLOTS
    assert not c.add_pending_map(c.sf, 11, 11, 10, 10, 0, True)  # full, even in order
    assert c.m_n == MAP_SLOTS
    assert c.add_pending_map(c.sf, 1, 1, 10, 10, 0, True)        # a repeat is still fine


# ---------------------------------------------------------------- place / deliver
def test_place_in_order_is_readable_at_once():
    st, c = _conn()
    d = _data(5)
    assert c.place(1, d, 0, 5)
    assert c.rcv_nxt == 6 and c.rcv.len == 5
    assert _read(c) == d


def test_place_trims_what_is_already_delivered():
    st, c = _conn()
    d = _data(12)
    assert c.place(1, d, 0, 5)
    assert c.place(1, d, 0, 8)              # 5 bytes again, 3 new
    assert c.rcv_nxt == 9 and c.rcv.len == 8
    assert c.place(3, d, 2, 9)              # 6 again, 3 new (src offset follows)
    assert c.rcv_nxt == 12 and _read(c) == d[:11]


def test_place_all_duplicate_changes_nothing():
    st, c = _conn()
    d = _data(8)
    assert c.place(1, d, 0, 8)
    assert c.place(2, b"XXXX", 0, 4)        # all below rcv_nxt
    assert c.rcv_nxt == 9 and _read(c) == d


def test_place_duplicate_of_data_read_already():
    st, c = _conn()
    d = _data(8)
    assert c.place(1, d, 0, 8)
    assert _read(c, 3) == d[:3]             # rcv_read 4, 5 bytes in the ring
    assert c.place(1, b"ZZZZZZZZZZ", 0, 10)  # DSN 1..10: 8 old, 2 new
    assert c.rcv_nxt == 11 and _read(c) == d[3:] + b"ZZ"


def test_place_clamps_to_the_ring_end():
    st, c = _conn(rcv=16)
    d = _data(30)
    assert c.place(10, d, 9, 12)            # DSN 10..21: only 10..16 fit
    assert c.rcv_nxt == 1 and c.rcv.len == 0
    assert c.place(1, d, 0, 9)              # fills the hole: 16 bytes readable
    assert c.rcv_nxt == 17 and c.rcv.len == 16
    assert _read(c) == d[:16]


def test_place_wholly_beyond_the_ring_is_ignored():
    st, c = _conn(rcv=16)
    assert c.place(17, b"abcd", 0, 4)       # not dropped for lack of a slot
    assert c.place(30, b"abcd", 0, 4)
    assert c.rcv_nxt == 1 and c.asm.n == 0 and _ctr(st, "TcpOFODrop") == 0


def test_place_keeps_the_byte_that_fits_at_the_ring_end():
    st, c = _conn(rcv=16)
    d = _data(16)
    assert c.place(16, b"XY", 0, 2)         # one byte fits: DSN 16; 17 is cut
    assert c.asm.n == 1
    assert c.place(1, d, 0, 15)
    assert c.rcv_nxt == 17 and _read(c) == d[:15] + b"X"


def test_place_at_the_ring_end_with_every_slot_used():
    """Data wholly beyond the ring is cut, not counted as an out-of-order drop."""
    st, c = _conn(rcv=16)
    for dsn in (3, 6, 9, 12):
        assert c.place(dsn, b"i", 0, 1)
    assert c.place(17, b"abc", 0, 3)
    assert _ctr(st, "TcpOFODrop") == 0 and c.asm.n == 4


def test_place_out_of_order_until_the_slots_run_out():
    """Four islands fit (OOO_SLOTS); a fifth apart from them is dropped (TcpOFODrop, the
    peer retransmits); one touching an island merges into it."""
    st, c = _conn(rcv=64)
    assert c.place(1, b"abc", 0, 3)         # rcv_nxt 4: islands are counted from there
    for dsn in (6, 16, 26, 36):
        assert c.place(dsn, b"i", 0, 1)
    assert c.asm.n == 4 and c.rcv_nxt == 4
    assert not c.place(46, b"j", 0, 1)
    assert _ctr(st, "TcpOFODrop") == 1
    assert not c.place(46, b"j", 0, 1)
    assert _ctr(st, "TcpOFODrop") == 2
    assert c.place(7, b"k", 0, 1)           # touches the island at DSN 6
    assert c.asm.n == 4 and _ctr(st, "TcpOFODrop") == 2
    assert c.place(4, b"hh", 0, 2)          # fills DSN 4..5: 4..7 readable
    assert c.rcv_nxt == 8 and _read(c) == b"abchhik"


def test_place_in_order_with_all_slots_used():
    """In-order data needs no slot: it is accepted whatever the islands."""
    st, c = _conn(rcv=64)
    for dsn in (3, 13, 23, 33):
        assert c.place(dsn, b"i", 0, 1)
    assert c.place(1, b"a", 0, 1)
    assert c.rcv_nxt == 2 and _ctr(st, "TcpOFODrop") == 0


def test_place_with_checksums_waits_for_verification():
    st, c = _conn(csum=True)
    assert c.place(1, b"hello", 0, 5)
    assert c.rcv_nxt == 1 and c.rcv.len == 0
    assert c.deliver(1, 5)
    assert c.rcv_nxt == 6 and _read(c) == b"hello"


def test_deliver_trims_what_is_delivered_already():
    st, c = _conn(csum=True)
    d = _data(12)
    c.place(1, d, 0, 12)
    assert c.deliver(1, 4)
    assert c.deliver(1, 4)                  # all old
    assert c.rcv_nxt == 5
    assert c.deliver(2, 4)                  # 3 old, DSN 5 new
    assert c.rcv_nxt == 6 and c.rcv.len == 5
    assert c.deliver(3, 6)                  # DSN 3..8: 6..8 new
    assert c.rcv_nxt == 9 and c.rcv.len == 8
    assert _read(c) == d[:8]


def test_deliver_out_of_order_then_the_hole():
    st, c = _conn(csum=True)
    d = _data(10)
    c.place(1, d, 0, 10)
    assert c.deliver(5, 3)                  # DSN 5..7: waits for 1..4
    assert c.rcv_nxt == 1 and c.rcv.len == 0 and c.asm.n == 1
    assert c.deliver(1, 4)                  # 1..7 now
    assert c.rcv_nxt == 8 and c.rcv.len == 7 and c.asm.n == 0
    assert c.deliver(8, 1)
    assert c.rcv_nxt == 9 and c.rcv.len == 8
    assert _read(c) == d[:8]


def test_deliver_partly_beyond_an_island():
    st, c = _conn(csum=True)
    c.place(1, _data(20), 0, 20)
    assert c.deliver(5, 2)                  # island 5..6
    assert c.deliver(1, 8)                  # 1..8 covers it
    assert c.rcv_nxt == 9 and c.asm.n == 0


def test_deliver_out_of_order_until_the_slots_run_out():
    st, c = _conn(csum=True)
    c.place(1, _data(60), 0, 60)
    for dsn in (5, 15, 25, 35):
        assert c.deliver(dsn, 2)
    assert not c.deliver(45, 2)
    assert _ctr(st, "TcpOFODrop") == 1 and c.rcv_nxt == 1
    assert c.deliver(7, 1)                  # merges with 5..6
    assert _ctr(st, "TcpOFODrop") == 1


# ---------------------------------------------------------------- DATA_FIN
def test_data_fin_consumed_when_the_data_before_it_is_delivered():
    st, c = _conn()
    c.peer_fin = 6                          # 5 bytes, then the DATA_FIN
    assert c.place(1, b"abc", 0, 3)
    assert not c.fin_rcvd and c.rcv_nxt == 4
    assert c.place(4, b"de", 0, 2)
    assert c.fin_rcvd and c.rcv_nxt == 7    # the DATA_FIN takes one DSN
    assert _ctr(st, "DataFinRx") == 1
    assert _read(c) == b"abcde" and c.eof


def test_check_fin_counts_the_data_fin_once():
    st, c = _conn()
    c.peer_fin = 1                          # a DATA_FIN with no data
    c.check_fin()
    c.check_fin()
    assert c.fin_rcvd and c.rcv_nxt == 2 and _ctr(st, "DataFinRx") == 1


def test_check_fin_waits_for_its_position():
    st, c = _conn()
    c.check_fin()                           # unknown (-1)
    assert not c.fin_rcvd and c.rcv_nxt == 1
    c.peer_fin = 3
    c.check_fin()
    assert not c.fin_rcvd and c.rcv_nxt == 1 and _ctr(st, "DataFinRx") == 0


# ---------------------------------------------------------------- checksums (RFC 8684 3.3)
def _held(c, ssn, dsn, data, good=True, put=True):
    """The peer's mapping [dsn, dsn+len) at subflow seq ssn, its data in the ring."""
    cs = _csum(dsn, ssn, data)
    if not good:
        cs ^= 0x0100
    if put:
        assert c.place(dsn, data, 0, len(data))
    assert c.add_pending_map(c.sf, ssn, dsn, len(data), len(data), cs, True)


def test_verify_maps_delivers_a_good_mapping_when_complete():
    st, c = _conn(csum=True)
    d = _data(10)
    _held(c, 1, 1, d)
    c.verify_maps(c.sf, 6, 5000)                  # the subflow has only half of it
    assert c.m_n == 1 and c.rcv_nxt == 1
    c.verify_maps(c.sf, 10, 5000)                 # all but its last byte
    assert c.m_n == 1 and c.rcv_nxt == 1
    c.verify_maps(c.sf, 11, 5000)
    assert c.m_n == 0 and c.rcv_nxt == 11 and _read(c) == d
    assert _ctr(st, "DataCsumErr") == 0 and not c.fail_tx and c.fail_deadline == -1


def test_verify_maps_bad_checksum_answers_mp_fail_and_keeps_the_data():
    """As Linux on its single subflow: MP_FAIL with the mapping's DSN, the data is
    delivered, and the answer is awaited FAIL_TIMEOUT_MS."""
    st, c = _conn(csum=True)
    d = _data(10)
    _held(c, 1, 1, d[:4])
    _held(c, 5, 5, d[4:], good=False)
    c.verify_maps(c.sf, 11, 5000)
    assert _ctr(st, "DataCsumErr") == 1
    assert c.fail_tx and c.fail_dsn == 5 and c.fail_deadline == 5000 + FAIL_TIMEOUT_MS
    assert c.rcv_nxt == 11 and _read(c) == d and c.m_n == 0


def test_verify_maps_one_byte_mapping_is_checked():
    st, c = _conn(csum=True)
    _held(c, 1, 1, b"z", good=False)
    c.verify_maps(c.sf, 2, 5000)
    assert _ctr(st, "DataCsumErr") == 1 and c.fail_tx and c.fail_dsn == 1
    assert _read(c) == b"z"


def test_verify_maps_mapping_longer_than_the_ring_is_bad():
    """A mapping that cannot be held in the ring whole cannot be summed: it counts as a
    checksum failure even if its sum is right (here its last 4 bytes repeat its first 4,
    so a sum that wrapped around the ring would come out right)."""
    st, c = _conn(rcv=16, csum=True)
    d = b"wxyz" + _data(12) + b"wxyz"
    assert c.place(1, d, 0, 20)             # 16 bytes stored
    assert c.add_pending_map(c.sf, 1, 1, 20, 20, _csum(1, 1, d), True)
    c.verify_maps(c.sf, 21, 5000)
    assert _ctr(st, "DataCsumErr") == 1 and c.fail_tx and c.fail_dsn == 1


def test_verify_maps_second_bad_mapping_keeps_the_first_mp_fail():
    st, c = _conn(csum=True)
    d = _data(10)
    _held(c, 1, 1, d[:4], good=False)
    c.verify_maps(c.sf, 5, 5000)
    c.fail_tx = False                       # MP_FAIL sent; its answer is awaited
    _held(c, 5, 5, d[4:], good=False)
    c.verify_maps(c.sf, 11, 6000)
    assert _ctr(st, "DataCsumErr") == 2
    assert not c.fail_tx and c.fail_dsn == 1 and c.fail_deadline == 5000 + FAIL_TIMEOUT_MS


def test_verify_maps_mp_fail_deadline_on_tick_zero_is_running():
    """A deadline that falls on tick 0 (the clock wraps) is a running timer (-1 is none)."""
    now = TMASK + 1 - FAIL_TIMEOUT_MS
    st, c = _conn(csum=True)
    d = _data(10)
    _held(c, 1, 1, d[:4], good=False)
    c.verify_maps(c.sf, 5, now)
    assert c.fail_deadline == 0 and c.fail_dsn == 1
    c.fail_tx = False
    _held(c, 5, 5, d[4:], good=False)
    c.verify_maps(c.sf, 11, now + 10)
    assert not c.fail_tx and c.fail_dsn == 1 and c.fail_deadline == 0


def test_verify_maps_fallen_back_counts_but_sends_no_mp_fail():
    st, c = _conn(csum=True)
    d = _data(6)
    _held(c, 1, 1, d, good=False)
    c.mptcp = False
    c.verify_maps(c.sf, 7, 5000)
    assert _ctr(st, "DataCsumErr") == 1 and not c.fail_tx and c.fail_deadline == -1
    assert _read(c) == d


def test_verify_maps_completes_mappings_in_any_order():
    """The table is compacted as mappings complete; the ones left keep their fields."""
    st, c = _conn(csum=True)
    d = _data(30)
    c.place(1, d, 0, 30)
    _held(c, 1, 1, d[0:10], put=False)
    _held(c, 21, 21, d[20:30], put=False)
    _held(c, 11, 11, d[10:20], put=False)
    c.verify_maps(c.sf, 11, 5000)                 # the first one only
    assert c.m_n == 2 and c.rcv_nxt == 11
    c.verify_maps(c.sf, 31, 5000)
    assert c.m_n == 0 and c.rcv_nxt == 31
    assert _ctr(st, "DataCsumErr") == 0
    assert _read(c) == d


def test_verify_maps_a_mapping_with_only_a_data_fin():
    """A DATA_FIN alone is a mapping with no data bytes: nothing to sum or deliver."""
    st, c = _conn(csum=True)
    assert c.add_pending_map(c.sf, 1, 1, 0, 1, 0, True)
    c.peer_fin = 1
    c.verify_maps(c.sf, 2, 5000)
    assert c.m_n == 0 and _ctr(st, "DataCsumErr") == 0 and c.rcv_nxt == 1


def test_verify_maps_a_reinjected_mapping_below_the_read_position():
    """Bytes the app has read already cannot be summed: not checked, not counted."""
    st, c = _conn(csum=True)
    d = _data(8)
    _held(c, 1, 1, d)
    c.verify_maps(c.sf, 9, 5000)
    assert _read(c) == d
    assert c.add_pending_map(c.sf, 9, 1, 8, 8, 0xBAD, True)     # same data, other subflow seq
    c.verify_maps(c.sf, 17, 5000)
    assert c.m_n == 0 and _ctr(st, "DataCsumErr") == 0 and c.rcv_nxt == 9


def test_checksum_uses_the_subflow_sequence_above_64k():
    """The pseudo-header has the 32-bit relative subflow sequence number: its high half
    (plus what rebasing took off, roff_h) counts."""
    st, c = _conn(csum=True)
    d = _data(6)
    _held(c, 0x10005, 1, d)
    c.verify_maps(c.sf, 0x1000B, 5000)
    assert _ctr(st, "DataCsumErr") == 0 and c.rcv_nxt == 7
    st, c = _conn(csum=True)
    c.sf.roff_h = 2                         # rebased by 2 * 2**16: wire ssn 0x20005
    assert c.place(1, d, 0, 6)
    assert c.add_pending_map(c.sf, 5, 1, 6, 6, _csum(1, 0x20005, d), True)
    c.verify_maps(c.sf, 11, 5000)
    assert _ctr(st, "DataCsumErr") == 0 and c.rcv_nxt == 7


def test_checksum_of_a_mapping_across_the_ring_end():
    """A mapping split by the ring's end is summed in two parts, the second at an odd
    offset when the first part is odd."""
    for first in (7, 8):
        st, c = _conn(rcv=16, csum=True)
        lead = _data(16 - first)
        assert c.place(1, lead, 0, len(lead))
        assert c.deliver(1, len(lead))
        assert _read(c) == lead             # rcv_read at ring position 16 - first
        d = _data(12, 40)
        _held(c, 100, 1 + len(lead), d)
        c.verify_maps(c.sf, 112, 5000)
        assert _ctr(st, "DataCsumErr") == 0, first
        assert _read(c) == d
        _held(c, 112, 13 + len(lead), d[:4], good=False)
        c.verify_maps(c.sf, 116, 5000)
        assert _ctr(st, "DataCsumErr") == 1, first


def test_checksum_of_a_mapping_ending_at_the_ring_end():
    st, c = _conn(rcv=16, csum=True)
    d = _data(16)
    _held(c, 1, 1, d)
    c.verify_maps(c.sf, 17, 5000)
    assert _ctr(st, "DataCsumErr") == 0 and _read(c) == d


def test_checksum_covers_the_data_level_length():
    """dll (on the wire) is in the pseudo-header: a DATA_FIN mapping sums dll = len + 1."""
    st, c = _conn(csum=True)
    d = _data(5)
    assert c.place(1, d, 0, 5)
    assert c.add_pending_map(c.sf, 1, 1, 5, 6, _csum(1, 1, d, dll=6), True)
    c.verify_maps(c.sf, 7, 5000)
    assert _ctr(st, "DataCsumErr") == 0 and c.rcv_nxt == 6
    st, c = _conn(csum=True)
    assert c.place(1, d, 0, 5)
    assert c.add_pending_map(c.sf, 1, 1, 5, 6, _csum(1, 1, d, dll=5), True)
    c.verify_maps(c.sf, 7, 5000)
    assert _ctr(st, "DataCsumErr") == 1


# ---------------------------------------------------------------- MP_FAIL / fallback (RFC 8684 3.7)
def test_on_mp_fail_from_the_peer_is_echoed_with_an_infinite_mapping():
    st, c = _conn()
    c.rcv_nxt = 42
    c.on_mp_fail()
    assert c.fail_tx and c.fail_dsn == 42 and c.infinite_tx


def test_on_mp_fail_answering_ours_stops_the_timer_only():
    for dl in (0, 5000):                    # tick 0 is a running deadline too
        st, c = _conn()
        c.fail_deadline = dl
        c.on_mp_fail()
        assert c.fail_deadline == -1 and not c.fail_tx and not c.infinite_tx


def test_on_mp_fail_after_fallback_is_ignored():
    st, c = _conn()
    c.mptcp = False
    c.on_mp_fail()
    assert not c.fail_tx and not c.infinite_tx


def test_fall_back_ends_the_mp_fail_exchange():
    st, c = _conn()
    c.fail_tx = True
    c.infinite_tx = True
    c.fail_deadline = 9000
    c.fall_back(17, 1)
    assert not c.mptcp and c.map_delta == 17
    assert not c.fail_tx and not c.infinite_tx and c.fail_deadline == -1


def test_fall_back_delivers_the_in_order_part_of_pending_mappings():
    """Checksummed mappings the subflow already has in order are delivered (as far as it
    has them); the table is dropped and checksums end."""
    st, c = _conn(csum=True)
    d = _data(20)
    c.place(1, d, 0, 20)
    assert c.add_pending_map(c.sf, 1, 1, 10, 10, 0, True)
    assert c.add_pending_map(c.sf, 11, 11, 10, 10, 0, False)
    c.fall_back(0, 7)                       # the subflow has 1..6
    assert c.rcv_nxt == 7 and c.rcv.len == 6
    assert c.m_n == 0 and not c.csum
    assert _read(c) == d[:6]


def test_fall_back_delivers_a_mapping_the_subflow_has_whole():
    st, c = _conn(csum=True)
    d = _data(20)
    c.place(1, d, 0, 20)
    assert c.add_pending_map(c.sf, 1, 1, 10, 10, 0, True)
    assert c.add_pending_map(c.sf, 11, 11, 10, 10, 0, False)
    c.fall_back(0, 15)
    assert c.rcv_nxt == 15 and _read(c) == d[:14]


def test_fall_back_delivers_no_more_than_a_mapping_covers():
    """The peer's next mapping jumps ahead at the data level (DSN 31 after 10): the
    subflow bytes past the first mapping belong to the second, not to DSN 11..14."""
    st, c = _conn(csum=True)
    d = _data(40)
    c.place(1, d, 0, 10)
    c.place(31, d, 30, 10)
    assert c.add_pending_map(c.sf, 1, 1, 10, 10, 0, True)
    assert c.add_pending_map(c.sf, 11, 31, 10, 10, 0, False)
    c.fall_back(20, 15)                     # subflow has ssn 1..14
    assert c.rcv_nxt == 11 and _read(c) == d[:10]
    assert c.asm.n == 1                     # DSN 31..34 waits for 11..30


def test_fall_back_delivers_a_single_byte():
    st, c = _conn(csum=True)
    d = _data(10)
    c.place(1, d, 0, 10)
    assert c.add_pending_map(c.sf, 1, 1, 10, 10, 0, True)
    c.fall_back(0, 2)
    assert c.rcv_nxt == 2 and _read(c) == d[:1]


def test_fall_back_releases_what_only_the_subflow_acked():
    st, c = _conn(snd=16)
    c.write(_data(10))
    c.snd_nxt = 11                          # all sent, the subflow acked up to DSN 9
    c.sf.hold_dsn = 9
    c.release()                             # MPTCP: the DATA_ACK (1) holds the data
    assert c.snd_base == 1
    c.fall_back(0, 1)
    assert c.snd_base == 9 and c.snd.len == 2


def test_fall_back_without_subflow():
    st, c = _conn(sf=False)
    c.fall_back(3, 1)
    assert not c.mptcp and c.map_delta == 3


class _Rtt:
    def __init__(self, rto):
        self.rto = rto


def test_data_level_retransmission_backs_off_six_times_then_holds():
    """Data every subflow acknowledged but the DATA_ACK does not cover is sent again at the
    data level, one segment per expiry (RFC 8684 3.3.6); the timer is the largest subflow RTO
    doubled per expiry, at most 6 doublings (and never above 60 s)."""
    from mptcp.ticks import add as tadd
    st, c = _conn(snd=4096)
    sf2 = _Sf()
    c.subflows.append(sf2)
    c.sf.rtt = _Rtt(300)
    sf2.rtt = _Rtt(1000)                # the largest RTO counts
    assert c.write(memoryview(_data(2000))) == 2000
    n = c.chunk(c.sf)
    c.took(c.ch_dsn, n, c.sf)           # handed out, acknowledged by no DATA_ACK
    now = 5000
    for k in range(1, 9):
        c._data_rtx(now)
        b = k if k < 6 else 6
        assert c.rtx_backoff == b, (k, c.rtx_backoff)
        want = 1000 << b
        assert c.rtx_deadline == tadd(now, want if want < 60000 else 60000), (k, c.rtx_deadline)
        assert c.rtx_nxt == c.data_ack and c.rtx_end == c.data_ack + 1400
    assert _ctr(st, "MPTCPRetrans") == 8
    c.on_data_ack(c.data_ack + 100, 1)  # progress: the backoff starts again
    assert c.rtx_backoff == 0


def test_data_fin_is_resent_max_retries_times_then_the_connection_times_out():
    """Our DATA_FIN unanswered: resent MAX_RETRIES (12) times, each counted as
    MPTCPRetrans; the next timeout ends the connection ("timeout")."""
    st, c = _conn()
    now = 1000
    for k in range(1, 13):
        c.dfin_sent = True
        c.dfin_deadline = now
        c.timers(now)
        assert c.error is None and not c.dfin_sent, k       # a subflow sends it again
        assert _ctr(st, "MPTCPRetrans") == k and c.dfin_tries == k
        now += 1000
    c.dfin_sent = True
    c.dfin_deadline = now
    c.timers(now)
    assert c.error == "timeout" and _ctr(st, "MPTCPRetrans") == 12


def test_reinject_takes_everything_from_the_data_ack_after_an_earlier_range_was_sent():
    """reinject() queues [DATA_ACK, what sf sent) for the others. A range already queued
    and fully sent again (rtx_nxt == rtx_end) is replaced, starting at the DATA_ACK, not
    at where the old range ended; a range still pending is widened to cover both."""
    st, c = _conn(snd=4096)
    c.snd_nxt = 3001
    c.data_ack = 501
    c.rtx_nxt = c.rtx_end = 1201                # an earlier reinjection, all sent again
    c.sf.snd_una, c.sf.snd_max = 1, 2000        # sf has unacknowledged data...
    c.sf.sb.max_dsn_end = lambda: 2501          # ... up to DSN 2501
    c.reinject(c.sf)
    assert (c.rtx_nxt, c.rtx_end) == (501, 2501) and c.sf.released
    sf2 = _Sf()
    c.subflows.append(sf2)
    sf2.snd_una, sf2.snd_max = 1, 10
    sf2.sb.max_dsn_end = lambda: 3001
    c.reinject(sf2)
    assert (c.rtx_nxt, c.rtx_end) == (501, 3001)     # still pending: widened to sf2's end
