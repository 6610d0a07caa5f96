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
