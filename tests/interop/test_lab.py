"""The lab itself: namespaces, link emulator, kernel helpers, captures (root only).

These tests FAIL (not skip) when not root or when the lab cannot come up: the interop suite
is meaningless without the lab.
"""

import json
import os
import socket
import struct
import subprocess
import sys
import time

import pytest

from mptcp_lab import api, lab as labmod
from mptcp_lab.api import Lab
from mptcp_lab.common import LabError, RUN_DIR, SERVER_ADDR

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = [sys.executable, "-m", "mptcp_lab.cli"]


def need_root():
    if os.geteuid() != 0:
        pytest.fail("the lab tests need root (network namespaces, TUN): run them as root")


def bring_up(wifi):
    need_root()
    try:
        return Lab(wifi=wifi).__enter__()
    except LabError as e:
        pytest.fail("the lab could not come up: %s" % e)


@pytest.fixture
def lab():
    """A fresh clean lab, always taken down afterwards."""
    l = bring_up("clean")
    try:
        yield l
    finally:
        labmod.down()


def cli(*args, timeout=60):
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=timeout)


def leftovers():
    """Everything the lab could leave behind."""
    left = []
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    left += ["namespace " + n for n in ("mplab", "mplab-ref") if n in ns.split()]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    for line in links.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(("mlp", "mlr")) or name in ("wifi0", "lte0"):
            left.append("link " + name)
    ps = subprocess.run(["pgrep", "-f", "mptcp_lab.(emulator|peer)"], capture_output=True,
                        text=True).stdout.split()
    left += ["process " + p for p in ps]
    if os.path.exists(RUN_DIR):
        left.append(RUN_DIR)
    return left


def test_up_down_idempotent_and_clean():
    need_root()
    labmod.down()
    try:
        r = cli("up")
        assert r.returncode == 0, r.stderr
        pid = labmod.emulator_pid()
        assert pid
        r = cli("up")
        assert r.returncode == 0, r.stderr
        assert labmod.emulator_pid() == pid, "a second up must reuse the running lab"
        st = json.loads(cli("status", "--json").stdout)
        assert st["up"] and st["namespaces"] == {"mplab": True, "mplab-ref": True}
        assert st["links"]["wifi"]["state"] == "up"
        lte = st["links"]["lte"]
        assert lte["implemented"] is True and lte["state"] == "up" and lte["profile"] == "clean"
        assert (lte["baud"], lte["delay_ms"]) == (921600, 30.0)
        assert lte["serial"].startswith("/dev/pts/") and os.path.exists(lte["serial"])
        addrs = subprocess.run(["ip", "-n", "mplab", "-o", "addr"], capture_output=True,
                               text=True).stdout
        for a in ("198.18.0.1/32", "198.18.0.2/32", "198.18.1.1/24", "198.18.2.1/24"):
            assert a in addrs
        assert "198.18.1.2/24" in subprocess.run(["ip", "-n", "mplab-ref", "-o", "addr"],
                                                 capture_output=True, text=True).stdout
        assert api.sysctl("net.mptcp.enabled") == "1"
        assert api.sysctl("net.mptcp.enabled", ns="mplab-ref") == "1"
        lim = subprocess.run(["ip", "-n", "mplab", "mptcp", "limits"], capture_output=True,
                             text=True).stdout
        assert "add_addr_accepted 8" in lim and "subflows 8" in lim
        # A peer left running is ended by down too.
        api.start_peer("server", port=5999, recv=True)
    finally:
        r1 = cli("down")
        r2 = cli("down")
    assert r1.returncode == 0 and r2.returncode == 0, r1.stderr + r2.stderr
    assert leftovers() == []
    r = cli("status")
    assert r.returncode == 3 and "DOWN" in r.stdout


def test_commands_fail_clearly_when_down():
    need_root()
    labmod.down()
    for args in (("link", "wifi", "down"), ("peer", "client", "--connect", "198.18.0.1:1",
                                            "--recv"), ("device", "--", "--recv")):
        r = cli(*args)
        assert r.returncode == 2 and "lab not up: run mptcp-lab up" in r.stderr, (args, r)


@pytest.mark.parametrize("profile", ["clean", "lossy"])
def test_kernel_transfer_through_emulator(profile, tmp_path):
    """The reference kernel client sends 8 MiB to a kernel server through the emulator."""
    l = bring_up(profile)
    try:
        st = api.status()["links"]["wifi"]
        if profile == "lossy":
            assert st["uplink"]["params"]["loss"] == 2.0 and st["uplink"]["params"]["delay"] == 10
        before = l.nstat()
        srv = l.start_peer("server", port=5101, recv=True, once=True)
        with l.capture(str(tmp_path / "lab.pcap")) as pcap:
            rc, res, err = l.run_ref(["--connect", "%s:5101" % SERVER_ADDR, "--send", "8M"],
                                     timeout=120)
            got = srv.wait(60)
        assert rc == 0, err
        assert res["bytes"] == got["bytes"] == 8 << 20
        assert res["sha256"] == got["sha256"]
        assert res["mptcp"] is True and got["mptcp"] is True
        assert res["subflows"] and res["subflows"][0]["link"] == "wifi"
        after = l.nstat()
        assert after["MPTcpExtMPCapableSYNRX"] > before["MPTcpExtMPCapableSYNRX"]
        d = api.nstat_delta(before, after)
        for bad in ("MPTcpExtMPCapableFallbackACK", "MPTcpExtMPCapableFallbackSYNACK",
                    "MPTcpExtDSSNotMatching", "MPTcpExtDataCsumErr"):
            assert d[bad] == 0, (bad, d[bad])
        assert os.path.getsize(pcap) > 8 << 20 // 1500 * 40   # really captured the transfer
        warns = l.mptcp_expert_warnings(pcap)
        assert warns == [], warns
        ctr = api.status()["links"]["wifi"]["uplink"]["counters"]
        assert ctr["forwarded_bytes"] > 8 << 20
        if profile == "lossy":
            assert ctr["dropped"]["loss"]["pkts"] > 0
        else:
            assert sum(v["pkts"] for v in ctr["dropped"].values()) == 0
    finally:
        labmod.down()


def test_link_down_stops_traffic_and_up_resumes(lab):
    lab.link_set("wifi", rate="8mbit")
    srv = lab.start_peer("server", port=5102, recv=True, once=True)
    ref = lab.start_ref(["--connect", "%s:5102" % SERVER_ADDR, "--send", "3M"])

    def fwd():
        w = api.status()["links"]["wifi"]
        return w["uplink"]["counters"]["forwarded_pkts"], w["downlink"]["counters"]["forwarded_pkts"]

    time.sleep(0.8)
    lab.link("wifi", "down")
    assert api.status()["links"]["wifi"]["state"] == "down"
    time.sleep(0.2)
    a = fwd()
    time.sleep(1.5)
    b = fwd()
    assert a == b, "packets forwarded while the link was down: %s -> %s" % (a, b)
    assert api.status()["links"]["wifi"]["uplink"]["counters"]["dropped"]["down"]["pkts"] > 0
    assert ref.proc.poll() is None, "transfer should be stalled, not finished"
    lab.link("wifi", "up")
    res = ref.wait(60)
    got = srv.wait(30)
    assert res["sha256"] == got["sha256"] and got["bytes"] == 3 << 20
    assert fwd()[0] > b[0]


def test_link_set_visible_in_status(lab):
    r = cli("link", "wifi", "set", "rate=20mbit", "delay=20ms", "jitter=2ms", "loss=2")
    assert r.returncode == 0, r.stderr
    st = json.loads(cli("status", "--json").stdout)["links"]["wifi"]
    for d in ("uplink", "downlink"):
        p = st[d]["params"]
        assert (p["rate"], p["delay"], p["jitter"], p["loss"]) == (20_000_000, 20.0, 2.0, 2.0)
    r = cli("link", "wifi", "set", "loss=0", "--dir", "up")
    assert r.returncode == 0, r.stderr
    st = json.loads(cli("status", "--json").stdout)["links"]["wifi"]
    assert st["uplink"]["params"]["loss"] == 0 and st["downlink"]["params"]["loss"] == 2.0
    r = cli("link", "wifi", "set", "bogus=1")
    assert r.returncode == 2 and "unknown setting" in r.stderr
    r = cli("link", "lte", "set", "bogus=1")
    assert r.returncode == 2 and "unknown setting" in r.stderr
    r = cli("link", "lte", "set", "baud=115200", "delay=75ms")
    assert r.returncode == 0, r.stderr
    st = json.loads(cli("status", "--json").stdout)["links"]["lte"]
    assert (st["baud"], st["delay_ms"], st["profile"]) == (115200, 75.0, "custom")
    r = cli("link", "lte", "down")
    assert r.returncode == 0, r.stderr
    assert json.loads(cli("status", "--json").stdout)["links"]["lte"]["state"] == "down"
    r = cli("link", "lte", "up")
    assert r.returncode == 0, r.stderr
    r = cli("up", "--lte", "clean")
    assert r.returncode == 0, r.stderr
    st = json.loads(cli("status", "--json").stdout)["links"]["lte"]
    assert (st["baud"], st["delay_ms"], st["state"]) == (921600, 30.0, "up")


def _icmp_echo(seq):
    def csum(b):
        s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
        s = (s >> 16) + (s & 0xFFFF)
        return ~(s + (s >> 16)) & 0xFFFF
    icmp = struct.pack("!BBHHH", 8, 0, 0, 0x4C41, seq) + b"mptcp-lab!"
    icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), seq, 0, 64, 1, 0,
                     socket.inet_aton("198.18.1.2"), socket.inet_aton(SERVER_ADDR))
    return ip[:10] + struct.pack("!H", csum(ip)) + ip[12:] + icmp


def test_device_side_udp(lab):
    """A device process reaches the peer namespace with IP-in-UDP to 127.0.0.1:47001."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2.0)
    try:
        s.bind(("127.0.0.1", 0))
        s.sendto(b"", ("127.0.0.1", 47001))           # hello: the emulator learns our address
        me = "udp:127.0.0.1:%d" % s.getsockname()[1]
        deadline = time.monotonic() + 2
        while api.status()["links"]["wifi"]["device_side"] != me:
            assert time.monotonic() < deadline, "hello not registered"
            time.sleep(0.01)
        pkt = _icmp_echo(1)
        s.sendto(pkt + bytes(1500 - len(pkt)), ("127.0.0.1", 47001))   # padded: trimmed
        reply, addr = s.recvfrom(2048)
        assert addr == ("127.0.0.1", 47001)
        assert len(reply) == 1500, "downlink datagrams are padded to 1500 bytes"
        assert struct.unpack("!H", reply[2:4])[0] == len(pkt)
        assert socket.inet_ntoa(reply[12:16]) == SERVER_ADDR and reply[20] == 0   # echo reply
        w = api.status()["links"]["wifi"]
        assert w["uplink"]["counters"]["dropped"]["bad"]["pkts"] == 0
        # with a delay (its timing is checked on the model's clock in tests/host) the echo
        # still comes back, the right one, and the delay is what status reports
        lab.link_set("wifi", delay="30ms")
        w = api.status()["links"]["wifi"]
        assert w["uplink"]["params"]["delay"] == w["downlink"]["params"]["delay"] == 30.0, w
        s.sendto(_icmp_echo(2), ("127.0.0.1", 47001))
        reply, _ = s.recvfrom(2048)
        assert reply[20] == 0 and struct.unpack("!H", reply[26:28])[0] == 2, reply[:28].hex()
        lab.link("wifi", "down")
        s.sendto(_icmp_echo(3), ("127.0.0.1", 47001))
        from mptcp_lab.common import CTL_DOWN
        s.settimeout(0.5)
        with pytest.raises(socket.timeout):      # only link-down frames, no echo reply
            while True:
                d, _ = s.recvfrom(2048)
                assert d.startswith(CTL_DOWN), d[:28].hex()
    finally:
        s.close()


def test_device_command(lab, tmp_path, monkeypatch):
    """`mptcp-lab device` runs mptcp_apps.perf with the lab env; a missing app is a clear error."""
    from mptcp_lab import device
    assert device.heap_of(["--recv", "--heap", "64k"]) == "64k"
    assert device.heap_of(["--recv"]) == "384k"
    argv, env = device.command(["--recv", "--heap", "64k"], "source")
    assert argv[1:3] == ["-X", "heapsize=64k"] and argv[-3:] == ["--recv", "--heap", "64k"]
    assert argv[3:5] == ["-m", "mptcp_apps.perf"]
    assert env["MPTCP_LAB_WIFI"] == "127.0.0.1:47001"
    assert env["MICROPYPATH"].split(":")[0].endswith("firmware")
    monkeypatch.setattr(device, "REPO", str(tmp_path))      # a checkout without the app
    for runtime, words in (("source", "(not written yet?)"), ("mpy", "(run make build)")):
        with pytest.raises(device.LabError) as e:
            device.command(["--recv"], runtime)
        assert "perf app not found: %s" % tmp_path in str(e.value) and words in str(e.value)


def _frames(s, n, timeout=3.0):
    """The next n datagrams on `s` (each must be a 1500-byte frame)."""
    out = []
    s.settimeout(timeout)
    for _ in range(n):
        d, _ = s.recvfrom(2048)
        assert len(d) == 1500, len(d)
        out.append(d)
    return out


def test_wifi_down_signals_the_udp_device_and_loss_is_silent(lab):
    """`link wifi down` tells a UDP device (CTL_DOWN frames: at once, repeated, answering a
    hello); `up` sends CTL_UP; `set loss=100` sends nothing."""
    from mptcp_lab.common import CTL_DOWN, CTL_UP
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", 0))
        s.sendto(b"", ("127.0.0.1", 47001))
        me = "udp:127.0.0.1:%d" % s.getsockname()[1]
        deadline = time.monotonic() + 2
        while api.status()["links"]["wifi"]["device_side"] != me:
            assert time.monotonic() < deadline, "hello not registered"
            time.sleep(0.01)
        lab.link_set("wifi", loss="100")
        s.sendto(_icmp_echo(1), ("127.0.0.1", 47001))
        with pytest.raises(socket.timeout):
            _frames(s, 1, timeout=1.5)           # silent: no reply, no control frame
        lab.link_set("wifi", loss="0")
        lab.link("wifi", "down")
        a, b = _frames(s, 2)                     # the change, then the repeat
        assert a.startswith(CTL_DOWN) and b.startswith(CTL_DOWN)
        assert a[len(CTL_DOWN):] == bytes(1500 - len(CTL_DOWN))
        s.sendto(b"", ("127.0.0.1", 47001))      # a device starting now is told at once
        assert _frames(s, 1)[0].startswith(CTL_DOWN)
        lab.link("wifi", "up")
        frames = _frames(s, 3)
        ups = [f for f in frames if f.startswith(CTL_UP)]
        assert ups and frames[-1].startswith(CTL_UP), [f[:16] for f in frames]
        s.sendto(_icmp_echo(2), ("127.0.0.1", 47001))
        while True:                              # the echo reply comes back once up
            d = _frames(s, 1)[0]
            if d[0] == 0x45:
                break
            assert d.startswith(CTL_UP)
        assert socket.inet_ntoa(d[12:16]) == SERVER_ADDR and d[20] == 0
        w = api.status()["links"]["wifi"]
        assert w["state_changes"] == 2 and w["ctl_sent"] >= 5
    finally:
        s.close()


def test_scheduled_outage_happens_in_the_emulator(lab):
    """`link wifi down --at 1 --for 2` returns at once; the emulator takes the link down
    then up on its own clock while a reference transfer runs: `down` drops rise during
    the outage and not after, the transfer completes (SHA-256)."""
    lab.link_set("wifi", rate="8mbit")           # 3 MiB take > 3 s: the outage falls inside
    srv = lab.start_peer("server", port=5103, recv=True, once=True)
    ref = lab.start_ref(["--connect", "%s:5103" % SERVER_ADDR, "--send", "3M"])
    r = cli("link", "wifi", "down", "--at", "1", "--for", "2")
    assert r.returncode == 0, r.stderr
    st = json.loads(cli("status", "--json").stdout)
    pend = st["schedule"]["pending"]
    assert [(e["link"], e["action"]) for e in pend] == [("wifi", "down"), ("wifi", "up")], pend
    assert pend[1]["in_s"] - pend[0]["in_s"] == pytest.approx(2.0, abs=0.01)

    def wifi():
        return api.status()["links"]["wifi"]

    def down_drops(w):
        return w["uplink"]["counters"]["dropped"]["down"]["pkts"] + \
            w["downlink"]["counters"]["dropped"]["down"]["pkts"]

    deadline = time.monotonic() + 30
    while True:
        w = wifi()
        if w["state"] == "down":
            break
        assert down_drops(w) == 0, "drops before the outage"
        assert time.monotonic() < deadline, "the scheduled outage never started"
        time.sleep(0.02)
    while wifi()["state"] != "up":
        assert time.monotonic() < deadline, "the scheduled outage never ended"
        time.sleep(0.02)
    w1 = wifi()
    assert down_drops(w1) > 0, "nothing was dropped during the outage"
    res = ref.wait(60)
    got = srv.wait(30)
    assert res["sha256"] == got["sha256"] and got["bytes"] == 3 << 20
    w2 = wifi()
    assert down_drops(w2) == down_drops(w1), "drops after the outage ended"
    assert w2["uplink"]["counters"]["forwarded_pkts"] > w1["uplink"]["counters"]["forwarded_pkts"]
    sch = api.status()["schedule"]
    assert sch["pending"] == []
    done = sch["done"][-2:]
    assert [d["action"] for d in done] == ["down", "up"] and all("error" not in d for d in done)
    assert all(d["ran_after_s"] >= d["due_after_s"] for d in done), done


def test_schedule_file_and_malformed_file(lab, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"at": 1, "link": "wifi", "action": "down", "for": 3}]')
    r = cli("schedule", str(bad))
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "entry 1: unknown key(s) for" in r.stderr
    good = tmp_path / "plan.txt"
    good.write_text("600 wifi down\n610 wifi up\n605 lte set baud=115200\n")
    r = cli("schedule", str(good))
    assert r.returncode == 0, r.stderr
    pend = json.loads(cli("status", "--json").stdout)["schedule"]["pending"]
    assert [(e["link"], e["action"]) for e in pend] == \
        [("wifi", "down"), ("lte", "set"), ("wifi", "up")]
    assert pend[1]["settings"] == {"baud": 115200}
    r = cli("schedule", "--clear")
    assert r.returncode == 0, r.stderr
    assert json.loads(cli("status", "--json").stdout)["schedule"]["pending"] == []


def test_ref_uses_both_links(lab):
    """The reference kernel device with --links wifi,lte: two subflows (one per link), both
    links carry bytes through the emulator, the server saw an MP_JOIN; link lte down cuts
    the ref's LTE path."""
    lab.link_set("wifi", rate="4mbit", delay="10ms")    # LTE (737 kbit/s) gets a share
    before = lab.nstat()
    srv = lab.start_peer("server", port=5104, recv=True, once=True)
    rc, res, err = lab.run_ref(["--connect", "%s:5104" % SERVER_ADDR, "--send", "2M",
                                "--links", "wifi,lte"], timeout=120)
    got = srv.wait(60)
    assert rc == 0, err
    assert res["sha256"] == got["sha256"] and got["bytes"] == res["bytes"] == 2 << 20
    assert res["mptcp"] is True
    links = sorted(sf["link"] for sf in res["subflows"])
    assert links == ["lte", "wifi"], res["subflows"]
    for sf in res["subflows"]:
        assert sf["bytes_tx"] > 64 << 10, sf
    st = api.status()["links"]
    assert st["wifi"]["uplink"]["counters"]["forwarded_bytes"] > 64 << 10
    ref = st["lte"]["ref"]
    assert ref["uplink"]["counters"]["forwarded_bytes"] > 64 << 10, ref
    assert ref["uplink"]["params"]["rate"] == st["lte"]["baud"] * 8 // 10
    assert ref["uplink"]["params"]["delay"] == st["lte"]["delay_ms"]
    d = api.nstat_delta(before, lab.nstat())
    assert d["MPTcpExtMPJoinSynRx"] >= 1, d
    # --links wifi alone: one subflow
    srv = lab.start_peer("server", port=5105, recv=True, once=True)
    rc, res, err = lab.run_ref(["--connect", "%s:5105" % SERVER_ADDR, "--send", "256K",
                                "--links", "wifi"], timeout=60)
    assert rc == 0, err
    assert [sf["link"] for sf in res["subflows"]] == ["wifi"]
    assert srv.wait(30)["sha256"] == res["sha256"]
    # link lte down: the ref's LTE path drops (reason "down")
    lab.link("lte", "down")
    subprocess.run(["ip", "netns", "exec", "mplab-ref", sys.executable, "-c",
                    "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                    "s.bind(('198.18.2.2', 0)); [s.sendto(b'x', ('198.18.0.1', 9)) "
                    "for _ in range(5)]"], check=True, timeout=30)
    deadline = time.monotonic() + 5
    while api.status()["links"]["lte"]["ref"]["uplink"]["counters"]["dropped"]["down"]["pkts"] < 5:
        assert time.monotonic() < deadline, api.status()["links"]["lte"]["ref"]
        time.sleep(0.02)
    lab.link("lte", "up")
