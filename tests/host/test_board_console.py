"""The raw-REPL console client (mptcp_tools.board_console) against the virtual board: lines
arrive one by one and in order, the board's traceback comes apart from its output, a soft
reset gives a fresh interpreter, a run past its deadline is interrupted and the board stays
usable; --dev makes the host's serial ports reachable from the board."""
import os

import pytest

from mptcp_tools.board_console import Console, ConsoleError, app_code, app_rc
from vboardenv import vboard


def test_lines_in_order_traceback_apart(tmp_path):
    got = []
    with vboard(tmp_path / "fs") as port, Console(port) as con:
        con.enter_raw()
        err = con.run("for i in range(50):\n print('line', i)\nx = 7\n1/0\n", got.append, 10)
        assert got == ["line %d" % i for i in range(50)]
        assert "ZeroDivisionError" in err and "line 49" not in err
        got.clear()
        assert con.run("print(x)", got.append, 10) == ""
        assert got == ["7"]                     # same interpreter between runs
        con.enter_raw(soft_reset=True)
        got.clear()
        err = con.run("print(x)", got.append, 10)
        assert "NameError" in err and got == []  # a soft reset: a fresh interpreter


def test_deadline_interrupts_and_board_answers_again(tmp_path):
    got = []
    with vboard(tmp_path / "fs") as port, Console(port) as con:
        con.enter_raw()
        with pytest.raises(ConsoleError) as e:
            con.run("import time\nprint('begin')\nwhile True:\n time.sleep_ms(10)\n",
                    got.append, 1.5)
        assert "interrupted" in str(e.value) and got == ["begin"]
        con.enter_raw(soft_reset=False)
        got.clear()
        assert con.run("print(6 * 7)", got.append, 10) == ""
        assert got == ["42"]


def test_app_code_exit_line_and_dev_mount(tmp_path):
    fs = tmp_path / "fs"
    (fs / "mptcp_apps").mkdir(parents=True)
    (fs / "mptcp_apps" / "echo.py").write_text(
        "def main(argv):\n    print('args', argv)\n    open('/dev/null', 'rb').close()\n"
        "    return len(argv)\n")
    got = []
    with vboard(fs, "--dev") as port, Console(port) as con:
        con.enter_raw()
        err = con.run(app_code("mptcp_apps.echo", ["a", "b c"]), got.append, 10)
    assert err == "", err
    assert got[0] == "args ['a', 'b c']"
    assert [app_rc(x) for x in got] == [None, 2]


def test_no_dev_without_flag(tmp_path):
    got = []
    with vboard(tmp_path / "fs") as port, Console(port) as con:
        con.enter_raw()
        err = con.run("open('/dev/null', 'rb')", got.append, 10)
    assert "OSError" in err, err          # the board's / is its folder only


def test_missing_port_is_one_clear_error(tmp_path):
    with pytest.raises(ConsoleError) as e:
        Console(os.path.join(str(tmp_path), "ttyNONE"))
    assert "cannot open" in str(e.value)
