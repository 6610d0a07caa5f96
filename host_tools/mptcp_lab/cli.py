"""`mptcp-lab`: the lab's command line (DESIGN.md §4 lab contract)."""

import argparse
import json
import subprocess
import sys

from . import common, device, lab, peer, schedule
from .common import LabError, NS_REF
from .impair import PROFILES, PROFILE_HELP, fmt_rate, parse_settings, parse_value
from .modem_emu import PROFILES as LTE_PROFILES
from .schedule import parse_lte_settings  # noqa: F401  (also used by api.py)

LTE_NOTE = ("LTE link profile (default clean): " + "; ".join(
    "%s: %d baud, %g ms each way" % (n, p["baud"], p["delay_ms"])
    for n, p in LTE_PROFILES.items()) + ". The device dials the emulated modem over a pty "
    "(AT, then PPP; IPCP gives it 198.18.2.2)")


def cmd_up(a):
    st = lab.up(a.wifi, a.lte)
    print_status(st)
    return 0


def cmd_down(a):
    removed = lab.down()
    print("lab down" + (": removed " + ", ".join(removed) if removed else " (nothing to remove)"))
    return 0


def cmd_status(a):
    st = lab.status()
    if a.json:
        print(json.dumps(st, indent=2))
    else:
        print_status(st)
    return 0 if st["up"] else 3


def _fmt_dir(d):
    p, c = d["params"], d["counters"]
    drops = ", ".join("%s %d" % (k, v["pkts"]) for k, v in c["dropped"].items() if v["pkts"])
    # corrupt/corrupted_pkts: shown only when non-zero (and absent from older emulators)
    corrupt = p.get("corrupt", 0)
    corrupted = c.get("corrupted_pkts", 0)
    return ("%-4s rate %s delay %gms jitter %gms loss %g%%%s queue<=%d | fwd %d pkts %d B%s%s"
            % ("up" if p["up"] else "DOWN", fmt_rate(p["rate"]), p["delay"], p["jitter"],
               p["loss"], " corrupt %d" % corrupt if corrupt else "", p["queue_limit"],
               c["forwarded_pkts"], c["forwarded_bytes"],
               " | corrupted %d pkts" % corrupted if corrupted else "",
               " | dropped " + drops if drops else ""))


def print_status(st):
    print("lab: %s" % ("up" if st["up"] else "DOWN (run mptcp-lab up)"))
    for ns, ok in st["namespaces"].items():
        print("  namespace %-9s %s" % (ns, "present" if ok else "absent"))
    print("  emulator pid: %s" % (st["emulator_pid"] or "not running"))
    if st.get("error"):
        print("  error: %s" % st["error"])
    for name, l in (st.get("links") or {}).items():
        if l.get("kind") == "modem":
            print("  " + _fmt_lte(l))
            continue
        print("  link %s: %s, profile %s, peer %s, ref %s, device UDP %s (last device: %s)"
              % (name, l["state"], l["profile"], l["peer_if"], l["ref_if"], l["device_udp"],
                 l["device_side"] or "none yet"))
        print("    uplink   " + _fmt_dir(l["uplink"]))
        print("    downlink " + _fmt_dir(l["downlink"]))
    if st.get("schedule") and st["schedule"].get("pending"):
        print_schedule(st["schedule"])
    if st.get("processes"):
        print("  lab processes: %s" % " ".join(map(str, st["processes"])))


def _fmt_lte(l):
    c = l.get("counters") or {}
    out = ("link lte: %s, profile %s, peer %s, modem serial %s, %d baud, delay %gms each way"
           "\n    modem %s, ppp %s, registered %s, sessions %d | up %d B, down %d B, "
           "no carrier %d, dials %d"
           % (l["state"], l["profile"], l["peer_if"], l["serial"], l["baud"], l["delay_ms"],
              l["mode"], l["ppp"], l["registered"], l["sessions"], c.get("up_bytes", 0),
              c.get("down_bytes", 0), c.get("no_carrier", 0), c.get("dials", 0)))
    ref = l.get("ref")
    if ref:
        out += ("\n    ref %s (downlink to %s)\n      uplink   %s\n      downlink %s"
                % (ref["ref_if"], l.get("device_side"), _fmt_dir(ref["uplink"]),
                   _fmt_dir(ref["downlink"])))
    return out


def _fmt_entry(e):
    extra = ""
    if e["action"] == "set":
        extra = " " + " ".join("%s=%g" % kv for kv in sorted(e["settings"].items()))
        if e.get("dir", "both") != "both":
            extra += " --dir " + e["dir"]
    return "%s %s%s" % (e["link"], e["action"], extra)


def print_schedule(sch):
    pend = sch.get("pending") or []
    if not pend:
        print("  schedule: nothing pending")
    for e in pend:
        print("  scheduled in %7.3f s: %s" % (e["in_s"], _fmt_entry(e)))


def cmd_link_timed(a):
    """link NAME ACTION ... --at S [--for S]: handed to the emulator's scheduler."""
    settings = None
    if a.action == "set":
        try:
            settings = (parse_lte_settings(a.settings) if a.name == "lte"
                        else parse_settings(a.settings))
        except ValueError as e:
            raise LabError(str(e))
    elif a.settings:
        raise LabError("link %s %s takes no settings" % (a.name, a.action))
    try:
        entries = schedule.outage(a.name, a.at or 0.0, a.for_, a.action, settings, a.dir)
    except ValueError as e:
        raise LabError(str(e))
    print_schedule(lab.schedule(entries))
    return 0


def cmd_schedule(a):
    if a.file is None and not a.clear:
        raise LabError("schedule needs a FILE (or --clear)")
    entries = []
    if a.file is not None:
        try:
            with (sys.stdin if a.file == "-" else open(a.file)) as f:
                text = f.read()
        except OSError as e:
            raise LabError("cannot read schedule %s: %s" % (a.file, e.strerror or e))
        try:
            entries = schedule.parse(text)
        except ValueError as e:
            raise LabError("bad schedule %s: %s" % (a.file, " ".join(str(e).split())))
    print_schedule(lab.schedule(entries, clear=a.clear))
    return 0


def cmd_link(a):
    if a.at is not None or a.for_ is not None:
        return cmd_link_timed(a)
    if a.name == "lte":
        return cmd_link_lte(a)
    if a.action in ("up", "down"):
        if a.settings:
            raise LabError("link %s %s takes no settings" % (a.name, a.action))
        st = lab.link_state(a.name, a.action)
    else:
        if not a.settings:
            raise LabError("link %s set needs name=value settings (rate, delay, jitter, loss, "
                           "corrupt)" % a.name)
        try:
            settings = parse_settings(a.settings)
        except ValueError as e:
            raise LabError(str(e))
        st = lab.link_set(a.name, settings, a.dir)
    l = st["links"][a.name]
    print("link %s: %s, profile %s" % (a.name, l["state"], l["profile"]))
    print("  uplink   " + _fmt_dir(l["uplink"]))
    print("  downlink " + _fmt_dir(l["downlink"]))
    return 0


def cmd_link_lte(a):
    if a.action in ("up", "down"):
        if a.settings:
            raise LabError("link lte %s takes no settings" % a.action)
        st = lab.link_state("lte", a.action)
    else:
        if not a.settings:
            raise LabError("link lte set needs name=value settings (baud, delay)")
        try:
            settings = parse_lte_settings(a.settings)
        except ValueError as e:
            raise LabError(str(e))
        if a.dir != "both":
            raise LabError("the LTE link's settings apply to both directions (no --dir)")
        st = lab.link_set("lte", settings)
    print(_fmt_lte(st["links"]["lte"]))
    return 0


def _strip_dashdash(args):
    return args[1:] if args and args[0] == "--" else args


def cmd_device(a):
    runtime = "cpython" if a.cpython else ("source" if a.source else "mpy")
    return device.run(_strip_dashdash(a.args), runtime)


def run_in_ns(ns, peer_args):
    """Run `python -m mptcp_lab.peer ARGS` inside `ns` in the foreground; return its rc."""
    lab.require_up()
    argv = ["ip", "netns", "exec", ns, common.python(), "-m", "mptcp_lab.peer"] + peer_args
    p = subprocess.Popen(argv)
    lab.register_process(p.pid)
    try:
        return p.wait()
    except KeyboardInterrupt:
        p.terminate()
        return p.wait()
    finally:
        lab.unregister_process(p.pid)


def cmd_peer(a):
    args = _strip_dashdash(a.args)
    ns_args = peer.build_parser("mptcp-lab peer").parse_args(args)
    return run_in_ns(ns_args.ns, args)


def cmd_ref(a):
    args = ["ref"] + _strip_dashdash(a.args)
    peer.build_parser("mptcp-lab ref").parse_args(args)
    return run_in_ns(NS_REF, args)


def build_parser():
    ap = argparse.ArgumentParser(
        prog="mptcp-lab",
        description="The mptcp-embedded lab: kernel MPTCP peer in namespace mplab "
                    "(198.18.0.1), reference kernel device in mplab-ref, and a link emulator "
                    "(delay/jitter/loss/rate/outages) between them and the device process. "
                    "Needs root.")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    p = sub.add_parser("up", help="bring the lab up (idempotent)",
                       description="Create namespaces mplab and mplab-ref and start the link "
                                   "emulator. On a running lab, only applies the given profiles.")
    p.add_argument("--wifi", choices=sorted(PROFILES), default=None,
                   help="Wi-Fi link profile (default clean). " + PROFILE_HELP)
    p.add_argument("--lte", choices=sorted(LTE_PROFILES), default=None, metavar="PROFILE",
                   help=LTE_NOTE)
    p.set_defaults(fn=cmd_up)

    p = sub.add_parser("down", help="remove everything the lab made (idempotent)",
                       description="Stop the emulator, peers and devices started by the lab, "
                                   "delete the namespaces, remove /run/mptcp-lab.")
    p.set_defaults(fn=cmd_down)

    p = sub.add_parser("status", help="show namespaces, emulator, links and counters",
                       description="Exit code 0 when the lab is up, 3 when it is not.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(fn=cmd_status)

    p = sub.add_parser("link", help="take a link up/down or change its impairments",
                       description="mptcp-lab link wifi down | mptcp-lab link wifi up | "
                                   "mptcp-lab link wifi set rate=20mbit delay=20ms jitter=2ms "
                                   "loss=2 corrupt=1 [--dir up|down]  (rate in bit/s with "
                                   "k/m/g or kbit/mbit/gbit, 0 = unlimited; delay and jitter "
                                   "one way, in ms (or s/us); loss in percent, independent "
                                   "per packet; corrupt=N: the next N forwarded TCP packets "
                                   "with payload get the middle payload byte flipped and the "
                                   "TCP checksum fixed up, like a payload-rewriting middlebox "
                                   "that only the MPTCP DSS checksum catches; it counts down "
                                   "to 0, set it again to re-arm; wifi only). "
                                   "Settings apply to both directions unless --dir (with "
                                   "both, each direction gets its own corrupt=N), e.g. "
                                   "mptcp-lab link wifi set corrupt=1 --dir down corrupts one "
                                   "packet from the kernel peer to the device. "
                                   "LTE: mptcp-lab link lte set baud=115200 delay=30ms "
                                   "(serial line rate, LTE delay one way); link lte down = "
                                   "radio outage (NO CARRIER to the device, deregistered).")
    p.add_argument("name", choices=["wifi", "lte"])
    p.add_argument("action", choices=["up", "down", "set"])
    p.add_argument("settings", nargs="*", metavar="NAME=VALUE")
    p.add_argument("--dir", choices=["both", "up", "down"], default="both",
                   help="direction for set (default both): up = uplink, device->peer; "
                        "down = downlink, peer->device.  Put it after the settings (or "
                        "before the link name)")
    p.add_argument("--at", type=float, default=None, metavar="S",
                   help="do it S seconds from now (the emulator keeps the time; the "
                        "command returns at once)")
    p.add_argument("--for", dest="for_", type=float, default=None, metavar="S",
                   help="with down: an outage of S seconds (down now or at --at, then up)")
    p.set_defaults(fn=cmd_link)

    p = sub.add_parser("schedule", help="timed link actions from a file (run by the emulator)",
                       description="FILE (or - for stdin): a JSON list of {\"at\": S, "
                                   "\"link\": \"wifi\"|\"lte\", \"action\": "
                                   "\"down\"|\"up\"|\"set\", \"settings\": {...}, "
                                   "\"dir\": \"up\"|\"down\"} or lines "
                                   "'AT LINK ACTION [NAME=VALUE ...]' (e.g. '5 wifi down', "
                                   "'15 wifi up', '20 wifi set loss=100 dir=up'); AT in "
                                   "seconds from now. Adds to what is pending (--clear "
                                   "first drops it). `mptcp-lab status --json` lists pending "
                                   "and done entries. A malformed file changes nothing "
                                   "(exit 2).")
    p.add_argument("file", nargs="?", default=None, metavar="FILE")
    p.add_argument("--clear", action="store_true", help="drop every pending entry first")
    p.set_defaults(fn=cmd_schedule)

    p = sub.add_parser("device", help="run the device perf app attached to the lab",
                       description="Runs firmware/mptcp_apps/perf.py: MicroPython from "
                                   "build/unix_lab (default), from firmware/ (--source) or CPython "
                                   "(--cpython). --heap BYTES in ARGS sets MicroPython's heap "
                                   "(default 384k; 512k with LTE) and is passed on. Exit code = the app's.",
                       usage="mptcp-lab device [--cpython | --source] -- ARGS")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--cpython", action="store_true", help="run under CPython")
    g.add_argument("--source", action="store_true", help="MicroPython from firmware/ sources")
    p.add_argument("args", nargs=argparse.REMAINDER,
                   help="perf app options: --connect HOST:PORT | --listen PORT, "
                        "--send BYTES | --recv, --links, --heap, --scheduler")
    p.set_defaults(fn=cmd_device)

    p = sub.add_parser("peer", help="kernel server/client inside a lab namespace",
                       description="mptcp-lab peer server --port P (--recv | --send BYTES | "
                                   "--echo) [--ns mplab] [--tcp] [--once]  |  mptcp-lab peer "
                                   "client --connect HOST:PORT (--send BYTES | --recv) "
                                   "[--ns mplab] [--tcp].  Prints one JSON line per transfer: "
                                   "{bytes, sha256, seconds, mptcp, subflows}.",
                       usage="mptcp-lab peer {server,client} OPTIONS  (see -- --help)")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(fn=cmd_peer)

    p = sub.add_parser("ref", help="the reference device: kernel MPTCP in mplab-ref",
                       description="Runs the perf app's options with a kernel MPTCP socket in "
                                   "mplab-ref: --connect HOST:PORT | --listen PORT, "
                                   "--send BYTES | --recv, --links wifi,lte (the first "
                                   "link carries the first subflow, each other one gets an "
                                   "MPTCP endpoint: subflow when connecting, signal when "
                                   "listening; default wifi = one subflow). Prints the same "
                                   "JSON line.",
                       usage="mptcp-lab ref -- ARGS")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(fn=cmd_ref)
    return ap


def main(argv=None):
    a = build_parser().parse_args(argv)
    try:
        if not ({"-h", "--help"} & set(getattr(a, "args", None) or [])):
            common.require_root()
        return a.fn(a)
    except LabError as e:
        print("mptcp-lab: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
