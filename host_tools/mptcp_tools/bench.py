"""make bench: the project's benchmarks, printed as tables and written as JSON.

1. checksum: Internet checksum MB/s per implementation vs a gcc -O2 C reference.
2. ppp: FCS/byte-stuffing MB/s native vs pure (when the PPP code is present).
3. core: CPU microseconds and bytes allocated per data segment of the protocol core, in
   memory (mptcp_apps.coreprof: two Stacks in one process), MicroPython and CPython, DSS
   checksums off and on, next to the goal of <= 10 us per segment on MicroPython.
4. bulk: goodput and device CPU time per 1448-byte segment for a bulk send and a bulk
   receive over the unimpaired lab Wi-Fi link, with the device stack on MicroPython and on
   CPython, next to the same transfer by the kernel as the device (namespace mplab-ref)
   measured in the same run. CPU time is the device process's user+sys (wait4 rusage) minus
   the cost of starting the interpreter and importing the stack (measured separately).
5. aggregation: Wi-Fi + LTE together (simult_flows.sh cases), device and kernel as the device,
   against the ideal time and Linux's pass mark (bench_multipath).
6. handover: the longest stall of a Wi-Fi cut mid-transfer, signalled and silent, device
   (minrtt, backup) and kernel as the device (bench_multipath).

Benchmarks never assert speed; they report. Figures are relative to references from the same run.
"""
import argparse
import json
import os
import subprocess
import sys
import time

from mptcp_tools.build import ROOT

SEG = 1448
PARTS = ("checksum", "ppp", "core", "bulk", "aggregation", "handover")


def _run_rusage(argv, env, timeout):
    """Run argv; return (rc, stdout, stderr, cpu_seconds) with the child's own rusage."""
    import tempfile
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    p = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    t_end = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > t_end:
            p.kill()
            pid, status, ru = os.wait4(p.pid, 0)
            break
        time.sleep(0.02)
    p.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    err.seek(0)
    return p.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"), \
        ru.ru_utime + ru.ru_stime


def _last_json(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                pass
    return None


def _startup_cpu(runtime):
    from mptcp_lab import device
    argv, env = device.command(["--help"], runtime)
    # replace "-m mptcp_apps.perf --help" by an import of everything the perf app imports
    i = argv.index("-m")
    argv = argv[:i] + ["-c", "import mptcp.stack, mptcp_runtime.loop, mptcp_net.udp_tunnel, "
                                   "mptcp_runtime.socket_api, mptcp_apps.perf"]
    best = None
    for _ in range(3):
        rc, out, err, cpu = _run_rusage(argv, env, 60)
        if rc != 0:
            raise RuntimeError("startup probe failed: %s" % err[-500:])
        best = cpu if best is None else min(best, cpu)
    return best


def bulk_one(lab, direction, who, size, port):
    """One transfer; who = "mpy" | "cpython" | "ref". Returns a result dict."""
    from mptcp_lab import device
    res = {"direction": direction, "device": who, "bytes": size}
    if who == "ref":
        if direction == "send":
            peer = lab.start_peer("server", port=port, mode="recv")
            rc, dev, err = lab.run_ref(["--connect", "198.18.0.1:%d" % port, "--send", str(size)], timeout=900)
            ker = peer.wait(120)
        else:
            h = lab.start_ref(["--listen", str(port), "--recv"])
            time.sleep(0.5)
            peer = lab.start_peer("client", connect="198.18.1.2:%d" % port, mode="send", nbytes=size)
            ker = peer.wait(900)
            h.proc.wait(60)
            rc, dev = h.proc.returncode, _last_json(h.stdout)
        cpu = None
    else:
        if direction == "send":
            peer = lab.start_peer("server", port=port, mode="recv")
            argv, env = device.command(["--connect", "198.18.0.1:%d" % port, "--send", str(size),
                                        "--timeout", "600"], who)
            rc, out, err, cpu = _run_rusage(argv, env, 900)
            ker = peer.wait(120)
        else:
            argv, env = device.command(["--listen", str(port), "--recv", "--timeout", "600", "-v"], who)
            import threading
            box = {}
            t = threading.Thread(target=lambda: box.update(r=_run_rusage(argv, env, 900)))
            t.start()
            time.sleep(1.0 if who == "mpy" else 1.5)
            peer = lab.start_peer("client", connect="198.18.1.2:%d" % port, mode="send", nbytes=size)
            ker = peer.wait(900)
            t.join()
            rc, out, err, cpu = box["r"]
        dev = _last_json(out)
    ok = (rc == 0 and dev is not None and ker is not None and dev.get("sha256") == ker.get("sha256")
          and dev.get("bytes") == size)
    res["ok"] = ok
    if dev:
        secs = dev.get("seconds") or 0
        res["seconds"] = secs
        res["goodput_mbit"] = round(size * 8 / secs / 1e6, 2) if secs else None
        res["mptcp"] = dev.get("mptcp")
        res["heap_peak"] = dev.get("heap_peak")
        res["subflows"] = dev.get("subflows")
    if cpu is not None:
        res["cpu_seconds"] = round(cpu, 3)
    if not ok:
        res["error"] = "rc=%s dev=%s ker=%s" % (rc, dev and dev.get("error"), ker)
    return res


def bench_bulk(size):
    from mptcp_lab import api
    results = []
    port = 7001
    with api.Lab(wifi="clean") as lab:
        startup = {}
        for who in ("mpy", "cpython"):
            try:
                startup[who] = _startup_cpu(who)
            except Exception as e:  # reported, the figure is then raw
                startup[who] = 0.0
                print("bench: startup probe for %s failed: %s" % (who, e), file=sys.stderr)
        for direction in ("send", "recv"):
            for who in ("ref", "mpy", "cpython"):
                port += 1
                print("bench: bulk %s %s %d bytes ..." % (direction, who, size), file=sys.stderr)
                try:
                    r = bulk_one(lab, direction, who, size, port)
                except Exception as e:
                    r = {"direction": direction, "device": who, "ok": False, "error": str(e)}
                if r.get("cpu_seconds") is not None:
                    c = max(0.0, r["cpu_seconds"] - startup.get(who, 0.0))
                    r["cpu_us_per_segment"] = round(c / (size / SEG) * 1e6, 2)
                    r["startup_cpu_seconds"] = round(startup.get(who, 0.0), 3)
                results.append(r)
    # ratios against the kernel reference of the same direction
    ref = {r["direction"]: r for r in results if r["device"] == "ref" and r.get("goodput_mbit")}
    for r in results:
        rr = ref.get(r["direction"])
        if rr and r.get("goodput_mbit"):
            r["vs_kernel"] = round(r["goodput_mbit"] / rr["goodput_mbit"], 3)
    return {"size": size, "segment": SEG, "runs": results}


def print_bulk(b):
    print("\nBulk transfer over the unimpaired lab Wi-Fi link (%d MiB, %d-byte segments)" %
          (b["size"] // (1024 * 1024), b["segment"]))
    print("%-6s %-8s %5s %12s %10s %14s %10s" % ("dir", "device", "ok", "goodput", "vs kernel", "CPU/segment", "heap"))
    for r in b["runs"]:
        print("%-6s %-8s %5s %9s Mb/s %10s %11s us %10s" % (
            r["direction"], r["device"], "yes" if r.get("ok") else "NO",
            r.get("goodput_mbit", "-"), r.get("vs_kernel", "-"),
            r.get("cpu_us_per_segment", "-"), r.get("heap_peak", "-")))
        if not r.get("ok"):
            print("       error: %s" % r.get("error"))


def main(argv=None):
    ap = argparse.ArgumentParser(description="Run the benchmarks (see module doc); JSON into results/")
    ap.add_argument("--size", default="64M", help="bulk transfer size (default 64M)")
    ap.add_argument("--only", choices=PARTS, action="append",
                    help="run only these parts (repeatable)")
    ap.add_argument("--agg-seconds", type=float, default=3.0,
                    help="aggregation: transfer size for about this ideal time (default 3)")
    ap.add_argument("--mp-buf", default=None,
                    help="the device's --snd-buf/--rcv-buf, e.g. 128K (default: the board's); its "
                         "heap grows by both rings")
    ap.add_argument("--out", default=os.path.join(ROOT, "results"), help="output directory")
    a = ap.parse_args(argv)
    size = _parse_size(a.size)
    parts = a.only or list(PARTS)
    os.makedirs(a.out, exist_ok=True)
    summary = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    failed = False
    if "checksum" in parts:
        from mptcp_tools import bench_checksum
        summary["checksum"] = bench_checksum.run(a.out)
        print(bench_checksum.format_table(summary["checksum"]))
    if "ppp" in parts:
        try:
            from mptcp_tools import bench_ppp
        except ImportError:
            print("bench: ppp benchmark not available yet (issue 3)", file=sys.stderr)
        else:
            summary["ppp"] = bench_ppp.run(a.out)
    if "core" in parts:
        from mptcp_tools import bench_core
        summary["core"] = bench_core.run(a.out)
        print("\n" + bench_core.format_table(summary["core"]))
        failed = not all(r.get("ok") for r in summary["core"]["runs"])
    if "bulk" in parts:
        b = bench_bulk(size)
        summary["bulk"] = b
        print_bulk(b)
        failed = failed or not all(r.get("ok") for r in b["runs"])
        with open(os.path.join(a.out, "bench_bulk.json"), "w") as f:
            json.dump(b, f, indent=1)
    mp_parts = [p for p in ("aggregation", "handover") if p in parts]
    if mp_parts:
        from mptcp_tools import bench_multipath
        extra = []
        if a.mp_buf:
            # rings of that size need a heap to hold them: the lab's default (512k with LTE)
            # plus both rings
            heap = 512 * 1024 + 2 * _parse_size(a.mp_buf)
            extra = ["--snd-buf", str(_parse_size(a.mp_buf)), "--rcv-buf",
                     str(_parse_size(a.mp_buf)), "--heap", str(heap)]
        mp = bench_multipath.run(a.out, mp_parts, a.agg_seconds, extra)
        summary.update(mp)
        failed = failed or bench_multipath.failed(mp)
    with open(os.path.join(a.out, "bench.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print("\nbench: results written to %s/bench.json" % a.out)
    if failed:
        print("bench: some transfers FAILED (see above)", file=sys.stderr)
    return 1 if failed else 0


def _parse_size(s):
    s = s.strip().upper().replace("IB", "").replace("B", "")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(s[-1:], 1)
    return int(s.rstrip("KMG")) * mult


if __name__ == "__main__":
    sys.exit(main())
