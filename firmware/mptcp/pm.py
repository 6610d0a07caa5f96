"""The device's path manager: one subflow per usable link, for the connections it opened.

When an MPTCP connection we opened is confirmed (the peer's first DATA_ACK) it
joins from every other link that is up; a link that comes up gets a subflow in
each connection that has none on it; a subflow that is lost (link down, reset,
too many RTOs, a refused join) is re-created on its link after a backoff
(PM_BACKOFF_MS doubling to PM_BACKOFF_MAX_MS; Linux does not re-create at all:
its issues #440 and #497). An address the peer announces (ADD_ADDR, HMAC checked
by the subflow) gets one subflow, from the first link that is up (the initial
subflow's first), in either role; one it withdraws (REMOVE_ADDR) is forgotten.
The connections we accepted announce our other links' addresses (ADD_ADDR, resent
until echoed: mptcp.addrs) so the peer can join them, and withdraw them
(REMOVE_ADDR) when the link goes down. State lives on the Connection (pm_due,
pm_backoff, addrs): nothing grows here.
"""
from mptcp.compat import const
from mptcp.ticks import add as tadd, due, earlier
from mptcp import counters as C

PM_BACKOFF_MS = const(1000)
PM_BACKOFF_MAX_MS = const(30000)


class PathManager:
    def __init__(self, stack):
        self.stack = stack

    def _schedule(self, c, now, delay):
        c.pm_due = earlier(c.pm_due, tadd(now, delay))

    def addr_added(self, c, now):
        self._schedule(c, now, 0)

    def established_passive(self, c, now):
        """A connection we accepted: announce our other links' addresses."""
        st = self.stack
        for i in range(len(st.netifs)):
            nf = st.netifs[i]
            if nf[2] and nf[1] != c.sf.laddr:
                c.addrs.announce(i + 1, nf[1], now)     # (a subflow's next output sends it)

    def link_down(self, ifindex, now):
        st = self.stack
        for i in range(len(st.netifs)):
            if st.netifs[i][0] == ifindex:
                for c in st.conns:
                    if not c.client and c.mptcp and c.error is None:
                        c.addrs.withdraw(i + 1)

    def confirmed(self, c, now):
        """Connection c (ours) may have more subflows now."""
        if c.client and c.mptcp:
            self._schedule(c, now, 0)

    def link_up(self, ifindex, now):
        for c in self.stack.conns:
            if c.error is not None or not c.mptcp:
                continue
            if c.client and c.confirmed:
                c.pm_backoff = PM_BACKOFF_MS
                self._schedule(c, now, 0)
            elif not c.client and c.established and c.peer_key is not None:
                self.established_passive(c, now)
                if self._announced(c):
                    self._schedule(c, now, 0)   # the peer's addresses: join them again

    def _done(self, c):
        """No more subflows for c: an error, fallen back, or both streams over (our DATA_FIN
        acknowledged, the peer's received). A closing connection still has data or a
        DATA_FIN to deliver one way or the other: it joins again like any other."""
        return c.error is not None or not c.mptcp or (c.dfin_acked and c.fin_rcvd)

    def subflow_gone(self, c, sf, now):
        if self._done(c):
            return
        if not c.client and not self._announced(c):
            return
        self._schedule(c, now, c.pm_backoff)
        b = c.pm_backoff * 2
        c.pm_backoff = b if b < PM_BACKOFF_MAX_MS else PM_BACKOFF_MAX_MS

    def subflow_up(self, c, sf):
        c.pm_backoff = PM_BACKOFF_MS

    def next_deadline(self):
        d = -1
        for c in self.stack.conns:
            d = earlier(d, c.pm_due)
        return d

    def poll(self, now):
        st = self.stack
        for c in st.conns:
            if not due(now, c.pm_due):
                continue
            c.pm_due = -1
            if self._done(c):
                continue
            raddr = c.sf.raddr
            rport = c.sf.rport
            if c.client and not c.addrs.r0_gone:
                # the peer's initial address: one subflow per link that is up
                for nf in st.netifs:
                    if not nf[2] or self._has_subflow(c, nf[0], nf[1], raddr, rport):
                        continue
                    self._join(c, nf[0], raddr, rport, now)
            # addresses the peer announced: one subflow each, from the first link up
            a = c.addrs
            for i in range(len(a.r_id)):
                if a.r_id[i] < 0:
                    continue
                ra = a.r_addr[i]
                rp = a.r_port[i] or rport
                if self._any_subflow_to(c, ra, rp):
                    continue
                for k in range(len(st.netifs)):
                    nf = st.netifs[(k + self._first(c)) % len(st.netifs)]
                    if nf[2]:
                        self._join(c, nf[0], ra, rp, now)
                        break

    def _join(self, c, ifindex, raddr, rport, now):
        st = self.stack
        if c.live_count() >= st.max_subflows:
            return
        if c.orphan_deadline >= 0 or c.ever_lost:
            st.ctr[C.SubflowRecreate] += 1
        st.join(c, ifindex, now, raddr, rport)

    def _first(self, c):
        st = self.stack
        for k in range(len(st.netifs)):
            if st.netifs[k][0] == c.sf.ifindex:
                return k
        return 0

    def _announced(self, c):
        a = c.addrs
        for i in range(len(a.r_id)):
            if a.r_id[i] >= 0:
                return True
        return False

    def _has_subflow(self, c, ifindex, addr, raddr, rport):
        for sf in c.subflows:
            if sf.ifindex == ifindex and sf.laddr == addr and sf.raddr == raddr \
                    and sf.rport == rport and not sf.is_closed():
                return True
        return False

    def _any_subflow_to(self, c, raddr, rport):
        for sf in c.subflows:
            if sf.raddr == raddr and sf.rport == rport and not sf.is_closed():
                return True
        return False
