"""Benchmark: the protocol core's CPU cost per data segment, in memory (no sockets, no lab).

Runs the device app `mptcp_apps.coreprof` (two Stacks back to back in one process, a bulk
transfer a -> b) under MicroPython from the compiled unix_lab bundle and under CPython
from source, each with DSS checksums off and on. Reports microseconds per data segment
(total, send side, receive side) and, on MicroPython, bytes allocated per segment, next
to the issue's goal of <= 10 us per segment on MicroPython. Never asserts speed; a run
fails only if its transfer was not clean (the app's "ok").
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
BUNDLE = os.path.join(ROOT, "build", "unix_lab")
SIZE = 8 * 1024 * 1024
HEAP = "1M"
GOAL_US = 10
DEFAULT_JSON = os.path.join("results", "bench_core.json")


def command(impl, csum, size=SIZE, bundle=BUNDLE):
    """(argv, env) running mptcp_apps.coreprof under impl ("micropython" | "cpython")."""
    args = ["-m", "mptcp_apps.coreprof", "--size", str(size)] + (["--csum"] if csum else [])
    env = dict(os.environ)
    if impl == "micropython":
        env["MICROPYPATH"] = bundle
        return [os.path.join(BIN, "micropython"), "-X", "heapsize=" + HEAP] + args, env
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(ROOT, "firmware"),
                                         os.path.join(ROOT, "boards", "unix_lab")])
    return [os.path.join(BIN, "python")] + args, env


def run_one(impl, csum, size=SIZE, bundle=BUNDLE):
    """One run: the app's JSON result, or {"ok": False, "error": ...}."""
    if impl == "micropython" and not os.path.exists(os.path.join(bundle, "mptcp_apps", "coreprof.mpy")):
        return {"impl": impl, "csum": csum, "ok": False,
                "error": "%s/apps/coreprof.mpy missing (run make build)" % bundle}
    argv, env = command(impl, csum, size, bundle)
    try:
        r = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return {"impl": impl, "csum": csum, "ok": False, "error": "timeout"}
    lines = r.stdout.strip().splitlines()
    try:
        res = json.loads(lines[-1])
    except (IndexError, ValueError):
        res = {"impl": impl, "csum": csum, "ok": False}
    if r.returncode != 0:
        res["ok"] = False
        res["error"] = res.get("error") or "rc=%d: %s" % (r.returncode, r.stderr.strip()[-500:])
    return res


def run(out_dir, json_path=None, size=SIZE, bundle=BUNDLE):
    """Every (impl, csum) run; writes JSON (default out_dir/bench_core.json), returns it."""
    runs = []
    for impl in ("micropython", "cpython"):
        for csum in (False, True):
            print("bench: core %s csum=%s %d bytes ..." % (impl, csum, size), file=sys.stderr)
            runs.append(run_one(impl, csum, size, bundle))
    result = {"bench": "core", "bytes": size, "goal_us_per_segment_micropython": GOAL_US,
              "runs": runs}
    path = json_path or os.path.join(out_dir, "bench_core.json")
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
    result["json_path"] = path
    return result


def _fmt(v, spec):
    return "-" if v is None else spec % v


def format_table(result):
    lines = ["Core data path in memory (two Stacks, %d MiB bulk a -> b), per data segment"
             % (result["bytes"] // (1024 * 1024)),
             "%-12s %-5s %4s %12s %9s %9s %14s" % ("impl", "csum", "ok", "\u00b5s/segment", "send",
                                                  "receive", "alloc B/seg")]
    for r in result["runs"]:
        lines.append("%-12s %-5s %4s %12s %9s %9s %14s" % (
            r["impl"], "on" if r["csum"] else "off", "yes" if r.get("ok") else "NO",
            _fmt(r.get("us_per_segment"), "%.1f"), _fmt(r.get("send_us_per_segment"), "%.1f"),
            _fmt(r.get("recv_us_per_segment"), "%.1f"),
            _fmt(r.get("alloc_bytes_per_segment"), "%.1f")))
        if not r.get("ok"):
            lines.append("    error: %s" % r.get("error"))
    mpy = [r["us_per_segment"] for r in result["runs"]
           if r["impl"] == "micropython" and r.get("ok")]
    lines.append("goal \u2264 %d \u00b5s/segment on MicroPython%s" % (
        result["goal_us_per_segment_micropython"],
        ": best now %.1f (%.1fx the goal)" % (min(mpy), min(mpy) / GOAL_US) if mpy else ""))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=DEFAULT_JSON, help="where to write results (default %s)"
                    % DEFAULT_JSON)
    a = ap.parse_args(argv)
    result = run(os.path.dirname(a.json) or ".", json_path=a.json)
    print(format_table(result))
    print("wrote", result["json_path"])
    return 0 if all(r.get("ok") for r in result["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
