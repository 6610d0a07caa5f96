"""A connection's address signalling (RFC 8684 3.4): the peer's announced addresses,
our own announcements and withdrawals, and the options that carry them.

Fixed slots (allocated with the connection): RADDR_SLOTS remote addresses learned from
the peer's ADD_ADDR (HMAC checked by the subflow), LADDR_SLOTS local addresses we
announce. An ADD_ADDR of ours is resent every ADD_ADDR_TIMEOUT_MS until the peer
echoes it, at most ADD_ADDR_RETRANS times (Linux's add_addr_timeout and
ADD_ADDR_RETRANS_MAX); a REMOVE_ADDR is sent once (as Linux). Options go out on pure
ACKs, one per segment, when they fit (`put`).
"""
from mptcp.compat import const
from mptcp import mpopts as MP
from mptcp import crypto
from mptcp import counters as C
from mptcp.ticks import add as tadd, due, earlier

RADDR_SLOTS = const(4)
LADDR_SLOTS = const(4)
ADD_ADDR_TIMEOUT_MS = const(2000)
ADD_ADDR_RETRANS = const(3)

_NONE = const(0)
_SEND = const(1)         # to be sent (again) at l_due
_SENT = const(2)         # waiting for the echo until l_due
_DONE = const(3)         # echoed (or given up)


class Addrs:
    def __init__(self):
        self.r_id = [-1] * RADDR_SLOTS
        self.r_addr = [None] * RADDR_SLOTS     # type: list[bytes | None]
        self.r_port = [0] * RADDR_SLOTS
        self.echo = 0                   # bit i: echo remote slot i
        self.r0_gone = False            # the peer withdrew its initial address (id 0)
        self.l_id = [-1] * LADDR_SLOTS
        self.l_addr = [None] * LADDR_SLOTS     # type: list[bytes | None]
        self.l_state = bytearray(LADDR_SLOTS)
        self.l_due = [-1] * LADDR_SLOTS
        self.l_tries = bytearray(LADDR_SLOTS)
        self.rm_ids = bytearray(LADDR_SLOTS)
        self.rm_n = 0

    # ------------------------------------------------------------ the peer's addresses
    def add_remote(self, addr_id, addr, port):
        """Remember an announced address; its slot, or -1 when no slot is free."""
        free = -1
        for i in range(RADDR_SLOTS):
            if self.r_id[i] == addr_id:
                free = i
                break
            if free < 0 and self.r_id[i] < 0:
                free = i
        if free >= 0:
            self.r_id[free] = addr_id
            self.r_addr[free] = bytes(addr)
            self.r_port[free] = port
            self.echo |= 1 << free
        return free

    def remove_remote(self, addr_id):
        if addr_id == 0:
            self.r0_gone = True
        for i in range(RADDR_SLOTS):
            if self.r_id[i] == addr_id:
                self.r_id[i] = -1
                self.r_addr[i] = None
                self.echo &= ~(1 << i)
                return True
        return False

    # ------------------------------------------------------------ our addresses
    def announce(self, addr_id, addr, now):
        for i in range(LADDR_SLOTS):
            if self.l_id[i] == addr_id or self.l_id[i] < 0:
                if self.l_id[i] == addr_id and self.l_addr[i] == addr and self.l_state[i] != _NONE:
                    return
                self.l_id[i] = addr_id
                self.l_addr[i] = bytes(addr)
                self.l_state[i] = _SEND
                self.l_due[i] = now
                self.l_tries[i] = 0
                return

    def withdraw(self, addr_id):
        for i in range(LADDR_SLOTS):
            if self.l_id[i] == addr_id and self.l_state[i] != _NONE:
                self.l_state[i] = _NONE
                self.l_id[i] = -1
                if self.rm_n < LADDR_SLOTS:
                    self.rm_ids[self.rm_n] = addr_id
                    self.rm_n += 1
                return

    def echoed(self, addr_id):
        for i in range(LADDR_SLOTS):
            if self.l_id[i] == addr_id and self.l_state[i] == _SENT:
                self.l_state[i] = _DONE
                self.l_due[i] = -1
                return True
        return False

    def timers(self, now):
        """An unechoed ADD_ADDR whose time has come is sent again (or given up)."""
        for i in range(LADDR_SLOTS):
            if self.l_state[i] == _SENT and due(now, self.l_due[i]):
                if self.l_tries[i] >= ADD_ADDR_RETRANS:
                    self.l_state[i] = _DONE
                    self.l_due[i] = -1
                else:
                    self.l_state[i] = _SEND

    def next_deadline(self):
        """The next retransmission of an unechoed ADD_ADDR (one to send now rides on the next
        pure ACK a subflow can send: no deadline, or the loop would spin before the
        connection is confirmed)."""
        d = -1
        for i in range(LADDR_SLOTS):
            if self.l_state[i] == _SENT:
                d = earlier(d, self.l_due[i])
        return d

    def pending(self):
        """Something to send on the next pure ACK."""
        if self.echo or self.rm_n:
            return True
        for i in range(LADDR_SLOTS):
            if self.l_state[i] == _SEND:
                return True
        return False

    # ------------------------------------------------------------ the options
    def put(self, c, buf, o, limit, now):
        """Write one pending option into buf[o:limit] if it fits; the new o."""
        ctr = c.ctr
        if self.echo:
            for i in range(RADDR_SLOTS):
                if self.echo & (1 << i):
                    n = 8 + (2 if self.r_port[i] else 0)
                    if o + n > limit:
                        return o
                    self.echo &= ~(1 << i)
                    ctr[C.EchoAddTx] += 1
                    return o + MP.put_add_addr(buf, o, self.r_id[i], self.r_addr[i],
                                               self.r_port[i], None, True)
        if self.rm_n:
            n = 3 + self.rm_n
            if o + ((n + 3) & ~3) > limit:
                return o
            o += MP.put_remove_addr(buf, o, self.rm_ids[:self.rm_n])
            ctr[C.RmAddrTx] += 1
            self.rm_n = 0
            while o & 3:
                buf[o] = 1
                o += 1
            return o
        for i in range(LADDR_SLOTS):
            if self.l_state[i] == _SEND:
                if o + 16 > limit:
                    return o
                h = crypto.add_addr_hmac(c.local_key, c.peer_key, self.l_id[i], self.l_addr[i], 0)
                o += MP.put_add_addr(buf, o, self.l_id[i], self.l_addr[i], 0, h)
                self.l_state[i] = _SENT
                self.l_tries[i] += 1
                self.l_due[i] = tadd(now, ADD_ADDR_TIMEOUT_MS)
                ctr[C.AddAddrTx] += 1
                return o
        return o
