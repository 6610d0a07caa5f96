"""mptcp-trial on the virtual board (what `make demo` does, shorter): mptcp-flash writes the
unix_lab bundle onto a fresh virtual board, the trial starts that board inside the lab
(--vboard DIR) and drives the agent over its console; the report must show the Wi-Fi cut and
return (link down/up events), a subflow re-joined on Wi-Fi, the bulk transfer intact
(SHA-256 equal at both ends) and a real PNG timeline.
By hand: flock /tmp/mplab.lock .venv/bin/python -m pytest -q tests/interop/test_trial_vboard.py"""
import io
import json
import os
import struct

import pytest

from mptcp_tools import flash, vboard
from mptcp_tools.trial import run_trial

SCENARIO = {
    "name": "interop_vboard_handover",
    "links": {"wifi": "slow", "lte": "clean"},
    "schedule": [{"at": 2, "link": "wifi", "action": "down"},
                 {"at": 4, "link": "wifi", "action": "up"}],
    "traffic": [{"type": "bulk", "bytes": "768K", "direction": "up"},
                {"type": "interactive", "bytes": 64, "every_ms": 250}],
    "duration": 7,
    "timeout": 60,
}


def png_size(path):
    """(width, height) from a PNG's IHDR; fails on anything that is not a PNG."""
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", head
    return struct.unpack(">II", head[16:24])


def test_trial_on_flashed_virtual_board(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("interop tests need root (network namespaces, TUN): run as root")
    fs = tmp_path / "board"
    fs.mkdir()
    with vboard.running(str(fs)) as port:
        assert flash.main(["--board", "unix_lab", "--port", port]) == 0
    assert (fs / ".mptcp_manifest.json").exists() and (fs / "mptcp_apps" / "trial.mpy").exists()
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(SCENARIO))
    out = tmp_path / "report"
    view = io.StringIO()
    ok, _ = run_trial(str(path), str(out), stream=view, tty=False, vboard=str(fs))
    with open(out / "report.json") as f:
        saved = json.load(f)
    dev = saved["device"]
    summ = dev["summary"]
    assert ok and summ["ok"] and summ["rc"] == 0, (summ, view.getvalue()[-3000:])
    assert saved["runtime"].startswith("virtual board "), saved["runtime"]
    assert "virtual board" in view.getvalue()
    bc = saved["bulk_check"]
    assert bc["ok"] and bc["device"]["sha256"] == bc["peer"]["sha256"], bc
    assert bc["device"]["bytes"] == 768 * 1024
    evs = dev["events"]
    link = [(e["link"], e["state"]) for e in evs if e["ev"] == "link"]
    assert ("wifi", "down") in link and ("wifi", "up") in link, link
    assert link.index(("wifi", "down")) < len(link) - 1 - link[::-1].index(("wifi", "up"))
    t_up = max(e["t"] for e in evs if e["ev"] == "link" and e["link"] == "wifi"
               and e["state"] == "up")
    joins = [e for e in evs if e["ev"] == "sf_up" and e["link"] == "wifi" and e["t"] >= t_up]
    assert joins and all(e["join"] for e in joins), [e for e in evs if e["ev"] != "sample"]
    assert any(e["ev"] == "sf_up" and e["link"] == "lte" for e in evs)
    assert dev["counters"].get("LinkDown", 0) >= 1, dev["counters"]
    gaps = dev["handover_gaps"]
    assert gaps and gaps[0]["link"] == "wifi" and gaps[0]["gap_ms"] is not None, gaps
    assert dev["link_bytes"]["wifi"] > 0 and dev["link_bytes"]["lte"] > 0, dev["link_bytes"]
    png = out / saved["png"]
    w, h = png_size(png)
    assert w >= 400 and h >= 200 and png.stat().st_size > 20000, (w, h, png.stat().st_size)
