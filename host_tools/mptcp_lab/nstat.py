"""Kernel SNMP/MIB counters of a lab namespace (what `nstat -az` shows), as absolute values.

Read straight from /proc/net/netstat and /proc/net/snmp inside the namespace, so there is no
nstat history file to get in the way; the counters cannot be reset, so "reset" means taking a
baseline and subtracting it (`delta`).
"""

from .common import LabError, NS_PEER, run


def read(ns=NS_PEER, prefixes=("MPTcpExt", "Tcp")):
    """{name: value} for counters whose nstat-style name starts with one of `prefixes`
    (e.g. MPTcpExtMPCapableSYNRX, TcpExtTCPSackRecovery, TcpActiveOpens); None = all."""
    p = run(["cat", "/proc/net/netstat", "/proc/net/snmp"], ns=ns)
    out = {}
    pending = {}
    for line in p.stdout.splitlines():
        if ":" not in line:
            continue
        group, rest = line.split(":", 1)
        fields = rest.split()
        if group not in pending:
            pending[group] = fields
            continue
        names = pending.pop(group)
        for n, v in zip(names, fields):
            key = group + n
            if prefixes is None or key.startswith(tuple(prefixes)):
                try:
                    out[key] = int(v)
                except ValueError:
                    pass
    if not out and prefixes is not None:
        raise LabError("no counters read in namespace %s" % ns)
    return out


def delta(before, after):
    """after - before for every counter (counters absent before count from 0)."""
    return {k: v - before.get(k, 0) for k, v in after.items()}
