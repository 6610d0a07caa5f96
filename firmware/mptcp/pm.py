"""The device's path manager: one subflow per usable link, for the connections it opened.

When an MPTCP connection we opened is confirmed (the peer's first DATA_ACK) it
joins from every other link that is up; a link that comes up gets a subflow in
each connection that has none on it; a subflow that is lost (link down, reset,
too many RTOs, a refused join) is re-created on its link after a backoff
(PM_BACKOFF_MS doubling to PM_BACKOFF_MAX_MS; Linux does not re-create at all:
its issues #440 and #497). The connections we accepted get their extra subflows
from the peer (MP_JOIN, see Stack._passive_join). State lives on the Connection
(pm_due, pm_backoff): nothing grows here.
"""
from mptcp.compat import const
from mptcp.ticks import add as tadd, MASK as TMASK, HALF as THALF, earlier
from mptcp import counters as C

PM_BACKOFF_MS = const(1000)
PM_BACKOFF_MAX_MS = const(30000)


class PathManager:
    def __init__(self, stack):
        self.stack = stack

    def _schedule(self, c, now, delay):
        due = tadd(now, delay)
        if c.pm_due < 0 or ((due - c.pm_due) & TMASK) >= THALF:
            c.pm_due = due

    def confirmed(self, c, now):
        """Connection c (ours) may have more subflows now."""
        if c.client and c.mptcp:
            self._schedule(c, now, 0)

    def link_up(self, ifindex, now):
        for c in self.stack.conns:
            if c.client and c.mptcp and c.confirmed and c.error is None:
                c.pm_backoff = PM_BACKOFF_MS
                self._schedule(c, now, 0)

    def subflow_gone(self, c, sf, now):
        if not c.client or not c.mptcp or c.error is not None or c.fin_rcvd:
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
            due = c.pm_due
            if due < 0 or ((now - due) & TMASK) >= THALF:
                continue
            c.pm_due = -1
            if c.error is not None or not c.mptcp or c.fin_queued or c.fin_rcvd:
                continue
            for nf in st.netifs:
                if not nf[2] or self._has_subflow(c, nf[0], nf[1]):
                    continue
                if c.live_count() >= st.max_subflows:
                    break
                if c.orphan_deadline >= 0 or c.ever_lost:
                    st.ctr[C.SubflowRecreate] += 1
                st.join(c, nf[0], now)

    def _has_subflow(self, c, ifindex, addr):
        for sf in c.subflows:
            if sf.ifindex == ifindex and sf.laddr == addr and not sf.is_closed():
                return True
        return False
