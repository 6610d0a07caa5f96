"""make demo's closing table from a trial report: gaps and per-link bytes of both sides, the
time until a returned link carries data again (a lone probe does not count), both SHA-256
checks, counters of interest, and where the report and the PNG are."""
from mptcp_tools import demo


def _side(samples, gaps, counters, start_ms=100, ok=True, sha="ab" * 32):
    evs = [{"t": t, "ev": "sample", "wifi": w, "lte": 100} for t, w in samples]
    return {"events": evs, "start_ms": start_ms, "handover_gaps": [{"gap_ms": g} for g in gaps],
            "link_bytes": {"wifi": 1234567, "lte": 89}, "stalls": [{"ms": 250}],
            "counters": counters,
            "summary": {"seconds": 3.5, "t": 4000, "counters": counters,
                        "flows": {"bulk": {"ok": ok, "sha256": sha, "bytes": 10}},
                        "peer": {"sha256": sha}}}


def _report():
    sc = {"name": "s", "links": {"wifi": "slow", "lte": "clean"},
          "schedule": [{"at": 1, "link": "wifi", "action": "down"},
                       {"at": 2, "link": "wifi", "action": "up"}]}
    # device: Wi-Fi carries data from 2300 ms on (200 ms after the return at 100 + 2000)
    dev = _side([(2100, 0), (2200, 0), (2300, 5), (2400, 5), (2500, 5)], [98],
                {"LinkDown": 1, "MPTCPReinject": 7, "Unrelated": 3})
    # kernel: a lone probe at 2200, data only from 2600 on
    ref = _side([(2100, 0), (2200, 9), (2300, 0), (2400, 0), (2600, 5), (2700, 5), (2800, 5)],
                [None], {"MPTCPRetrans": 2})
    return {"scenario": sc, "device": dev, "ref": ref, "dir": "/r",
            "bulk_check": {"ok": True, "device": {"sha256": "ab" * 32, "bytes": 10},
                           "peer": {"sha256": "ab" * 32}},
            "pcap": {"mptcp_expert_warnings": 0}, "png": "timeline.png"}


def test_summary_lines():
    text = "\n".join(demo.summary(_report(), 0.5))
    row = [ln for ln in text.splitlines() if ln.startswith("link back used")][0]
    assert "wifi 200 ms" in row and "wifi 500 ms" in row, row
    gaps = [ln for ln in text.splitlines() if ln.startswith("handover gaps")][0]
    assert "98 ms" in gaps and "never recovered" in gaps, gaps
    assert "1,234,567" in text and "0.50 s" in text
    assert text.count("equal, 10 bytes") == 2
    ctr = {ln.split(":")[0].strip(): ln.split(":")[1].split() for ln in text.splitlines()
           if ln.startswith("  ") and ln[2] != " "}
    assert ctr["LinkDown"] == ["1", "0"] and ctr["MPTCPRetrans"] == ["0", "2"], ctr
    assert "Unrelated" not in ctr
    assert "/r/report.json" in text and "/r/timeline.png" in text


def test_summary_says_mismatch():
    r = _report()
    r["bulk_check"]["ok"] = False
    r["ref"]["summary"]["flows"]["bulk"]["ok"] = False
    text = "\n".join(demo.summary(r, 0.5))
    assert text.count("MISMATCH or incomplete") == 2
