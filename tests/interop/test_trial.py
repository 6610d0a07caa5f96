"""mptcp-trial end to end in the lab: a short handover scenario (8 s of request/response
over Wi-Fi + LTE with a 1 MiB bulk upload alongside, Wi-Fi cut at 2 s for 3 s) run by the device's trial
agent; the report must show the transfer intact (SHA-256 equal at both ends), the cut seen
(a LinkDown event), a handover gap computed, and the PNG timeline written.
By hand: flock /tmp/mplab.lock .venv/bin/python -m pytest -q tests/interop/test_trial.py"""
import io
import json
import os

import pytest

from mptcp_tools.trial import run_trial

SCENARIO = {
    "name": "interop_handover",
    "links": {"wifi": "slow", "lte": "clean"},
    "schedule": [{"at": 2, "link": "wifi", "action": "down"},
                 {"at": 5, "link": "wifi", "action": "up"}],
    "traffic": [{"type": "bulk", "bytes": "1M", "direction": "up"},
                {"type": "interactive", "bytes": 64, "every_ms": 250}],
    "duration": 8,
    "timeout": 120,
}


def test_trial_handover_report(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("interop tests need root (network namespaces, TUN): run as root")
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(SCENARIO))
    out = tmp_path / "report"
    view = io.StringIO()
    ok, report = run_trial(str(path), str(out), stream=view, tty=False)
    with open(out / "report.json") as f:
        saved = json.load(f)
    dev = saved["device"]
    summ = dev["summary"]
    assert ok and summ["ok"], (summ, view.getvalue()[-3000:])
    bc = saved["bulk_check"]
    assert bc["ok"] and bc["device"]["sha256"] == bc["peer"]["sha256"], bc
    assert bc["device"]["bytes"] == 1024 * 1024
    linkdown = [e for e in dev["events"] if e["ev"] == "counter" and e["name"] == "LinkDown"]
    assert linkdown, [e for e in dev["events"] if e["ev"] != "sample"]
    assert any(e["ev"] == "link" and e["link"] == "wifi" and e["state"] == "down"
               for e in dev["events"])
    gaps = dev["handover_gaps"]
    assert gaps and gaps[0]["link"] == "wifi" and gaps[0]["gap_ms"] is not None, gaps
    assert dev["gap_stats"]["n"] >= 1
    assert dev["link_bytes"]["wifi"] > 0 and dev["link_bytes"]["lte"] > 0, dev["link_bytes"]
    png = out / saved["png"]
    assert png.exists() and png.stat().st_size > 5000
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert saved["pcap"]["files"] and saved["pcap"]["mptcp_expert_warnings"] is not None
    assert "link wifi DOWN" in view.getvalue()
