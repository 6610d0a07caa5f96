"""make demo: the device stack (MicroPython) sends 16 MiB over MPTCP to the Linux kernel.

Brings the lab up, starts a kernel MPTCP sink in namespace mplab, runs the device perf app
on the MicroPython unix port over the emulated Wi-Fi link, prints a summary (goodput, RTT,
retransmissions, MPTCP counters on both sides, SHA-256 check) and takes the lab down.
"""
import argparse
import sys

SIZE = 16 * 1024 * 1024


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=SIZE, help="bytes to send (default 16 MiB)")
    ap.add_argument("--wifi", default="clean", help="Wi-Fi link profile (default clean)")
    ap.add_argument("--runtime", default="mpy", choices=("mpy", "source", "cpython"),
                    help="device runtime (default mpy = MicroPython with the compiled bundle)")
    ap.add_argument("--port", type=int, default=5001)
    a = ap.parse_args(argv)
    from mptcp_lab.api import Lab
    print("demo: bringing the lab up (namespace mplab, link emulator, Wi-Fi profile %s)" % a.wifi)
    with Lab(wifi=a.wifi) as lab:
        lab.nstat_reset()
        peer = lab.start_peer("server", port=a.port, mode="recv")
        print("demo: kernel MPTCP sink listening on 198.18.0.1:%d; device (%s) sending %d bytes ..."
              % (a.port, a.runtime, a.size))
        rc, dev, err = lab.run_device(["--connect", "198.18.0.1:%d" % a.port, "--send", str(a.size)],
                                      runtime=a.runtime, timeout=600)
        ker = peer.wait(60)
        kc = lab.nstat(relative=True)
    ok = (rc == 0 and dev is not None and ker is not None and dev["sha256"] == ker.get("sha256")
          and dev["bytes"] == a.size and ker.get("bytes") == a.size)
    print()
    print("=" * 72)
    if dev is None:
        print("demo: the device printed no result (rc=%s)\n%s" % (rc, err[-3000:]))
        return 1
    secs = dev.get("seconds") or 0
    print("transfer      : %d bytes device -> kernel in %.2f s" % (dev["bytes"], secs))
    if secs:
        print("goodput       : %.2f Mbit/s" % (dev["bytes"] * 8 / secs / 1e6))
    print("MPTCP         : device %s, kernel %s" % (dev.get("mptcp"), ker and ker.get("mptcp")))
    print("SHA-256       : device %s" % dev["sha256"])
    print("                kernel %s  %s" % (ker and ker.get("sha256"),
                                             "(equal)" if ok else "(MISMATCH or incomplete)"))
    for sf in dev.get("subflows", []):
        print("subflow %-6s: tx %d B, rx %d B, srtt %s ms, retransmissions %s"
              % (sf["link"], sf["bytes_tx"], sf["bytes_rx"], sf.get("rtt_ms"), sf.get("retrans")))
    print("device heap   : peak %s bytes" % dev.get("heap_peak"))
    print("device counters:")
    for k, v in sorted(dev.get("counters", {}).items()):
        print("    %-32s %d" % (k, v))
    print("kernel counters (MPTcpExt*, changed during the run):")
    for k, v in sorted(kc.items()):
        if k.startswith("MPTcpExt") and v:
            print("    %-32s %d" % (k, v))
    print("=" * 72)
    if not ok:
        print("demo: FAILED (rc=%s): %s" % (rc, dev.get("error")))
        print(err[-3000:])
        return 1
    print("demo: OK — lab taken down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
