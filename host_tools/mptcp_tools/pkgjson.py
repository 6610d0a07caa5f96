"""Write (or check) package.json: the stack as a mip package, so `mpremote mip install`
installs it from this repository or a local checkout.

    python -m mptcp_tools.pkgjson            # rewrite package.json at the repo root
    python -m mptcp_tools.pkgjson --check    # exit 1 if package.json is out of date

Every module of firmware/{mptcp,net,runtime,apps} is listed with a URL relative to
package.json (mip resolves it against where package.json came from: a GitHub repository or a
local path). Sources, not .mpy: mip cannot know the board's native arch, and the viper
modules compile on the board at import. The board config (boards/<board>/mptcp_board.py) is not
part of it: copy the one for your board to the board's / (see the README).
"""
import argparse
import json
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LAYERS = ("mptcp", "mptcp_net", "mptcp_runtime", "mptcp_apps")


def version():
    from mptcp_tools.flash import firmware_version
    v = firmware_version()
    if v == "?":
        raise SystemExit("pkgjson: no VERSION in firmware/mptcp/__init__.py")
    return v


def package():
    urls = []
    for layer in LAYERS:
        d = os.path.join(ROOT, "firmware", layer)
        for fn in sorted(os.listdir(d)):
            if fn.endswith(".py"):
                urls.append([layer + "/" + fn, "firmware/" + layer + "/" + fn])
    return {"version": version(), "deps": [], "urls": urls}


def text():
    return json.dumps(package(), indent=1) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only check that package.json is current")
    a = ap.parse_args(argv)
    path = os.path.join(ROOT, "package.json")
    want = text()
    have = open(path).read() if os.path.exists(path) else None
    if a.check:
        if have != want:
            print("pkgjson: package.json is out of date: run python -m mptcp_tools.pkgjson",
                  file=sys.stderr)
            return 1
        return 0
    if have != want:
        with open(path, "w") as f:
            f.write(want)
        print("pkgjson: wrote %s (%d files)" % (path, len(package()["urls"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
