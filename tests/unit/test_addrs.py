"""mptcp.addrs on its own: the peer's announced addresses (slots), our announcements
(resent until echoed, then given up), REMOVE_ADDR to send, and the options written."""
from mptcp.stack import Stack
from mptcp.connection import Connection
from mptcp.addrs import Addrs, RADDR_SLOTS, LADDR_SLOTS, ADD_ADDR_TIMEOUT_MS, ADD_ADDR_RETRANS
from mptcp import mpopts as MP
from mptcp import crypto

A1 = bytes([198, 18, 0, 2])
A2 = bytes([198, 18, 0, 3])


def test_remote_addresses_fill_slots_replace_by_id_and_are_echoed():
    a = Addrs()
    assert a.add_remote(5, A1, 0) == 0 and a.echo == 1
    assert a.add_remote(7, A2, 80) == 1 and a.echo == 3
    assert a.add_remote(5, A2, 0) == 0                  # the same id: replaced in place
    assert a.r_addr[0] == A2 and a.r_port[1] == 80
    for i in range(RADDR_SLOTS - 2):
        assert a.add_remote(20 + i, A1, 0) == 2 + i
    assert a.add_remote(99, A1, 0) == -1                # no slot left
    assert a.remove_remote(7) and a.r_id[1] == -1 and not a.echo & 2
    assert not a.remove_remote(7)                       # unknown now
    assert a.add_remote(99, A1, 0) == 1                 # the freed slot


def test_announcements_are_resent_until_echoed_then_given_up():
    a = Addrs()
    a.announce(2, A1, 1000)
    assert a.pending() and a.next_deadline() == -1      # to send now: no timer yet
    st = Stack(seed=1)
    c = Connection(st, 64, 64, True, False)
    c.local_key = b"\x01" * 8
    c.peer_key = b"\x02" * 8
    buf = bytearray(80)
    o = a.put(c, buf, 40, 80, 1000)
    assert o == 56 and not a.pending() and st.counters.get("AddAddrTx") == 1
    mo = MP.MpOptions()
    assert MP.parse(buf, 40, 16, mo) == 0 and mo.addr_id == 2 and mo.addr == A1
    assert mo.hmac == crypto.add_addr_hmac(c.local_key, c.peer_key, 2, A1, 0)
    assert a.next_deadline() == 1000 + ADD_ADDR_TIMEOUT_MS
    a.timers(1000 + ADD_ADDR_TIMEOUT_MS - 1)
    assert not a.pending()
    for k in range(ADD_ADDR_RETRANS - 1):
        t = 1000 + (k + 1) * ADD_ADDR_TIMEOUT_MS
        a.timers(t)
        assert a.pending()
        a.put(c, buf, 40, 80, t)
    t = 1000 + ADD_ADDR_RETRANS * ADD_ADDR_TIMEOUT_MS
    a.timers(t)                                         # the last try went unechoed
    assert not a.pending() and a.next_deadline() == -1
    assert st.counters.get("AddAddrTx") == ADD_ADDR_RETRANS
    assert not a.echoed(2)                              # too late: given up


def test_an_echo_stops_the_retransmissions_and_a_repeat_announcement_is_a_no_op():
    a = Addrs()
    a.announce(3, A1, 0)
    st = Stack(seed=1)
    c = Connection(st, 64, 64, True, False)
    c.local_key = b"\x01" * 8
    c.peer_key = b"\x02" * 8
    a.put(c, bytearray(80), 40, 80, 0)
    assert a.echoed(3) and a.next_deadline() == -1 and not a.echoed(3)
    a.announce(3, A1, 50)                               # the same: nothing to send again
    assert not a.pending()
    a.announce(3, A2, 50)                               # another address under the id
    assert a.pending()


def test_withdrawals_queue_remove_addr_once():
    a = Addrs()
    for i in range(LADDR_SLOTS):
        a.announce(i + 1, A1, 0)
    a.withdraw(9)                                       # never announced: nothing
    assert a.rm_n == 0
    a.withdraw(2)
    a.withdraw(2)                                       # once
    a.withdraw(4)
    assert a.rm_n == 2 and bytes(a.rm_ids[:2]) == bytes([2, 4])
    st = Stack(seed=1)
    c = Connection(st, 64, 64, True, False)
    c.local_key = b"\x01" * 8
    c.peer_key = b"\x02" * 8
    a.echo = 0
    buf = bytearray(80)
    o = a.put(c, buf, 40, 80, 0)                        # REMOVE_ADDR first (before the ADD_ADDRs)
    assert o == 48 and buf[42] >> 4 == MP.REMOVE_ADDR and bytes(buf[43:45]) == bytes([2, 4])
    assert buf[45] == 1 and a.rm_n == 0 and st.counters.get("RmAddrTx") == 1


def test_options_wait_for_room():
    a = Addrs()
    a.add_remote(5, A1, 80)
    st = Stack(seed=1)
    c = Connection(st, 64, 64, True, False)
    buf = bytearray(80)
    assert a.put(c, buf, 40, 49, 0) == 40               # an echo with a port needs 10
    o = a.put(c, buf, 40, 50, 0)
    assert o == 50 and a.echo == 0 and st.counters.get("EchoAddTx") == 1
    mo = MP.MpOptions()
    assert MP.parse(buf, 40, 10, mo) == 0 and mo.echo and mo.port == 80 and mo.hmac is None
    a.announce(1, A2, 0)
    c.local_key = b"\x01" * 8
    c.peer_key = b"\x02" * 8
    assert a.put(c, buf, 40, 55, 0) == 40 and a.pending()   # an announcement needs 16


def test_remove_addr_waits_for_room_too():
    a = Addrs()
    a.announce(2, A1, 0)
    a.announce(4, A2, 0)
    a.l_state[0] = a.l_state[1] = 3             # (echoed: only the withdrawals are left)
    a.withdraw(2)
    a.withdraw(4)
    c = Connection(Stack(seed=1), 64, 64, True, False)
    buf = bytearray(80)
    assert a.put(c, buf, 40, 47, 0) == 40 and a.rm_n == 2   # 3 + 2 bytes, padded to 8
    assert a.put(c, buf, 40, 48, 0) == 48 and a.rm_n == 0
    assert buf[41] == 5 and buf[45] == 1 and buf[46] == 1 and buf[47] == 1


def _conn():
    c = Connection(Stack(seed=1), 64, 64, True, False)
    c.local_key = b"\x01" * 8
    c.peer_key = b"\x02" * 8
    return c


def _send_all(a, c, now):
    """Every option put() has now, one per 40-byte option space; how many."""
    n = 0
    while True:
        if a.put(c, bytearray(80), 40, 80, now) == 40:
            return n
        n += 1


def test_four_local_slots_a_fifth_announcement_is_dropped():
    a = Addrs()
    c = _conn()
    for i in range(5):
        a.announce(i + 1, A1, 0)
    assert _send_all(a, c, 0) == 4 and 5 not in a.l_id


def test_an_announcement_is_sent_3_times_2000_ms_apart():
    a = Addrs()
    c = _conn()
    a.announce(1, A1, 500)
    t = 500
    for _ in range(3):
        assert _send_all(a, c, t) == 1
        assert a.next_deadline() == t + 2000
        a.timers(t + 1999)
        assert not a.pending()
        t += 2000
        a.timers(t)
    assert not a.pending() and a.next_deadline() == -1     # given up after the third
    assert c.stack.counters.get("AddAddrTx") == 3


def test_a_new_address_under_a_given_up_id_gets_all_its_tries_again():
    a = Addrs()
    c = _conn()
    a.announce(1, A1, 0)
    t = 0
    for _ in range(3):
        _send_all(a, c, t)
        t += 2000
        a.timers(t)
    assert not a.pending()
    a.announce(1, A2, t)
    for _ in range(3):
        assert _send_all(a, c, t) == 1
        t += 2000
        a.timers(t)
    assert c.stack.counters.get("AddAddrTx") == 6


def test_a_remote_slot_with_id_0_is_taken():
    a = Addrs()
    assert a.add_remote(0, A1, 0) == 0                  # the peer re-announcing its first address
    assert a.add_remote(5, A2, 0) == 1
    assert a.r_id[0] == 0 and a.r_addr[0] == A1


def test_a_withdrawn_remote_address_is_forgotten():
    a = Addrs()
    a.add_remote(5, A1, 0)
    assert a.remove_remote(5)
    assert a.r_id[0] == -1 and a.r_addr[0] is None and a.echo == 0 and not a.r0_gone
    assert not a.remove_remote(0) and a.r0_gone


def test_a_local_slot_with_id_0_is_taken():
    a = Addrs()
    c = _conn()
    a.announce(0, A1, 0)
    a.announce(5, A2, 0)
    assert a.l_id[0] == 0 and a.l_id[1] == 5
    assert _send_all(a, c, 0) == 2


def test_an_address_withdrawn_before_it_was_sent_is_not_announced():
    a = Addrs()
    c = _conn()
    a.announce(2, A1, 0)
    a.withdraw(2)
    buf = bytearray(80)
    o = a.put(c, buf, 40, 80, 0)
    assert o == 44 and buf[42] >> 4 == MP.REMOVE_ADDR and buf[43] == 2
    assert not a.pending() and a.put(c, buf, 40, 80, 0) == 40


def test_a_withdrawn_address_frees_its_slot():
    a = Addrs()
    c = _conn()
    for i in range(4):
        a.announce(i + 1, A1, 0)
    a.withdraw(3)
    a.announce(9, A2, 0)
    assert 9 in a.l_id and 3 not in a.l_id
    a.put(c, bytearray(80), 40, 80, 0)                  # the REMOVE_ADDR
    assert _send_all(a, c, 0) == 4


def test_at_most_four_withdrawals_wait_a_fifth_is_dropped():
    a = Addrs()
    for i in range(4):
        a.announce(i + 1, A1, 0)
    for i in range(4):
        a.withdraw(i + 1)
    a.announce(5, A1, 0)
    a.withdraw(5)
    assert a.rm_n == 4 and bytes(a.rm_ids) == bytes([1, 2, 3, 4])


def test_an_echo_without_a_port_needs_8_bytes():
    a = Addrs()
    a.add_remote(5, A1, 0)
    c = _conn()
    buf = bytearray(80)
    assert a.put(c, buf, 40, 47, 0) == 40
    assert a.put(c, buf, 40, 48, 0) == 48 and a.echo == 0
    mo = MP.MpOptions()
    assert MP.parse(buf, 40, 8, mo) == 0 and mo.echo and mo.addr_id == 5 and mo.port == 0


def test_remove_addr_sizes_and_padding():
    for ids, size in (([2], 4), ([2, 4, 6], 8), ([1, 2, 3, 4], 8)):
        a = Addrs()
        for i in ids:
            a.announce(i, A1, 0)
            a.withdraw(i)
        c = _conn()
        buf = bytearray(b"\xee" * 80)
        assert a.put(c, buf, 40, 40 + size - 1, 0) == 40 and a.rm_n == len(ids)
        assert a.put(c, buf, 40, 40 + size, 0) == 40 + size and a.rm_n == 0
        assert buf[41] == 3 + len(ids) and bytes(buf[43:43 + len(ids)]) == bytes(ids)
        assert bytes(buf[43 + len(ids):40 + size]) == b"\x01" * (size - 3 - len(ids))
        assert buf[40 + size] == 0xEE
