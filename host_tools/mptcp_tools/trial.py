"""mptcp-trial SCENARIO: run a handover field trial against the lab device and write a report.

Brings the lab up with the scenario's link profiles, starts the trial peer in mplab, runs the
device's trial agent (firmware/mptcp_apps/trial.py) attached to the lab links, applies the
scenario's schedule through the emulator when the traffic starts, shows the agent's events
live, and writes a report directory: report.json (events, per-link bytes, handover gaps,
stalls, SHA-256 check), links.pcap (+ tshark's MPTCP expert warnings), timeline.png.
--with-ref runs the same scenario's bulk transfer with the kernel as the device (mplab-ref)
and puts both side by side. --port PORT runs the agent on a board over its console (raw REPL,
board_console.py) instead of the lab's device process; --vboard DIR starts a virtual board on
a folder mptcp-flash wrote, inside the lab (its links are the lab's), and runs it there.
Needs root; takes the lab down at the end.
Exit: 0 trial ok, 1 trial failed, 2 bad scenario or command line.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from . import trial_png, trial_report as R, trial_view
from .trial_scenario import HEAP, ScenarioError, agent_args, cuts, load, parse_bytes, restores

PORT = 5201
REF_PORT = 5301
DEVICE = {"heap": HEAP, "buf": None}    # the agent's heap and ring size unless told


class TrialError(Exception):
    """The trial could not run (lab, device, peer): one line for the user."""


class Peer:
    """The trial peer (mptcp_tools.trial_peer) in the lab's peer namespace."""

    def __init__(self, port):
        from mptcp_lab import common, lab
        self.out = tempfile.TemporaryFile()
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", common.NS_PEER, common.python(), "-m",
             "mptcp_tools.trial_peer", "--port", str(port)],
            stdout=self.out, stderr=self.err, stdin=subprocess.DEVNULL)
        lab.register_process(self.proc.pid)
        deadline = time.monotonic() + 10
        while "listening" not in self._read(self.err):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise TrialError("trial peer did not start: %s" % self._read(self.err).strip())
            time.sleep(0.02)

    def _read(self, f):
        f.seek(0)
        return f.read().decode(errors="replace")

    def results(self):
        return [json.loads(l) for l in self._read(self.out).splitlines() if l.startswith("{")]

    def wait_results(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        while len(self.results()) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.results()

    def stop(self):
        from mptcp_lab import lab
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        lab.unregister_process(self.proc.pid)


class Captures:
    """tcpdump on the scenario's links in mplab (wifi0, lte0) while the block runs."""

    def __init__(self, out_dir, prefix, links, enabled=True):
        self.paths = []
        self.ctx = []
        self.out_dir, self.prefix, self.links, self.enabled = out_dir, prefix, links, enabled

    def __enter__(self):
        from mptcp_lab.capture import capture
        if not self.enabled:
            return self
        for ln in self.links:
            path = os.path.join(self.out_dir, "%s-%s.pcap" % (self.prefix, ln))
            cm = capture(path, iface=ln + "0")
            self.paths.append(cm.__enter__())
            self.ctx.append(cm)
        return self

    def __exit__(self, *exc):
        for cm in reversed(self.ctx):
            cm.__exit__(None, None, None)


def pcap_summary(paths, merged):
    """Merge the per-link pcaps (mergecap) and count tshark's MPTCP expert warnings."""
    from mptcp_lab.capture import expert_rows
    if not paths:
        return {"files": [], "mptcp_expert_warnings": None}
    files = list(paths)
    target = paths[0]
    if len(paths) > 1 and shutil.which("mergecap"):
        p = subprocess.run(["mergecap", "-w", merged] + paths, capture_output=True, text=True)
        if p.returncode == 0:
            for f in paths:
                os.unlink(f)
            files = [merged]
            target = merged
    out = {"files": [os.path.basename(f) for f in files]}
    try:
        rows = []
        for f in files:
            rows += expert_rows(f)
        mp = [r for r in rows if r[2].upper() == "MPTCP" and r[0] in ("warning", "error")]
        out["mptcp_expert_warnings"] = sum(r[3] for r in mp)
        out["mptcp_expert"] = ["%s: %s (x%d)" % (r[0], r[4], r[3]) for r in mp]
        out["expert_rows"] = [{"severity": r[0], "group": r[1], "protocol": r[2], "count": r[3],
                               "summary": r[4]} for r in rows]
    except Exception as e:      # tshark missing or failed: the report says so
        out["mptcp_expert_warnings"] = None
        out["tshark_error"] = str(e)
    del target
    return out


def lab_up(sc):
    from mptcp_lab import lab
    lab.down()
    lab.up(sc["links"].get("wifi", "clean"), sc["links"].get("lte", "clean"))


class AgentLines:
    """The agent's console, line by line -> events and the summary; the scenario's schedule
    is handed to the lab's emulator at the agent's `start` event (traffic time zero)."""

    def __init__(self, sc, view):
        self.sc, self.view = sc, view
        self.events = []
        self.summary = None
        self.sched_ms = None
        self.other = []         # lines that are not events (warnings, a traceback)
        self.rc = None          # the board's exit code line (board_console.app_code)

    def __call__(self, line):
        from mptcp_lab import api
        from .board_console import app_rc
        line = line.strip()
        if not line.startswith("{"):
            rc = app_rc(line)
            if rc is not None:
                self.rc = rc
            elif line:
                self.other.append(line)
            return
        try:
            ev = json.loads(line)
        except ValueError:
            self.other.append(line)
            return
        if ev.get("ev") == "start":
            t_start_host = time.monotonic()
            if self.sc["schedule"]:
                api.schedule(self.sc["schedule"], clear=True)
            self.sched_ms = ev["t"] + int((time.monotonic() - t_start_host) * 1000)
        if ev.get("ev") == "summary":
            self.summary = ev
        else:
            self.events.append(ev)
        self.view.update(ev)


def _run_lab_process(sc, runtime, lines, dev):
    """The agent as the lab's device process (mptcp_lab.device); returns (rc, stderr)."""
    from mptcp_lab import device, lab
    errf = tempfile.TemporaryFile()
    p = device.start(agent_args(sc, PORT, heap=dev["heap"], buf=dev["buf"]), runtime, stdout=subprocess.PIPE,
                     stderr=errf, app="trial")
    killer = threading.Timer(sc["timeout"] + 60, p.kill)
    killer.start()
    try:
        for raw in p.stdout:
            lines(raw.decode(errors="replace"))
        rc = p.wait()
    finally:
        killer.cancel()
        if p.poll() is None:
            p.kill()
            p.wait()
        lab.unregister_process(p.pid)
    errf.seek(0)
    return rc, errf.read().decode(errors="replace")


def board_agent_args(sc, own_links=False, dev=DEVICE):
    """The agent's command line on a board driven over its console. A board has no
    environment: the lab's link endpoints (the emulator's Wi-Fi UDP port on this host, the
    modem emulator's pty and its line rate) are passed as options; right for the virtual
    board, which runs on this host. own_links: a real board, on its own links."""
    from mptcp_lab import lab
    from mptcp_lab.common import LINKS
    args = agent_args(sc, PORT, heap=dev["heap"], buf=dev["buf"])
    if own_links:
        return args
    args += ["--wifi-tunnel", "127.0.0.1:%d" % LINKS["wifi"]["udp_port"]]
    if "lte" in sc["links"]:
        tty = lab.lte_serial()
        if not tty:
            raise TrialError("the lab has no modem emulator pty for the LTE link (is it up?)")
        args += ["--lte-serial", tty]
        baud = lab.status().get("links", {}).get("lte", {}).get("baud")
        if baud:
            args += ["--lte-baud", str(baud)]
    return args


def _run_on_board(sc, board, lines, dev):
    """The agent on a board (board["port"]: its console), after a soft reset (a fresh heap,
    as after power-up); events read from the console. Returns (rc, other output)."""
    from .board_console import Console, ConsoleError, app_code
    args = board_agent_args(sc, board.get("own_links", False), dev)
    try:
        with Console(board["port"], timeout=board.get("timeout", 10.0)) as con:
            con.enter_raw(soft_reset=True)
            err = con.run(app_code("mptcp_apps.trial", args), lines, sc["timeout"] + 60)
    except ConsoleError as e:
        raise TrialError("the board on %s: %s" % (board["port"], e)) from None
    if "ImportError" in err and "mptcp_apps" in err:
        err += "\n(flash the device bundle first: mptcp-flash --board unix_lab --port %s)" \
            % board["port"]
    out = "\n".join(lines.other + ([err] if err else []))
    return (lines.rc if lines.rc is not None else 1), out


def run_device(sc, out_dir, view, runtime="mpy", pcap=True, board=None, dev=DEVICE):
    """Run the agent (the lab's device process, or on `board` {"port", "own_links"} over its
    console) with dev {"heap", "buf"}; returns (events, summary, peer results, schedule
    offset ms, pcap info)."""
    peer = Peer(PORT)
    nflows = len(sc["traffic"])
    lines = AgentLines(sc, view)
    try:
        with Captures(out_dir, "device", list(sc["links"]), pcap) as caps:
            if board is None:
                rc, err = _run_lab_process(sc, runtime, lines, dev)
            else:
                rc, err = _run_on_board(sc, board, lines, dev)
        results = peer.wait_results(nflows, 10.0)
    finally:
        peer.stop()
    summary = lines.summary
    if summary is None:
        raise TrialError("the device agent ended without a summary (rc %s): %s"
                         % (rc, err.strip()[-600:] or "no output"))
    summary["rc"] = rc
    if err.strip():
        summary["stderr"] = err.strip()[-2000:]
    pc = pcap_summary(caps.paths, os.path.join(out_dir, "device-links.pcap")) if pcap else None
    return lines.events, summary, results, lines.sched_ms, pc


def bulk_check(summary, peer_results):
    """SHA-256 and length of the bulk transfer at both ends: {"ok", "device", "peer"}."""
    d = (summary or {}).get("flows", {}).get("bulk")
    if d is None:
        return None
    want = "bulk-" + d.get("direction", "up")
    peer = [r for r in peer_results if r.get("kind") == want]
    p = peer[0] if peer else {}
    ok = bool(d.get("sha256")) and d.get("sha256") == p.get("sha256") and \
        d.get("bytes") == p.get("bytes") and d.get("ok") is True
    return {"ok": ok, "device": {"bytes": d.get("bytes"), "sha256": d.get("sha256")},
            "peer": {"bytes": p.get("bytes"), "sha256": p.get("sha256"), "error": p.get("error")}}


def compare(dev, ref):
    """The side-by-side table of the report (device vs kernel)."""
    def row(s):
        if s is None:
            return None
        summ = s.get("summary") or {}
        bulk = summ.get("flows", {}).get("bulk", {})
        return {"ok": summ.get("ok"), "bulk_bytes": bulk.get("bytes"),
                "seconds": summ.get("seconds", (summ.get("t") or 0) / 1000.0),
                "link_bytes": s["link_bytes"], "gap_stats": s["gap_stats"],
                "gaps_ms": [g["gap_ms"] for g in s["handover_gaps"]],
                "stalls": len(s["stalls"]), "stall_ms": sum(p["ms"] for p in s["stalls"])}
    return {"device": row(dev), "kernel": row(ref)}


def check_vboard_dir(d):
    """A virtual board's folder must hold what mptcp-flash wrote (its manifest)."""
    if not os.path.isfile(os.path.join(d, ".mptcp_manifest.json")):
        raise TrialError("%s is not a flashed virtual board (no .mptcp_manifest.json): start "
                         "one (mptcp-vboard %s) and flash it (mptcp-flash --board unix_lab "
                         "--port PORT) first" % (d, d))


def run_trial(path, out_dir=None, with_ref=False, runtime="mpy", pcap=True, stream=None,
              tty=None, board=None, vboard=None, heap=HEAP, buf=None):
    """The whole trial; returns (ok, report dict). The agent runs as the lab's device
    process, or on `board` ({"port": console, "own_links": bool}) over its console, or on
    a virtual board started on folder `vboard` (what mptcp-flash wrote) inside the lab.
    heap: the device's MicroPython heap (lab process, virtual board); buf: each ring's size
    (default the board config's). Raises ScenarioError, TrialError, mptcp_lab LabError."""
    dev = {"heap": heap, "buf": buf}
    import contextlib
    from mptcp_lab import lab
    sc = load(path)
    if vboard is not None:
        check_vboard_dir(vboard)
    stream = stream or sys.stdout
    if out_dir is None:
        out_dir = os.path.join("results", "trial-%s-%s" % (sc["name"], time.strftime("%Y%m%d-%H%M%S")))
    os.makedirs(out_dir, exist_ok=True)
    bulk = sc["traffic"].get("bulk")
    st = trial_view.State(sc["name"], list(sc["links"]), sc["duration"],
                          bulk["bytes"] if bulk else None)
    view = trial_view.Live(st, stream, tty=tty)
    where = runtime
    if vboard is not None:
        where = "virtual board %s" % os.path.abspath(vboard)
    elif board is not None:
        where = "%s on %s" % (board.get("name") or "board", board["port"])
    report = {"scenario": sc, "scenario_file": os.path.abspath(path), "runtime": where,
              "device_heap": heap if board is None else None, "device_buf": buf,
              "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    summary = None
    try:
        view.message("mptcp-trial: %s: lab up (%s)" % (sc["name"], ", ".join(
            "%s=%s" % kv for kv in sc["links"].items())))
        lab_up(sc)
        with contextlib.ExitStack() as stack:
            if vboard is not None:
                from . import vboard as vb
                try:
                    port = stack.enter_context(vb.running(vboard, "--dev", "--heap", heap))
                except RuntimeError as e:
                    raise TrialError(str(e)) from None
                board = {"port": port, "name": "virtual board"}
                view.message("mptcp-trial: virtual board %s on %s (heap %s)" % (vboard, port, heap))
            elif board is not None:
                view.message("mptcp-trial: the agent on the %s on %s"
                             % (board.get("name") or "board", board["port"]))
            events, summary, peer, sched_ms, pc = run_device(sc, out_dir, view, runtime, pcap,
                                                             board, dev)
        dev = R.side(events, summary, cuts(sc), sched_ms)
        report["device"] = dev
        report["peer"] = peer
        report["bulk_check"] = bulk_check(summary, peer)
        report["pcap"] = pc
        ref = None
        if with_ref:
            from . import trial_ref
            from mptcp_lab import api
            view.message("mptcp-trial: the same scenario with the kernel as the device (mplab-ref)")
            lab_up(sc)
            box = {}

            def on_start(t0):
                box["t0"] = t0
                if sc["schedule"]:
                    api.schedule(sc["schedule"], clear=True)
                box["ms"] = int((time.monotonic() - t0) * 1000)
            rview = trial_view.Live(trial_view.State(
                sc["name"] + " (kernel)", list(sc["links"]), None,
                bulk["bytes"] if bulk else None), stream, tty=view.tty)
            with Captures(out_dir, "ref", list(sc["links"]), pcap) as caps:
                revents, rsummary = trial_ref.run(sc, REF_PORT, on_start,
                                                  on_event=rview.update)
            rview.update(rsummary)
            ref = R.side(revents, rsummary, cuts(sc), box.get("ms", 0))
            ref["pcap"] = pcap_summary(caps.paths, os.path.join(out_dir, "ref-links.pcap")) \
                if pcap else None
            report["ref"] = ref
        report["side_by_side"] = compare(dev, ref)
        def back(t0):
            return [(int(t0 or 0) + int(at * 1000), ln) for at, ln in restores(sc)]
        label = summary.get("impl", runtime)
        if board is not None:
            label += ", " + (board.get("name") or "board")
        sides = [("device (%s)" % label, events,
                  R.cut_times(events, cuts(sc), sched_ms), back(sched_ms))]
        if ref is not None:
            sides.append(("kernel reference (mplab-ref)", ref["events"],
                          R.cut_times(ref["events"], cuts(sc), ref["start_ms"]),
                          back(ref["start_ms"])))
        png = os.path.join(out_dir, "timeline.png")
        trial_png.write(png, sides, "mptcp-trial: %s" % sc["name"])
        report["png"] = os.path.basename(png)
    finally:
        lab.down()
    ok = bool(summary.get("ok")) and (report["bulk_check"] is None or report["bulk_check"]["ok"])
    report["ok"] = ok
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    report["dir"] = out_dir
    return ok, report


def summary_text(report):
    """The closing lines for the terminal: outcome, gaps, stalls, where the report is."""
    dev = report["device"]
    s = dev["summary"]
    lines = ["mptcp-trial: %s: %s" % (report["scenario"]["name"],
                                      "OK" if report["ok"] else "FAILED (%s)" % s.get("error"))]
    bc = report.get("bulk_check")
    if bc:
        lines.append("  bulk %s: %s bytes, SHA-256 %s" % (
            s["flows"]["bulk"]["direction"], bc["device"]["bytes"],
            "equal at both ends" if bc["ok"] else "MISMATCH (device %s, peer %s)" % (
                bc["device"]["sha256"], bc["peer"]["sha256"])))
    for name, side in (("device", dev), ("kernel", report.get("ref"))):
        if side is None:
            continue
        gs = side["gap_stats"]
        lines.append("  %-6s bytes per link %s; handover gaps %s; stalls %d (%d ms)" % (
            name, side["link_bytes"],
            [g["gap_ms"] for g in side["handover_gaps"]] if gs.get("n") or gs.get("unrecovered") else "none",
            len(side["stalls"]), sum(p["ms"] for p in side["stalls"])))
    pc = report.get("pcap")
    if pc:
        lines.append("  pcap %s: MPTCP expert warnings %s" % (", ".join(pc["files"]),
                                                              pc.get("mptcp_expert_warnings")))
    lines.append("  report: %s/report.json  timeline: %s/%s" % (report["dir"], report["dir"],
                                                                report.get("png")))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="mptcp-trial", description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario", help="scenario file (JSON; see trials/)")
    ap.add_argument("--out", help="report directory (default results/trial-NAME-TIME)")
    ap.add_argument("--with-ref", action="store_true",
                    help="also run the scenario with the kernel as the device (mplab-ref)")
    ap.add_argument("--runtime", default="mpy", choices=("mpy", "source", "cpython"),
                    help="the device: the built bundle (default), firmware/ sources, CPython")
    ap.add_argument("--port", help="run the agent on the board at this console (raw REPL; "
                    "flashed with mptcp-flash), e.g. a virtual board's /dev/pts/N")
    ap.add_argument("--own-links", action="store_true",
                    help="with --port: a real board on its own links (not told the lab's)")
    ap.add_argument("--vboard", metavar="DIR",
                    help="start a virtual board on DIR (flashed with mptcp-flash) inside the "
                    "lab and run the agent there")
    ap.add_argument("--heap", default=HEAP,
                    help="the device's MicroPython heap, for the lab's device process and "
                    "--vboard (default %s; a real board has its own)" % HEAP)
    ap.add_argument("--buf", metavar="SIZE",
                    help="each connection's send and receive ring (default: the board "
                    "config's SND_BUF/RCV_BUF; a Pico W's are 16k)")
    ap.add_argument("--no-pcap", action="store_true", help="no capture of the lab links")
    ap.add_argument("--plain", action="store_true", help="plain lines even on a terminal")
    ap.add_argument("--check", action="store_true",
                    help="only check the scenario file (no lab, no root)")
    a = ap.parse_args(argv)
    try:
        if a.check:
            sc = load(a.scenario)
            print("mptcp-trial: %s: ok (%s; traffic %s; %d schedule entries)" % (
                a.scenario, ", ".join("%s=%s" % kv for kv in sc["links"].items()),
                ", ".join(sc["traffic"]), len(sc["schedule"])))
            return 0
        if a.port and a.vboard:
            ap.error("--port and --vboard exclude each other")
        if a.own_links and not a.port:
            ap.error("--own-links goes with --port")
        try:
            heap = str(parse_bytes(a.heap, "--heap"))
            buf = parse_bytes(a.buf, "--buf") if a.buf else None
        except ScenarioError as e:
            ap.error(str(e))
        board = {"port": a.port, "own_links": a.own_links} if a.port else None
        ok, report = run_trial(a.scenario, a.out, a.with_ref, a.runtime, not a.no_pcap,
                               tty=False if a.plain else None, board=board, vboard=a.vboard,
                               heap=heap, buf=buf)
    except ScenarioError as e:
        print("mptcp-trial: %s" % e, file=sys.stderr)
        return 2
    except TrialError as e:
        print("mptcp-trial: %s" % e, file=sys.stderr)
        return 1
    except Exception as e:
        from mptcp_lab.common import LabError
        if isinstance(e, LabError):
            print("mptcp-trial: lab: %s" % e, file=sys.stderr)
            return 1
        raise
    print(summary_text(report))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
