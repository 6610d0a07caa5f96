"""Multipath against the Linux kernel (issue 8), in the manner of the kernel's own
mptcp_join.sh: each case asserts the counters that selftest asserts (MPJoinSynRx,
MPJoinSynAckRx, MPJoinAckRx, no HMAC failure), SHA-256 equal at both ends, and the
device's own counters and per-subflow figures."""
import itertools
import subprocess
import threading
import time

from kernel_checks import assert_kernel_clean
from device_checks import device_counter, kernel_counter
from mptcp_lab.nstat import delta as nstat_delta

_ports = itertools.count(6201)
JOIN_BAD = ("MPTcpExtMPJoinSynAckHMacFailure", "MPTcpExtMPJoinAckHMacFailure")


def _ns(*cmd):
    subprocess.run(("ip", "netns", "exec", "mplab") + cmd, check=True,
                   stdout=subprocess.DEVNULL)


def _ok(rc, dev, err):
    assert rc == 0 and dev is not None, "device failed rc=%s: %s %s" % (rc, dev, err[-3000:])
    assert dev["ok"] and dev["error"] is None, dev
    # an exception inside the stack (a MemoryError too) is counted, never silent
    assert device_counter(dev, "InternalErrors") == 0, dev["counters"]


def _links(dev):
    return sorted(s["link"] for s in dev["subflows"])


def _no_join_errors(d):
    for k in JOIN_BAD:
        assert kernel_counter(d, k) == 0, (k, d[k])


def _later(s, fn):
    t = threading.Timer(s, fn)
    t.daemon = True
    t.start()
    return t


def _client_run(lab, port, args, server="recv", nbytes=None, at=(), cleanup=(),
                wifi=("4mbit", "5ms"), timeout=300, **peer_kw):
    """The device connects to a kernel server in mplab (mode `server`) with perf `args`;
    Wi-Fi shaped to `wifi` (None: as it is) so the transfer outlasts the joins; `at`:
    (seconds, fn) actions during the run; `cleanup`: fns run afterwards whatever happens.
    Returns (rc, dev, err, ker, kernel counter delta)."""
    if wifi:
        lab.link_set("wifi", rate=wifi[0], delay=wifi[1])
    before = lab.nstat()
    peer = lab.start_peer("server", port=port, mode=server, nbytes=nbytes, **peer_kw)
    timers = [_later(when, fn) for when, fn in at]
    try:
        rc, dev, err = lab.run_device(["--connect", "198.18.0.1:%d" % port] + list(args),
                                      timeout=timeout)
        ker = peer.wait(60)
    finally:
        for t in timers:
            t.cancel()
        for fn in cleanup:
            fn()
        if wifi:
            lab.link_set("wifi", rate="0", delay="0ms")
    return rc, dev, err, ker, nstat_delta(before, lab.nstat())


def test_device_client_two_subflows(lab):
    """Device as client with --links wifi,lte: it joins from LTE; both carry data."""
    rc, dev, err, ker, d = _client_run(lab, next(_ports), [
        "--send", "2M", "--links", "wifi,lte", "--scheduler", "roundrobin"])
    _ok(rc, dev, err)
    assert dev["sha256"] == ker["sha256"] and ker["bytes"] == 2 * 1024 * 1024
    assert_kernel_clean(d)
    assert kernel_counter(d, "MPTcpExtMPJoinSynRx") == 1
    assert kernel_counter(d, "MPTcpExtMPJoinAckRx") == 1
    _no_join_errors(d)
    assert _links(dev) == ["lte", "wifi"], dev["subflows"]
    assert all(s["bytes_tx"] > 100000 for s in dev["subflows"]), [
        (s["link"], s["bytes_tx"]) for s in dev["subflows"]]
    assert device_counter(dev, "MPJoinSynTx") == 1 and device_counter(dev, "MPJoinSynAckRx") == 1
    assert len(ker["subflows"]) == 2 and all(s["bytes_rx"] > 0 for s in ker["subflows"]), ker


def test_device_server_kernel_joins(lab):
    """Device as server; the kernel client has a `subflow` endpoint (198.18.0.2) and joins
    the device: the device checks the HMACs and accepts."""
    port = next(_ports)
    _ns("ip", "mptcp", "endpoint", "flush")
    # (no `dev`: an endpoint with a device binds its subflows to it, and lo goes nowhere)
    _ns("ip", "mptcp", "endpoint", "add", "198.18.0.2", "subflow")
    lab.link_set("wifi", rate="8mbit", delay="5ms")
    try:
        before = lab.nstat()
        dev_proc = lab.start_device(["--listen", str(port), "--recv"])
        lab.wait_device_listening(dev_proc, port)
        peer = lab.start_peer("client", connect="198.18.1.2:%d" % port, mode="send",
                              nbytes=2 * 1024 * 1024)
        ker = peer.wait(300)
        rc, dev, err = dev_proc.wait(120)
    finally:
        _ns("ip", "mptcp", "endpoint", "flush")
        lab.link_set("wifi", rate="0", delay="0ms")
    _ok(rc, dev, err)
    assert dev["sha256"] == ker["sha256"] and dev["bytes"] == 2 * 1024 * 1024
    d = nstat_delta(before, lab.nstat())
    assert_kernel_clean(d)
    assert kernel_counter(d, "MPTcpExtMPJoinSynTx") == 1
    assert kernel_counter(d, "MPTcpExtMPJoinSynAckRx") == 1, (sorted(dev["counters"].items()), {k: v for k, v in d.items() if "Join" in k and v})
    _no_join_errors(d)
    # (the kernel may try a join again when a SYN/ACK waits in the shaped queue)
    assert device_counter(dev, "MPJoinSynRx") >= 1 and device_counter(dev, "MPJoinAckRx") >= 1, \
        dev["counters"]
    assert device_counter(dev, "MPJoinAckHMacFailure") == 0
    assert device_counter(dev, "MPJoinNoTokenFound") == 0
    assert len(dev["subflows"]) >= 2 and dev["subflows"][1]["join"], dev["subflows"]


def test_wifi_silent_failure_mid_transfer_completes_on_lte(lab):
    """Wi-Fi drops every packet (no signal) mid-transfer: the device's RTO reinjects the
    Wi-Fi subflow's data on LTE; the transfer completes, nothing lost or duplicated."""
    rc, dev, err, ker, d = _client_run(
        lab, next(_ports), ["--send", "2M", "--links", "wifi,lte"],
        at=[(3.0, lambda: lab.link_set("wifi", loss="100"))],
        cleanup=[lambda: lab.link_set("wifi", loss="0")])
    _ok(rc, dev, err)
    assert dev["sha256"] == ker["sha256"] and ker["bytes"] == 2 * 1024 * 1024
    assert_kernel_clean(d)
    _no_join_errors(d)
    assert device_counter(dev, "MPTCPReinject") > 0
    lte = [s for s in dev["subflows"] if s["link"] == "lte"]
    wifi = [s for s in dev["subflows"] if s["link"] == "wifi"]
    assert lte and lte[0]["bytes_tx"] > 0 and wifi[0]["bytes_tx"] > 0, dev["subflows"]


def test_backup_lte_idle_until_wifi_fails(lab):
    """--scheduler backup: LTE joined with the backup flag carries nothing while Wi-Fi is
    healthy, then takes over when Wi-Fi fails silently."""
    rc, dev, err, ker, d = _client_run(
        lab, next(_ports), ["--send", "2M", "--links", "wifi,lte", "--scheduler", "backup"],
        at=[(3.0, lambda: lab.link_set("wifi", loss="100"))],
        cleanup=[lambda: lab.link_set("wifi", loss="0")])
    _ok(rc, dev, err)
    assert dev["sha256"] == ker["sha256"]
    lte = [s for s in dev["subflows"] if s["link"] == "lte"][0]
    assert lte["backup"] and lte["bytes_tx"] > 0, dev["subflows"]
    # the kernel's view: the LTE subflow received only after Wi-Fi had carried ~1.5 MB
    wifi_rx = sum(s["bytes_rx"] for s in ker["subflows"] if s["link"] == "wifi")
    assert wifi_rx > 1000000, ker["subflows"]


def test_backup_lte_carries_nothing_while_wifi_is_healthy(lab):
    rc, dev, err, ker, d = _client_run(
        lab, next(_ports), ["--send", "2M", "--links", "wifi,lte", "--scheduler", "backup"],
        wifi=None)
    _ok(rc, dev, err)
    assert dev["sha256"] == ker["sha256"]
    lte = [s for s in dev["subflows"] if s["link"] == "lte"]
    assert lte and lte[0]["backup"] and lte[0]["bytes_tx"] == 0, dev["subflows"]


def test_wifi_down_signalled_completes_on_lte_and_wifi_rejoins(lab):
    """`link wifi down` (the netif reports it, as a disassociation): the Wi-Fi subflow is
    failed at once and its data reinjected on LTE; when Wi-Fi returns the path manager
    opens a new Wi-Fi subflow, which carries data again."""
    rc, dev, err, ker, d = _client_run(
        lab, next(_ports), ["--send", "3M", "--links", "wifi,lte"],
        at=[(2.0, lambda: lab.link("wifi", "down")), (6.0, lambda: lab.link("wifi", "up"))],
        cleanup=[lambda: lab.link("wifi", "up")])
    _ok(rc, dev, err)
    assert dev["sha256"] == ker["sha256"] and ker["bytes"] == 3 * 1024 * 1024
    assert_kernel_clean(d)
    _no_join_errors(d)
    assert device_counter(dev, "LinkDown") == 1 and device_counter(dev, "RmSubflow") >= 1
    assert device_counter(dev, "SubflowRecreate") >= 1
    wifi = [s for s in dev["subflows"] if s["link"] == "wifi"]
    lte = [s for s in dev["subflows"] if s["link"] == "lte"]
    assert len(wifi) == 2 and wifi[1]["join"] and wifi[1]["bytes_tx"] > 0, dev["subflows"]
    assert lte[0]["bytes_tx"] > 0, dev["subflows"]
    assert kernel_counter(d, "MPTcpExtMPJoinAckRx") >= 2        # LTE, then Wi-Fi again


def test_all_links_down_ten_seconds_then_back(lab):
    """Break-before-make: Wi-Fi and LTE both go down (signalled) for 10 s mid-transfer; the
    connection waits without any subflow and resumes on the links that return."""
    rc, dev, err, ker, d = _client_run(
        lab, next(_ports), ["--send", "3M", "--links", "wifi,lte"],
        at=[(2.0, lambda: (lab.link("wifi", "down"), lab.link("lte", "down"))),
            (12.0, lambda: (lab.link("lte", "up"), lab.link("wifi", "up")))],
        cleanup=[lambda: (lab.link("lte", "up"), lab.link("wifi", "up"))])
    _ok(rc, dev, err)
    assert dev["sha256"] == ker["sha256"] and ker["bytes"] == 3 * 1024 * 1024
    # both subflows were lost (no subflow left: the outage was waited out, not avoided)
    assert device_counter(dev, "RmSubflow") >= 2, dev["counters"]
    assert device_counter(dev, "LinkDown") >= 2 and device_counter(dev, "OrphanTimeout") == 0
    assert device_counter(dev, "SubflowRecreate") >= 1


def test_kernel_add_addr_is_echoed_and_joined_then_removed(lab):
    """The kernel announces 198.18.0.2 (`signal` endpoint): the device checks the HMAC,
    echoes it and joins it; mid-transfer the kernel deletes the endpoint (REMOVE_ADDR):
    the device closes that subflow and the transfer completes on the others."""
    _ns("ip", "mptcp", "endpoint", "flush")
    _ns("ip", "mptcp", "endpoint", "add", "198.18.0.2", "dev", "lo", "signal", "id", "5")
    rc, dev, err, ker, d = _client_run(
        lab, next(_ports), ["--send", "3M", "--links", "wifi"],
        at=[(4.0, lambda: _ns("ip", "mptcp", "endpoint", "delete", "id", "5"))],
        cleanup=[lambda: _ns("ip", "mptcp", "endpoint", "flush")])
    _ok(rc, dev, err)
    assert dev["sha256"] == ker["sha256"] and ker["bytes"] == 3 * 1024 * 1024
    assert_kernel_clean(d)
    _no_join_errors(d)
    # as mptcp_join.sh's chk_add_nr / chk_rm_nr: the announcement, its echo, the join
    assert device_counter(dev, "AddAddr") == 1 and device_counter(dev, "EchoAddTx") == 1
    assert kernel_counter(d, "MPTcpExtEchoAdd") == 1
    assert kernel_counter(d, "MPTcpExtMPJoinSynRx") == 1 and kernel_counter(d, "MPTcpExtMPJoinAckRx") == 1
    assert device_counter(dev, "RmAddr") == 1 and device_counter(dev, "RmSubflow") >= 1
    to2 = [s for s in dev["subflows"] if s["join"]]
    assert len(to2) == 1 and to2[0]["state"] == "CLOSED" and to2[0]["bytes_tx"] > 0, dev["subflows"]


# The device's echo rides a pure ACK: TS (12) + DSS with an 8-byte DATA_ACK (12) + the
# IPv4 echo (8) = 32 option bytes, 72 bytes of IP; its other pure ACKs are 64, and the
# MP_CAPABLE third ACK (also 72) has no DSS. (nft's `tcp option mptcp subtype` looks at the
# first MPTCP option only: the DSS, not the echo behind it.) The quota
# drops the first such packet only: the kernel (6.18) resends its ADD_ADDR after less
# than add_addr_timeout, so a time window cannot be relied on.
_ECHO_DROP = """
table inet mptcp_echo_drop {
    chain in {
        type filter hook input priority 0; policy accept;
        ip saddr 198.18.1.2 ip length 72 tcp flags == ack tcp option mptcp subtype 2 quota until 100 bytes counter drop
    }
}
"""


def _nft_drop_echoes(on):
    if on:
        subprocess.run(("ip", "netns", "exec", "mplab", "nft", "-f", "-"), input=_ECHO_DROP,
                       text=True, check=True)
    else:
        subprocess.run(("ip", "netns", "exec", "mplab", "nft", "delete", "table", "inet",
                        "mptcp_echo_drop"), stderr=subprocess.DEVNULL)


def test_kernel_add_addr_echo_lost_is_retransmitted(lab):
    """As mptcp_join.sh's "add_addr timeout": the device's first ADD_ADDR echo is dropped
    on its way to the kernel (nftables in mplab, by the echo ACK's length); the kernel
    (add_addr_timeout 1 s) announces again, the device echoes again, that echo ends it,
    and the address is joined once."""
    _ns("ip", "mptcp", "endpoint", "flush")
    _ns("ip", "mptcp", "endpoint", "add", "198.18.0.2", "dev", "lo", "signal", "id", "7")
    old = lab.sysctl("net.mptcp.add_addr_timeout", 1)
    _nft_drop_echoes(True)
    try:
        rc, dev, err, ker, d = _client_run(
            lab, next(_ports), ["--send", "3M", "--links", "wifi"],
            cleanup=[lambda: _nft_drop_echoes(False),
                     lambda: _ns("ip", "mptcp", "endpoint", "flush"),
                     lambda: lab.sysctl("net.mptcp.add_addr_timeout", old)])
    finally:
        _nft_drop_echoes(False)
    _ok(rc, dev, err)
    assert dev["sha256"] == ker["sha256"] and ker["bytes"] == 3 * 1024 * 1024
    assert_kernel_clean(d)
    _no_join_errors(d)
    # announced at least twice (the first echo was lost), each announcement echoed, one echo
    # reached the kernel, one join
    assert kernel_counter(d, "MPTcpExtAddAddrTx") >= 2, d
    assert device_counter(dev, "AddAddr") >= 2 and device_counter(dev, "EchoAddTx") >= 2
    assert kernel_counter(d, "MPTcpExtEchoAdd") == 1
    assert device_counter(dev, "AddAddrDrop") == 0
    assert kernel_counter(d, "MPTcpExtMPJoinSynRx") == 1 and kernel_counter(d, "MPTcpExtMPJoinAckRx") == 1


def test_kernel_mp_prio_backup_is_obeyed(lab):
    """The kernel marks its endpoint 198.18.0.2 backup (MP_PRIO on that subflow): the device
    stops sending on it while the initial subflow can carry."""
    _ns("ip", "mptcp", "endpoint", "flush")
    _ns("ip", "mptcp", "endpoint", "add", "198.18.0.2", "dev", "lo", "signal", "id", "6")
    rc, dev, err, ker, d = _client_run(
        lab, next(_ports), ["--send", "3M", "--links", "wifi"],
        at=[(2.0, lambda: _ns("ip", "mptcp", "endpoint", "change", "id", "6", "backup"))],
        cleanup=[lambda: _ns("ip", "mptcp", "endpoint", "flush")])
    _ok(rc, dev, err)
    assert dev["sha256"] == ker["sha256"]
    assert_kernel_clean(d)
    assert kernel_counter(d, "MPTcpExtMPPrioTx") >= 1
    assert device_counter(dev, "MPPrioRx") >= 1
    j = [s for s in dev["subflows"] if s["join"]]
    assert len(j) == 1 and j[0]["backup"], dev["subflows"]


def test_device_server_announces_lte_and_the_kernel_joins_it(lab):
    """Device as server with both links: it announces its LTE address (ADD_ADDR, HMAC);
    the kernel client echoes it and joins it over LTE."""
    port = next(_ports)
    _ns("ip", "mptcp", "endpoint", "flush")
    lab.link_set("wifi", rate="4mbit", delay="5ms")
    try:
        before = lab.nstat()
        dev_proc = lab.start_device(["--listen", str(port), "--recv", "--links", "wifi,lte"])
        lab.wait_device_listening(dev_proc, port)
        peer = lab.start_peer("client", connect="198.18.1.2:%d" % port, mode="send",
                              nbytes=2 * 1024 * 1024)
        ker = peer.wait(300)
        rc, dev, err = dev_proc.wait(120)
    finally:
        lab.link_set("wifi", rate="0", delay="0ms")
    _ok(rc, dev, err)
    assert dev["sha256"] == ker["sha256"] and dev["bytes"] == 2 * 1024 * 1024
    d = nstat_delta(before, lab.nstat())
    assert_kernel_clean(d)
    _no_join_errors(d)
    assert device_counter(dev, "AddAddrTx") >= 1 and device_counter(dev, "EchoAdd") == 1
    assert kernel_counter(d, "MPTcpExtAddAddr") == 1
    assert device_counter(dev, "MPJoinSynRx") == 1 and device_counter(dev, "MPJoinAckRx") == 1
    lte = [s for s in dev["subflows"] if s["link"] == "lte"]
    assert lte and lte[0]["join"] and lte[0]["bytes_rx"] > 0, dev["subflows"]


def test_fastclose_from_the_device_with_two_subflows(lab):
    """The device aborts mid-transfer: RST + MP_FASTCLOSE on every subflow; the kernel
    counts MP_FASTCLOSE and its sender sees the reset."""
    port = next(_ports)
    lab.link_set("wifi", rate="8mbit", delay="5ms")
    before = lab.nstat()
    try:
        dev_proc = lab.start_device(["--listen", str(port), "--recv", "--links", "wifi,lte",
                                     "--abort-after", "1M"])
        lab.wait_device_listening(dev_proc, port)
        peer = lab.start_peer("client", connect="198.18.1.2:%d" % port, mode="send",
                              nbytes=8 * 1024 * 1024)
        rc, dev, err = dev_proc.wait(120)
        peer.wait(60)
    finally:
        lab.link_set("wifi", rate="0", delay="0ms")
    _ok(rc, dev, err)
    assert dev["bytes"] >= 1024 * 1024
    d = nstat_delta(before, lab.nstat())
    assert device_counter(dev, "MPFastcloseTx") >= 1
    assert kernel_counter(d, "MPTcpExtMPFastcloseRx") >= 1


def test_fastclose_from_the_kernel(lab):
    """The kernel's server closes with data unread (Linux answers that with MP_FASTCLOSE):
    the device's connection ends with a reset, counted MPFastcloseRx."""
    rc, dev, err, ker, d = _client_run(
        lab, next(_ports), ["--send", "8M", "--links", "wifi,lte"], wifi=("8mbit", "5ms"),
        timeout=120, abort_after="1M")
    assert rc != 0 and dev is not None and "ECONNRESET" in dev["error"], (rc, dev, err[-2000:])
    assert kernel_counter(d, "MPTcpExtMPFastcloseTx") >= 1
    assert device_counter(dev, "MPFastcloseRx") >= 1


def test_dss_checksum_failure_with_two_subflows_resets_only_that_subflow(lab):
    """DSS checksums on, two subflows, a middlebox rewrites one payload byte on Wi-Fi
    (TCP checksum fixed): the device resets that subflow with MP_TCPRST instead of falling
    back (RFC 8684 3.7); the kernel reinjects on LTE; the data arrives intact."""
    lab.sysctl("net.mptcp.checksum_enabled", 1)
    rc, dev, err, ker, d = _client_run(
        lab, next(_ports), ["--recv", "--links", "wifi,lte", "--csum"], server="send",
        nbytes=4 * 1024 * 1024, wifi=("8mbit", "5ms"),
        at=[(2.5, lambda: lab.link_set("wifi", direction="down", corrupt=1))],
        cleanup=[lambda: lab.sysctl("net.mptcp.checksum_enabled", 0),
                 lambda: lab.link_set("wifi", corrupt="0")])
    _ok(rc, dev, err)
    assert dev["sha256"] == ker["sha256"] and dev["bytes"] == 4 * 1024 * 1024
    assert dev["mptcp"] and ker["mptcp"], (dev["mptcp"], ker["mptcp"])
    assert device_counter(dev, "DataCsumErr") == 1 and device_counter(dev, "MPRstTx") >= 1
    assert device_counter(dev, "MPFailTx") == 0 and device_counter(dev, "InfiniteMapRx") == 0
    assert kernel_counter(d, "MPTcpExtInfiniteMapRx") == 0
    assert kernel_counter(d, "MPTcpExtMPRstRx") >= 1


_JOIN_PROBE = r"""
import sys
from scapy.all import IP, TCP, sr1, conf
conf.verb = 0
port = int(sys.argv[1])
opt = bytes([0x10, 0]) + bytes.fromhex("deadbeef") + bytes.fromhex("01020304")
r = sr1(IP(src="198.18.0.1", dst="198.18.1.2") / TCP(sport=40999, dport=port, flags="S",
        seq=1000, options=[("MSS", 1460), (30, opt)]), timeout=5, iface="wifi0")
if r is None or TCP not in r:
    print("none")
else:
    t = r[TCP]
    mp = [v for k, v in t.options if k == 30]
    print("flags=%s mptcp=%s" % (t.flags, mp[0].hex() if mp else ""))
"""


def test_join_with_an_unknown_token_is_refused_and_the_connection_goes_on(lab):
    """A forged MP_JOIN SYN naming no connection reaches the device mid-transfer: it answers
    RST with MP_TCPRST (reason 1), counts it, and the real connection completes."""
    port = next(_ports)
    lab.link_set("wifi", rate="8mbit", delay="5ms")
    try:
        dev_proc = lab.start_device(["--listen", str(port), "--recv"])
        lab.wait_device_listening(dev_proc, port)
        peer = lab.start_peer("client", connect="198.18.1.2:%d" % port, mode="send",
                              nbytes=3 * 1024 * 1024)
        time.sleep(1.0)
        probe = subprocess.run(("ip", "netns", "exec", "mplab", lab_python(), "-c",
                                _JOIN_PROBE, str(port)), capture_output=True, text=True,
                               timeout=60)
        ker = peer.wait(300)
        rc, dev, err = dev_proc.wait(120)
    finally:
        lab.link_set("wifi", rate="0", delay="0ms")
    _ok(rc, dev, err)
    assert dev["sha256"] == ker["sha256"] and dev["bytes"] == 3 * 1024 * 1024
    out = probe.stdout.strip()
    assert out.startswith("flags=R"), (out, probe.stderr[-500:])
    assert out.endswith("mptcp=8001"), out            # MP_TCPRST, flags 0, reason 1
    assert device_counter(dev, "MPJoinSynRx") == 1
    assert device_counter(dev, "MPJoinNoTokenFound") == 1 and device_counter(dev, "MPRstTx") == 1


_BAD_HMAC_JOIN = r"""
import hashlib, os, sys
from scapy.all import IP, TCP, sr1, send, sniff, conf
conf.verb = 0
port = int(sys.argv[1])
# the kernel client's MP_CAPABLE third ACK carries both keys: the receiver's is the device's
keys = []
def mpc_ack(p):
    if TCP in p and p[TCP].dport == port and p[TCP].flags == "A":
        for k, v in p[TCP].options:
            if k == 30 and len(v) >= 18 and v[0] >> 4 == 0:
                keys.append(bytes(v[10:18]))
                return True
    return False
sniff(iface="wifi0", filter="tcp dst port %d" % port, stop_filter=mpc_ack, timeout=20)
if not keys:
    print("no-keys")
    sys.exit(0)
token = hashlib.sha256(keys[0]).digest()[:4]
nonce = os.urandom(4)
syn = IP(src="198.18.0.1", dst="198.18.1.2") / TCP(
    sport=40998, dport=port, flags="S", seq=5000,
    options=[("MSS", 1400), (30, bytes([0x10, 9]) + token + nonce)])
r = sr1(syn, timeout=5, iface="wifi0")
if r is None or TCP not in r or r[TCP].flags != "SA":
    print("synack=none %r" % (r and r[TCP].flags))
    sys.exit(0)
bad = bytes(20)                                   # a 160-bit HMAC that cannot be right
ack = IP(src="198.18.0.1", dst="198.18.1.2") / TCP(
    sport=40998, dport=port, flags="A", seq=5001, ack=r[TCP].seq + 1,
    options=[(30, bytes([0x10, 0]) + bad)])
r2 = sr1(ack, timeout=5, iface="wifi0")
if r2 is None or TCP not in r2:
    print("synack=ok answer=none")
else:
    mp = [v for k, v in r2[TCP].options if k == 30]
    print("synack=ok answer=%s mptcp=%s" % (r2[TCP].flags, mp[0].hex() if mp else ""))
"""

_RST_FILTER = """
table inet mptcp_probe {
    chain out {
        type filter hook output priority 0; policy accept;
        tcp sport 40998 tcp flags rst drop
    }
}
"""


def test_join_with_a_bad_hmac_is_refused_and_the_connection_goes_on(lab):
    """A forged MP_JOIN with the right token (the device's key read off the wire) and a
    wrong HMAC in the third ACK: the device answers the SYN with its SYN/ACK, then resets
    that subflow with MP_TCPRST, counts MPJoinAckHMacFailure, and the real transfer
    completes. (The kernel's own RST for the probe's port is filtered in mplab.)"""
    port = next(_ports)
    lab.link_set("wifi", rate="8mbit", delay="5ms")
    subprocess.run(("ip", "netns", "exec", "mplab", "nft", "-f", "-"), input=_RST_FILTER,
                   text=True, check=True)
    try:
        dev_proc = lab.start_device(["--listen", str(port), "--recv"])
        lab.wait_device_listening(dev_proc, port)
        probe = subprocess.Popen(("ip", "netns", "exec", "mplab", lab_python(), "-c",
                                  _BAD_HMAC_JOIN, str(port)), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)             # the sniffer is listening before the handshake
        peer = lab.start_peer("client", connect="198.18.1.2:%d" % port, mode="send",
                              nbytes=3 * 1024 * 1024)
        out, perr = probe.communicate(timeout=90)
        ker = peer.wait(300)
        rc, dev, err = dev_proc.wait(120)
    finally:
        lab.link_set("wifi", rate="0", delay="0ms")
        subprocess.run(("ip", "netns", "exec", "mplab", "nft", "delete", "table", "inet",
                        "mptcp_probe"), stderr=subprocess.DEVNULL)
    _ok(rc, dev, err)
    assert dev["sha256"] == ker["sha256"] and dev["bytes"] == 3 * 1024 * 1024
    out = out.strip()
    assert out.startswith("synack=ok answer=R"), (out, perr[-800:])
    assert out.endswith("mptcp=8001"), out            # MP_TCPRST, flags 0, reason 1
    assert device_counter(dev, "MPJoinSynRx") == 1
    assert device_counter(dev, "MPJoinAckHMacFailure") == 1
    assert device_counter(dev, "MPJoinAckRx") == 0 and device_counter(dev, "MPRstTx") >= 1
    j = [s for s in dev["subflows"] if s["join"]]
    assert all(s["state"] == "CLOSED" for s in j), dev["subflows"]


def lab_python():
    import sys
    return sys.executable
