"""mptcp_apps.boot (what main.py runs) and mptcp_runtime.config (board settings from mptcp_config.json):
the configured app starts after the pause with its arguments, Ctrl-C in the pause keeps the
board at the REPL, a missing / malformed / wrong config boots to the REPL with a message."""
import os
import sys

from mptcp_apps import boot
from mptcp_runtime import config

PATH = "_test_boot_config.json"


def _write(text):
    with open(PATH, "w") as f:
        f.write(text)


def _cleanup():
    try:
        os.remove(PATH)
    except OSError:
        pass


def test_load_missing_malformed_and_not_an_object():
    _cleanup()
    assert config.load(PATH) == {}
    try:
        _write("{not json")
        assert config.load(PATH) == {}
        _write("[1, 2]")
        assert config.load(PATH) == {}
        _write('{"app": "perf", "args": ["--help"]}')
        assert config.load(PATH) == {"app": "perf", "args": ["--help"]}
    finally:
        _cleanup()


def test_run_starts_the_configured_app_after_the_pause():
    slept = []
    started = []
    real = boot._main_of
    boot._main_of = lambda app: (lambda args: started.append((app, args)) or 7)
    try:
        _write('{"app": "perf", "args": ["--connect", "198.18.0.1:5001", "--send", "1M"], '
               '"autostart": true, "delay_s": 2}')
        assert boot.run(PATH, slept.append) == 7
        assert slept == [2]
        assert started == [("perf", ["--connect", "198.18.0.1:5001", "--send", "1M"])]
    finally:
        boot._main_of = real
        _cleanup()


def test_run_does_nothing_without_autostart_or_app():
    started = []
    real = boot._main_of
    boot._main_of = lambda app: (lambda args: started.append(app) or 1)
    try:
        for text in ('{"app": "perf", "args": []}', '{"autostart": true}', "{}", "oops"):
            _write(text)
            assert boot.run(PATH, lambda s: None) == 0, text
        _cleanup()
        assert boot.run(PATH, lambda s: None) == 0        # no config at all
        assert started == []
    finally:
        boot._main_of = real
        _cleanup()


def test_run_refuses_an_unknown_app_or_bad_args():
    try:
        _write('{"app": "shell", "autostart": true}')
        assert boot.run(PATH, lambda s: None) == 2
        _write('{"app": "perf", "args": "--send 1M", "autostart": true}')
        assert boot.run(PATH, lambda s: None) == 2
    finally:
        _cleanup()


def test_ctrl_c_in_the_pause_keeps_the_board_at_the_repl():
    started = []
    real = boot._main_of
    boot._main_of = lambda app: (lambda args: started.append(app) or 1)

    def interrupted(s):
        raise KeyboardInterrupt
    try:
        _write('{"app": "trial", "args": [], "autostart": true}')
        assert boot.run(PATH, interrupted) == 0
        assert started == []
    finally:
        boot._main_of = real
        _cleanup()


def test_the_real_app_entry_points_are_the_apps_mains():
    import mptcp_apps.perf
    import mptcp_apps.trial
    assert boot._main_of("perf") is mptcp_apps.perf.main
    assert boot._main_of("trial") is mptcp_apps.trial.main


class _Board:
    NAME = "fake"
    SND_BUF = 16384
    APN = "internet"


def test_board_settings_from_the_config_override_the_board_module():
    config.forget()
    sys.modules["mptcp_board"] = _Board
    try:
        _write('{"settings": {"APN": "iot.example", "SND_BUF": 8192}}')
        b = config.board(PATH)
        assert b is _Board and b.APN == "iot.example" and b.SND_BUF == 8192 and b.NAME == "fake"
        assert config.board(PATH) is b                      # once per boot
    finally:
        config.forget()
        _Board.APN = "internet"
        _Board.SND_BUF = 16384
        _cleanup()
