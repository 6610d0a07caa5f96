"""Trial report computations from an event list (the device agent's stream, or the kernel
reference side's sampled equivalent): goodput series, stalls, handover gaps, per-link bytes.

Events are dicts {"t": ms since the agent started, "ev": kind, ...} as firmware/mptcp_apps/trial.py
streams them. A handover gap is the time from a link loss (a scheduled cut, or a link-down
event the device saw) to the next application progress: the end of the first pause in
progress (a `resume` event, or a `stall` never resumed) that covers the cut.
"""

STALL_MS = 200
GRACE_MS = 1000     # a pause that begins this soon after a cut belongs to it (in-flight data)
MERGE_MS = 2000     # a link-down event this soon after a scheduled cut of that link is the same cut
FLOWS = ("bulk", "interactive", "telemetry")


def end_time(events):
    """The last time in the stream (the summary's t when present)."""
    t = 0
    for e in events:
        if isinstance(e.get("t"), (int, float)) and e["t"] > t:
            t = e["t"]
    return t


def start_time(events):
    """t of the `start` event (traffic begins; the schedule's clock starts), else 0."""
    for e in events:
        if e.get("ev") == "start":
            return e["t"]
    return 0


def pauses(events, flow=None):
    """Pauses in application progress: [{"flow", "from", "to", "ms", "open"}], from `resume`
    events (a pause >= 50 ms that ended) and `stall` events (> 200 ms; open if never resumed,
    then it lasts until the end of the stream)."""
    out = []
    ends = {}
    for e in events:
        if e.get("ev") == "resume" and (flow is None or e.get("flow") == flow):
            p = {"flow": e["flow"], "from": e["since"], "to": e["t"],
                 "ms": e["t"] - e["since"], "open": False}
            out.append(p)
            ends[(e["flow"], e["since"])] = p
    t_end = end_time(events)
    for e in events:
        if e.get("ev") == "stall" and (flow is None or e.get("flow") == flow):
            if (e["flow"], e["since"]) in ends:
                continue
            if any(p["flow"] == e["flow"] and p["from"] <= e["since"] < p["to"] for p in out):
                continue
            out.append({"flow": e["flow"], "from": e["since"], "to": t_end,
                        "ms": t_end - e["since"], "open": True})
    out.sort(key=lambda p: (p["from"], p["flow"]))
    return out


def stalls(events):
    """Pauses longer than STALL_MS (no progress while work was pending)."""
    return [p for p in pauses(events) if p["ms"] > STALL_MS]


def cut_times(events, schedule_cuts=(), t0=None):
    """[(t_ms, link, source)]: the scenario's cuts ((at_s, link, how) from
    trial_scenario.cuts, placed at t0 + at) and link-down events not already one of them."""
    if t0 is None:
        t0 = start_time(events)
    out = [(t0 + int(round(at * 1000)), link, "schedule:" + how) for at, link, how in schedule_cuts]
    for e in events:
        if e.get("ev") == "link" and e.get("state") == "down":
            if any(link == e["link"] and 0 <= e["t"] - t <= MERGE_MS for t, link, _ in out):
                continue
            out.append((e["t"], e["link"], "event"))
    out.sort()
    return out


def _progress_after(events, flow, t):
    """Did `flow` make progress after t (a sample with app bytes, a response, a done ok)?"""
    for e in events:
        if e.get("t", -1) <= t:
            continue
        ev = e.get("ev")
        if ev == "resp" and e.get("flow") == flow:
            return True
        if ev == "done" and e.get("flow") == flow and e.get("ok"):
            return True
        if ev == "sample" and e.get("app", 0) > 0:
            return True
    return False


def main_flow(events):
    """The flow the gaps are measured on: bulk if present, else interactive, else telemetry."""
    seen = set()
    for e in events:
        if e.get("flow"):
            seen.add(e["flow"])
    for e in events:
        if e.get("ev") == "start" and isinstance(e.get("flows"), int):
            for i, name in enumerate(FLOWS):
                if e["flows"] & (1 << i):
                    seen.add(name)
    for f in FLOWS:
        if f in seen:
            return f
    return None


def flow_at(events, t):
    """The flow a cut at t is measured on: bulk while it runs (no `done` before t), else the
    interactive flow, else telemetry (the flows the start event or any event names)."""
    flows = set()
    done = set()
    for e in events:
        if e.get("ev") == "start" and isinstance(e.get("flows"), int):
            flows.update(n for i, n in enumerate(FLOWS) if e["flows"] & (1 << i))
        elif e.get("flow") in FLOWS:
            flows.add(e["flow"])
            if e.get("ev") == "done" and e.get("t", 0) <= t:
                done.add(e["flow"])
    for f in FLOWS:
        if f in flows and f not in done:
            return f
    return main_flow(events)


def handover_gaps(events, schedule_cuts=(), t0=None, flow=None):
    """Per cut: {"at_ms", "link", "source", "flow", "gap_ms", "note"}. gap_ms: the end of
    the pause covering the cut minus the cut; 0 when progress went on (no pause >= 50 ms);
    None when there was no progress after the cut at all. The flow is `flow`, or the one
    running at the cut (flow_at)."""
    out = []
    for t, link, source in cut_times(events, schedule_cuts, t0):
        fl = flow or flow_at(events, t)
        ps = pauses(events, fl)
        g = {"at_ms": t, "link": link, "source": source, "flow": fl, "gap_ms": None,
             "note": ""}
        hit = None
        for p in ps:
            if p["to"] > t and p["from"] <= t + GRACE_MS:
                hit = p
                break
        if hit is not None and not hit["open"]:
            g["gap_ms"] = hit["to"] - t
            g["note"] = "pause %d ms from %d" % (hit["ms"], hit["from"])
        elif hit is not None:
            g["note"] = "no progress after the cut (stalled to the end)"
        elif _progress_after(events, fl, t):
            g["gap_ms"] = 0
            g["note"] = "progress went on (no pause >= 50 ms)"
        else:
            g["note"] = "no progress after the cut"
        out.append(g)
    return out


def gap_stats(gaps):
    vals = [g["gap_ms"] for g in gaps if g["gap_ms"] is not None]
    if not vals:
        return {"n": 0, "unrecovered": len(gaps)}
    vals.sort()
    return {"n": len(vals), "min_ms": vals[0], "max_ms": vals[-1],
            "avg_ms": round(sum(vals) / len(vals), 1), "median_ms": vals[len(vals) // 2],
            "unrecovered": len(gaps) - len(vals)}


def goodput(events, links=("wifi", "lte")):
    """{"t": [s], link: [bytes/s], ..., "app": [bytes/s]} from the sample events (bytes in
    each interval over its length)."""
    out = {"t": [], "app": []}
    for ln in links:
        out[ln] = []
    for e in events:
        if e.get("ev") != "sample":
            continue
        ms = e.get("ms") or 1
        out["t"].append(e["t"] / 1000.0)
        for ln in links:
            out[ln].append(e.get(ln, 0) * 1000.0 / ms)
        out["app"].append(e.get("app", 0) * 1000.0 / ms)
    return out


def link_bytes(events):
    """Bytes per link over the run (sum of the samples' per-interval bytes)."""
    out = {}
    for e in events:
        if e.get("ev") == "sample":
            for ln in ("wifi", "lte"):
                if ln in e:
                    out[ln] = out.get(ln, 0) + e[ln]
    return out


def counter_totals(events):
    """Counter name -> total delta seen in `counter` events."""
    out = {}
    for e in events:
        if e.get("ev") == "counter":
            out[e["name"]] = out.get(e["name"], 0) + e.get("delta", 0)
    return out


def marks(events, kinds=("link", "sf_up", "sf_down", "counter", "stall")):
    """Events worth a marker on the timeline: [(t_s, label)]."""
    out = []
    for e in events:
        ev = e.get("ev")
        if ev not in kinds:
            continue
        if ev == "link":
            label = "%s %s" % (e["link"], e["state"])
        elif ev in ("sf_up", "sf_down"):
            label = "subflow %s %s" % (e.get("link"), "up" if ev == "sf_up" else "closed")
        elif ev == "counter":
            if e["name"] not in ("LinkDown", "RmSubflow", "SubflowRecreate", "MPTCPReinject",
                                 "MPPrioTx", "MPPrioRx"):
                continue
            label = "%s +%d" % (e["name"], e.get("delta", 0))
        else:
            label = "stall %s" % e.get("flow")
        out.append((e["t"] / 1000.0, label))
    return out


def mark_groups(marks, within_s=1.0):
    """Marks within within_s of a group's first mark as one group, so the timeline writes
    one label per group instead of a pile: [(t_first, t_last, [label, ...])]. Repeated labels are counted ("subflow wifi
    closed x3"), counter deltas of one name added ("MPTCPReinject +12"), first seen first."""
    groups = []
    for t, label in sorted(marks, key=lambda m: m[0]):
        if groups and t - groups[-1][0] <= within_s:
            groups[-1][1] = t
            groups[-1][2].append(label)
        else:
            groups.append([t, t, [label]])
    out = []
    for t0, t1, labels in groups:
        order, count, delta = [], {}, {}
        for lb in labels:
            name, _, num = lb.rpartition(" +")
            key = name if name and num.isdigit() else lb
            if key not in count:
                order.append(key)
                count[key] = 0
                delta[key] = None
            count[key] += 1
            if key != lb:
                delta[key] = (delta[key] or 0) + int(num)
        out.append((t0, t1, ["%s +%d" % (k, delta[k]) if delta[k] is not None else
                             (k if count[k] == 1 else "%s x%d" % (k, count[k]))
                             for k in order]))
    return out


def side(events, summary=None, schedule_cuts=(), t0=None):
    """The report of one side (device or kernel reference): everything computed."""
    gaps = handover_gaps(events, schedule_cuts, t0)
    return {"summary": summary, "link_bytes": link_bytes(events),
            "handover_gaps": gaps, "gap_stats": gap_stats(gaps), "stalls": stalls(events),
            "counters": counter_totals(events), "start_ms": start_time(events) if t0 is None else t0,
            "events": events}
