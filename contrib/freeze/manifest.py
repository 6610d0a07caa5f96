# Freezes mptcp-embedded into a MicroPython firmware image, so that its bytecode runs from
# flash instead of being loaded into the heap (232 KB of it on the 64-bit unix port with the
# LTE link and the trial agent: more than a Pico W's whole heap). Build MicroPython for the
# board with this manifest (see the README, "Freezing the stack into the firmware"):
#
#   make -C ports/rp2 BOARD=RPI_PICO_W FROZEN_MANIFEST=/path/to/mptcp-embedded/contrib/freeze/manifest.py
#
# Relative paths are relative to this file. The board config (mptcp_board.py) is not
# frozen: copy it to the board's filesystem, where it can be edited (the filesystem comes
# before the frozen modules on sys.path). tests/host/test_freeze_manifest.py checks that
# this freezes exactly the modules of package.json.

include("$(BOARD_DIR)/manifest.py")     # the board's own frozen modules (asyncio, network, ...)

for pkg in ("mptcp", "mptcp_net", "mptcp_runtime", "mptcp_apps"):
    package(pkg, base_path="../../firmware")
