"""Deploy a device bundle (build/<board>/) onto a board with mpremote; safe to run again.

    mptcp-flash --board pico_w [--port /dev/ttyACM0] [--timeout S] [--dry-run]

1. probe (nothing written): the board's MicroPython (.mpy version and native arch must
   match the bundle's), free space (os.statvfs), the SHA-256 of each bundle file already
   on the board (computed there with hashlib) and the manifest of the previous flash;
2. write only what differs: each file to a temporary name, then os.rename (a file is
   old or new, never half-written); directories only when missing; files that the
   previous manifest lists and this bundle no longer has are removed (nothing else is);
3. soft reset, then read back the manifest's bundle hash and import the stack.

Why hash on the board and keep a manifest: the hashes are the truth about what is there
(an edited or half-written file is re-sent); the manifest (/.mptcp_manifest.json) is the
record of which files a flash owns, so a later flash removes its own stale files and
never a user's. It is written before the files (listing old and new) and again at the end.
Every failure is one line saying what is wrong and what to do, and a non-zero exit.
"""
import argparse
import ast
import hashlib
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time

from mptcp_tools import mpyfile
from mptcp_tools.build import ROOT, board_config, ensure_built, known_boards

MANIFEST = ".mptcp_manifest.json"
TMP = ".mptcp-tmp"            # suffix of a file being written
SLOW_BOARD_BPS = 4000         # bytes/s a slow board still manages (write timeout)


class FlashError(Exception):
    """One line for the user: what is wrong and what to do."""


def mpremote():
    exe = os.path.join(os.path.dirname(sys.executable), "mpremote")
    return exe if os.path.exists(exe) else (shutil.which("mpremote") or "mpremote")


# -- the bundle ---------------------------------------------------------------------
CONFIG = "mptcp_config.json"   # written by the flash (mptcp_runtime/config.py reads it)
MAIN = "main.py"               # written with --autostart: runs mptcp_apps.boot at every start
MAIN_TEXT = ("# written by mptcp-flash --autostart: starts the app of mptcp_config.json\n"
             "import mptcp_apps.boot\nmptcp_apps.boot.run()\n")
APPS = ("perf", "trial")


def read_bundle(bundle):
    """{board path: bytes} of every .mpy in the bundle (and the config and main.py a
    staged bundle carries, see stage)."""
    files = {}
    for dirpath, _dirs, names in os.walk(bundle):
        for fn in sorted(names):
            if fn.endswith(".mpy") or (dirpath == bundle and fn in (CONFIG, MAIN)):
                full = os.path.join(dirpath, fn)
                with open(full, "rb") as f:
                    files[os.path.relpath(full, bundle).replace(os.sep, "/")] = f.read()
    if not files:
        raise FlashError("no .mpy files in %s: build it first (make build)" % bundle)
    return files


def parse_settings(pairs, board_name):
    """--set NAME=VALUE pairs -> {NAME: value}: VALUE as JSON when it parses (numbers, null,
    true, quoted strings), else the text; NAME must be one the board config or the stack
    factory knows."""
    known = set(re.findall(r"^([A-Z][A-Z0-9_]*)\s*=", open(board_config(board_name)[0]).read(), re.M))
    # the stack factory's settings (mptcp_runtime/factory.py INT_DEFAULTS / STR_DEFAULTS), and the
    # Wi-Fi address the apps read
    with open(os.path.join(ROOT, "firmware", "mptcp_runtime", "factory.py")) as f:
        known |= set(re.findall(r'\("([A-Z][A-Z0-9_]*)",', f.read()))
    known.add("WIFI_ADDR")
    out = {}
    for p in pairs:
        if "=" not in p:
            raise FlashError("--set takes NAME=VALUE, got %r (e.g. --set APN=iot.example)" % p)
        k, v = p.split("=", 1)
        if k not in known:
            raise FlashError("--set %s: not a setting of board %s (known: %s)"
                             % (k, board_name, ", ".join(sorted(known))))
        try:
            out[k] = json.loads(v)
        except ValueError:
            out[k] = v
    return out


def stage(bundle, dest, board_name, app=None, app_args=(), autostart=False, delay_s=3,
          settings=None):
    """A copy of the bundle in dest with mptcp_config.json (and main.py with autostart)."""
    if autostart and not app:
        raise FlashError("--autostart needs --app (%s)" % "|".join(APPS))
    if app is not None and app not in APPS:
        raise FlashError("unknown --app %r (known: %s)" % (app, ", ".join(APPS)))
    shutil.copytree(bundle, dest)
    cfg = {"board": board_name, "version": firmware_version(), "app": app,
           "args": list(app_args), "autostart": bool(autostart), "delay_s": delay_s,
           "settings": settings or {}}
    with open(os.path.join(dest, CONFIG), "w") as f:
        f.write(json.dumps(cfg, sort_keys=True))
    if autostart:
        with open(os.path.join(dest, MAIN), "w") as f:
            f.write(MAIN_TEXT)
    return dest


def bundle_hash(hashes):
    h = hashlib.sha256()
    for rel in sorted(hashes):
        h.update(("%s %s\n" % (rel, hashes[rel])).encode())
    return h.hexdigest()


def dirs_of(paths):
    out = set()
    for p in paths:
        parts = p.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            out.add("/".join(parts[:i]))
    return sorted(out, key=lambda d: (d.count("/"), d))


def firmware_version():
    m = re.search(r'VERSION\s*=\s*"([^"]+)"',
                  open(os.path.join(ROOT, "firmware", "mptcp", "__init__.py")).read())
    return m.group(1) if m else "?"


# -- talking to the board -------------------------------------------------------------
class Board:
    def __init__(self, port, timeout):
        self.port = port
        self.timeout = timeout

    def run(self, args, timeout, what):
        """One mpremote session (connect PORT ARGS...): its stdout, or a FlashError."""
        cmd = [mpremote(), "connect", self.port] + args
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise FlashError("the board on %s did not answer within %.0f s (%s): is MicroPython "
                             "running and idle? reset it, check --port, close other programs on "
                             "the port, or raise --timeout" % (self.port, timeout, what)) from None
        if r.returncode != 0:
            raise FlashError(self._explain(r.stdout + r.stderr, what))
        return r.stdout

    def _explain(self, out, what):
        low = out.lower()
        if "no device found" in low:
            return ("no board found on a USB serial port: plug it in, or give --port "
                    "(`mpremote connect list` lists the ports)")
        if "failed to access" in low or "could not open port" in low:
            return ("cannot open %s: check the port name and that you may use it "
                    "(dialout group) and that no other program holds it" % self.port)
        if "could not enter raw repl" in low:
            return ("the board on %s answered but gave no raw REPL: reset it (or stop the "
                    "program running on it) and flash again" % self.port)
        if "read-only file system" in low or "erofs" in low or re.search(r"oserror: (\[errno )?30\b", low):
            return ("the board's filesystem is read-only (EROFS) during %s: remount it "
                    "read-write (check boot.py) and flash again; nothing was changed" % what)
        if "no space left" in low or "enospc" in low or re.search(r"oserror: (\[errno )?28\b", low):
            return ("the board's filesystem is full (ENOSPC) during %s: free space "
                    "(`mpremote fs rm` files you do not need) and flash again; no half-written file "
                    "was left" % what)
        last = [ln for ln in out.strip().splitlines() if ln.strip()]
        return "mpremote failed during %s: %s" % (what, last[-1] if last else "no output")


def _tagged(out, tag):
    for line in out.splitlines():
        if line.startswith(tag + " "):
            return ast.literal_eval(line[len(tag) + 1:].strip())
    raise FlashError("the board's answer had no %s line: is it running MicroPython? got: %r"
                     % (tag, out.strip()[-200:]))


PROBE = r"""
import os, sys
try:
    import hashlib, binascii
except ImportError:
    hashlib = None
def _h(p):
    if hashlib is None:
        return None
    try:
        f = open(p, 'rb')
    except OSError:
        return None
    h = hashlib.sha256()
    b = bytearray(512)
    m = memoryview(b)
    while True:
        n = f.readinto(b)
        if not n:
            break
        h.update(m[:n])
    f.close()
    return binascii.hexlify(h.digest()).decode()
def _k(p):
    try:
        return 'd' if os.stat(p)[0] & 0x4000 else 'f'
    except OSError:
        return None
r = {'mpy': getattr(sys.implementation, '_mpy', None), 'version': sys.version,
     'machine': getattr(sys.implementation, '_machine', sys.platform)}
try:
    r['statvfs'] = tuple(os.statvfs(os.getcwd()))
except Exception:
    r['statvfs'] = None
try:
    with open(%(manifest)r) as f:
        r['manifest'] = f.read()
except OSError:
    r['manifest'] = None
def _s(p):
    try:
        return os.stat(p)[6]
    except OSError:
        return 0
r['hashes'] = dict((p, _h(p)) for p in %(files)r)
r['sizes'] = dict((p, _s(p)) for p in %(files)r)
r['kinds'] = dict((p, _k(p)) for p in %(others)r)
print('MPTCP-PROBE', repr(r))
"""

READBACK = r"""
import sys
r = {}
try:
    import json
    with open(%(manifest)r) as f:
        m = json.loads(f.read())
    r['bundle'] = m.get('bundle')
    r['complete'] = m.get('complete')
except Exception as e:
    r['bundle'] = None
    r['error'] = 'manifest: %%r' %% (e,)
try:
    import mptcp_board
    r['board'] = mptcp_board.NAME
    import mptcp
    r['version'] = mptcp.VERSION
    import mptcp.stack
except Exception as e:
    r['error'] = 'import: %%s %%s' %% (type(e).__name__, e)
print('MPTCP-READBACK', repr(r))
"""


def _put_text(path, text):
    """Board code writing a small text file through a temporary name."""
    return ("import os\nf = open(%r, 'w')\nf.write(%r)\nf.close()\nos.rename(%r, %r)"
            % (path + TMP, text, path + TMP, path))


def _remove_all(paths):
    return ("import os\nfor p in %r:\n try:\n  os.remove(p)\n except OSError:\n  pass" % (sorted(paths),))


def _rmdirs(dirs):
    return ("import os\nfor d in %r:\n try:\n  os.rmdir(d)\n except OSError:\n  pass"
            % (sorted(dirs, key=lambda d: -d.count("/")),))


# -- the plan --------------------------------------------------------------------------
def check_compat(files, mpy, board_name, allow_arch):
    if mpy is None:
        raise FlashError("the board's MicroPython has no sys.implementation._mpy (older than "
                         "1.19?): install a current MicroPython on it (e.g. with mpflash)")
    bver, bsub, barch = mpy & 0xFF, (mpy >> 8) & 3, mpy >> 10
    for rel, data in sorted(files.items()):
        if not rel.endswith(".mpy"):
            continue
        h = mpyfile.header(data)
        if h is None:
            raise FlashError("%s in the bundle is not an .mpy file: rebuild (make build)" % rel)
        ver, sub, arch = h
        if ver != bver:
            raise FlashError("the board's MicroPython loads .mpy v%d, the bundle is v%d (%s): "
                             "install a MicroPython matching this mpy-cross on the board (mpflash), "
                             "or an mpy-cross matching the board's" % (bver, ver, rel))
        if arch and (arch != barch or sub != bsub) and not allow_arch:
            raise FlashError("the board's native arch is %s, the bundle's native modules are %s "
                             "(%s): set ARCH = %r in boards/%s/mptcp_board.py, or pass "
                             "--allow-arch-mismatch (they then run their pure-Python fallback)"
                             % (mpyfile.arch_name(barch), mpyfile.arch_name(arch), rel,
                                mpyfile.arch_name(barch), board_name))


def space_needed(sizes_new, sizes_old, block):
    """Peak extra bytes while writing: each file is written whole beside its old version,
    then replaces it by rename (stale files removed first are not counted: a margin)."""
    def blocks(n):
        return -(-n // block) * block if n else 0
    cur = peak = 0
    for rel, n in sizes_new:
        peak = max(peak, cur + blocks(n))
        cur += blocks(n) - blocks(sizes_old.get(rel, 0))
    return max(peak, cur + 2 * 4096)       # and the manifest (written twice, small)


class Flasher:
    def __init__(self, board_name, bundle, port, timeout, allow_arch=False, out=print,
                 replace_main=False):
        self.name = board_name
        self.replace_main = replace_main
        self.bundle = bundle
        self.board = Board(port, timeout)
        self.allow_arch = allow_arch
        self.out = out

    def probe(self, files):
        code = PROBE % {"manifest": MANIFEST, "files": sorted(files),
                        "others": dirs_of(files) + [MAIN] + [r[:-4] + ".py" for r in sorted(files)
                                                              if r.endswith(".mpy")]}
        return _tagged(self.board.run(["exec", code], self.board.timeout, "the probe"), "MPTCP-PROBE")

    def flash(self, dry_run=False):
        t0 = time.monotonic()
        files = read_bundle(self.bundle)
        hashes = {r: hashlib.sha256(d).hexdigest() for r, d in files.items()}
        bhash = bundle_hash(hashes)
        info = self.probe(files)
        t_probe = time.monotonic() - t0
        check_compat(files, info["mpy"], self.name, self.allow_arch)

        old = {}
        if info["manifest"]:
            try:
                old = json.loads(info["manifest"])
            except ValueError:
                self.out("flash: warning: %s on the board is not valid JSON: ignoring it" % MANIFEST)
        if not isinstance(old, dict):
            old = {}
        old_files = old.get("files") if isinstance(old.get("files"), dict) else {}
        old_dirs = old.get("dirs") if isinstance(old.get("dirs"), list) else []
        send = [r for r in sorted(files) if info["hashes"].get(r) != hashes[r]]
        stale = sorted(set(old_files) - set(files))
        need_dirs = dirs_of(files)
        mkdirs = [d for d in need_dirs if info["kinds"].get(d) != "d"]
        for d in need_dirs:
            if info["kinds"].get(d) == "f":
                raise FlashError("%s on the board is a file where the bundle needs a directory: "
                                 "remove it (mpremote fs rm :%s) and flash again" % (d, d))
        if MAIN in files and info["kinds"].get(MAIN) == "f" and MAIN not in old_files \
                and not self.replace_main:
            raise FlashError("the board has a main.py of its own: --autostart would replace it; "
                             "pass --replace-main (or remove it: mpremote fs rm :main.py); "
                             "nothing was changed")
        for r in sorted(files):
            if not r.endswith(".mpy"):
                continue
            py = r[:-4] + ".py"
            if info["kinds"].get(py) == "f" and py not in old_files:
                self.out("flash: warning: %s on the board shadows %s (MicroPython imports .py "
                         "first): remove it with `mpremote fs rm :%s`" % (py, r, py))

        sv = info.get("statvfs")
        if sv and (send or stale):
            block = sv[1] or sv[0] or 512
            free = sv[4] * block
            need = space_needed([(r, len(files[r])) for r in send], info["sizes"], block)
            if need > free:
                raise FlashError("not enough space on the board: this flash needs %d bytes, %d are "
                                 "free: remove files you do not need (`mpremote fs rm`) and flash "
                                 "again; nothing was changed" % (need, free))
        elif not sv:
            self.out("flash: warning: the board does not report free space (os.statvfs)")

        n_bytes = sum(len(files[r]) for r in send)
        manifest = {"format": 1, "board": self.name, "bundle": bhash,
                    "version": firmware_version(), "files": hashes, "dirs": need_dirs}
        args = []
        if send or stale or mkdirs or old.get("bundle") != bhash or not old.get("complete"):
            inflight = dict(manifest, complete=False,
                            files=dict(old_files, **hashes), dirs=sorted(set(old_dirs) | set(need_dirs)))
            args += ["exec", _remove_all([r + TMP for r in set(files) | set(old_files)] + [MANIFEST + TMP])
                     + "\n" + _put_text(MANIFEST, json.dumps(inflight, sort_keys=True))]
            if stale:
                args += ["+", "exec", _remove_all(stale) + "\n"
                         + _rmdirs(set(old_dirs) - set(need_dirs))]
            for d in mkdirs:
                args += ["+", "exec", "import os\nos.mkdir(%r)" % d]
            for r in send:
                args += ["+", "fs", "cp", "-f", os.path.join(self.bundle, r), ":" + r + TMP,
                         "+", "exec", "import os\nos.rename(%r, %r)" % (r + TMP, r)]
            args += ["+", "exec", _put_text(MANIFEST, json.dumps(dict(manifest, complete=True),
                                                                   sort_keys=True)), "+"]
        args += ["soft-reset", "exec", READBACK % {"manifest": MANIFEST}]
        if dry_run:
            self.out("flash: would write %d files (%d bytes), remove %d, create %d directories:"
                     % (len(send), n_bytes, len(stale), len(mkdirs)))
            self.out(" ".join([mpremote(), "connect", self.board.port] + [repr(a) if "\n" in a else a for a in args]))
            return 0
        t1 = time.monotonic()
        try:
            out = self.board.run(args, self.board.timeout + 2 * len(send) + n_bytes / SLOW_BOARD_BPS,
                                 "the write" if send or stale else "the soft reset")
        except FlashError:
            self._cleanup(files, old_files)
            raise
        rb = _tagged(out, "MPTCP-READBACK")
        t_write = time.monotonic() - t1
        if rb.get("error"):
            raise FlashError("after the soft reset the board fails: %s: flash again, and if it "
                             "persists, report it with this line" % rb["error"])
        if rb.get("bundle") != bhash or rb.get("board") != self.name:
            raise FlashError("after the soft reset the board reports bundle %s for board %s, "
                             "expected %s for %s: flash again"
                             % (str(rb.get("bundle"))[:12], rb.get("board"), bhash[:12], self.name))
        self.out("flash: %s bundle %s (mptcp %s) on %s: %d written (%d bytes), %d unchanged, "
                 "%d removed, %d directories created; probe %.2f s, write+reset %.2f s, total %.2f s"
                 % (self.name, bhash[:12], rb.get("version"), self.board.port, len(send), n_bytes,
                    len(files) - len(send), len(stale), len(mkdirs), t_probe, t_write,
                    time.monotonic() - t0))
        return 0

    def _cleanup(self, files, old_files):
        """After a failed write: no temporary (half-written) file stays on the board."""
        tmps = [r + TMP for r in set(files) | set(old_files)] + [MANIFEST + TMP]
        try:
            self.board.run(["exec", _remove_all(tmps)], self.board.timeout, "the clean-up")
        except FlashError as e:
            self.out("flash: could not remove the temporary files (*%s) from the board: %s" % (TMP, e))


def check_port(port):
    if port == "auto":
        return
    if not os.path.exists(port):
        raise FlashError("no such port %s: give the board's serial port with --port "
                         "(`mpremote connect list` lists them; e.g. /dev/ttyACM0)" % port)
    if not stat.S_ISCHR(os.stat(port).st_mode):
        raise FlashError("%s is not a serial port (not a character device): give the board's "
                         "port with --port, e.g. /dev/ttyACM0" % port)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="pico_w", help="board name: %s (default pico_w)"
                    % ", ".join(known_boards()))
    ap.add_argument("--port", default="auto", help="serial port of the board (default: auto)")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"),
                    help="where bundles are built (default build/)")
    ap.add_argument("--no-build", action="store_true", help="flash the bundle as it is")
    ap.add_argument("--timeout", type=float, default=10.0,
                    help="seconds to wait for a silent board (default 10)")
    ap.add_argument("--allow-arch-mismatch", action="store_true",
                    help="flash native modules built for another arch (pure-Python fallback)")
    ap.add_argument("--dry-run", action="store_true", help="probe the board, print the plan only")
    ap.add_argument("--app", choices=APPS, default=None,
                    help="the app main.py starts (with --autostart) and mptcp_config.json names")
    ap.add_argument("--app-args", default="",
                    help="its arguments, one string: --app-args=\"--connect 198.18.0.1:5001 --send 8M\" (with =)")
    ap.add_argument("--autostart", action="store_true",
                    help="write main.py: the board starts the app at every boot (Ctrl-C in the "
                         "first --delay seconds keeps it at the REPL)")
    ap.add_argument("--delay", type=float, default=3, help="seconds before autostart (default 3)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="a board setting for this board (APN, SND_BUF, SCHEDULER, ...), "
                         "written into mptcp_config.json over boards/<board>/mptcp_board.py; repeatable")
    ap.add_argument("--replace-main", action="store_true",
                    help="let --autostart replace a main.py that an earlier flash did not write")
    a = ap.parse_args(argv)
    try:
        if a.board not in known_boards():
            raise FlashError("unknown board %r: known boards: %s"
                             % (a.board, ", ".join(known_boards())))
        board_config(a.board)
        check_port(a.port)
        if a.no_build:
            bundle = os.path.join(a.build_dir, a.board)
            if not os.path.isdir(bundle):
                raise FlashError("no bundle at %s: build it (make build) or drop --no-build" % bundle)
        else:
            bundle = ensure_built(a.board, a.build_dir)
        settings = parse_settings(a.set, a.board)
        with tempfile.TemporaryDirectory(prefix="mptcp-flash-") as tmp:
            staged = stage(bundle, os.path.join(tmp, a.board), a.board, a.app,
                           shlex.split(a.app_args), a.autostart, a.delay, settings)
            return Flasher(a.board, staged, a.port, a.timeout, a.allow_arch_mismatch,
                           replace_main=a.replace_main).flash(a.dry_run)
    except FlashError as e:
        print("flash: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("flash: interrupted: run it again (it resumes; no half-written file is used)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
