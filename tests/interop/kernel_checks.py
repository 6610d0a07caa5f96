"""Checks on the kernel peer's MPTcpExt counters, shared by the interop tests."""

BAD_COUNTERS = ("MPTcpExtMPCapableFallbackACK", "MPTcpExtMPCapableFallbackSYNACK",
                "MPTcpExtDSSNotMatching", "MPTcpExtDataCsumErr", "MPTcpExtInfiniteMapRx",
                "MPTcpExtInfiniteMapTx", "MPTcpExtDSSNoMatchTCP")


def assert_kernel_clean(delta):
    """`delta` (counters changed during a run) shows MP_CAPABLE seen and no MPTCP errors."""
    missing = [k for k in BAD_COUNTERS + ("MPTcpExtMPCapableSYNRX", "MPTcpExtMPCapableSYNACKRX")
               if k not in delta]
    assert not missing, "kernel counters not in the nstat reading (renamed?): %r" % missing
    bad = {k: delta[k] for k in BAD_COUNTERS if delta[k]}
    assert not bad, "kernel counted MPTCP errors: %r" % bad
    used = delta["MPTcpExtMPCapableSYNRX"] + delta["MPTcpExtMPCapableSYNACKRX"]
    assert used >= 1, "kernel did not see MP_CAPABLE: %r" % {
        k: v for k, v in delta.items() if k.startswith("MPTcpExt") and v}
