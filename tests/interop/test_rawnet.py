"""The raw-socket netif (mptcp_net.raw_netif, the `rpi` board's Wi-Fi) against the kernel's MPTCP.

Two namespaces of its own (not the lab's): `mpdev-raw` is the device, whose "Wi-Fi" is a
veth; `mpdev-rawpeer` holds the veth's other end and a kernel MPTCP server
(`mptcp_lab.peer server`). The device namespace's kernel owns the same interface and
address as the device, as on a Raspberry Pi, so the run also proves the rule set keeps
the kernel's TCP away: no RST from it (its TcpOutRsts and the rule set's kernel_rst
counter stay 0), and the table is gone after the device exits. 1 MiB each way under the
MicroPython unix port and under CPython, SHA-256 equal at both ends, MPTCP at both ends,
the peer kernel counted MP_CAPABLE and no fallback. Everything made here is removed, also
on failure.
"""
import itertools
import json
import os
import subprocess
import sys

import pytest

from kernel_checks import assert_kernel_clean
from mptcp_lab import nstat
from mptcp_net import rawnet_rules
from mptcp_net.rawnet_rules import table_name

NS_DEV = "mpdev-raw"
NS_PEER = "mpdev-rawpeer"
IF_DEV = "mpraw-dev"
IF_PEER = "mpraw-peer"
DEV_ADDR = "198.18.3.2"
PEER_ADDR = "198.18.3.1"
SIZE = 1024 * 1024
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
_ports = itertools.count(5301)


def sh(*args, ns=None, check=True):
    argv = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        raise AssertionError("%s failed (%d): %s" % (" ".join(argv), p.returncode,
                                                    (p.stderr or p.stdout).strip()))
    return p


def _teardown():
    for ns in (NS_DEV, NS_PEER):
        if os.path.exists("/run/netns/" + ns):
            sh("ip", "netns", "pids", ns, check=False)
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", ns, check=False)   # takes the veth, table, sysctls along
    for f in os.listdir("/tmp"):      # rawnet_rules' saved sysctl values for this interface
        if f.startswith(table_name(IF_DEV) + "."):
            os.remove(os.path.join("/tmp", f))


@pytest.fixture(scope="module")
def rawnet():
    if os.geteuid() != 0:
        pytest.fail("test_rawnet needs root (network namespaces, raw sockets)")
    _teardown()
    try:
        sh("ip", "netns", "add", NS_DEV)
        sh("ip", "netns", "add", NS_PEER)
        sh("ip", "link", "add", IF_DEV, "netns", NS_DEV, "type", "veth",
           "peer", "name", IF_PEER, "netns", NS_PEER)
        for ns, ifn, addr in ((NS_DEV, IF_DEV, DEV_ADDR), (NS_PEER, IF_PEER, PEER_ADDR)):
            sh("ip", "link", "set", "lo", "up", ns=ns)
            sh("ip", "addr", "add", addr + "/24", "dev", ifn, ns=ns)
            sh("ip", "link", "set", ifn, "up", ns=ns)
            sh("sysctl", "-q", "-w", "net.ipv4.conf.all.rp_filter=0", ns=ns)
            sh("sysctl", "-q", "-w", "net.mptcp.enabled=1", ns=ns)
        # A radio delivers whole, checksummed frames; a veth by default passes the sender's
        # unfinished checksums and TSO super-packets, and may merge (GRO): all off.
        sh("ethtool", "-K", IF_PEER, "tx", "off", "tso", "off", "gso", "off", ns=NS_PEER)
        sh("ethtool", "-K", IF_DEV, "gro", "off", "tx", "off", "tso", "off", "gso", "off",
           ns=NS_DEV)
        sh("sysctl", "-q", "-w", "net.ipv4.tcp_congestion_control=cubic", ns=NS_PEER,
           check=False)
        yield
    finally:
        _teardown()
        left = [ns for ns in (NS_DEV, NS_PEER) if os.path.exists("/run/netns/" + ns)]
        assert not left, "namespaces left behind: %r" % left


def _peer(mode, port):
    args = ["server", "--port", str(port), "--once", "--ns", NS_PEER]
    args += ["--recv"] if mode == "recv" else ["--send", str(SIZE)]
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "host_tools"))
    p = subprocess.Popen(["ip", "netns", "exec", NS_PEER, sys.executable, "-m", "mptcp_lab.peer"]
                         + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    line = p.stderr.readline()        # "listening ..." once the socket is bound
    assert "listening" in line, "peer server did not start: %r" % line
    return p


def _device(runtime, args):
    env = dict(os.environ)
    path = os.path.join(REPO, "firmware") + ":" + os.path.join(REPO, "boards", "rpi")
    if runtime == "micropython":
        env["MICROPYPATH"] = path
        argv = [os.path.join(BIN, "micropython"), "-X", "heapsize=1M", "-m", "mptcp_apps.perf"]
    else:
        env["PYTHONPATH"] = path
        argv = [sys.executable, "-m", "mptcp_apps.perf"]
    argv += ["--raw", IF_DEV, "--raw-addr", DEV_ADDR] + args
    p = subprocess.run(["ip", "netns", "exec", NS_DEV] + argv, env=env, capture_output=True,
                       text=True, timeout=300)
    res = None
    for line in p.stdout.splitlines():
        if line.startswith("{"):
            res = json.loads(line)
    return p.returncode, res, p.stderr


def _kernel_rsts():
    return nstat.read(ns=NS_DEV, prefixes=("Tcp",))["TcpOutRsts"]


def _table_listed():
    return "mptcp_raw_" in sh("nft", "list", "tables", ns=NS_DEV).stdout


@pytest.mark.parametrize("direction", ["send", "recv"])
@pytest.mark.parametrize("runtime", ["micropython", "cpython"])
def test_raw_netif_with_kernel(rawnet, runtime, direction):
    port = next(_ports)
    before_peer = nstat.read(ns=NS_PEER)
    rst0 = _kernel_rsts()
    peer = _peer("recv" if direction == "send" else "send", port)
    try:
        dev_args = ["--connect", "%s:%d" % (PEER_ADDR, port)]
        dev_args += ["--send", str(SIZE)] if direction == "send" else ["--recv"]
        rc, dev, err = _device(runtime, dev_args)
        out, perr = peer.communicate(timeout=60)
    finally:
        if peer.poll() is None:
            peer.kill()
            peer.wait()
    ker = json.loads(out.strip().splitlines()[-1]) if out.strip() else None
    assert rc == 0 and dev is not None, "device failed rc=%s: %s %s" % (rc, dev, err[-2000:])
    assert ker is not None and "error" not in ker, "peer: %r %s" % (ker, perr[-1000:])
    assert dev["impl"] == runtime, dev["impl"]
    assert dev["bytes"] == SIZE and ker["bytes"] == SIZE, (dev["bytes"], ker["bytes"])
    assert dev["sha256"] == ker["sha256"]
    assert dev["mptcp"] is True and ker["mptcp"] is True, (dev, ker)
    assert_kernel_clean(nstat.delta(before_peer, nstat.read(ns=NS_PEER)))
    # the device namespace's kernel kept out: it sent no RST, and the device's rule set
    # (installed by the netif for the run) is gone again
    assert _kernel_rsts() - rst0 == 0, "the device namespace's kernel sent RSTs"
    assert not _table_listed(), "the raw netif left its nftables table behind"


def _counters():
    """The rule set's named counters in the device namespace: {name: packets}."""
    out = sh("nft", "-j", "list", "counters", "table", "inet", table_name(IF_DEV),
             ns=NS_DEV).stdout
    res = {}
    for item in json.loads(out)["nftables"]:
        c = item.get("counter")
        if c:
            res[c["name"]] = c["packets"]
    return res


def test_rules_from_the_host_count_the_device_traffic(rawnet):
    """The host tool's way (rules installed by rawnet_rules for the namespace, the device
    run with --raw-no-rules): the counters show the device's traffic both ways went past
    the kernel, and no RST of the kernel's had to be dropped."""
    port = next(_ports)
    rawnet_rules.install(IF_DEV, DEV_ADDR, ns=NS_DEV)
    try:
        peer = _peer("recv", port)
        try:
            rc, dev, err = _device("micropython", ["--raw-no-rules", "--connect",
                                                   "%s:%d" % (PEER_ADDR, port), "--send", "256K"])
            out, _ = peer.communicate(timeout=60)
        finally:
            if peer.poll() is None:
                peer.kill()
                peer.wait()
        c = _counters()
        reserved = sh("sysctl", "-n", "net.ipv4.ip_local_reserved_ports", ns=NS_DEV).stdout
    finally:
        assert rawnet_rules.remove(IF_DEV, ns=NS_DEV), "the table was not there to remove"
    assert rc == 0 and dev is not None, "device failed rc=%s: %s %s" % (rc, dev, err[-2000:])
    assert json.loads(out.strip().splitlines()[-1])["sha256"] == dev["sha256"]
    assert c["dev_in"] > 100 and c["dev_out"] > 100, c     # 256 KiB: > 180 data segments
    assert c["kernel_rst"] == 0, c
    assert "49152-65535" in reserved, reserved
    assert not _table_listed()
    after = sh("sysctl", "-n", "net.ipv4.ip_local_reserved_ports", ns=NS_DEV).stdout
    assert "49152" not in after, "reserved ports not restored: %r" % after


def test_without_rules_the_kernel_resets_the_device(rawnet):
    """The control: with no rule set the device namespace's kernel answers the device's
    connection with RSTs (what the rules exist for) and the transfer does not complete."""
    port = next(_ports)
    rst0 = _kernel_rsts()
    peer = _peer("recv", port)
    try:
        rc, dev, err = _device("micropython", ["--raw-no-rules", "--timeout", "10", "--connect",
                                               "%s:%d" % (PEER_ADDR, port), "--send", "256K"])
    finally:
        peer.kill()
        peer.wait()
    assert rc != 0, "the transfer completed although the kernel saw the device's segments"
    assert _kernel_rsts() - rst0 >= 1, "the kernel sent no RST"
