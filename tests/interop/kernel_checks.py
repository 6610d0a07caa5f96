"""Checks on the kernel peer's MPTcpExt counters, shared by the interop tests."""

BAD_COUNTERS = ("MPTcpExtMPCapableFallbackACK", "MPTcpExtMPCapableFallbackSYNACK",
                "MPTcpExtDSSNotMatching", "MPTcpExtDataCsumErr", "MPTcpExtInfiniteMapRx",
                "MPTcpExtInfiniteMapTx", "MPTcpExtDSSNoMatchTCP")


def assert_kernel_clean(delta):
    """`delta` (counters changed during a run) shows MP_CAPABLE seen and no MPTCP errors."""
    bad = {k: delta.get(k, 0) for k in BAD_COUNTERS if delta.get(k, 0)}
    assert not bad, "kernel counted MPTCP errors: %r" % bad
    used = delta.get("MPTcpExtMPCapableSYNRX", 0) + delta.get("MPTcpExtMPCapableSYNACKRX", 0)
    assert used >= 1, "kernel did not see MP_CAPABLE: %r" % {
        k: v for k, v in delta.items() if k.startswith("MPTcpExt") and v}
