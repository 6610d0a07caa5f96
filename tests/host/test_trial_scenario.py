"""mptcp-trial's scenario parser: the shipped examples load, malformed files get one line
naming the problem (exit 2 from the command)."""
import json
import os
import subprocess
import sys

import pytest

from mptcp_tools.trial_scenario import ScenarioError, agent_args, cuts, load, restores, validate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOOD = {"links": {"wifi": "slow", "lte": "clean"},
        "schedule": [{"at": 2, "link": "wifi", "action": "down"},
                     {"at": 5, "link": "wifi", "action": "up"},
                     {"at": 6, "link": "wifi", "action": "set", "settings": {"loss": 100}}],
        "traffic": [{"type": "bulk", "bytes": "2M", "direction": "up"},
                    {"type": "interactive", "bytes": 64, "every_ms": 200}]}


def test_examples_load():
    names = sorted(os.listdir(os.path.join(ROOT, "trials")))
    assert len([n for n in names if n.endswith(".json")]) >= 2
    for n in names:
        sc = load(os.path.join(ROOT, "trials", n))
        assert sc["name"] and sc["traffic"]


def test_good_scenario_canonical():
    sc = validate(GOOD, "x")
    assert list(sc["links"]) == ["wifi", "lte"]
    assert sc["traffic"]["bulk"] == {"bytes": 2 * 1024 * 1024, "direction": "up"}
    assert sc["traffic"]["interactive"] == {"bytes": 64, "every_ms": 200}
    assert [e["at"] for e in sc["schedule"]] == [2.0, 5.0, 6.0]
    assert sc["duration"] is None and sc["timeout"] == 300.0
    assert cuts(sc) == [(2.0, "wifi", "down"), (6.0, "wifi", "loss")]
    assert restores(sc) == [(5.0, "wifi")]
    args = agent_args(sc, 5201)
    assert args[:4] == ["--connect", "198.18.0.1:5201", "--links", "wifi,lte"]
    assert "--bulk" in args and args[args.index("--bulk") + 1] == str(2 * 1024 * 1024)
    assert args[args.index("--interactive") + 1] == "64:200"


def _bad(doc):
    with pytest.raises(ScenarioError) as ei:
        validate(doc)
    msg = str(ei.value)
    assert "\n" not in msg
    return msg


def test_bad_scenarios_name_the_problem():
    def mod(**kw):
        d = json.loads(json.dumps(GOOD))
        d.update(kw)
        return d
    assert "JSON object" in _bad([1, 2])
    assert "unknown key(s) bogus" in _bad(mod(bogus=1))
    assert "'links'" in _bad(mod(links={}))
    assert "unknown link 'bt'" in _bad(mod(links={"bt": "clean"}))
    assert "unknown profile 'fast'" in _bad(mod(links={"wifi": "fast"}))
    assert "scheduler" in _bad(mod(scheduler="fastest"))
    assert "schedule:" in _bad(mod(schedule=[{"at": -1, "link": "wifi", "action": "down"}]))
    assert "not in 'links'" in _bad(mod(links={"wifi": "clean"},
                                           schedule=[{"at": 1, "link": "lte", "action": "down"}]))
    assert "'traffic'" in _bad(mod(traffic=[]))
    assert "'type'" in _bad(mod(traffic=[{"type": "video", "bytes": 1}]))
    assert "a second bulk" in _bad(mod(traffic=[{"type": "bulk", "bytes": 1},
                                                {"type": "bulk", "bytes": 2}]))
    assert "bad size" in _bad(mod(traffic=[{"type": "bulk", "bytes": "2Q"}]))
    assert "'direction'" in _bad(mod(traffic=[{"type": "bulk", "bytes": 1, "direction": "sideways"}]))
    assert "every_ms" in _bad(mod(traffic=[{"type": "telemetry", "bytes": 8}], duration=5))
    assert "'duration'" in _bad(mod(traffic=[{"type": "telemetry", "bytes": 8, "every_ms": 100}]))
    assert "'duration'" in _bad(mod(duration=-3))


def test_load_reports_file_and_json_errors(tmp_path):
    p = tmp_path / "s.json"
    p.write_text("{not json")
    with pytest.raises(ScenarioError) as ei:
        load(str(p))
    assert str(ei.value).startswith(str(p) + ": not valid JSON")
    with pytest.raises(ScenarioError) as ei:
        load(str(tmp_path / "missing.json"))
    assert "cannot read" in str(ei.value)


def test_command_exits_2_with_one_line(tmp_path):
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"links": {"wifi": "clean"}, "traffic": [{"type": "bulk", "bytes": 0}]}))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.join(ROOT, "host_tools"), os.path.join(ROOT, "firmware")]))
    r = subprocess.run([sys.executable, "-m", "mptcp_tools.trial", str(p)], capture_output=True,
                       text=True, env=env, timeout=60)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "traffic[0]: bytes must be > 0" in lines[0]


def test_lab_device_command_runs_the_trial_agent():
    from mptcp_lab import device
    from mptcp_lab.common import LabError
    sc = validate(GOOD, "x")
    argv, env = device.command(agent_args(sc, 5201), "source", app="trial")
    assert argv[argv.index("-m") + 1] == "mptcp_apps.trial"
    assert "-X" in argv and argv[argv.index("-X") + 1] == "heapsize=1m"
    argv, _ = device.command(["--connect", "h:1", "--send", "1"], "source")
    assert argv[argv.index("-m") + 1] == "mptcp_apps.perf"
    with pytest.raises(LabError):
        device.command([], "source", app="nope")


def test_heap_and_ring_size_reach_the_agent():
    """mptcp-trial --heap / --buf: the lab process's -X heapsize and the agent's rings."""
    from mptcp_lab import device
    sc = validate(GOOD, "x")
    args = agent_args(sc, 5201, heap="196608", buf=16384)
    assert args[args.index("--snd-buf") + 1] == "16384"
    assert args[args.index("--rcv-buf") + 1] == "16384"
    argv, _ = device.command(args, "source", app="trial")
    assert argv[argv.index("-X") + 1] == "heapsize=196608"
    assert "--snd-buf" not in agent_args(sc, 5201)       # default: the board config's rings
    r = subprocess.run([sys.executable, "-m", "mptcp_tools.trial", "--buf", "1x",
                        "trials/handover_wifi_lte.json"], capture_output=True, text=True,
                       cwd=ROOT, env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "host_tools")),
                       timeout=60)
    assert r.returncode == 2 and "--buf: bad size '1x'" in r.stderr.strip().splitlines()[-1]
