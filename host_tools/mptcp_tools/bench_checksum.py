"""Benchmark: Internet checksum throughput of every implementation, next to C (gcc -O2).

Measures `mptcp.checksum.inet_checksum` over a 1448-byte segment and a 64 KiB buffer:
MicroPython with the viper module compiled for x64, MicroPython pure Python (the same
bundle with an armv6m viper .mpy, so the import falls back as it would on a board without
native code), CPython's fast path and CPython pure Python; plus bench/csum_ref.c compiled
at bench time. Prints a table with ratios to C and writes JSON. Never asserts speed.
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FW = os.path.join(ROOT, "firmware")
C_SRC = os.path.join(ROOT, "bench", "csum_ref.c")
BIN = os.path.dirname(sys.executable)
SIZES = (1448, 65536)
MIN_SECONDS = 0.3
DEFAULT_JSON = os.path.join("results", "bench_checksum.json")

# run under micropython: argv = sizes..., prints one JSON line
MPY_SCRIPT = r"""
import sys, time, json
from mptcp import checksum as C
MIN_US = int(%(min_us)d)
res = []
for size in [int(a) for a in sys.argv[1:]]:
    buf = bytearray(size)
    for i in range(size):
        buf[i] = (i * 31 + 7) & 0xFF
    f = C.inet_checksum
    v = f(buf, 0, size)
    iters = 0
    batch = 1
    t0 = time.ticks_us()
    while True:
        for _ in range(batch):
            f(buf, 0, size)
        iters += batch
        dt = time.ticks_diff(time.ticks_us(), t0)
        if dt >= MIN_US:
            break
        batch *= 2
    res.append({"size": size, "iters": iters, "seconds": dt / 1e6,
                "mbps": size * iters / dt, "checksum": v})
print(json.dumps({"impl": C.IMPL, "results": res}))
"""


def _tool(name):
    p = os.path.join(BIN, name)
    return p if os.path.exists(p) else shutil.which(name)


def _pattern(size):
    return bytes((i * 31 + 7) & 0xFF for i in range(size))


def _time_py(f, size):
    buf = bytearray(_pattern(size))
    v = f(buf, 0, size)
    iters, batch = 0, 1
    t0 = time.perf_counter()
    while True:
        for _ in range(batch):
            f(buf, 0, size)
        iters += batch
        dt = time.perf_counter() - t0
        if dt >= MIN_SECONDS:
            break
        batch *= 2
    return {"size": size, "iters": iters, "seconds": dt, "mbps": size * iters / dt / 1e6,
            "checksum": v}


def bench_cpython():
    """CPython: the fast path chosen at import, and the pure-Python loop."""
    if FW not in sys.path:
        sys.path.insert(0, FW)
    from mptcp import checksum as C

    def pure(buf, start, end):
        return ~C._sum_py(buf, start, end, 0) & 0xFFFF

    out = []
    fast = C.IMPL if C.IMPL.startswith("cpython") else "cpython " + C.IMPL
    for name, f in ((fast, C.inet_checksum), ("cpython pure-python", pure)):
        for size in SIZES:
            out.append(dict(_time_py(f, size), impl=name))
    return out


def _mpy_bundle(dst, viper_arch):
    """mptcp/{__init__,compat,checksum}.mpy for x64 and _csum_viper.mpy for viper_arch."""
    mpyc = _tool("mpy-cross")
    pkg = os.path.join(dst, "mptcp")
    os.makedirs(pkg, exist_ok=True)
    for name in ("__init__", "compat", "checksum", "_csum_viper"):
        arch = viper_arch if name == "_csum_viper" else "x64"
        subprocess.run([mpyc, "-march=" + arch, "-o", os.path.join(pkg, name + ".mpy"),
                        os.path.join(FW, "mptcp", name + ".py")], check=True,
                       capture_output=True)
    return dst


def bench_micropython(tmp):
    """MicroPython unix port: viper-native (x64 .mpy) and pure Python (arch mismatch)."""
    mpy = _tool("micropython")
    if not mpy or not _tool("mpy-cross"):
        return [], "micropython or mpy-cross not found"
    script = os.path.join(tmp, "bench_mpy.py")
    with open(script, "w") as f:
        f.write(MPY_SCRIPT % {"min_us": int(MIN_SECONDS * 1e6)})
    out = []
    for label, arch in (("viper", "x64"), ("pure", "armv6m")):
        bundle = _mpy_bundle(os.path.join(tmp, label), arch)
        env = dict(os.environ, MICROPYPATH=bundle)
        r = subprocess.run([mpy, script] + [str(s) for s in SIZES], capture_output=True,
                           text=True, env=env, timeout=300)
        if r.returncode != 0:
            return out, "micropython failed: " + r.stderr.strip()[-500:]
        data = json.loads(r.stdout.strip().splitlines()[-1])
        for row in data["results"]:
            out.append(dict(row, impl="micropython " + data["impl"]))
    return out, None


def bench_c(tmp):
    """bench/csum_ref.c built with gcc -O2 in tmp."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if not gcc:
        return [], "gcc not found"
    exe = os.path.join(tmp, "csum_ref")
    r = subprocess.run([gcc, "-O2", "-o", exe, C_SRC], capture_output=True, text=True)
    if r.returncode != 0:
        return [], "gcc failed: " + r.stderr.strip()[-500:]
    out = []
    for size in SIZES:
        r = subprocess.run([exe, str(size), str(MIN_SECONDS)], capture_output=True, text=True,
                           timeout=60, check=True)
        out.append(dict(json.loads(r.stdout), impl="c gcc -O2"))
    return out, None


def run(out_dir, json_path=None):
    """Run every measurement, write JSON (default out_dir/bench_checksum.json), return it."""
    tmp = tempfile.mkdtemp(prefix="bench_csum_")
    notes = []
    try:
        c_rows, err = bench_c(tmp)
        if err:
            notes.append(err)
        m_rows, err = bench_micropython(tmp)
        if err:
            notes.append(err)
        rows = c_rows + m_rows + bench_cpython()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    c_by_size = {r["size"]: r["mbps"] for r in c_rows}
    want = {s: ~_ref_sum(_pattern(s)) & 0xFFFF for s in SIZES}
    for r in rows:
        c = c_by_size.get(r["size"])
        r["ratio_to_c"] = (r["mbps"] / c) if c else None
        r["checksum_ok"] = r["checksum"] == want[r["size"]]
    result = {
        "bench": "checksum",
        "unit": "MB/s (1e6 bytes/s) of inet_checksum over one buffer",
        "sizes": list(SIZES),
        "min_seconds_per_figure": MIN_SECONDS,
        "host": {"machine": platform.machine(), "python": platform.python_version()},
        "results": rows,
        "notes": notes,
    }
    path = json_path or os.path.join(out_dir, "bench_checksum.json")
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    result["json_path"] = path
    return result


def _ref_sum(data):
    if len(data) & 1:
        data += b"\x00"
    s = sum((data[i] << 8) | data[i + 1] for i in range(0, len(data), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def format_table(result):
    lines = ["%-32s %8s %12s %10s %6s" % ("implementation", "bytes", "MB/s", "x C", "ok")]
    for r in result["results"]:
        ratio = "%.4f" % r["ratio_to_c"] if r["ratio_to_c"] is not None else "-"
        lines.append("%-32s %8d %12.2f %10s %6s" % (r["impl"], r["size"], r["mbps"], ratio,
                                                    "yes" if r["checksum_ok"] else "NO"))
    for n in result["notes"]:
        lines.append("note: " + n)
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=DEFAULT_JSON, help="where to write results (default %s)"
                    % DEFAULT_JSON)
    a = ap.parse_args(argv)
    result = run(os.path.dirname(a.json) or ".", json_path=a.json)
    print(format_table(result))
    print("wrote", result["json_path"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
