"""make demo: flash a virtual board, then a Wi-Fi -> LTE -> Wi-Fi handover trial on it.

1. a virtual board (mptcp-vboard: the MicroPython unix port behind a pty, a fresh folder as
   its filesystem, the host's /dev mounted so the lab's modem pty is its UART);
2. mptcp-flash writes the unix_lab bundle onto it (timed);
3. mptcp-trial trials/handover_wifi_lte.json on that board, over its console, in the lab
   (Wi-Fi lost at 5 s and back at 15 s during a 4 MiB upload, request/response and
   telemetry alongside), with the kernel as the device in mplab-ref side by side;
4. a summary: handover gaps device vs kernel, bytes per link, SHA-256 at both ends,
   counters of interest, where report.json and the timeline PNG are.
The lab is taken down and the board's processes end, whatever happens. Exit 0 only if both
bulk transfers completed with equal SHA-256 at both ends. Needs root (the lab).

`python -m mptcp_tools.demo --bulk` is the older demo: 16 MiB device -> kernel, one link.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

from .build import ROOT

SIZE = 16 * 1024 * 1024
SCENARIO = os.path.join(ROOT, "trials", "handover_wifi_lte.json")
BOARD = "unix_lab"
# Counters that tell the handover story (device: our names; kernel: MPTcpExt without prefix)
OF_INTEREST = ("LinkDown", "RmSubflow", "MPTCPReinject", "SubflowRecreate", "MPJoinSynTx",
               "MPJoinSynAckRx", "MPJoinAckRx", "MPJoinRejected", "MPRstTx", "MPRstRx",
               "MPTCPRetrans", "SubflowStale", "SubflowRecover", "DuplicateData", "MPFailTx", "MPFailRx", "InfiniteMapTx",
               "InfiniteMapRx", "DSSNotMatching")


def _gaps(side):
    if side is None:
        return "-"
    g = [x["gap_ms"] for x in side["handover_gaps"]]
    return ", ".join("never recovered" if v is None else "%d ms" % v for v in g) or "none"


def _back(side, sc):
    """Per scheduled return of a link: ms until it carries data again (the first of three
    samples in a row with bytes on it: a lone retransmission probe does not count)."""
    if side is None:
        return "-"
    from .trial_scenario import restores
    out = []
    t0 = side.get("start_ms") or 0
    for at, ln in restores(sc):
        t = t0 + int(at * 1000)
        smp = [e for e in side["events"] if e.get("ev") == "sample" and e["t"] >= t]
        first = [smp[i]["t"] for i in range(len(smp) - 2)
                 if all(e.get(ln) for e in smp[i:i + 3])]
        out.append("%s %s" % (ln, "%d ms" % (first[0] - t) if first else "never"))
    return ", ".join(out) or "none"


def _bulk(side):
    b = ((side or {}).get("summary") or {}).get("flows", {}).get("bulk") or {}
    return b


def summary(report, flash_s):
    """The demo's closing table (lines)."""
    dev, ref = report["device"], report.get("ref")
    bc = report.get("bulk_check") or {}
    rb = _bulk(ref)
    rpeer = ((ref or {}).get("summary") or {}).get("peer") or {}
    lines = ["=" * 76,
             "scenario      : %s (%s)" % (report["scenario"]["name"],
                                          report["scenario"].get("description", "")),
             "flash         : %.2f s (mptcp-flash --board %s onto a fresh virtual board)"
             % (flash_s, BOARD),
             "%-14s  %-28s %s" % ("", "device (MicroPython, vboard)", "kernel (mplab-ref)"),
             "%-14s: %-28s %s" % ("handover gaps", _gaps(dev), _gaps(ref))]
    lines.append("%-14s: %-28s %s" % ("link back used", _back(dev, report["scenario"]),
                                      _back(ref, report["scenario"])))
    for ln in report["scenario"]["links"]:
        lines.append("%-14s: %-28s %s" % ("bytes on " + ln, "{:,}".format(dev["link_bytes"].get(ln, 0)),
                                         "-" if ref is None else "{:,}".format(ref["link_bytes"].get(ln, 0))))
    lines.append("%-14s: %-28s %s" % ("stalls", "%d (%d ms)" % (len(dev["stalls"]), sum(
        p["ms"] for p in dev["stalls"])), "-" if ref is None else "%d (%d ms)" % (
        len(ref["stalls"]), sum(p["ms"] for p in ref["stalls"]))))
    lines.append("%-14s: %-28s %s" % ("seconds", "%.2f" % (dev["summary"].get("seconds") or 0),
                                      "-" if ref is None else "%.2f" % ((ref["summary"].get("t") or 0) / 1000)))
    lines.append("SHA-256       : device %s, peer %s: %s" % (
        str(bc.get("device", {}).get("sha256"))[:16], str(bc.get("peer", {}).get("sha256"))[:16],
        "equal, %s bytes" % bc.get("device", {}).get("bytes") if bc.get("ok") else "MISMATCH or incomplete"))
    if ref is not None:
        lines.append("                kernel %s, peer %s: %s" % (
            str(rb.get("sha256"))[:16], str(rpeer.get("sha256"))[:16],
            "equal, %s bytes" % rb.get("bytes") if rb.get("ok") else "MISMATCH or incomplete"))
    dc = dict(dev["summary"].get("counters") or {})
    kc = ref["counters"] if ref is not None else {}
    names = [n for n in OF_INTEREST if dc.get(n) or kc.get(n)]
    lines.append("counters      : %-28s %s" % ("device", "kernel (changes seen)"))
    for n in names:
        lines.append("  %-16s: %-24s %s" % (n, dc.get(n, 0), kc.get(n, 0) if ref is not None else "-"))
    pc = report.get("pcap") or {}
    lines.append("tshark        : MPTCP expert warnings %s (device links)"
                 % pc.get("mptcp_expert_warnings"))
    lines.append("report        : %s" % os.path.abspath(os.path.join(report["dir"], "report.json")))
    lines.append("timeline PNG  : %s" % os.path.abspath(os.path.join(report["dir"], report["png"])))
    lines.append("=" * 76)
    return lines


def handover(a):
    """The trial demo; returns the exit code."""
    from mptcp_lab.common import LabError
    from . import flash, trial, vboard
    from .trial_scenario import HEAP, ScenarioError
    if os.geteuid() != 0:
        print("demo: needs root (the lab: network namespaces, TUN devices)", file=sys.stderr)
        return 2
    root = tempfile.mkdtemp(prefix="mptcp-vboard-")
    try:
        print("demo: virtual board on %s (MicroPython unix port, heap %s)" % (root, HEAP))
        with vboard.running(root, "--dev", "--heap", HEAP) as port:
            print("demo: mptcp-flash --board %s --port %s" % (BOARD, port))
            t = time.monotonic()
            rc = flash.main(["--board", BOARD, "--port", port])
            flash_s = time.monotonic() - t
            if rc != 0:
                print("demo: FAILED: the flash failed (exit %d)" % rc, file=sys.stderr)
                return 1
            print("demo: flashed in %.2f s; running %s on it, then with the kernel as the "
                  "device (--with-ref)" % (flash_s, os.path.relpath(a.scenario, ROOT)))
            ok, report = trial.run_trial(a.scenario, a.out, with_ref=True,
                                         board={"port": port, "name": "virtual board"},
                                         tty=False if a.plain else None)
    except (trial.TrialError, ScenarioError, LabError, RuntimeError) as e:
        print("demo: FAILED: %s" % e, file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print()
    print(trial.summary_text(report))
    print()
    print("\n".join(summary(report, flash_s)))
    ref_ok = bool(_bulk(report.get("ref")).get("ok"))
    if not ok or not ref_ok:
        why = []
        if not ok:
            why.append("device: %s" % (report["device"]["summary"].get("error") or "SHA-256 mismatch"))
        if not ref_ok:
            why.append("kernel: %s" % ((report.get("ref") or {}).get("summary") or {}).get("error"))
        print("demo: FAILED (%s); lab taken down, virtual board removed" % "; ".join(why))
        return 1
    print("demo: OK; lab taken down, virtual board removed")
    return 0


def bulk(a):
    """The older demo: 16 MiB device -> kernel over the Wi-Fi link, the lab's device process."""
    from mptcp_lab.api import Lab
    print("demo: bringing the lab up (namespace mplab, link emulator, Wi-Fi profile %s)" % a.wifi)
    with Lab(wifi=a.wifi) as lab:
        lab.nstat_reset()
        peer = lab.start_peer("server", port=a.port, mode="recv")
        print("demo: kernel MPTCP sink listening on 198.18.0.1:%d; device (%s) sending %d bytes ..."
              % (a.port, a.runtime, a.size))
        rc, dev, err = lab.run_device(["--connect", "198.18.0.1:%d" % a.port, "--send", str(a.size)],
                                      runtime=a.runtime, timeout=600)
        ker = peer.wait(60)
        kc = lab.nstat(relative=True)
    ok = (rc == 0 and dev is not None and ker is not None and dev["sha256"] == ker.get("sha256")
          and dev["bytes"] == a.size and ker.get("bytes") == a.size)
    print()
    print("=" * 72)
    if dev is None:
        print("demo: the device printed no result (rc=%s)\n%s" % (rc, err[-3000:]))
        return 1
    secs = dev.get("seconds") or 0
    print("transfer      : %d bytes device -> kernel in %.2f s" % (dev["bytes"], secs))
    if secs:
        print("goodput       : %.2f Mbit/s" % (dev["bytes"] * 8 / secs / 1e6))
    print("MPTCP         : device %s, kernel %s" % (dev.get("mptcp"), ker and ker.get("mptcp")))
    print("SHA-256       : device %s" % dev["sha256"])
    print("                kernel %s  %s" % (ker and ker.get("sha256"),
                                             "(equal)" if ok else "(MISMATCH or incomplete)"))
    for sf in dev.get("subflows", []):
        print("subflow %-6s: tx %d B, rx %d B, srtt %s ms, retransmissions %s"
              % (sf["link"], sf["bytes_tx"], sf["bytes_rx"], sf.get("rtt_ms"), sf.get("retrans")))
    print("device heap   : peak %s bytes" % dev.get("heap_peak"))
    print("device counters:")
    for k, v in sorted(dev.get("counters", {}).items()):
        print("    %-32s %d" % (k, v))
    print("kernel counters (MPTcpExt*, changed during the run):")
    for k, v in sorted(kc.items()):
        if k.startswith("MPTcpExt") and v:
            print("    %-32s %d" % (k, v))
    print("=" * 72)
    if not ok:
        print("demo: FAILED (rc=%s): %s" % (rc, dev.get("error")))
        print(err[-3000:])
        return 1
    print("demo: OK — lab taken down")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default=SCENARIO, help="trial scenario (default %s)"
                    % os.path.relpath(SCENARIO, ROOT))
    ap.add_argument("--out", help="report directory (default results/trial-NAME-TIME)")
    ap.add_argument("--plain", action="store_true", help="plain lines even on a terminal")
    ap.add_argument("--bulk", action="store_true",
                    help="the older demo: one 16 MiB device -> kernel transfer, no board")
    ap.add_argument("--size", type=int, default=SIZE, help="--bulk: bytes to send (16 MiB)")
    ap.add_argument("--wifi", default="clean", help="--bulk: Wi-Fi link profile (clean)")
    ap.add_argument("--runtime", default="mpy", choices=("mpy", "source", "cpython"),
                    help="--bulk: device runtime (default mpy = the compiled bundle)")
    ap.add_argument("--port", type=int, default=5001, help="--bulk: the kernel sink's port")
    a = ap.parse_args(argv)
    return bulk(a) if a.bulk else handover(a)


if __name__ == "__main__":
    sys.exit(main())
