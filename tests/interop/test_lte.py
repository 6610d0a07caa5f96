"""The device over its LTE link only: AT dial and PPP through the lab's modem emulator (a pty,
921600 baud, 30 ms each way) to the kernel's MPTCP in mplab (TUN lte0, 198.18.2.1).

Each transfer: SHA-256 equal at both ends, MPTCP on both, the kernel's MPTcpExt counters
clean. Also a radio outage (`link lte down`/`up`: NO CARRIER to the device) mid-transfer:
the device must re-dial and bring PPP back up (new IPCP, same address), and the transfer
completes.
"""
import itertools
import os
import time

import pytest

from kernel_checks import assert_kernel_clean
from mptcp_lab.nstat import delta as nstat_delta

SIZE = 1024 * 1024          # ~12 s at 921600 baud
_ports = itertools.count(5301)

# MPTCP_TEST_RUNTIME=source runs the device from firmware/ (no `make build` needed)
RUNTIME = os.environ.get("MPTCP_TEST_RUNTIME", "mpy")
EXTRA = ["--heap", "4m"] if RUNTIME == "source" else []


def _check_link(dev, before, after):
    """The device's LTE netif and the modem emulator (counters since `before`; a frame cut by
    an earlier test's NO CARRIER may count once at the next session) saw a clean line."""
    l = dev["lte"]
    assert l["ups"] >= 1 and l["rx_bad_fcs"] == 0 and l["tx_dropped"] == 0, l
    c = nstat_delta(before["counters"], after["counters"])
    assert c["ppp_hdlc_bad_fcs"] <= 1 and c["ppp_hdlc_bad_escape"] <= 1, c
    assert c["ppp_loopback_detected"] == 0, c
    assert c["ppp_rx_ip"] > 0 and c["ppp_tx_ip"] > 0, c


@pytest.fixture
def lte(lab):
    """The session lab with the LTE link at its default profile, up."""
    lab.link("lte", "up")
    lab.link_set("lte", baud=921600, delay="30ms")
    lab.sysctl("net.mptcp.checksum_enabled", 0)
    return lab


def test_lte_device_sends_to_kernel(lte):
    port = next(_ports)
    before = lte.nstat()
    link0 = lte.lte_status()
    peer = lte.start_peer("server", port=port, mode="recv")
    rc, dev, err = lte.run_device(["--links", "lte", "--connect", "198.18.0.1:%d" % port,
                                   "--send", str(SIZE), "-v"] + EXTRA,
                                  runtime=RUNTIME, timeout=180)
    ker = peer.wait(60)
    assert rc == 0 and dev is not None, "device failed rc=%s: %s %s" % (rc, dev, err[-2000:])
    assert dev["bytes"] == SIZE and ker["bytes"] == SIZE, (dev, ker)
    assert dev["sha256"] == ker["sha256"]
    assert dev["mptcp"] is True and ker["mptcp"] is True, (dev, ker)
    assert [s["link"] for s in dev["subflows"]] == ["lte"], dev["subflows"]
    assert ker["subflows"][0]["remote"] == "198.18.2.2", ker["subflows"]
    assert_kernel_clean(nstat_delta(before, lte.nstat()))
    _check_link(dev, link0, lte.lte_status())


def test_lte_kernel_sends_to_device(lte):
    port = next(_ports)
    before = lte.nstat()
    link0 = lte.lte_status()
    d = lte.start_device(["--links", "lte", "--listen", str(port), "--recv", "-v"] + EXTRA,
                         runtime=RUNTIME)
    lte.wait_device_listening(d, port, timeout=60)
    lte.wait_lte(lambda s: s["ppp"] == "network", 30)
    peer = lte.start_peer("client", connect="198.18.2.2:%d" % port, mode="send", nbytes=SIZE)
    ker = peer.wait(180)
    rc, dev, err = d.wait(60)
    assert rc == 0 and dev is not None, "device failed rc=%s: %s %s" % (rc, dev, err[-2000:])
    assert dev["bytes"] == SIZE and ker["bytes"] == SIZE, (dev, ker)
    assert dev["sha256"] == ker["sha256"]
    assert dev["mptcp"] is True and ker["mptcp"] is True, (dev, ker)
    assert_kernel_clean(nstat_delta(before, lte.nstat()))
    _check_link(dev, link0, lte.lte_status())


def test_lte_no_carrier_mid_transfer_redials(lte):
    """Radio outage for 1 s in the middle of a transfer: NO CARRIER, re-dial, PPP again
    (same address), and the transfer completes: every byte, SHA-256 equal at both ends."""
    port = next(_ports)
    before = lte.nstat()
    peer = lte.start_peer("server", port=port, mode="recv")
    s0 = lte.lte_status()
    d = lte.start_device(["--links", "lte", "--connect", "198.18.0.1:%d" % port,
                          "--send", str(SIZE), "-v"] + EXTRA, runtime=RUNTIME)
    try:
        st = lte.wait_lte(lambda s: s["sessions"] > s0["sessions"] and s["ppp"] == "network", 60)
        up0 = st["counters"]["up_bytes"]
        # well into the transfer: a quarter of it has crossed the serial line
        lte.wait_lte(lambda s: s["counters"]["up_bytes"] - up0 >= SIZE // 4, 60)
        nc0 = lte.lte_status()["counters"].get("no_carrier", 0)
        lte.link("lte", "down")
        st = lte.lte_status()
        assert st["mode"] == "command" and st["counters"].get("no_carrier", 0) == nc0 + 1, st
        assert not st["registered"], st
        time.sleep(1.0)                     # the outage
        lte.link("lte", "up")
        lte.wait_lte(lambda s: s["sessions"] >= s0["sessions"] + 2 and s["ppp"] == "network", 60)
    finally:
        rc, dev, err = d.wait(180)
    ker = peer.wait(30)
    assert dev is not None, "device printed no result rc=%s: %s" % (rc, err[-2000:])
    l = dev["lte"]
    assert l["no_carrier"] >= 1 and l["ups"] >= 2 and l["downs"] >= 1, l
    assert l["last_down"] == "no-carrier" and l["redials"] >= 1, l
    assert rc == 0 and dev["bytes"] == SIZE, "device failed rc=%s: %s %s" % (rc, dev,
                                                                             err[-2000:])
    assert ker["bytes"] == SIZE and ker["sha256"] == dev["sha256"], (dev, ker)
    assert dev["mptcp"] is True and ker["mptcp"] is True, (dev, ker)
    assert_kernel_clean(nstat_delta(before, lte.nstat()))


def test_wifi_and_lte_connection_on_first_link(lte):
    """--links wifi,lte: both links come up (LTE by dialing); the connection starts on Wi-Fi
    and the path manager joins from LTE."""
    port = next(_ports)
    peer = lte.start_peer("server", port=port, mode="recv")
    rc, dev, err = lte.run_device(["--links", "wifi,lte", "--connect", "198.18.0.1:%d" % port,
                                   "--send", str(SIZE), "-v"] + EXTRA,
                                  runtime=RUNTIME, timeout=180)
    ker = peer.wait(60)
    assert rc == 0 and dev is not None, "device failed rc=%s: %s %s" % (rc, dev, err[-2000:])
    assert dev["sha256"] == ker["sha256"] and ker["bytes"] == SIZE
    assert [s["link"] for s in dev["subflows"]] == ["wifi", "lte"], dev["subflows"]
    assert dev["subflows"][1]["join"] and not dev["subflows"][0]["join"], dev["subflows"]
    assert ker["subflows"][0]["remote"] == "198.18.1.2", ker["subflows"]
    assert dev["lte"]["ups"] == 1 and "lte 198.18.2.2" in err, (dev["lte"], err[-500:])
