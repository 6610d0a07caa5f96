"""mptcp-flash end to end against the virtual board, with the real mpremote: a second flash
writes nothing, a changed file is re-sent alone, stale files of an older flash go, the
user's own files stay, and bad boards (read-only, full, silent, another MicroPython) get
one clear line and keep no half-written file. Flash times are printed, not asserted."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from hostenv import ROOT, mpy_cross
from vboardenv import env, vboard

FLASH = [sys.executable, "-m", "mptcp_tools.flash"]
TMP = ".mptcp-tmp"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """The unix_lab bundle, built once for this module (mpy-cross -s: board paths)."""
    out = tmp_path_factory.mktemp("build")
    r = subprocess.run([sys.executable, "-m", "mptcp_tools.build", "--board", "unix_lab",
                        "--out", str(out)], capture_output=True, text=True, env=env())
    assert r.returncode == 0, r.stderr
    return out / "unix_lab"


def bundle_copy(base, dest):
    d = dest / "unix_lab"
    shutil.copytree(base, d)
    return dest


def compile_to(src_text, board_path, dst):
    src = str(dst) + ".py"
    with open(src, "w") as f:
        f.write(src_text)
    subprocess.run([mpy_cross(), "-march=x64", "-s", board_path, "-o", str(dst), src], check=True)
    os.remove(src)


def flash(port, build_dir, *extra, timeout=120):
    t = time.monotonic()
    r = subprocess.run(FLASH + ["--board", "unix_lab", "--port", port, "--build-dir", str(build_dir),
                                "--no-build"] + list(extra),
                       capture_output=True, text=True, timeout=timeout, env=env())
    return r, time.monotonic() - t


def counts(stdout):
    m = re.search(r"(\d+) written .* (\d+) unchanged, (\d+) removed, (\d+) directories created", stdout)
    assert m, stdout
    return tuple(int(x) for x in m.groups())


def tree(root):
    """{path: sha256} of every file under root."""
    out = {}
    for dirpath, _d, files in os.walk(root):
        for fn in files:
            p = os.path.join(dirpath, fn)
            with open(p, "rb") as f:
                out[os.path.relpath(p, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def bundle_tree(bdir):
    return {k: v for k, v in tree(bdir).items() if k.endswith(".mpy")}


def one_line_error(r, *words):
    err = r.stderr.strip()
    assert r.returncode != 0, r.stdout + r.stderr
    lines = [ln for ln in err.splitlines() if ln.startswith("flash: ") and "warning" not in ln]
    assert len(lines) == 1, err
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def test_flash_twice_changed_stale_and_user_files(base, tmp_path):
    b1 = bundle_copy(base, tmp_path / "b1")
    compile_to("X = 1\n", "mptcp_apps/oldmod.py", b1 / "unix_lab" / "mptcp_apps" / "oldmod.mpy")
    b2 = bundle_copy(base, tmp_path / "b2")
    cfg = open(os.path.join(ROOT, "boards", "unix_lab", "mptcp_board.py")).read() + "EXTRA = 2\n"
    compile_to(cfg, "mptcp_board.py", b2 / "unix_lab" / "mptcp_board.mpy")
    fs = tmp_path / "fs"
    (fs / "mptcp_apps").mkdir(parents=True)              # the user's: an existing directory,
    (fs / "mptcp_apps" / "mine.py").write_text("print('mine')\n")   # a file in it,
    (fs / "user.txt").write_text("notes\n")                    # and one at the root
    user = tree(fs)
    n = len(bundle_tree(b1 / "unix_lab")) + 1           # + mptcp_config.json
    with vboard(fs) as port:
        r, t1 = flash(port, b1)
        assert r.returncode == 0, r.stderr
        assert counts(r.stdout) == (n, 0, 0, 3)         # mptcp, mptcp_net, mptcp_runtime made; mptcp_apps existed
        r, t2 = flash(port, b1)
        assert r.returncode == 0, r.stderr
        assert counts(r.stdout) == (0, n, 0, 0)
        on_board = tree(fs)
        assert {k: on_board[k] for k in bundle_tree(b1 / "unix_lab")} == bundle_tree(b1 / "unix_lab")
        r, t3 = flash(port, b2)
        assert r.returncode == 0, r.stderr
        assert counts(r.stdout) == (1, n - 2, 1, 0)      # mptcp_board.mpy re-sent, oldmod removed
    print("\nflash %d files: %.2f s; re-flash (nothing changed): %.2f s; one changed + one stale: "
          "%.2f s" % (n, t1, t2, t3))
    on_board = tree(fs)
    want = bundle_tree(b2 / "unix_lab")
    assert {k: v for k, v in on_board.items() if k.endswith(".mpy")} == want
    assert "mptcp_apps/oldmod.mpy" not in on_board
    assert {k: on_board[k] for k in user} == user       # the user's files untouched
    man = json.loads((fs / ".mptcp_manifest.json").read_text())
    assert {k: v for k, v in man["files"].items() if k.endswith(".mpy")} == want
    assert set(man["files"]) - set(want) == {"mptcp_config.json"} and man["complete"] is True
    assert "main.py" not in on_board                    # no --autostart: no main.py


def test_a_board_flashed_with_the_old_generic_names_is_cleaned(base, tmp_path):
    """Bundles before the one namespace put net/, runtime/, apps/ and board.mpy at the
    board's root; the next flash removes them (its manifest owns them) and their folders,
    and leaves only names that start with mptcp, beside the user's files."""
    old = bundle_copy(base, tmp_path / "old")
    for rel in ("net/ppp.py", "runtime/loop.py", "apps/perf.py", "board.py"):
        dst = old / "unix_lab" / rel.replace(".py", ".mpy")
        dst.parent.mkdir(exist_ok=True)
        compile_to("X = 1\n", rel, dst)
    fs = tmp_path / "fs"
    (fs / "lib").mkdir(parents=True)
    (fs / "lib" / "net.py").write_text("print('a library of the user')\n")
    user = tree(fs)
    with vboard(fs) as port:
        r, _ = flash(port, old)
        assert r.returncode == 0, r.stderr
        assert {"net/ppp.mpy", "runtime/loop.mpy", "apps/perf.mpy", "board.mpy"} <= set(tree(fs))
        r, _ = flash(port, base.parent)
        assert r.returncode == 0, r.stderr
        assert counts(r.stdout)[2] == 4                  # the four old files removed
    assert sorted(os.listdir(fs)) == sorted(
        ["lib", ".mptcp_manifest.json", "mptcp_config.json", "mptcp", "mptcp_net",
         "mptcp_runtime", "mptcp_apps", "mptcp_board.mpy"])
    on_board = tree(fs)
    assert {k: on_board[k] for k in user} == user
    assert not [k for k in on_board if k.endswith(TMP)]


def test_bundle_names_board_paths_not_host_paths(base):
    for rel in bundle_tree(base):
        data = (base / rel).read_bytes()
        assert ROOT.encode() not in data, rel
        assert rel[:-4].encode() + b".py" in data, rel


def test_readonly_board_clear_error_nothing_written(base, tmp_path):
    fs = tmp_path / "fs"
    with vboard(fs, "--readonly") as port:
        r, _ = flash(port, bundle_copy(base, tmp_path / "b"))
    one_line_error(r, "read-only")
    assert tree(fs) == {}


def test_full_board_refused_before_writing(base, tmp_path):
    fs = tmp_path / "fs"
    with vboard(fs, "--full", "50000") as port:
        r, _ = flash(port, bundle_copy(base, tmp_path / "b"))
    one_line_error(r, "not enough space", "nothing was changed")
    assert tree(fs) == {}


def test_full_board_that_overreports_free_space_keeps_no_half_file(base, tmp_path):
    """statvfs says plenty, the writes hit ENOSPC: the error is clear, every module on the
    board is complete (old or new), and no temporary file stays."""
    fs = tmp_path / "fs"
    b = bundle_copy(base, tmp_path / "b")
    with vboard(fs, "--full", "50000", "--report-free", "10000000") as port:
        r, _ = flash(port, b)
    one_line_error(r, "full", "ENOSPC")
    on_board = tree(fs)
    want = bundle_tree(b / "unix_lab")
    mods = {k: v for k, v in on_board.items() if k.endswith(".mpy")}
    assert mods and len(mods) < len(want)
    assert all(want[k] == v for k, v in mods.items())
    assert not [k for k in on_board if TMP in k]


def test_silent_board_times_out_with_clear_message(base, tmp_path):
    with vboard(tmp_path / "fs", "--silent") as port:
        r, t = flash(port, bundle_copy(base, tmp_path / "b"), "--timeout", "2")
    one_line_error(r, "did not answer within 2 s", port)
    print("\nsilent board given up after %.1f s" % t)


def test_other_micropython_version_refused_before_writing(base, tmp_path):
    b = bundle_copy(base, tmp_path / "b")
    for rel in bundle_tree(b / "unix_lab"):
        p = b / "unix_lab" / rel
        data = bytearray(p.read_bytes())
        data[1] = 5                                      # an .mpy v5 bundle (MicroPython < 1.22)
        p.write_bytes(bytes(data))
    fs = tmp_path / "fs"
    with vboard(fs) as port:
        r, _ = flash(port, b)
    one_line_error(r, "v6", "v5")
    assert tree(fs) == {}


def test_other_native_arch_refused_before_writing(base, tmp_path):
    b = bundle_copy(base, tmp_path / "b")
    native = 0
    for rel in bundle_tree(b / "unix_lab"):
        p = b / "unix_lab" / rel
        data = bytearray(p.read_bytes())
        if data[2] >> 2:                                  # a module with native code (x64)
            data[2] = (4 << 2) | (data[2] & 3)            # now says armv6m (the Pico's)
            p.write_bytes(bytes(data))
            native += 1
    assert native > 0
    fs = tmp_path / "fs"
    with vboard(fs) as port:
        r, _ = flash(port, b)
    one_line_error(r, "x64", "armv6m", "mptcp_board.py")
    assert tree(fs) == {}


def test_wrong_port_unknown_board_not_a_port(tmp_path):
    r = subprocess.run(FLASH + ["--board", "unix_lab", "--port", "/dev/nosuchport", "--no-build"],
                       capture_output=True, text=True, env=env())
    one_line_error(r, "no such port /dev/nosuchport", "--port")
    (tmp_path / "file").write_text("x")
    r = subprocess.run(FLASH + ["--board", "unix_lab", "--port", str(tmp_path / "file"), "--no-build"],
                       capture_output=True, text=True, env=env())
    one_line_error(r, "not a serial port")
    r = subprocess.run(FLASH + ["--board", "nosuch", "--port", "/dev/null"],
                       capture_output=True, text=True, env=env())
    one_line_error(r, "unknown board 'nosuch'", "pico_w", "unix_lab")


def test_autostart_config_settings_and_a_users_main_py(base, tmp_path):
    """--app/--app-args/--autostart/--set write mptcp_config.json and main.py; the board then
    starts the app when it boots (read on its console); a main.py the user wrote is not
    replaced without --replace-main; a later flash without --autostart removes ours."""
    b = bundle_copy(base, tmp_path / "b")
    fs = tmp_path / "fs"
    fs.mkdir()
    (fs / "main.py").write_text("print('the user main')\n")
    with vboard(fs) as port:
        args = ["--app", "perf", "--app-args=--help",
                "--autostart", "--delay", "0", "--set", "APN=iot.example", "--set", "SND_BUF=8192"]
        r, _ = flash(port, b, *args)
        one_line_error(r, "main.py of its own", "--replace-main")
        assert (fs / "main.py").read_text() == "print('the user main')\n"
        assert not (fs / "mptcp_config.json").exists()        # nothing was changed
        r, _ = flash(port, b, *(args + ["--replace-main"]))
        assert r.returncode == 0, r.stderr
        cfg = json.loads((fs / "mptcp_config.json").read_text())
        assert cfg["app"] == "perf" and cfg["autostart"] is True and cfg["delay_s"] == 0
        assert cfg["args"] == ["--help"]
        assert cfg["settings"] == {"APN": "iot.example", "SND_BUF": 8192}
        assert "mptcp_apps.boot" in (fs / "main.py").read_text()
    with vboard(fs) as port:                                # a power cycle: main.py runs
        out = _console_until(port, "perf: bulk transfer", 20)
        assert "mptcp: starting mptcp_apps.perf --help in 0.0 s" in out, out
        r, _ = flash(port, b, "--set", "NOPE=1")
        one_line_error(r, "NOPE", "APN")                     # unknown setting: the known ones
        r, _ = flash(port, b, "--autostart")
        one_line_error(r, "--autostart needs --app")
        r, _ = flash(port, b)                                # no --autostart: main.py goes
        assert r.returncode == 0, r.stderr
        assert not (fs / "main.py").exists()
        assert json.loads((fs / "mptcp_config.json").read_text())["app"] is None


def _console_until(port, text, seconds):
    """What the board prints on its console until `text` appears (or the time is up)."""
    import serial
    out = b""
    with serial.Serial(port, 115200, timeout=0.2) as ser:
        end = time.monotonic() + seconds
        while time.monotonic() < end and text.encode() not in out:
            out += ser.read(4096)
    return out.decode(errors="replace")
