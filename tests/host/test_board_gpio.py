"""mptcp-board: exact pin transitions on fake pins (fake clock: order and ms, no wall clock),
the RPi.GPIO calls through a stand-in module, and the error when RPi.GPIO is missing."""
import importlib.abc
import sys
import types

import pytest

from mptcp_tools import board_gpio as bg


def _fake(argv):
    clock = bg.FakeClock()
    made = []

    def make_pin(name, number, invert, open_drain):
        p = bg.FakePin(clock, name, number, invert, open_drain)
        made.append(p)
        return p
    assert bg.execute(bg.parse(argv), make_pin, clock.sleep_ms) == 0
    return clock.log, {p.name: p for p in made}


def test_reset_pulls_run_low_then_releases():
    log, pins = _fake(["reset"])
    assert log == [(0, "RUN", 0), (bg.RESET_MS, "RUN", 1)]
    assert pins["RUN"].number == bg.PIN_RUN and pins["RUN"].open_drain
    log, pins = _fake(["reset", "--reset-ms", "250", "--run-pin", "5"])
    assert log == [(0, "RUN", 0), (250, "RUN", 1)] and pins["RUN"].number == 5


def test_bootsel_holds_bootsel_low_across_the_run_pulse():
    log, pins = _fake(["bootsel", "--hold-ms", "300"])
    assert [(n, v) for _, n, v in log] == [("BOOTSEL", 0), ("RUN", 0), ("RUN", 1), ("BOOTSEL", 1)]
    t = [x[0] for x in log]
    assert t[0] < t[1] < t[2] < t[3]          # BOOTSEL low before reset, released after it
    assert t[2] - t[1] == bg.RESET_MS and t[3] - t[2] == 300
    assert pins["BOOTSEL"].number == bg.PIN_BOOTSEL and pins["BOOTSEL"].open_drain


def test_inverted_run_flips_the_wire_levels():
    log, _ = _fake(["reset", "--run-invert"])
    assert [v for _, _, v in log] == [1, 0]


def test_modem_power_press_lengths():
    for argv, ms in ((["modem-power"], bg.PULSE_MS),
                     (["modem-power", "pulse", "--pulse-ms", "700"], 700),
                     (["modem-power", "on"], bg.ON_MS),
                     (["modem-power", "off"], bg.OFF_MS),
                     (["modem-power", "off", "--off-ms", "2600"], 2600)):
        log, pins = _fake(argv)
        # idle level first, pressed (high: transistor wiring), released after ms
        assert log == [(0, "PWRKEY", 0), (0, "PWRKEY", 1), (ms, "PWRKEY", 0)], (argv, log)
        assert not pins["PWRKEY"].open_drain
    log, _ = _fake(["modem-power", "pulse", "--pwrkey-invert"])
    assert log == [(0, "PWRKEY", 1), (0, "PWRKEY", 0), (bg.PULSE_MS, "PWRKEY", 1)]


def test_pwrkey_pin_from_the_board_config_and_flags(tmp_path):
    _, pins = _fake(["modem-power"])
    assert pins["PWRKEY"].number == 17          # boards/rpi/mptcp_board.py PIN_PWRKEY
    cfg = tmp_path / "board.py"
    cfg.write_text("PIN_PWRKEY = 6\nPWRKEY_INVERT = True\n")
    log, pins = _fake(["--config", str(cfg), "modem-power"])
    assert pins["PWRKEY"].number == 6 and pins["PWRKEY"].invert
    assert [v for _, _, v in log] == [1, 0, 1]
    _, pins = _fake(["modem-power", "--config", str(cfg), "--pwrkey-pin", "12"])
    assert pins["PWRKEY"].number == 12


def test_bad_input_is_a_usage_error(tmp_path, capsys):
    for argv in ([], ["reset", "--run-pin", "40"], ["modem-power", "--pulse-ms", "0"],
                 ["modem-power", "sideways"], ["reset", "--reset-ms", "soon"]):
        with pytest.raises(SystemExit) as e:
            bg.parse(argv)
        assert e.value.code == 2, argv
    with pytest.raises(SystemExit) as e:
        bg.load_config(str(tmp_path / "nope.py"))
    assert "no board config" in str(e.value.code)


def _block_rpi(monkeypatch):
    # None in sys.modules makes `import RPi.GPIO` raise ImportError, installed or not
    monkeypatch.setitem(sys.modules, "RPi", None)
    monkeypatch.setitem(sys.modules, "RPi.GPIO", None)


def test_missing_rpi_gpio_says_what_to_install(monkeypatch, capsys):
    _block_rpi(monkeypatch)
    with pytest.raises(bg.GpioError) as e:
        bg.import_gpio()
    assert str(e.value) == bg.GPIO_MISSING
    assert bg.main(["reset"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "mptcp-board: " + bg.GPIO_MISSING
    assert "pip install 'mptcp-embedded-host[rpi]'" in err and "rpi-lgpio" in err


def test_dry_run_needs_no_gpio(monkeypatch, capsys):
    _block_rpi(monkeypatch)
    assert bg.main(["bootsel", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["mptcp-board: dry run, no pin is driven",
                   "BOOTSEL (BCM 23): low", "wait 20 ms", "RUN (BCM 22): low", "wait 100 ms",
                   "RUN (BCM 22): released (input, pulled up)", "wait 500 ms",
                   "BOOTSEL (BCM 23): released (input, pulled up)"]


class _RaisingFinder(importlib.abc.MetaPathFinder):
    """`import RPi.GPIO` fails the way RPi.GPIO does off a Pi (RuntimeError)."""

    def find_spec(self, name, path=None, target=None):
        if name == "RPi" or name.startswith("RPi."):
            raise RuntimeError("This module can only be run on a Raspberry Pi!")
        return None


def test_rpi_gpio_off_a_pi_is_a_clear_error(monkeypatch):
    monkeypatch.delitem(sys.modules, "RPi", raising=False)
    monkeypatch.delitem(sys.modules, "RPi.GPIO", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_RaisingFinder()] + sys.meta_path)
    with pytest.raises(bg.GpioError) as e:
        bg.import_gpio()
    assert "only be run on a Raspberry Pi" in str(e.value) and "rpi-lgpio" in str(e.value)


def _stand_in_gpio(monkeypatch):
    """A stand-in RPi.GPIO module recording the calls the tool makes."""
    calls = []
    g = types.ModuleType("RPi.GPIO")
    g.BCM, g.OUT, g.IN, g.HIGH, g.LOW = "BCM", "OUT", "IN", 1, 0
    g.setwarnings = lambda flag: calls.append(("setwarnings", flag))
    g.setmode = lambda mode: calls.append(("setmode", mode))
    g.setup = lambda pin, mode, initial=None: calls.append(("setup", pin, mode, initial))
    g.output = lambda pin, level: calls.append(("output", pin, level))
    g.cleanup = lambda pin: calls.append(("cleanup", pin))
    pkg = types.ModuleType("RPi")
    pkg.GPIO = g
    monkeypatch.setitem(sys.modules, "RPi", pkg)
    monkeypatch.setitem(sys.modules, "RPi.GPIO", g)
    return calls


def test_rpi_pins_drive_open_drain_and_push_pull(monkeypatch):
    calls = _stand_in_gpio(monkeypatch)
    slept = []
    monkeypatch.setattr(bg.time, "sleep", slept.append)
    assert bg.main(["reset", "--run-pin", "5", "--reset-ms", "100"]) == 0
    assert calls == [("setwarnings", False), ("setmode", "BCM"),
                     ("setup", 5, "OUT", 0),      # RUN driven low
                     ("setup", 5, "IN", None),    # released: the Pico's pull-up
                     ("cleanup", 5)]
    assert slept == [0.1]
    del calls[:]
    assert bg.main(["modem-power", "pulse", "--pwrkey-pin", "6", "--pulse-ms", "800"]) == 0
    assert calls == [("setwarnings", False), ("setmode", "BCM"),
                     ("setup", 6, "OUT", 0), ("output", 6, 1), ("output", 6, 0)]
    assert slept[-1] == 0.8


def test_rpi_gpio_is_an_extra_only():
    """`make setup` installs `pip install -e .`: RPi.GPIO must not be among the plain
    dependencies (it does not build off a Pi), only in the [rpi] extra."""
    import os
    import tomllib
    with open(os.path.join(bg.ROOT, "pyproject.toml"), "rb") as f:
        proj = tomllib.load(f)["project"]
    deps = " ".join(proj["dependencies"]).lower()
    assert "rpi" not in deps and "gpio" not in deps
    assert proj["optional-dependencies"]["rpi"] == ["RPi.GPIO"]
    assert proj["optional-dependencies"]["rpi5"] == ["rpi-lgpio"]
    assert proj["scripts"]["mptcp-board"] == "mptcp_tools.board_gpio:main"
