"""Deploy a device bundle (build/<board>/) onto a board with mpremote.

    mptcp-flash --board pico_w [--port /dev/ttyACM0] [--dry-run]

Copies every compiled module to the board's filesystem (mkdir as needed).
Fails with a clear message when no board answers; never touches anything else.
"""
import argparse
import os
import shutil
import subprocess
import sys

from mptcp_tools.build import ROOT, build


def files_of(bundle):
    for dirpath, _dirs, files in os.walk(bundle):
        for fn in sorted(files):
            if fn.endswith(".mpy"):
                yield os.path.relpath(os.path.join(dirpath, fn), bundle)


def mpremote():
    exe = os.path.join(os.path.dirname(sys.executable), "mpremote")
    return exe if os.path.exists(exe) else (shutil.which("mpremote") or "mpremote")


def main(argv=None):
    ap = argparse.ArgumentParser(description="Deploy build/<board>/ onto a MicroPython board with mpremote")
    ap.add_argument("--board", default="pico_w", help="board name (default pico_w)")
    ap.add_argument("--port", default="auto", help="serial port of the board (default: auto)")
    ap.add_argument("--dry-run", action="store_true", help="print the mpremote commands only")
    a = ap.parse_args(argv)
    bundle = build(a.board, os.path.join(ROOT, "build"))
    rels = list(files_of(bundle))
    dirs = sorted({os.path.dirname(r) for r in rels if os.path.dirname(r)})
    cmd = [mpremote(), "connect", a.port]
    for d in dirs:
        cmd += ["fs", "mkdir", ":" + d, "+"]
    for r in rels:
        cmd += ["fs", "cp", os.path.join(bundle, r), ":" + r, "+"]
    cmd = cmd[:-1]
    if a.dry_run:
        print(" ".join(cmd))
        return 0
    r = subprocess.run(cmd)
    if r.returncode != 0:
        print("flash: mpremote failed (exit %d): is a %s board connected on %s?"
              % (r.returncode, a.board, a.port), file=sys.stderr)
        return r.returncode
    print("flash: %d modules copied to the %s board" % (len(rels), a.board))
    return 0


if __name__ == "__main__":
    sys.exit(main())
