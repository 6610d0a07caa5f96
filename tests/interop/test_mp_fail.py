"""A middlebox rewrites one TCP payload byte (TCP checksum fixed) in the middle of a
transfer with DSS checksums on: RFC 8684 3.7 between the device and the Linux kernel.

The side that receives the altered data sees the DSS checksum fail and sends MP_FAIL; the
data sender echoes it and sends an infinite mapping; both ends continue as plain TCP and the
transfer completes with every byte (one of them altered by the middlebox, so the SHA-256
differs by design). The lab's link emulator is the middlebox (`corrupt=1`, one direction).
Both directions must complete, for the device as for the kernel reference (mplab-ref).
"""
import itertools
import time

from device_checks import device_counter, kernel_counter
from mptcp_lab.common import LabError

_ports = itertools.count(5301)
SIZE = 4 * 1024 * 1024


def _arm_after(lab, direction, pkts, timeout=60.0):
    """Arm corrupt=1 on `direction` once that direction has forwarded `pkts` more packets
    (mid-transfer: the first mappings have passed their checksums)."""
    key = "uplink" if direction == "up" else "downlink"
    end = time.monotonic() + timeout
    base = lab.status()["links"]["wifi"][key]["counters"]["forwarded_pkts"]
    while time.monotonic() < end:
        c = lab.status()["links"]["wifi"][key]["counters"]
        if c["forwarded_pkts"] >= base + pkts:
            lab.link_set("wifi", direction=direction, corrupt=1)
            return c["forwarded_pkts"]
        time.sleep(0.005)
    raise AssertionError("the transfer never got going (%s %r)" % (key, c))


def _corrupted(lab, direction):
    key = "uplink" if direction == "up" else "downlink"
    return lab.status()["links"]["wifi"][key]["counters"]["corrupted_pkts"]


def _prepare(lab):
    # 20 ms RTT so the transfer lasts long enough to be hit in the middle
    lab.link_set("wifi", delay="10ms", loss="0", jitter="0ms", rate="0")
    lab.sysctl("net.mptcp.checksum_enabled", 1)


def test_kernel_detects_corruption_device_answers_mp_fail(lab):
    port = next(_ports)
    _prepare(lab)
    before = lab.nstat()
    peer = lab.start_peer("server", port=port, mode="recv")
    dev = lab.start_device(["--connect", "198.18.0.1:%d" % port, "--send", str(SIZE), "--csum"])
    c0 = _corrupted(lab, "up")
    _arm_after(lab, "up", 300)
    rc, res, err = dev.wait(120)
    ker = peer.wait(60)
    d = lab.nstat()
    delta = {k: d[k] - before.get(k, 0) for k in d}
    assert _corrupted(lab, "up") == c0 + 1, "the middlebox did not alter a packet"
    assert rc == 0 and res is not None, "device failed rc=%s: %s %s" % (rc, res, err[-2000:])
    assert res["bytes"] == SIZE and ker["bytes"] == SIZE, (res, ker)
    assert res["sha256"] != ker["sha256"]          # the middlebox's byte reached the app
    dc = res["counters"]
    assert device_counter(res, "MPFailRx") == 1 and device_counter(res, "MPFailTx") == 1, dc
    assert device_counter(res, "InfiniteMapTx") == 1, dc
    assert res["mptcp"] is False                   # fell back to TCP, as RFC 8684 3.7 says
    for k in ("MPTcpExtDataCsumErr", "MPTcpExtMPFailTx", "MPTcpExtMPFailRx",
              "MPTcpExtInfiniteMapRx"):
        assert kernel_counter(delta, k) == 1, (k, {k: v for k, v in delta.items()
                                                   if k.startswith("MPTcpExt") and v})


def _outcome(handle, timeout):
    """(result, None) or (None, why): a peer that did not finish is stopped and asserted on
    later, after the run that follows it, so one failure report shows both runs."""
    try:
        return handle.wait(timeout), None
    except LabError as e:
        return None, str(e)
    finally:
        handle.stop()


def _ns_delta(lab, before, ns):
    """Every MPTcpExt counter of `ns` since `before` (zeros too)."""
    d = lab.nstat(ns=ns)
    return {k: d[k] - before.get(k, 0) for k in d if k.startswith("MPTcpExt")}


def _nonzero(delta):
    return {k: v for k, v in delta.items() if v}


def test_device_detects_corruption_like_the_kernel(lab):
    """The kernel sends, the receiver sees the bad checksum. Differential: the same run
    with the kernel reference device (mplab-ref) as the receiver first, then the device.
    Both must detect it and exchange MP_FAIL the same way; the device must then fall back
    to TCP and receive every byte the kernel goes on sending (the altered one included, so
    the SHA-256 differs from the sender's); see below for the kernel's own stall."""
    _prepare(lab)
    lab.sysctl("net.mptcp.checksum_enabled", 1, ns="mplab-ref")
    # 1. the kernel reference as the receiver
    port = next(_ports)
    before = lab.nstat()
    before_ref = lab.nstat(ns="mplab-ref")
    c0 = _corrupted(lab, "down")
    peer = lab.start_peer("server", port=port, mode="send", nbytes=SIZE)
    time.sleep(0.3)
    ref = lab.start_ref(["--connect", "198.18.0.1:%d" % port, "--recv"])
    _arm_after(lab, "down", 300)
    ref_res, ref_err = _outcome(ref, 60)
    ker_ref_res, ker_ref_err = _outcome(peer, 10)
    assert _corrupted(lab, "down") == c0 + 1
    ker_ref = _ns_delta(lab, before, "mplab")
    rcv_ref = _ns_delta(lab, before_ref, "mplab-ref")
    assert kernel_counter(rcv_ref, "MPTcpExtDataCsumErr") == 1, _nonzero(rcv_ref)
    assert kernel_counter(rcv_ref, "MPTcpExtMPFailTx") == 1, _nonzero(rcv_ref)
    # 2. the device as the receiver
    port = next(_ports)
    before = lab.nstat()
    with lab.capture() as pcap:
        dev = lab.start_device(["--listen", str(port), "--recv", "--timeout", "10"])
        lab.wait_device_listening(dev, port)
        c0 = _corrupted(lab, "down")
        peer = lab.start_peer("client", connect="198.18.1.2:%d" % port, mode="send", nbytes=SIZE)
        _arm_after(lab, "down", 300)
        rc, res, err = dev.wait(60)
        ker_res = _outcome(peer, 10)
    ker = _ns_delta(lab, before, "mplab")
    assert _corrupted(lab, "down") == c0 + 1, "the middlebox did not alter a packet"
    ker_res, ker_err = ker_res
    assert res is not None, "device gave no result: rc=%s %s" % (rc, err[-2000:])
    # detected and answered the same way by the device and the kernel reference
    dc = res["counters"]
    assert device_counter(res, "DataCsumErr") == 1, dc
    assert device_counter(res, "MPFailTx") == 1, dc
    assert device_counter(res, "MPFailRx") == 1, dc          # the kernel's answer (echo)
    for k in ("MPTcpExtMPFailRx", "MPTcpExtMPFailTx", "MPTcpExtInfiniteMapTx"):
        assert kernel_counter(ker, k) == kernel_counter(ker_ref, k) == 1, (
            k, _nonzero(ker), _nonzero(ker_ref))
    # ... then: the kernel reference is the oracle for what follows
    after = _kernel_data_after_mp_fail(pcap)
    dev_done = rc == 0 and res["bytes"] == SIZE and ker_res is not None \
        and ker_res["bytes"] == SIZE
    ref_done = ref_res is not None and ker_ref_res is not None and \
        ref_res["bytes"] == SIZE and ker_ref_res["bytes"] == SIZE
    report = ("kernel reference %s (receiver: %s; sender: %s; receiver counters %s; sender "
              "counters %s); device %s (rc=%s, %s bytes, error %r; kernel sender: %s; the "
              "kernel sent %d data segments after its MP_FAIL)"
              % ("completed" if ref_done else "stalled", ref_err or ref_res,
                 ker_ref_err or ker_ref_res, _nonzero(rcv_ref), _nonzero(ker_ref),
                 "completed" if dev_done else "stalled", rc, res.get("bytes"),
                 res.get("error"), ker_err or ker_res, after))
    # What follows depends on the kernel as the sender (6.18 here), which varies from run
    # to run: sometimes it goes on after its MP_FAIL (the device must then complete: every
    # byte, the altered one included, so the SHA-256 differs from the sender's, as plain
    # TCP; it follows the fallback from the data itself, RFC 8684 3.7), sometimes it sends
    # no data at all after its MP_FAIL, as it does towards the kernel reference (whose
    # InfiniteMapRx stays 0). Then nobody can complete: the capture must prove the kernel
    # sent nothing, and the device must have waited for it (its receive timeout), neither
    # reset nor crashed.
    if after > 0:
        assert dev_done, "the kernel went on sending, the device did not complete: " + report
        assert res["sha256"] != ker_res["sha256"]         # the altered byte was delivered
        assert res["mptcp"] is False, res
    else:
        assert rc != 0 and "timed out" in str(res.get("error")), report
        assert 0 < res["bytes"] < SIZE and not dev_done, report
    if ref_done:
        assert ref_res["sha256"] != ker_ref_res["sha256"]
        assert kernel_counter(rcv_ref, "MPTcpExtInfiniteMapRx") == 1, _nonzero(rcv_ref)
    print("MP_FAIL, kernel sending: " + report)


def _kernel_data_after_mp_fail(pcap):
    """Data segments the kernel sent after its first MP_FAIL, per tshark (the capture is
    on wifi0: every packet not from the device, 198.18.1.2, is the kernel's)."""
    import subprocess
    out = subprocess.run(["tshark", "-r", pcap, "-T", "fields", "-e", "ip.src", "-e", "tcp.len",
                          "-e", "tcp.options.mptcp.subtype"],
                         capture_output=True, text=True, check=True).stdout
    seen = False
    n = 0
    for line in out.splitlines():
        f = line.split("\t")
        if len(f) < 3 or f[0] == "198.18.1.2":
            continue
        if not seen:
            seen = "6" in f[2].split(",")
            continue
        if f[1] and int(f[1]) > 0:
            n += 1
    assert seen, "no MP_FAIL from the kernel in the capture"
    return n
