"""The poll loop: binds the sans-IO stack to the netifs and the clock.

One iteration: wait on the netifs' fds until the stack's next deadline, feed
every received packet to `stack.input`, run timers, and drain `stack.output`
into the netif each packet is for. Buffers are allocated once here.
"""
import select

from mptcp import ticks
from mptcp_runtime import clock

_BUF = 2048


class Loop:
    def __init__(self, stack, netifs):
        self.stack = stack
        self.netifs = {}
        self.poller = select.poll()
        self._ipoll = getattr(self.poller, "ipoll", None)
        self._fdmap = {}
        self._unpolled = []
        self.rxbuf = bytearray(_BUF)
        self.rxmv = memoryview(self.rxbuf)
        self.txbuf = bytearray(_BUF)
        self.txmv = memoryview(self.txbuf)
        self.heap_peak = 0
        self._mem_alloc = None
        try:
            import gc
            self._mem_alloc = gc.mem_alloc
        except (ImportError, AttributeError):
            pass
        self.iterations = 0
        self._timed = []          # netifs with their own timers: poll(now) -> deadline or -1
        self._gated = []          # netifs with tx back-pressure: writable() -> bool
        self._blk = {}            # ifindex -> blocked as last told to the stack
        self.on_link_event = None  # callable(name, netif) for the app / path manager
        for nif in netifs:
            self.add_netif(nif)

    def add_netif(self, nif):
        self.netifs[nif.ifindex] = nif
        self.stack.add_netif(nif.ifindex, nif.addr, backup=getattr(nif, "backup", False),
                             up=nif.up)
        if hasattr(nif, "poll"):
            self._timed.append(nif)
        if hasattr(nif, "writable"):
            self._gated.append(nif)
        if hasattr(nif, "on_event"):
            nif.on_event = self._link_event
        p = nif.pollable()
        if p is None:
            self._unpolled.append(nif)
        else:
            self.poller.register(p, select.POLLIN)
            key = p if isinstance(p, int) else p.fileno()
            self._fdmap[key] = nif

    def _link_event(self, name, nif):
        """A link came up or went down (e.g. PPP's IPCP opened): the stack learns its address."""
        if name == "up":
            self.stack.add_netif(nif.ifindex, nif.addr, backup=getattr(nif, "backup", False))
        elif name == "down":
            self.stack.netif_down(nif.ifindex)
        if self.on_link_event is not None:
            self.on_link_event(name, nif)

    def _blocked(self):
        for nif in self._gated:
            if nif.up and not nif.writable():
                return True
        return False

    def _gate(self):
        """Tell the stack which slow links have a full queue: their subflows wait, the
        others go on (one full serial line must not stall Wi-Fi)."""
        st = self.stack
        for nif in self._gated:
            b = nif.up and not nif.writable()
            if b != self._blk.get(nif.ifindex, False):
                self._blk[nif.ifindex] = b
                st.set_blocked(nif.ifindex, b)

    def flush(self, now):
        """Send everything the stack has queued (a slow link's subflows pause while its
        queue is full)."""
        st = self.stack
        mv = self.txmv
        netifs = self.netifs
        gated = self._gated
        while True:
            if gated:
                self._gate()
            n = st.output(now, mv)
            if n <= 0:
                return
            nif = netifs.get(st.out_ifindex)
            if nif is not None and nif.up:
                nif.send(mv, n)

    def _drain(self, nif, now):
        st = self.stack
        buf = self.rxbuf
        idx = nif.ifindex
        for _ in range(64):          # bounded so timers and output get their turn
            n = nif.recv_into(buf)
            if n <= 0:
                return
            st.input(idx, buf, n, now)

    def run_once(self, max_wait_ms=50):
        """One iteration; waits at most max_wait_ms (0 = don't wait)."""
        st = self.stack
        now = clock.now_ms()
        self.flush(now)              # stack.output() runs the stack's expired timers first
        wait = max_wait_ms
        dl = st.next_deadline()      # a tick (may be `now`: at once) or -1
        if dl >= 0:
            d = ticks.diff(dl, now)
            if d < wait:
                wait = d if d > 0 else 0
        for nif in self._timed:
            dl = nif.poll(now)
            if dl >= 0:
                d = ticks.diff(dl, now)
                if d < wait:
                    wait = d if d > 0 else 0
        if self._gated and wait > 5 and self._blocked():
            wait = 5                 # re-check a draining serial queue soon
        if self._unpolled and wait > 2:
            wait = 2
        fdmap = self._fdmap
        if self._ipoll is not None:
            for obj, ev in self._ipoll(wait):
                now = clock.now_ms()
                key = obj if isinstance(obj, int) else obj.fileno()
                nif = fdmap.get(key)
                if nif is not None:
                    self._drain(nif, now)
                    self.flush(now)
        else:
            for fd, ev in self.poller.poll(wait):
                now = clock.now_ms()
                nif = fdmap.get(fd)
                if nif is not None:
                    self._drain(nif, now)
                    self.flush(now)
        for nif in self._unpolled:
            now = clock.now_ms()
            self._drain(nif, now)
        self.flush(clock.now_ms())
        self.iterations += 1
        if self._mem_alloc is not None and (self.iterations & 63) == 0:
            m = self._mem_alloc()
            if m > self.heap_peak:
                self.heap_peak = m

    def run_until(self, cond, timeout_ms):
        """Run iterations until cond() is true; return False on timeout (< ticks.HALF ms)."""
        end = ticks.add(clock.now_ms(), timeout_ms)
        while not cond():
            if ticks.diff(clock.now_ms(), end) >= 0:
                return False
            self.run_once()
        return True

    def close(self):
        for nif in self.netifs.values():
            nif.close()
