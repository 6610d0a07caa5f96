"""The in-memory core benchmark app (mptcp_apps.coreprof) on both interpreters: correctness only.

Runs the app from source as a subprocess (MicroPython unix port and CPython), checks its
exit status and JSON line; on MicroPython the measured data path must allocate nothing
(as tests/unit/test_noalloc.py proves with heap_lock). Never asserts speed.
"""
import json
import os
import subprocess
import sys

import pytest

import hostenv

ROOT = hostenv.ROOT
PATH = os.path.join(ROOT, "firmware") + ":" + os.path.join(ROOT, "boards", "unix_lab")
PHASES = ("a_output_data", "b_input_data", "b_output_ack", "a_input_ack", "app_write",
          "app_readinto")
IMPLS = ("micropython", "cpython")


def run_app(impl, args):
    env = dict(os.environ)
    if impl == "micropython":
        env["MICROPYPATH"] = PATH
        argv = [hostenv.micropython(), "-X", "heapsize=1M", "-m", "mptcp_apps.coreprof"]
    else:
        env["PYTHONPATH"] = PATH
        argv = [sys.executable, "-m", "mptcp_apps.coreprof"]
    return subprocess.run(argv + list(args), env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("csum", [False, True], ids=["csum0", "csum1"])
@pytest.mark.parametrize("impl", IMPLS)
def test_transfer(impl, csum):
    r = run_app(impl, ["--size", "1M"] + (["--csum"] if csum else []))
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1, r.stdout
    res = json.loads(lines[0])
    assert res["bench"] == "core" and res["impl"] == impl and res["csum"] is csum
    assert res["ok"] is True and res["sha256_equal"] is True
    assert res["bytes"] == 1024 * 1024 and res["segments"] > 0
    for k in ("us_per_segment", "send_us_per_segment", "recv_us_per_segment"):
        assert isinstance(res[k], (int, float)) and res[k] >= 0, k
    assert sorted(res["phases"]) == sorted(PHASES)
    assert res["phases"]["a_output_data"]["calls"] == res["segments"]
    for name, p in res["phases"].items():
        assert p["calls"] > 0 and p["us_per_call"] >= 0, name
        if impl == "cpython":
            assert p["alloc_per_call"] is None, name
        else:
            assert p["alloc_per_call"] == 0, (name, res["phases"])
    if impl == "cpython":
        assert res["alloc_bytes_per_segment"] is None
    else:
        assert res["alloc_bytes_per_segment"] == 0, res["phases"]


@pytest.mark.parametrize("impl", IMPLS)
def test_help_exits_zero(impl):
    r = run_app(impl, ["--help"])
    assert r.returncode == 0, r.stderr
    assert "--warmup-fraction" in r.stdout and r.stderr == ""


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("args", [["--frobnicate"], ["--size"], ["--size", "lots"],
                                  ["--warmup-fraction", "1"]])
def test_bad_arguments_exit_two(impl, args):
    r = run_app(impl, args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.startswith("coreprof: ") and r.stdout == ""
