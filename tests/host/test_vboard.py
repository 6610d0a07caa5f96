"""The virtual board speaks a board's REPL: friendly prompt and banner, raw REPL, raw-paste
with flow control, Ctrl-C, soft reset; and the real mpremote works against it."""
import os
import subprocess
import time

import serial

from vboardenv import vboard, env
from hostenv import BIN

MPREMOTE = os.path.join(BIN, "mpremote")


def _read_until(s, ending, timeout=10):
    data = b""
    end = time.monotonic() + timeout
    while not data.endswith(ending):
        assert time.monotonic() < end, "no %r, got %r" % (ending, data)
        data += s.read(1)
    return data


def _open(port):
    """The port, with what the board printed before (power-on banner) read away."""
    s = serial.Serial(port, 115200, timeout=0.2)
    time.sleep(0.3)
    s.read(4096)
    return s


def test_friendly_repl_banner_expression_and_soft_reset(tmp_path):
    with vboard(tmp_path / "fs") as port, _open(port) as s:
        s.write(b"\x02")                                    # Ctrl-B: banner again
        out = _read_until(s, b">>> ")
        assert b"MicroPython" in out and b'Type "help()"' in out
        s.write(b"x = 6 * 7\r")
        _read_until(s, b">>> ")
        s.write(b"x\r")
        assert _read_until(s, b">>> ").endswith(b"42\r\n>>> ")
        s.write(b"for i in range(2):\r  print('i', i)\r\r")
        assert b"i 0\r\ni 1\r\n>>> " in _read_until(s, b"i 1\r\n>>> ")
        s.write(b"\x04")                                    # Ctrl-D: soft reset, state gone
        assert b"MPY: soft reboot\r\n" in _read_until(s, b">>> ")
        s.write(b"x\r")
        assert b"NameError" in _read_until(s, b">>> ")


def test_raw_repl_exec_framing_error_and_ctrl_c(tmp_path):
    with vboard(tmp_path / "fs") as port, _open(port) as s:
        s.write(b"\r\x03\r\x01")
        _read_until(s, b"raw REPL; CTRL-B to exit\r\n>")
        s.write(b"print('hi')\x04")
        assert _read_until(s, b"\x04>") .endswith(b"OKhi\r\n\x04\x04>")
        s.write(b"1/0\x04")
        out = _read_until(s, b"\x04>")
        assert out.startswith(b"OK\x04Traceback") and b"ZeroDivisionError" in out
        s.write(b"import time\nwhile True: time.sleep(0.01)\x04")
        _read_until(s, b"OK")
        time.sleep(0.3)
        s.write(b"\x03")                                    # interrupt the running loop
        assert b"KeyboardInterrupt" in _read_until(s, b"\x04>")
        s.write(b"\x04")                                    # empty: soft reset in raw mode
        assert _read_until(s, b">").endswith(b"MPY: soft reboot\r\nraw REPL; CTRL-B to exit\r\n>")
        s.write(b"\x02")
        assert _read_until(s, b">>> ").startswith(b"\r\nMicroPython")


def test_raw_paste_flow_control_big_source(tmp_path):
    """A source larger than many windows: the board grants each window with 0x01."""
    src = b"s = 0\n" + b"".join(b"s += %d\n" % i for i in range(3000)) + b"print(s)\n"
    with vboard(tmp_path / "fs") as port, _open(port) as s:
        s.write(b"\r\x03\r\x01")
        _read_until(s, b"raw REPL; CTRL-B to exit\r\n>")
        s.write(b"\x05A\x01")
        assert s.read(2) == b"R\x01"
        window = int.from_bytes(s.read(2), "little")
        assert window > 0
        granted, sent, grants = window, 0, 0
        while sent < len(src):
            while granted == 0:
                c = s.read(1)
                assert c == b"\x01", c
                granted += window
                grants += 1
            n = min(granted, len(src) - sent)
            s.write(src[sent:sent + n])
            sent += n
            granted -= n
        s.write(b"\x04")
        out = _read_until(s, b"\x04>")
        out = out.lstrip(b"\x01")
        assert out == b"\x04%d\r\n\x04\x04>" % sum(range(3000))
        assert grants >= len(src) // window - 1


def test_mpremote_fs_on_the_folder_and_variants(tmp_path):
    data = os.urandom(3000)
    (tmp_path / "f.bin").write_bytes(data)
    with vboard(tmp_path / "fs") as port:
        r = subprocess.run([MPREMOTE, "connect", port, "fs", "mkdir", ":d", "+", "fs", "cp",
                            str(tmp_path / "f.bin"), ":d/f.bin", "+", "fs", "ls", ":d"],
                           capture_output=True, text=True, timeout=60, env=env())
        assert r.returncode == 0, r.stderr
        assert "3000 f.bin" in r.stdout
    assert (tmp_path / "fs" / "d" / "f.bin").read_bytes() == data
    with vboard(tmp_path / "fs", "--readonly") as port:
        r = subprocess.run([MPREMOTE, "connect", port, "fs", "cp", str(tmp_path / "f.bin"), ":g.bin"],
                           capture_output=True, text=True, timeout=60, env=env())
        assert r.returncode != 0 and "Read-only file system" in r.stderr, r.stdout + r.stderr
    assert not (tmp_path / "fs" / "g.bin").exists()
    with vboard(tmp_path / "fs", "--full", "4000") as port:
        r = subprocess.run([MPREMOTE, "connect", port, "exec", "import os; print(os.statvfs('/'))",
                            "+", "fs", "cp", str(tmp_path / "f.bin"), ":g.bin"],
                           capture_output=True, text=True, timeout=60, env=env())
        assert "(512, 512, 7, 1, 1," in r.stdout, r.stdout       # 4000 B, 3000 used
        assert r.returncode != 0 and "No space left on device" in r.stderr, r.stdout + r.stderr
    assert (tmp_path / "fs" / "g.bin").stat().st_size == 1000     # a full fs: written what fit


def test_silent_board_never_answers(tmp_path):
    with vboard(tmp_path / "fs", "--silent") as port, _open(port) as s:
        s.write(b"\r\x03\r\x01")
        time.sleep(0.5)
        assert s.read(100) == b""


def test_mpremote_interrupts_a_running_main_py(tmp_path):
    """A board whose main.py never returns: mpremote's Ctrl-C stops it, as on a real board."""
    fs = tmp_path / "fs"
    fs.mkdir()
    (fs / "boot.py").write_text("print('boot ran')\n")
    (fs / "main.py").write_text("import time\nwhile True:\n    time.sleep(0.01)\n")
    with vboard(fs) as port:
        r = subprocess.run([MPREMOTE, "connect", port, "exec", "print(6 * 7)"],
                           capture_output=True, text=True, timeout=30, env=env())
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "42"
