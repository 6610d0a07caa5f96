"""The device trial agent's pieces that need no lab: the fixed event ring (overwrites the
oldest and counts it), the console form of its events, the command line."""
from mptcp_apps import trial as T
from mptcp_apps.args import UsageError


def test_ring_fixed_and_overwrites_oldest():
    r = T.EventRing(8)
    slots = r.slots
    for i in range(11):
        r.push(i, T.K_RESP, T.INTER, 100 + i)
    assert r.slots is slots and len(r.slots) == 8
    assert r.pushed == 11 and r.dropped == 3 and r.count == 8
    got = []
    while True:
        s = r.pop()
        if s is None:
            break
        got.append((s[0], s[3]))
    assert got == [(i, 100 + i) for i in range(3, 11)]
    assert r.pop() is None


def test_event_dicts():
    d = T.event_dict([5, T.K_LINK, 1, 0, 0, 0, 0, 0])
    assert d == {"t": 5, "ev": "link", "link": "lte", "state": "down"}
    i = 0
    while T.C.NAMES[i] != "LinkDown":
        i += 1
    d = T.event_dict([7, T.K_CTR, i, 1, 3, 0, 0, 0])
    assert d == {"t": 7, "ev": "counter", "name": "LinkDown", "delta": 1, "value": 3}
    d = T.event_dict([9, T.K_SAMPLE, 100, 1000, 2000, 2500, 2, 1])
    assert d == {"t": 9, "ev": "sample", "ms": 100, "wifi": 1000, "lte": 2000, "app": 2500,
                 "subflows": 2, "pending": 1}
    d = T.event_dict([11, T.K_RESUME, T.BULK, 300, 8, 0, 0, 0])
    assert d == {"t": 11, "ev": "resume", "flow": "bulk", "idle_ms": 300, "since": 8}


def _usage(argv):
    try:
        T.parse_args(argv)
    except UsageError as e:
        return str(e)
    return None


def test_args():
    o = T.parse_args(["--connect", "198.18.0.1:5201", "--bulk", "2M", "--interactive", "64:200",
                      "--links", "wifi,lte", "--scheduler", "backup"])
    assert o["bulk"] == 2 * 1024 * 1024 and o["interactive"] == (64, 200)
    assert o["backup"] == "lte" and o["bulk_dir"] == "up"
    assert "--connect" in _usage(["--bulk", "1M"])
    assert "no traffic" in _usage(["--connect", "h:1"])
    assert "--duration" in _usage(["--connect", "h:1", "--telemetry", "8:100"])
    assert "BYTES:MS" in _usage(["--connect", "h:1", "--telemetry", "8"])
    assert "unknown link" in _usage(["--connect", "h:1", "--bulk", "1", "--links", "bt"])
    assert "up or down" in _usage(["--connect", "h:1", "--bulk", "1", "--bulk-dir", "left"])
    assert "unknown argument" in _usage(["--connect", "h:1", "--bulk", "1", "--frob", "2"])
    o = T.parse_args(["--connect", "h:1", "--bulk", "1", "--lte-baud", "115200"])
    assert o["lte_baud"] == 115200
    assert "integer" in _usage(["--connect", "h:1", "--bulk", "1", "--lte-baud", "fast"])
