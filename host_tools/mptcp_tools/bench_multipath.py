"""make bench, multipath parts (issue 8, "Measure"): the device with --links wifi,lte next to the
kernel as the device (mplab-ref, --links wifi,lte) on the same emulated links, in the same run.

aggregation: the kernel's simult_flows.sh cases (Wi-Fi + LTE at 10+10 and 10+3 Mbit/s, one-way
  delays 0/0, 1/25, 25/1 ms, Wi-Fi/LTE), device sends and device receives, plus Wi-Fi with the
  LTE serial line at its default rate. The time of a transfer is the kernel peer's in mplab
  (from accept to the end of the stream), the same clock for both devices. The device's LTE is
  PPP over a pty at `baud` = rate x 10/8 (baud/10 bytes/s); it carries PPP's framing inside that
  rate, the kernel's LTE path (a TUN at baud/10 bytes/s of IP packets) does not, and the
  device's PPP may not reach the line rate: a probe measures what it reaches (LTE alone).
handover: a Wi-Fi cut mid-transfer (device sends), signalled (`link wifi down`) and silent
  (`loss=100`); the stall is the longest gap in the server's data-level progress, from tshark's
  DSS fields in captures on wifi0 and lte0 in mplab (mp_metrics).

Nothing here asserts speed: figures and goals are printed side by side.
"""
import os
import subprocess
import sys
import time

from mptcp_tools import mp_metrics as mm

SERVER = "198.18.0.1"
DELAYS = ((0, 0), (1, 25), (25, 1))          # one-way ms, Wi-Fi / LTE
RATES = ((10, 10), (10, 3))                  # Mbit/s, Wi-Fi / LTE
LTE_DEFAULT_BAUD = 921600                    # the lab's "clean" LTE profile
LTE_DEFAULT_DELAY = 30
HANDOVER_WIFI = {"rate": "10mbit", "delay": "5ms"}
HANDOVER_SIZE = 2 * 1024 * 1024
CUT_AFTER_BYTES = 1024 * 1024                # Wi-Fi uplink IP bytes forwarded before the cut
TIMEOUT = 300

_port = [7300]


def _next_port():
    _port[0] += 1
    return _port[0]


def _log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def _set_links(lab, wifi_mbit, wifi_ms, lte_baud, lte_ms):
    lab.link_set("wifi", rate="%gmbit" % wifi_mbit if wifi_mbit else "0", delay="%gms" % wifi_ms,
                 loss="0", jitter="0ms")
    lab.link_set("lte", baud=lte_baud, delay="%gms" % lte_ms)


def _subflows(res):
    return [{k: s.get(k) for k in ("link", "bytes_tx", "bytes_rx", "rtt_ms", "retrans", "state",
                                   "join", "backup", "stale") if k in s}
            for s in (res or {}).get("subflows") or []]


def _bytes_per_link(subflows, key):
    out = {}
    for s in subflows:
        out[s["link"]] = out.get(s["link"], 0) + (s.get(key) or 0)
    return out


def transfer(lab, who, direction, size, links="wifi,lte", extra=(), during=None):
    """One transfer with the device as the client. who: "device" (MicroPython, build/unix_lab)
    or "kernel" (mplab-ref). direction: "send" (device to peer) or "recv". during(handle) runs
    while the transfer does. Returns a result dict (ok, seconds = the kernel peer's, ...)."""
    port = _next_port()
    if direction == "send":
        peer = lab.start_peer("server", port=port, mode="recv")
        mode = ["--send", str(size)]
    else:
        peer = lab.start_peer("server", port=port, mode="send", nbytes=size)
        mode = ["--recv"]
    args = ["--connect", "%s:%d" % (SERVER, port)] + mode + ["--links", links] + list(extra)
    res = {"device": who, "direction": direction, "bytes": size}
    try:
        if who == "device":
            h = lab.start_device(args + ["--timeout", str(TIMEOUT)])
            info = during(h) if during else None
            rc, dev, err = h.wait(TIMEOUT + 30)
        else:
            h = lab.start_ref(args)
            info = during(h) if during else None
            try:
                h.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                h.stop()
            rc = h.proc.returncode
            h.stop()
            from mptcp_lab.api import last_json
            dev, err = last_json(h.stdout), h.stderr
        ker = peer.wait(60)
    finally:
        peer.stop()
    ok = (rc == 0 and dev is not None and ker is not None and ker.get("bytes") == size
          and dev.get("sha256") == ker.get("sha256"))
    res.update({"ok": ok, "seconds": ker.get("seconds") if ker else None,
                "device_seconds": (dev or {}).get("seconds"), "mptcp": (dev or {}).get("mptcp"),
                "subflows": _subflows(dev)})
    if who == "device" and dev:
        res["counters"] = dev.get("counters")
    if who == "kernel" and ker:        # the kernel peer's per-subflow view of the ref
        res["peer_subflows"] = _subflows(ker)
    if info is not None:
        res["during"] = info
    if not ok:
        res["error"] = "rc=%s device=%s peer=%s %s" % (
            rc, (dev or {}).get("error"), ker and {k: ker.get(k) for k in ("bytes", "error")},
            (err or "")[-600:])
    return res


# --- aggregation -----------------------------------------------------------------------------

def _agg_size(rates, target_s):
    """Whole MiB giving an ideal time near target_s at the sum of the rates."""
    mib = max(1, int(round(sum(rates) * 1e6 / 8 * target_s / (1 << 20))))
    return mib << 20


def probe_lte(lab, baud, delay_ms):
    """What the device's PPP reaches alone at `baud`, each direction: Mbit/s of payload."""
    out = {"baud": baud, "line_mbit": round(mm.mbit_of_baud(baud), 3)}
    _set_links(lab, 0, 0, baud, delay_ms)
    size = max(256 * 1024, int(baud / 10 * 2))      # ~2 s at the line rate
    for d in ("send", "recv"):
        r = transfer(lab, "device", d, size, links="lte")
        out[d + "_mbit"] = round(size * 8 / r["seconds"] / 1e6, 3) if r["ok"] and r["seconds"] \
            else None
        if not r["ok"]:
            out[d + "_error"] = r.get("error")
    return out


def aggregation_cases(target_s=3.0):
    """The case list: simult_flows.sh's rates x delays, then Wi-Fi + the default LTE line."""
    cases = []
    for r in RATES:
        for dl in DELAYS:
            cases.append({"name": "%d+%d %d/%dms" % (r + dl), "wifi_mbit": r[0], "lte_mbit": r[1],
                          "wifi_ms": dl[0], "lte_ms": dl[1],
                          "lte_baud": mm.baud_for_mbit(r[1])})
    lte = round(mm.mbit_of_baud(LTE_DEFAULT_BAUD), 4)
    cases.append({"name": "10+PPP %d/%dms" % (0, LTE_DEFAULT_DELAY), "wifi_mbit": 10,
                  "lte_mbit": lte, "wifi_ms": 0, "lte_ms": LTE_DEFAULT_DELAY,
                  "lte_baud": LTE_DEFAULT_BAUD, "real_ppp_default": True})
    for c in cases:
        rates = (c["wifi_mbit"], c["lte_mbit"])
        c["size"] = _agg_size(rates, target_s)
        c["ideal_s"] = round(mm.ideal_seconds(c["size"], rates), 3)
        c["pass_mark_s"] = round(mm.pass_mark(c["size"], *rates), 3)
    return cases


def run_aggregation(lab, target_s=3.0, extra=()):
    cases = aggregation_cases(target_s)
    probes = []
    for baud in sorted({c["lte_baud"] for c in cases}):
        _log("aggregation: LTE probe at %d baud ..." % baud)
        probes.append(probe_lte(lab, baud, 0))
    by_baud = {p["baud"]: p for p in probes}
    runs = []
    for c in cases:
        _set_links(lab, c["wifi_mbit"], c["wifi_ms"], c["lte_baud"], c["lte_ms"])
        p = by_baud[c["lte_baud"]]
        for d in ("send", "recv"):
            for who in ("kernel", "device"):
                _log("aggregation %s %s %s (%d bytes) ..." % (c["name"], d, who, c["size"]))
                try:
                    r = transfer(lab, who, d, c["size"], extra=extra if who == "device" else ())
                except Exception as e:     # reported, the run goes on
                    r = {"device": who, "direction": d, "ok": False, "error": str(e)}
                r.update({"case": c["name"], "ideal_s": c["ideal_s"],
                          "pass_mark_s": c["pass_mark_s"]})
                if r.get("ok") and r.get("seconds"):
                    r["vs_ideal"] = round(r["seconds"] / c["ideal_s"], 3)
                    r["passes"] = r["seconds"] <= c["pass_mark_s"]
                    r["bytes_per_link"] = _bytes_per_link(
                        r["subflows"], "bytes_tx" if d == "send" else "bytes_rx")
                # the device's LTE as measured alone: the ideal it could reach at best
                got = p.get(d + "_mbit")
                if who == "device" and got:
                    r["ideal_reachable_s"] = round(
                        mm.ideal_seconds(c["size"], (c["wifi_mbit"], min(got, c["lte_mbit"]))), 3)
                runs.append(r)
    return {"cases": cases, "lte_probes": probes, "runs": runs,
            "device_args": list(extra),
            "note": ("LTE: PPP over a pty at baud = Mbit/s x 10/8 (baud/10 B/s). The device's "
                     "LTE subflow carries PPP framing (HDLC flags, FCS, byte stuffing) within "
                     "that line rate, the kernel's LTE path (TUN at baud/10 B/s of IP packets) "
                     "does not. lte_probes: what the device's PPP reaches alone at each baud "
                     "(ideal_reachable_s uses it). Times: the kernel peer's (accept to end of "
                     "stream); the device is always the client.")}


# --- handover --------------------------------------------------------------------------------

def _wifi_up_bytes(lab):
    return lab.status()["links"]["wifi"]["uplink"]["counters"]["forwarded_bytes"]


def _ref_ip(*args):
    subprocess.run(["ip", "-n", "mplab-ref"] + list(args), check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _ref_wifi_restore():
    """The ref's Wi-Fi interface up again with the routes `ip link set down` removed (the
    lab's tun.place / tun.source_route)."""
    from mptcp_lab.common import LINKS, LAB_NET
    w = LINKS["wifi"]
    _ref_ip("link", "set", "dev", w["ifname"], "up")
    _ref_ip("route", "replace", LAB_NET, "via", w["peer_addr"], "dev", w["ifname"])
    _ref_ip("route", "replace", LAB_NET, "via", w["peer_addr"], "dev", w["ifname"],
            "table", str(w["table"]))
    _ref_ip("route", "replace", LAB_NET, "via", w["peer_addr"], "dev", w["ifname"],
            "metric", str(w["table"]))


def _cut(lab, kind, who):
    if kind == "signalled":
        lab.link("wifi", "down")
        if who == "kernel":     # no control frames for the ref: its interface goes down
            _ref_ip("link", "set", "dev", "wifi0", "down")
    else:
        lab.link_set("wifi", loss="100")


def _uncut(lab, kind, who):
    if kind == "signalled":
        lab.link("wifi", "up")
        if who == "kernel":
            _ref_wifi_restore()
    else:
        lab.link_set("wifi", loss="0")


def capture_segments(pcap, tag):
    """Data-level segments towards the server in one capture (mp_metrics.segments_from_fields)."""
    argv = ["tshark", "-n", "-r", pcap, "-Y", "ip.dst==%s && tcp.len>0" % SERVER, "-T", "fields",
            "-E", "separator=/t"]
    for f in mm.TSHARK_FIELDS:
        argv += ["-e", f]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError("tshark failed on %s: %s" % (pcap, p.stderr.strip()[-500:]))
    return mm.segments_from_fields(p.stdout.splitlines(), tag)


def handover_one(lab, kind, who, scheduler):
    """Device sends HANDOVER_SIZE over wifi,lte; Wi-Fi is cut once CUT_AFTER_BYTES went up it,
    and stays cut until the end. scheduler: the device's --scheduler (minrtt|backup); for the
    kernel "default" or "backup" (its LTE endpoint flagged backup)."""
    _set_links(lab, 10, 5, LTE_DEFAULT_BAUD, LTE_DEFAULT_DELAY)
    lab.link_set("wifi", **HANDOVER_WIFI)
    if who == "device":
        extra = ["--scheduler", scheduler]
    else:
        extra = ["--backup", "lte"] if scheduler == "backup" else []
    box = {}

    def during(handle):
        base = _wifi_up_bytes(lab)
        deadline = time.monotonic() + 120
        while _wifi_up_bytes(lab) < base + CUT_AFTER_BYTES:
            if time.monotonic() > deadline or handle.proc.poll() is not None:
                return {"cut": False}
            time.sleep(0.005)
        box["cut_time"] = time.time()
        _cut(lab, kind, who)
        return {"cut": True}

    with lab.capture(iface="wifi0", snaplen=160) as p_wifi, \
            lab.capture(iface="lte0", snaplen=160) as p_lte:
        try:
            r = transfer(lab, who, "send", HANDOVER_SIZE, extra=extra, during=during)
        finally:
            _uncut(lab, kind, who)
    r.update({"kind": kind, "scheduler": scheduler})
    segs = capture_segments(p_wifi, "w") + capture_segments(p_lte, "l")
    cut = box.get("cut_time")
    r["stall"] = mm.stall(segs, cut, in_order=True)
    r["stall_new_data"] = mm.stall(segs, cut, in_order=False)
    r["segments_captured"] = len(segs)
    if r["subflows"]:       # the sender's own view (device or ref)
        r["bytes_per_link"] = _bytes_per_link(r["subflows"], "bytes_tx")
    else:                   # the kernel peer's, as received
        r["bytes_per_link"] = _bytes_per_link(r.get("peer_subflows") or [], "bytes_rx")
    for p in (p_wifi, p_lte):
        try:
            os.unlink(p)
        except OSError:
            pass
    return r


def run_handover(lab):
    runs = []
    for kind in ("signalled", "silent"):
        for who, sched in (("device", "minrtt"), ("device", "backup"),
                           ("kernel", "default"), ("kernel", "backup")):
            _log("handover %s %s %s ..." % (kind, who, sched))
            try:
                r = handover_one(lab, kind, who, sched)
            except Exception as e:
                r = {"kind": kind, "device": who, "scheduler": sched, "ok": False,
                     "error": "%s: %s" % (type(e).__name__, e)}
            runs.append(r)
    base_rtt = 2 * LTE_DEFAULT_DELAY
    goals = mm.handover_goals(base_rtt)
    kern = {}
    for r in runs:
        if r["device"] == "kernel" and r.get("stall"):
            k = r["kind"]
            kern[k] = min(kern.get(k, 1e9), r["stall"]["stall_s"])
    for r in runs:
        if r["device"] == "device" and r.get("stall"):
            s = r["stall"]["stall_s"]
            r["meets_goal"] = s <= goals[r["kind"]]
            r["below_kernel"] = (s < kern[r["kind"]]) if r["kind"] in kern else None
    return {"size": HANDOVER_SIZE, "cut_after_bytes": CUT_AFTER_BYTES,
            "wifi": HANDOVER_WIFI, "lte": {"baud": LTE_DEFAULT_BAUD, "delay_ms": LTE_DEFAULT_DELAY},
            "lte_base_rtt_ms": base_rtt, "goals_s": goals, "kernel_best_stall_s": kern,
            "runs": runs,
            "note": ("Device sends; Wi-Fi is cut once %d IP bytes went up it and stays cut. "
                     "stall = longest gap between advances of the in-order data-level point "
                     "at the server (what its application can read), from the DSS mappings "
                     "in captures on wifi0 and lte0 in mplab; stall_new_data counts any new "
                     "data-level bytes (out of order too). Signalled for the kernel device: "
                     "the emulator's link down plus `ip link set wifi0 down` in mplab-ref "
                     "(it gets no control frames). Goals (issue 8): signalled <= LTE RTT "
                     "(%d ms base) + 200 ms, silent <= 1 s, both below the kernel's."
                     % (CUT_AFTER_BYTES, base_rtt))}


# --- tables ----------------------------------------------------------------------------------

def format_aggregation(a):
    lines = ["", "Aggregation over Wi-Fi + LTE (simult_flows.sh cases; device = MicroPython "
             "client, kernel = mplab-ref; time = the kernel peer's)"]
    for p in a["lte_probes"]:
        lines.append("  LTE PPP alone at %d baud (line %.2f Mbit/s): device reaches %s Mbit/s "
                     "sending, %s Mbit/s receiving" % (p["baud"], p["line_mbit"],
                                                       p.get("send_mbit"), p.get("recv_mbit")))
    lines.append("%-16s %-4s %-6s %4s %8s %8s %8s %6s %5s %18s" % (
        "case", "dir", "who", "ok", "time s", "ideal s", "mark s", "x ideal", "pass",
        "bytes wifi/lte"))
    for r in a["runs"]:
        bpl = r.get("bytes_per_link") or {}
        lines.append("%-16s %-4s %-6s %4s %8s %8s %8s %6s %5s %18s" % (
            r.get("case"), r["direction"], r["device"], "yes" if r.get("ok") else "NO",
            _f(r.get("seconds")), _f(r.get("ideal_s")), _f(r.get("pass_mark_s")),
            _f(r.get("vs_ideal"), 2), {True: "yes", False: "no"}.get(r.get("passes"), "-"),
            "%s/%s" % (_k(bpl.get("wifi")), _k(bpl.get("lte")))))
        if not r.get("ok"):
            lines.append("    error: %s" % (r.get("error") or "")[:400])
    lines.append("  " + a["note"])
    return "\n".join(lines)


def format_handover(h):
    g = h["goals_s"]
    lines = ["", "Handover: Wi-Fi (10 Mbit/s, 5 ms) cut mid-transfer, LTE PPP at %d baud %d ms; "
             "device sends %d MiB" % (h["lte"]["baud"], h["lte"]["delay_ms"], h["size"] >> 20),
             "goals: signalled <= %.3f s, silent <= %.3f s, both below the kernel's" % (
                 g["signalled"], g["silent"])]
    lines.append("%-9s %-6s %-8s %4s %8s %9s %8s %7s %5s %6s %18s" % (
        "cut", "who", "sched", "ok", "stall s", "from cut", "new s", "time s", "goal",
        "<kern", "bytes wifi/lte"))
    for r in h["runs"]:
        st = r.get("stall") or {}
        sn = r.get("stall_new_data") or {}
        bpl = r.get("bytes_per_link") or {}
        lines.append("%-9s %-6s %-8s %4s %8s %9s %8s %7s %5s %6s %18s" % (
            r["kind"], r["device"], r["scheduler"], "yes" if r.get("ok") else "NO",
            _f(st.get("stall_s")), _f(st.get("from_cut_s")), _f(sn.get("stall_s")),
            _f(r.get("seconds"), 2), _yn(r.get("meets_goal")), _yn(r.get("below_kernel")),
            "%s/%s" % (_k(bpl.get("wifi")), _k(bpl.get("lte")))))
        if not r.get("ok"):
            lines.append("    error: %s" % (r.get("error") or "")[:400])
    lines.append("  " + h["note"])
    return "\n".join(lines)


def _f(v, nd=3):
    return "-" if v is None else ("%.*f" % (nd, v))


def _k(v):
    return "-" if v is None else "%dK" % (v // 1024)


def _yn(v):
    return {True: "yes", False: "no"}.get(v, "-")


def run(out_dir, parts, target_s=3.0, device_args=()):
    """Run the multipath parts in one lab (up on entry, down at the end); returns
    {"aggregation": ..., "handover": ...} for those asked, and writes one JSON per part."""
    import json
    from mptcp_lab import api
    res = {}
    with api.Lab(wifi="clean") as lab:
        if "aggregation" in parts:
            res["aggregation"] = run_aggregation(lab, target_s, device_args)
            print(format_aggregation(res["aggregation"]), flush=True)
        if "handover" in parts:
            res["handover"] = run_handover(lab)
            print(format_handover(res["handover"]), flush=True)
    for k, v in res.items():
        with open(os.path.join(out_dir, "bench_%s.json" % k), "w") as f:
            json.dump(v, f, indent=1)
    return res


def failed(res):
    """True if any transfer did not complete (figures from it are missing)."""
    return any(not r.get("ok") for part in res.values() for r in part["runs"])
