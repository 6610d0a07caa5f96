"""Reading the device's perf JSON counters by name: the JSON holds only the non-zero ones,
so a name is checked against mptcp.counters.NAMES first (a renamed counter must fail, not
read as 0)."""
from mptcp.counters import NAMES


def device_counter(res, name):
    assert name in NAMES, "unknown device counter %r (see mptcp.counters.NAMES)" % (name,)
    return res["counters"].get(name, 0)


def kernel_counter(delta, name):
    """A kernel counter from an nstat reading or delta (/proc lists every counter, zeros
    too, so a missing name is a renamed or misspelt one)."""
    assert name in delta, "kernel counter %r not in the nstat reading" % (name,)
    return delta[name]
