"""Benchmark: PPP HDLC framing throughput (FCS-16, stuffing, unstuffing), native vs pure.

Measures mptcp_net.hdlc on 1500-byte random packets (ACCM 0, as negotiated on a modem
link): `fcs` = FCS-16 alone, `encode` = Encoder.frame (FCS + byte stuffing into the
output queue), `decode` = Decoder.feed of the framed stream (unstuffing + FCS check).
MicroPython runs from a unix_lab bundle (.mpy for x64) with the viper module and
with the pure-Python fallback; CPython runs its binascii path and the pure one.
The `x921k` column is the figure over a 921600-baud line's byte rate (92,160 B/s):
how much faster than the serial line the framing runs on this host. Never asserts
speed.

Goodput (needs root: it brings the lab up): the device (MicroPython) sends over its LTE link
only (`--links lte`: AT dial, PPP through the lab's modem emulator, 30 ms each way) to the
kernel in mplab at 115200 and 921600 baud. The reference is the serial line itself: the
payload ceiling of a full-size packet with a 1500-byte MTU is
    baud/10 * P / ((1500 + H + 2) * (1 + e) + 1)
with 10 bits per byte (8N1), H = 4 PPP header bytes (address/control and protocol: the
network does not ask for ACFC/PFC), 2 FCS bytes, 1 flag (back-to-back frames share one),
P = the TCP payload of the device's full-size segments (1500 minus IP, TCP and MPTCP
headers, measured from a capture on lte0) and e = the measured escape rate of those
packets' bytes (0x7D/0x7E with ACCM 0). `share` = measured goodput (the kernel receiver's
bytes/seconds) / ceiling; the goal is >= 0.93.
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FW = os.path.join(ROOT, "firmware")
BIN = os.path.dirname(sys.executable)
SIZE = 1500
NPKT = 8
MIN_SECONDS = 0.3
LINE_BPS = 921600 // 10
DEFAULT_JSON = os.path.join("results", "bench_ppp.json")

# runs under micropython and CPython alike: argv = impl names; prints one JSON line
SCRIPT = r"""
import sys, json
try:
    from time import ticks_us, ticks_diff
except ImportError:
    import time as _t
    def ticks_us():
        return int(_t.perf_counter() * 1000000)
    def ticks_diff(a, b):
        return a - b
from mptcp_net import hdlc
MIN_US = int(%(min_us)d)
SIZE = %(size)d
NPKT = %(npkt)d

def pkts():
    out = []
    x = 12345
    for k in range(NPKT):
        b = bytearray(SIZE)
        for i in range(SIZE):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            b[i] = (x >> 16) & 0xFF
        b[0] = 0x45
        out.append(b)
    return out

def timeit(f):
    f()
    n = 0
    batch = 1
    t0 = ticks_us()
    while True:
        for _ in range(batch):
            f()
        n += batch
        dt = ticks_diff(ticks_us(), t0)
        if dt >= MIN_US:
            return n, dt
        batch *= 2

res = []
P = pkts()
for impl in sys.argv[1:]:
    if impl not in hdlc.IMPLS:
        continue
    enc = hdlc.Encoder(4 * SIZE, impl)
    enc.set_accm(0)
    dec = hdlc.Decoder(SIZE + 8, impl)
    dec.set_accm(0)
    fcsf = hdlc.IMPLS[impl][0]
    tab = hdlc.FCS_TABLE
    hdr = b"\x21"

    def do_fcs():
        for p in P:
            fcsf(p, 0, SIZE, 0xFFFF, tab)

    def do_enc():
        for p in P:
            enc.clear()
            enc.frame(hdr, 1, p, 0, SIZE)

    streams = []
    for p in P:
        enc.clear()
        enc.frame(hdr, 1, p, 0, SIZE)
        streams.append(bytearray(enc.buf[0:enc.tail]))
    ok = True
    for k in range(NPKT):
        s = streams[k]
        dec.feed(s, 0, len(s))
        ok = ok and dec.flen == SIZE + 1 and dec.frame[1:SIZE + 1] == P[k]

    def do_dec():
        for s in streams:
            dec.feed(s, 0, len(s))

    for op, f in (("fcs", do_fcs), ("encode", do_enc), ("decode", do_dec)):
        n, dt = timeit(f)
        res.append({"impl": impl, "op": op, "iters": n * NPKT, "seconds": dt / 1e6,
                    "mbps": SIZE * NPKT * n / dt, "ok": ok})
print(json.dumps({"default_impl": hdlc.IMPL, "results": res}))
"""


def _tool(name):
    p = os.path.join(BIN, name)
    return p if os.path.exists(p) else shutil.which(name)


def _script(tmp):
    path = os.path.join(tmp, "bench_ppp_run.py")
    with open(path, "w") as f:
        f.write(SCRIPT % {"min_us": int(MIN_SECONDS * 1e6), "size": SIZE, "npkt": NPKT})
    return path


def _bundle(tmp):
    """The unix_lab bundle (mptcp_tools.build); if another module does not compile yet,
    just the modules this bench imports, built the same way."""
    sys.path.insert(0, os.path.join(ROOT, "host_tools"))
    from mptcp_tools import build
    try:
        return build.build("unix_lab", tmp), None
    except SystemExit as e:
        note = "full unix_lab build failed (%s); built mptcp_net.hdlc alone" % str(e).splitlines()[0]
    out = os.path.join(tmp, "unix_lab")
    for rel in ("mptcp/__init__", "mptcp/compat", "mptcp_net/__init__", "mptcp_net/hdlc",
                "mptcp_net/_hdlc_viper"):
        build.compile_one(os.path.join(FW, rel + ".py"), os.path.join(out, rel + ".mpy"),
                          "x64")
    return out, note


def bench_micropython(tmp, script):
    mpy = _tool("micropython")
    if not mpy or not _tool("mpy-cross"):
        return [], ["micropython or mpy-cross not found"]
    bundle, note = _bundle(tmp)
    notes = [note] if note else []
    r = subprocess.run([mpy, script, "viper-native", "pure-python"], capture_output=True,
                       text=True, env=dict(os.environ, MICROPYPATH=bundle), timeout=600)
    if r.returncode != 0:
        return [], notes + ["micropython failed: " + r.stderr.strip()[-500:]]
    data = json.loads(r.stdout.strip().splitlines()[-1])
    if data["default_impl"] != "viper-native":
        notes.append("micropython picked %s, not viper-native" % data["default_impl"])
    rows = [dict(x, runtime="micropython") for x in data["results"]]
    return rows, notes


def bench_cpython(script):
    r = subprocess.run([sys.executable, script, "cpython-binascii", "pure-python"],
                       capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, PYTHONPATH=FW))
    if r.returncode != 0:
        return [], ["cpython failed: " + r.stderr.strip()[-500:]]
    data = json.loads(r.stdout.strip().splitlines()[-1])
    return [dict(x, runtime="cpython") for x in data["results"]], []


GOODPUT_BAUDS = (115200, 921600)
GOODPUT_SECONDS = 20        # transfer size: about this long on the line
GOAL_SHARE = 0.93
PPP_HDR = 4                 # FF 03 00 21
PPP_FCS = 2
PPP_FLAG = 1
MTU = 1500


def _device_runtime():
    """The compiled bundle when `make build` made it with the LTE netif, else the sources."""
    if os.path.exists(os.path.join(ROOT, "build", "unix_lab", "mptcp_net", "lte_link.mpy")):
        return "mpy", []
    return "source", ["--heap", "4m"]


def _uplink_stats(pcap, dev_addr):
    """IP bytes, TCP payload bytes, packet count, escape count of the device's packets,
    and (ip length, tcp payload) of its largest data segment."""
    from scapy.all import IP, TCP, PcapReader
    n = ip_bytes = payload = esc = 0
    full = (0, 0)
    with PcapReader(pcap) as rd:
        for pkt in rd:
            if IP not in pkt or pkt[IP].src != dev_addr:
                continue
            raw = bytes(pkt[IP])
            n += 1
            ip_bytes += len(raw)
            esc += raw.count(0x7D) + raw.count(0x7E)
            if TCP in pkt:
                t = pkt[TCP]
                pl = len(raw) - pkt[IP].ihl * 4 - t.dataofs * 4
                payload += pl
                if len(raw) > full[0]:
                    full = (len(raw), pl)
    return {"packets": n, "ip_bytes": ip_bytes, "tcp_payload": payload, "escapes": esc,
            "full_ip_len": full[0], "full_payload": full[1]}


def ceiling(baud, full_payload, esc_rate, mtu=MTU):
    """Payload bytes/s a line of `baud` (8N1) carries in full-size PPP frames."""
    wire = (mtu + PPP_HDR + PPP_FCS) * (1.0 + esc_rate) + PPP_FLAG
    return baud / 10.0 * full_payload / wire


def bench_goodput(bauds=GOODPUT_BAUDS):
    """Device -> kernel over LTE only at each baud; rows with goodput, ceiling, share."""
    if os.geteuid() != 0:
        return [], ["goodput skipped: needs root (the lab)"]
    sys.path.insert(0, os.path.join(ROOT, "host_tools"))
    from mptcp_lab import api
    runtime, extra = _device_runtime()
    rows, notes = [], []
    port = 5901
    with api.Lab(wifi="clean", lte="clean") as lab:
        lab.sysctl("net.mptcp.checksum_enabled", 0)
        for baud in bauds:
            port += 1
            size = int(baud / 10 * GOODPUT_SECONDS) // 65536 * 65536 or 65536
            lab.link_set("lte", baud=baud, delay="30ms")
            peer = lab.start_peer("server", port=port, mode="recv")
            st0 = lab.lte_status()["counters"]
            with lab.capture(iface="lte0", snaplen=1600) as pcap:
                rc, dev, err = lab.run_device(
                    ["--links", "lte", "--connect", "198.18.0.1:%d" % port, "--send",
                     str(size)] + extra, runtime=runtime, timeout=GOODPUT_SECONDS * 6 + 60)
                try:
                    ker = peer.wait(30)
                except Exception as e:
                    ker = None
                    notes.append("baud %d: kernel receiver: %s" % (baud, e))
                st1 = lab.lte_status()["counters"]
                up = _uplink_stats(pcap, "198.18.2.2")
            ok = (rc == 0 and dev is not None and ker is not None and ker["bytes"] == size
                  and ker["sha256"] == dev["sha256"])
            row = {"baud": baud, "bytes": size, "runtime": runtime, "ok": ok,
                   "line_bytes_per_s": baud / 10.0}
            if not ok:
                row["error"] = (dev or {}).get("error") or err.strip()[-300:]
                rows.append(row)
                continue
            esc_rate = up["escapes"] / float(up["ip_bytes"] or 1)
            ceil = ceiling(baud, up["full_payload"], esc_rate)
            good = ker["bytes"] / ker["seconds"]
            ser_up = st1.get("up_bytes", 0) - st0.get("up_bytes", 0)
            row.update({
                "seconds": ker["seconds"], "goodput_bytes_per_s": good,
                "ceiling_bytes_per_s": ceil, "share": good / ceil,
                "goal_share": GOAL_SHARE, "meets_goal": good / ceil >= GOAL_SHARE,
                "line_share": good / (baud / 10.0),
                "full_ip_len": up["full_ip_len"], "full_payload": up["full_payload"],
                "header_bytes": up["full_ip_len"] - up["full_payload"],
                "escape_rate": esc_rate, "uplink_packets": up["packets"],
                "serial_up_bytes": ser_up,
                "serial_utilisation": ser_up / (baud / 10.0) / dev["seconds"],
                "mptcp": dev["mptcp"] and ker["mptcp"],
                "device_rtt_ms": dev["subflows"][0].get("rtt_ms") if dev["subflows"] else None,
                "retrans": dev["subflows"][0].get("retrans") if dev["subflows"] else None,
            })
            rows.append(row)
    return rows, notes


def format_goodput(rows):
    lines = ["%-7s %9s %8s %10s %10s %7s %7s %6s %7s %s" % (
        "baud", "bytes", "seconds", "goodput", "ceiling", "share", "of-line", "hdr", "escape",
        "goal")]
    for r in rows:
        if not r.get("ok"):
            lines.append("%-7d FAILED: %s" % (r["baud"], r.get("error")))
            continue
        lines.append("%-7d %9d %8.2f %10.0f %10.0f %6.1f%% %6.1f%% %6d %6.2f%% %s" % (
            r["baud"], r["bytes"], r["seconds"], r["goodput_bytes_per_s"],
            r["ceiling_bytes_per_s"], 100 * r["share"], 100 * r["line_share"], r["header_bytes"],
            100 * r["escape_rate"], ">= 93%: yes" if r["meets_goal"] else ">= 93%: NO"))
    return "\n".join(lines)


def run(out_dir, json_path=None, goodput=True, show=True):
    """Run every measurement, write JSON (default out_dir/bench_ppp.json), return it.
    goodput: also the LTE goodput over the lab's emulated modem (root)."""
    tmp = tempfile.mkdtemp(prefix="bench_ppp_")
    try:
        script = _script(tmp)
        m_rows, notes = bench_micropython(tmp, script)
        c_rows, n2 = bench_cpython(script)
        notes += n2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    g_rows = []
    if goodput:
        try:
            g_rows, n3 = bench_goodput()
            notes += n3
        except Exception as e:      # report, don't lose the framing figures
            notes.append("goodput failed: %s: %s" % (type(e).__name__, e))
    rows = m_rows + c_rows
    for r in rows:
        r["x_line_921600"] = r["mbps"] * 1e6 / LINE_BPS
    result = {
        "bench": "ppp_framing",
        "unit": "MB/s (1e6 bytes/s) of packet payload, %d-byte random packets, ACCM 0" % SIZE,
        "line_bytes_per_s_921600": LINE_BPS,
        "min_seconds_per_figure": MIN_SECONDS,
        "host": {"machine": platform.machine(), "python": platform.python_version()},
        "results": rows,
        "goodput": {"unit": "payload bytes/s, device -> kernel over LTE (PPP) only",
                    "reference": "serial line payload ceiling (see module doc)",
                    "runs": g_rows},
        "notes": notes,
    }
    path = json_path or os.path.join(out_dir, "bench_ppp.json")
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    result["json_path"] = path
    if show:
        print(format_table(result))
    return result


def format_table(result):
    lines = ["%-12s %-18s %-7s %10s %10s %4s" % ("runtime", "impl", "op", "MB/s", "x921k",
                                                 "ok")]
    for r in result["results"]:
        lines.append("%-12s %-18s %-7s %10.2f %10.1f %4s" % (
            r["runtime"], r["impl"], r["op"], r["mbps"], r["x_line_921600"],
            "yes" if r["ok"] else "NO"))
    by = {(r["runtime"], r["impl"], r["op"]): r["mbps"] for r in result["results"]}
    for op in ("fcs", "encode", "decode"):
        v = by.get(("micropython", "viper-native", op))
        p = by.get(("micropython", "pure-python", op))
        if v and p:
            lines.append("micropython %s: viper is %.1fx pure Python" % (op, v / p))
    g = result.get("goodput", {}).get("runs")
    if g:
        lines.append("PPP goodput over the emulated serial line (device -> kernel, LTE only; "
                     "bytes/s; share = of the 1500-MTU payload ceiling, of-line = of baud/10; "
                     "hdr = IP+TCP+MPTCP bytes per full segment):")
        lines.append(format_goodput(g))
    for n in result["notes"]:
        lines.append("note: " + n)
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=DEFAULT_JSON,
                    help="where to write results (default %s)" % DEFAULT_JSON)
    ap.add_argument("--no-goodput", action="store_true",
                    help="framing only (the goodput part brings the lab up; root)")
    a = ap.parse_args(argv)
    result = run(os.path.dirname(a.json) or ".", json_path=a.json,
                 goodput=not a.no_goodput, show=True)
    print("wrote", result["json_path"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
