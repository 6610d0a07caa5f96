"""Timed link actions without root: the schedule file parser (JSON and lines), the
`link --at/--for` entries, the emulator's Scheduler on a fake clock, and the CLI's one-line
error (exit 2) for a malformed file."""

import json

import pytest

import hostenv  # noqa: F401  (sys.path for host_tools and firmware)

from mptcp_lab import cli, common, schedule
from mptcp_lab.schedule import Scheduler, outage, parse


def test_json_and_lines_give_the_same_canonical_entries():
    js = json.dumps([
        {"at": 15, "link": "wifi", "action": "up"},
        {"at": 5, "link": "wifi", "action": "down"},
        {"at": 20, "link": "wifi", "action": "set", "settings": {"loss": 100, "rate": "2mbit"},
         "dir": "up"},
        {"at": 25.5, "link": "lte", "action": "set",
         "settings": {"baud": 115200, "delay": "75ms"}}])
    lines = ("# an outage, then a silent failure\n15 wifi up\n5 wifi down\n\n"
             "20 wifi set loss=100 rate=2mbit dir=up\n25.5 lte set baud=115200 delay=75ms\n")
    want = [
        {"at": 5.0, "link": "wifi", "action": "down", "settings": {}, "dir": "both"},
        {"at": 15.0, "link": "wifi", "action": "up", "settings": {}, "dir": "both"},
        {"at": 20.0, "link": "wifi", "action": "set",
         "settings": {"loss": 100.0, "rate": 2_000_000}, "dir": "up"},
        {"at": 25.5, "link": "lte", "action": "set",
         "settings": {"baud": 115200, "delay_ms": 75.0}, "dir": "both"}]
    assert parse(js) == want
    assert parse(lines) == want
    assert [schedule.normalize(e) for e in want] == want       # idempotent


@pytest.mark.parametrize("text, why", [
    ("", "empty schedule"),
    ("[", "not valid JSON"),
    ('{"at": 1}', "must be a list"),
    ("[]", "no entries"),
    ('[{"at": 1, "link": "wifi", "action": "down"}, 7]', "entry 2: not an object"),
    ('[{"at": -1, "link": "wifi", "action": "down"}]', "entry 1: 'at' must be in"),
    ('[{"at": "soon", "link": "wifi", "action": "down"}]', "entry 1: 'at' must be a number"),
    ('[{"at": true, "link": "wifi", "action": "down"}]', "entry 1: 'at' must be a number"),
    ('[{"at": 1, "link": "bluetooth", "action": "down"}]', "entry 1: 'link' must be one of"),
    ('[{"at": 1, "link": "wifi", "action": "explode"}]', "entry 1: 'action' must be one of"),
    ('[{"at": 1, "link": "wifi", "action": "set"}]', "entry 1: action set needs 'settings'"),
    ('[{"at": 1, "link": "wifi", "action": "down", "settings": {"loss": 5}}]',
     "only go with action set"),
    ('[{"at": 1, "link": "wifi", "action": "down", "when": 3}]', "unknown key(s) when"),
    ('[{"at": 1, "link": "wifi", "action": "set", "settings": {"bogus": 1}}]',
     "unknown setting"),
    ('[{"at": 1, "link": "wifi", "action": "set", "settings": {"loss": 101}}]', "above 100"),
    ('[{"at": 1, "link": "lte", "action": "set", "settings": {"loss": 1}}]',
     "unknown setting 'loss' for the LTE link"),
    ('[{"at": 1, "link": "lte", "action": "set", "settings": {"baud": 9600}, "dir": "up"}]',
     "both directions"),
    ("5 wifi", "line 1: expected AT LINK ACTION"),
    ("1 wifi down\nsoon wifi up", "line 2: 'at' must be a number"),
    ("1 wifi set loss", "line 1: setting 'loss' is not NAME=VALUE"),
])
def test_malformed_schedules_say_where_and_why(text, why):
    with pytest.raises(ValueError) as e:
        parse(text)
    assert why in str(e.value), str(e.value)


def test_link_at_for_entries():
    assert outage("wifi", 5.0, 10.0) == [
        {"at": 5.0, "link": "wifi", "action": "down", "settings": {}, "dir": "both"},
        {"at": 15.0, "link": "wifi", "action": "up", "settings": {}, "dir": "both"}]
    assert [e["action"] for e in outage("lte", 0.0, 2.0)] == ["down", "up"]
    assert outage("wifi", 3.0, None, "set", {"loss": 100.0}, "down") == [
        {"at": 3.0, "link": "wifi", "action": "set", "settings": {"loss": 100.0},
         "dir": "down"}]
    for args in (("wifi", 0.0, 5.0, "up"), ("wifi", 0.0, 0.0), ("wifi", -1.0, 1.0)):
        with pytest.raises(ValueError):
            outage(*args)


def test_scheduler_runs_entries_in_order_never_early_and_survives_errors():
    ran = []

    def apply(e):
        if e["link"] == "lte" and e["action"] == "up":
            raise RuntimeError("modem gone")
        ran.append((e["link"], e["action"]))

    s = Scheduler(apply)
    assert s.next_deadline() is None
    s.add(parse("2 wifi up\n0.5 wifi down\n2 lte up\n2 wifi set loss=100"), 100.0)
    st = s.status(100.0)
    assert [(e["in_s"], e["action"]) for e in st["pending"]] == \
        [(0.5, "down"), (2.0, "up"), (2.0, "up"), (2.0, "set")]
    assert s.next_deadline() == 100.5
    s.on_timer(100.4999)
    assert ran == []
    s.on_timer(100.5)
    assert ran == [("wifi", "down")] and s.next_deadline() == 102.0
    s.on_timer(103.0)                     # a late wake-up runs everything due, in order
    assert ran == [("wifi", "down"), ("wifi", "up"), ("wifi", "set")]
    assert s.next_deadline() is None and s.status(103.0)["pending"] == []
    done = s.status(103.0)["done"]
    assert [d.get("error") for d in done] == [None, None, "RuntimeError: modem gone", None]
    assert all(d["ran_after_s"] >= d["due_after_s"] for d in done)
    assert done[0]["due_after_s"] == 0.5 and done[1]["ran_after_s"] == 3.0


def test_scheduler_add_is_all_or_nothing_and_clear():
    s = Scheduler(lambda e: None)
    s.add(outage("wifi", 1.0, 1.0), 0.0)
    with pytest.raises(ValueError):
        s.add([{"at": 1, "link": "wifi", "action": "down"}, {"at": 1, "link": "x"}], 0.0)
    assert len(s.status(0.0)["pending"]) == 2
    assert s.clear() == 2 and s.next_deadline() is None


def test_cli_malformed_file_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(common, "require_root", lambda: None)
    bad = tmp_path / "bad.json"
    bad.write_text('[{"at": 1, "link": "wifi", "action": "down"},\n'
                   ' {"at": 2, "link": "wifi", "action": "sideways"}]\n')
    assert cli.main(["schedule", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "bad schedule" in err and "entry 2: 'action' must be one of" in err
    assert cli.main(["schedule", str(tmp_path / "missing.json")]) == 2
    assert "cannot read schedule" in capsys.readouterr().err
    assert cli.main(["link", "wifi", "up", "--for", "3"]) == 2
    assert "--for goes with down only" in capsys.readouterr().err
