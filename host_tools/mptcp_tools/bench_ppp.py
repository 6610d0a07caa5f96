"""Benchmark: PPP HDLC framing throughput (FCS-16, stuffing, unstuffing), native vs pure.

Measures net.hdlc on 1500-byte random packets (ACCM 0, as negotiated on a modem
link): `fcs` = FCS-16 alone, `encode` = Encoder.frame (FCS + byte stuffing into the
output queue), `decode` = Decoder.feed of the framed stream (unstuffing + FCS check).
MicroPython runs from a unix_lab bundle (.mpy for x64) with the viper module and
with the pure-Python fallback; CPython runs its binascii path and the pure one.
The `x921k` column is the figure over a 921600-baud line's byte rate (92,160 B/s):
how much faster than the serial line the framing runs on this host. Never asserts
speed. PPP goodput over the emulated line is measured with the lab, not here.
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
from net import hdlc
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
        note = "full unix_lab build failed (%s); built net.hdlc alone" % str(e).splitlines()[0]
    out = os.path.join(tmp, "unix_lab")
    for rel in ("mptcp/__init__", "mptcp/compat", "net/__init__", "net/hdlc",
                "net/_hdlc_viper"):
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


def run(out_dir, json_path=None):
    """Run every measurement, write JSON (default out_dir/bench_ppp.json), return it."""
    tmp = tempfile.mkdtemp(prefix="bench_ppp_")
    try:
        script = _script(tmp)
        m_rows, notes = bench_micropython(tmp, script)
        c_rows, n2 = bench_cpython(script)
        notes += n2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
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
        "notes": notes,
    }
    path = json_path or os.path.join(out_dir, "bench_ppp.json")
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    result["json_path"] = path
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
    for n in result["notes"]:
        lines.append("note: " + n)
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=DEFAULT_JSON,
                    help="where to write results (default %s)" % DEFAULT_JSON)
    a = ap.parse_args(argv)
    result = run(os.path.dirname(a.json) or ".", json_path=a.json)
    print(format_table(result))
    print("wrote", result["json_path"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
