"""mptcp.counters: names and indices agree, and get() refuses a name it does not know
(a renamed counter must not read as 0 and turn a `== 0` check into one that cannot fail)."""
from tutil import raises
from mptcp import counters as C
from mptcp.stack import Stack


def test_names_match_indices():
    assert len(C.NAMES) == C.COUNT
    for i in range(C.COUNT):
        assert getattr(C, C.NAMES[i]) == i, C.NAMES[i]
    assert len(set(C.NAMES)) == C.COUNT      # no name twice


def test_get_known_names():
    c = C.Counters()
    c.inc(C.MPFailRx)
    c.inc(C.TcpInSegs, 3)
    assert c.get("MPFailRx") == 1 and c.get("TcpInSegs") == 3
    assert c.get("MPFailTx") == 0
    assert c.nonzero() == [("MPFailRx", 1), ("TcpInSegs", 3)]
    assert dict(c.items())["TcpInSegs"] == 3 and len(c.items()) == C.COUNT
    c.reset()
    assert c.get("TcpInSegs") == 0 and c.nonzero() == []


def test_get_unknown_name_raises():
    c = C.Counters()
    for bad in ("MPFailRX", "MPTcpExtMPFailRx", "", "NoSuchCounter"):
        e = raises(KeyError, c.get, bad)
        assert "unknown counter" in str(e), e


def test_stack_counters_refuse_unknown_names():
    """The object the trial tools and tests read is the same class."""
    st = Stack(snd_buf=1024, rcv_buf=1024, max_conns=1, seed=1)
    assert st.counters.get("InternalErrors") == 0
    raises(KeyError, st.counters.get, "InternalError")


def test_coreprof_bad_counters_exist():
    """coreprof checks these by name after a run: each must be a real counter."""
    from mptcp_apps import coreprof
    for name in coreprof.BAD_COUNTERS:
        assert name in C.NAMES, name
