"""mptcp-trial's report computations on a synthetic event list: gaps, stalls, goodput,
per-link bytes; the PNG writer; the live view's text."""
import os

from mptcp_tools import trial_png, trial_report as R, trial_view

# traffic starts at 500 ms; the schedule cuts Wi-Fi at 2 s (-> 2500 ms); the device sees the
# link go down at 2510 ms; the bulk flow pauses from 2480 to 3300 ms; a second, silent cut at
# 6 s (6500 ms) is absorbed without a pause; telemetry stalls from 7000 ms to the end.
EVENTS = [
    {"t": 10, "ev": "link", "link": "wifi", "state": "up"},
    {"t": 500, "ev": "start", "flows": 5},
    {"t": 600, "ev": "sf_up", "link": "wifi", "id": 1, "flow": "bulk", "join": False},
    {"t": 700, "ev": "sample", "ms": 100, "wifi": 25000, "lte": 0, "app": 20000, "subflows": 1},
    {"t": 800, "ev": "sample", "ms": 100, "wifi": 20000, "lte": 5000, "app": 24000, "subflows": 2},
    {"t": 2510, "ev": "link", "link": "wifi", "state": "down"},
    {"t": 2520, "ev": "counter", "name": "LinkDown", "delta": 1, "value": 1},
    {"t": 2700, "ev": "stall", "flow": "bulk", "since": 2480},
    {"t": 3300, "ev": "resume", "flow": "bulk", "idle_ms": 820, "since": 2480},
    {"t": 3300, "ev": "sample", "ms": 100, "wifi": 0, "lte": 9000, "app": 8000, "subflows": 1},
    {"t": 3350, "ev": "resume", "flow": "interactive", "idle_ms": 60, "since": 3290},
    {"t": 6600, "ev": "sample", "ms": 200, "wifi": 0, "lte": 10000, "app": 9000, "subflows": 1},
    {"t": 7250, "ev": "stall", "flow": "telemetry", "since": 7000},
    {"t": 8000, "ev": "done", "flow": "bulk", "bytes": 61000, "ok": True},
]
SCHEDULE_CUTS = [(2.0, "wifi", "down"), (6.0, "lte", "loss")]


def test_pauses_and_stalls():
    ps = R.pauses(EVENTS)
    assert [(p["flow"], p["from"], p["to"], p["open"]) for p in ps] == [
        ("bulk", 2480, 3300, False), ("interactive", 3290, 3350, False),
        ("telemetry", 7000, 8000, True)]
    st = R.stalls(EVENTS)
    assert [(p["flow"], p["ms"]) for p in st] == [("bulk", 820), ("telemetry", 1000)]


def test_handover_gaps():
    cuts = R.cut_times(EVENTS, SCHEDULE_CUTS)
    # the device's link-down at 2510 is the scheduled cut at 2500, not a second one
    assert cuts == [(2500, "wifi", "schedule:down"), (6500, "lte", "schedule:loss")]
    gaps = R.handover_gaps(EVENTS, SCHEDULE_CUTS)
    assert [g["flow"] for g in gaps] == ["bulk", "bulk"]
    assert gaps[0]["gap_ms"] == 800          # 3300 - 2500
    assert gaps[1]["gap_ms"] == 0            # progress went on after the silent cut
    assert R.gap_stats(gaps) == {"n": 2, "min_ms": 0, "max_ms": 800, "avg_ms": 400.0,
                                 "median_ms": 800, "unrecovered": 0}
    # without the schedule, the link-down event is the cut
    g2 = R.handover_gaps(EVENTS)
    assert [(g["at_ms"], g["source"], g["gap_ms"]) for g in g2] == [(2510, "event", 790)]


def test_gap_unrecovered_when_no_progress_follows():
    ev = [{"t": 0, "ev": "start", "flows": 1},
          {"t": 1000, "ev": "link", "link": "wifi", "state": "down"},
          {"t": 1300, "ev": "stall", "flow": "bulk", "since": 1000},
          {"t": 5000, "ev": "done", "flow": "bulk", "bytes": 1, "ok": False}]
    g = R.handover_gaps(ev)
    assert len(g) == 1 and g[0]["gap_ms"] is None
    assert R.gap_stats(g) == {"n": 0, "unrecovered": 1}


def test_goodput_and_link_bytes():
    g = R.goodput(EVENTS)
    assert g["t"] == [0.7, 0.8, 3.3, 6.6]
    assert g["wifi"] == [250000.0, 200000.0, 0.0, 0.0]
    assert g["lte"] == [0.0, 50000.0, 90000.0, 50000.0]
    assert R.link_bytes(EVENTS) == {"wifi": 45000, "lte": 24000}
    assert R.counter_totals(EVENTS) == {"LinkDown": 1}
    labels = [m[1] for m in R.marks(EVENTS)]
    assert "wifi down" in labels and "LinkDown +1" in labels and "stall bulk" in labels


def test_png_written(tmp_path):
    path = str(tmp_path / "t.png")
    cuts = R.cut_times(EVENTS, SCHEDULE_CUTS)
    trial_png.write(path, [("device", EVENTS, cuts, [(5500, "wifi")]),
                           ("kernel", EVENTS[:6], cuts)], "test")
    with open(path, "rb") as f:
        head = f.read(8)
    assert head == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(path) > 5000


def test_view_render():
    st = trial_view.State("demo", ["wifi", "lte"], expected_s=None, bulk_bytes=100000)
    for ev in EVENTS[:7]:
        st.update(ev)
    text = trial_view.render(st, color=False)
    lines = text.splitlines()
    assert lines[0] == "mptcp-trial: demo   t=2.5s"
    assert lines[1].split() == ["wifi", "DOWN", "1.60", "Mbit/s"]   # last sample: 20000 B/100 ms
    assert lines[2].split() == ["lte", "?", "400.0", "kbit/s"]
    assert "subflows 2   app 43.0 KiB of 97.7 KiB" in lines[3]
    assert lines[4].strip() == "[#############.................]  44%"
    assert "   2.51s link wifi DOWN" in text and "LinkDown +1 (= 1)" in text
    assert "sample" not in text
    st.update({"t": 9000, "ev": "summary", "ok": True})
    assert "100%" in trial_view.render(st, color=False)
    colored = trial_view.render(st, color=True)
    assert "\x1b[31mDOWN\x1b[0m" in colored


def test_live_plain_lines():
    import io
    st = trial_view.State("demo", ["wifi"], bulk_bytes=1000)
    out = io.StringIO()
    live = trial_view.Live(st, out, tty=False)
    for ev in EVENTS[:6]:
        live.update(ev)
    text = out.getvalue()
    assert "\x1b[" not in text
    assert "link wifi DOWN" in text and "subflow #1 up on wifi (bulk)" in text


def test_gap_measured_on_the_flow_running_at_the_cut():
    ev = [{"t": 0, "ev": "start", "flows": 3},
          {"t": 900, "ev": "done", "flow": "bulk", "bytes": 10, "ok": True},
          {"t": 1000, "ev": "link", "link": "wifi", "state": "down"},
          {"t": 1400, "ev": "resume", "flow": "interactive", "idle_ms": 500, "since": 950},
          {"t": 1500, "ev": "resp", "flow": "interactive", "latency_ms": 550}]
    g = R.handover_gaps(ev)
    assert [(x["flow"], x["gap_ms"]) for x in g] == [("interactive", 400)]
    assert R.flow_at(ev, 500) == "bulk"


def test_close_marks_become_one_label_with_counts_and_sums():
    marks = [(5.2, "wifi down"), (5.0, "MPTCPReinject +6"), (5.3, "subflow wifi closed"),
             (5.4, "MPTCPReinject +6"), (5.5, "subflow wifi closed"), (5.9, "RmSubflow +3"),
             (15.1, "wifi up"), (15.3, "subflow wifi up"), (21.0, "subflow lte closed")]
    assert R.mark_groups(marks) == [
        (5.0, 5.9, ["MPTCPReinject +12", "wifi down", "subflow wifi closed x2", "RmSubflow +3"]),
        (15.1, 15.3, ["wifi up", "subflow wifi up"]),
        (21.0, 21.0, ["subflow lte closed"])]
    # a group spans at most within_s from its first mark (a long burst is cut into several)
    assert R.mark_groups([(1.0, "a"), (1.8, "b"), (2.5, "c")], within_s=1.0) == [
        (1.0, 1.8, ["a", "b"]), (2.5, 2.5, ["c"])]
    assert R.mark_groups([]) == []
