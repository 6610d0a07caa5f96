"""The device stack (MicroPython) against the Linux kernel's MPTCP in the lab.

Each run: 8 MiB, SHA-256 equal at both ends, the kernel's MPTcpExt counters
show MPTCP in use and no fallback/DSS/checksum errors, and tshark's MPTCP
analysis of the capture has no expert warnings.
"""
import itertools
import pytest

from kernel_checks import assert_kernel_clean
from mptcp_lab.nstat import delta as nstat_delta

SIZE = 8 * 1024 * 1024
_ports = itertools.count(5101)

PROFILES = {
    "clean": {"delay": "0ms", "loss": "0", "jitter": "0ms", "rate": "0"},
    "lossy": {"delay": "10ms", "loss": "2"},   # 20 ms RTT, 2% loss each way
}


def _set_profile(lab, name):
    lab.link_set("wifi", **PROFILES[name])


def _check_capture(lab, pcap):
    warnings = lab.mptcp_expert_warnings(pcap)
    assert not warnings, "tshark MPTCP expert warnings: %r" % warnings[:10]


@pytest.mark.parametrize("csum", [0, 1])
@pytest.mark.parametrize("profile", ["clean", "lossy"])
def test_device_sends_to_kernel(lab, csum, profile):
    port = next(_ports)
    _set_profile(lab, profile)
    lab.sysctl("net.mptcp.checksum_enabled", csum)
    before = lab.nstat()
    with lab.capture() as pcap:
        peer = lab.start_peer("server", port=port, mode="recv")
        rc, dev, err = lab.run_device(["--connect", "198.18.0.1:%d" % port, "--send", str(SIZE)],
                                      timeout=600)
        ker = peer.wait(60)
    assert rc == 0 and dev is not None, "device failed rc=%s: %s %s" % (rc, dev, err[-2000:])
    assert dev["bytes"] == SIZE and ker["bytes"] == SIZE, (dev, ker)
    assert dev["sha256"] == ker["sha256"]
    assert dev["mptcp"] is True and ker["mptcp"] is True, (dev, ker)
    assert_kernel_clean(nstat_delta(before, lab.nstat()))
    _check_capture(lab, pcap)


@pytest.mark.parametrize("csum", [0, 1])
@pytest.mark.parametrize("profile", ["clean", "lossy"])
def test_kernel_sends_to_device(lab, csum, profile):
    port = next(_ports)
    _set_profile(lab, profile)
    lab.sysctl("net.mptcp.checksum_enabled", csum)
    before = lab.nstat()
    with lab.capture() as pcap:
        dev_proc = lab.start_device(["--listen", str(port), "--recv"])
        lab.wait_device_listening(dev_proc, port)
        peer = lab.start_peer("client", connect="198.18.1.2:%d" % port, mode="send", nbytes=SIZE)
        ker = peer.wait(600)
        rc, dev, err = dev_proc.wait(120)
    assert rc == 0 and dev is not None, "device failed rc=%s: %s %s" % (rc, dev, err[-2000:])
    assert dev["bytes"] == SIZE and ker["bytes"] == SIZE, (dev, ker)
    assert dev["sha256"] == ker["sha256"]
    assert dev["mptcp"] is True and ker["mptcp"] is True, (dev, ker)
    assert_kernel_clean(nstat_delta(before, lab.nstat()))
    _check_capture(lab, pcap)


def test_fallback_to_tcp_when_kernel_mptcp_disabled(lab):
    port = next(_ports)
    _set_profile(lab, "clean")
    lab.sysctl("net.mptcp.enabled", 0)
    try:
        peer = lab.start_peer("server", port=port, mode="recv", tcp=True)
        rc, dev, err = lab.run_device(["--connect", "198.18.0.1:%d" % port, "--send", "1M"],
                                      timeout=120)
        ker = peer.wait(60)
    finally:
        lab.sysctl("net.mptcp.enabled", 1)
    assert rc == 0 and dev is not None, "device failed rc=%s: %s" % (rc, err[-2000:])
    assert dev["sha256"] == ker["sha256"] and dev["bytes"] == 1024 * 1024
    assert dev["mptcp"] is False
