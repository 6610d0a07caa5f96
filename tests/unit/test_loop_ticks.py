"""The poll loop and the socket API across the 2**30 ms ticks wrap, on a fake clock.

mptcp_runtime.clock.now_ms is replaced by a fake tick clock and the loop's poller by one that
records how long the loop would wait, so every wait and timeout is checked exactly,
without sockets or real time.
"""
from mptcp import ticks
from mptcp_runtime import clock
from mptcp_runtime.loop import Loop
from mptcp_runtime.socket_api import MPSocket, ETIMEDOUT


class FakeClock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t

    def advance(self, ms):
        self.t = ticks.add(self.t, ms)


class FakeStack:
    """What Loop needs of mptcp.stack.Stack: no packets, one deadline (a tick or -1)."""

    def __init__(self):
        self.dl = -1

    def add_netif(self, ifindex, addr):
        pass

    def output(self, now, mv):
        return 0

    def next_deadline(self):
        return self.dl


class TimedNetif:
    """A netif with its own timer (like PPP): poll(now) -> its deadline."""
    up = True

    def __init__(self):
        self.dl = -1

    def poll(self, now):
        return self.dl


class RecordingPoller:
    def __init__(self):
        self.waits = []

    def poll(self, wait):
        self.waits.append(wait)
        return []


class _Patched:
    """Swap mptcp_runtime.clock.now_ms for a fake clock for the duration of a test."""

    def __init__(self, t):
        self.clock = FakeClock(t)

    def __enter__(self):
        self.saved = clock.now_ms
        clock.now_ms = self.clock
        return self.clock

    def __exit__(self, *exc):
        clock.now_ms = self.saved


def _loop():
    st = FakeStack()
    lp = Loop(st, [])
    lp.poller = RecordingPoller()
    lp._ipoll = None
    nif = TimedNetif()
    lp._timed.append(nif)
    return lp, st, nif


def _wait(lp, max_wait_ms=50):
    lp.run_once(max_wait_ms)
    return lp.poller.waits[-1]


def test_loop_waits_until_the_deadline_across_the_wrap():
    lp, st, nif = _loop()
    with _Patched(ticks.MASK - 5) as c:
        st.dl = 14                              # 20 ms from now, after the wrap
        assert _wait(lp) == 20
        st.dl = c.t                             # "immediately"
        assert _wait(lp) == 0
        st.dl = ticks.add(c.t, 1000)            # beyond the loop's own cap
        assert _wait(lp) == 50
        st.dl = -1
        assert _wait(lp) == 50
        nif.dl = ticks.add(c.t, 7)              # the netif's timer counts too
        assert _wait(lp) == 7
        nif.dl = -1
        c.t = 3
        st.dl = ticks.MASK - 2                  # 6 ms overdue (before the wrap): at once
        assert _wait(lp) == 0
        nif.dl = ticks.MASK                     # overdue too
        st.dl = -1
        assert _wait(lp) == 0


def test_run_until_times_out_across_the_wrap():
    lp, st, nif = _loop()
    with _Patched(ticks.MASK - 50) as c:
        t0 = c.t
        calls = [0]

        def cond():
            calls[0] += 1
            c.advance(10)
            return calls[0] > 1000              # only if the timeout never comes
        assert lp.run_until(cond, 100) is False
        assert 100 <= ticks.diff(c.t, t0) <= 110, ticks.diff(c.t, t0)


class FakeConn:
    established = True
    eof = False
    closed = False
    error = None

    def readinto(self, mv):
        return 0

    def write(self, mv):
        return 0


class StepLoop:
    """run_once() advances the fake clock 10 ms; too many calls means a timeout was missed."""

    def __init__(self, c):
        self.c = c
        self.calls = 0

    def run_once(self, max_wait_ms=50):
        self.calls += 1
        if self.calls > 1000:
            raise RuntimeError("the timeout never fired")
        self.c.advance(10)


def _timed_out(fn, *args):
    try:
        fn(*args)
    except OSError as e:
        return e.args[0] == ETIMEDOUT
    return False


def test_socket_timeouts_across_the_wrap():
    for op in ("recv", "send"):
        with _Patched(ticks.MASK - 100) as c:
            lp = StepLoop(c)
            s = MPSocket(lp, timeout_ms=500)
            s.conn = FakeConn()
            t0 = c.t
            buf = bytearray(10)
            if op == "recv":
                assert _timed_out(s.recv_into, buf)
            else:
                assert _timed_out(s.send, buf)
            assert 500 <= ticks.diff(c.t, t0) <= 510, (op, ticks.diff(c.t, t0))
