"""Packet captures inside a lab namespace (tcpdump) and tshark's MPTCP expert analysis."""

import contextlib
import os
import signal
import subprocess
import tempfile
import time

from .common import LabError, NS_PEER


@contextlib.contextmanager
def capture(path=None, iface="wifi0", ns=NS_PEER, snaplen=200, timeout=5.0):
    """Capture `iface` in `ns` into a pcap while the block runs; yields the pcap path.

    Returns only once tcpdump says it is listening (the capture is active), and on exit stops
    it with SIGINT so the file is flushed and complete (-U also writes packet by packet).
    """
    if path is None:
        fd, path = tempfile.mkstemp(prefix="mptcp-lab-", suffix=".pcap")
        os.close(fd)
    errf = tempfile.TemporaryFile()
    p = subprocess.Popen(["ip", "netns", "exec", ns, "tcpdump", "-Z", "root", "-i", iface,
                          "-n", "-U", "-s", str(snaplen), "-w", path],
                         stdout=subprocess.DEVNULL, stderr=errf)
    try:
        deadline = time.monotonic() + timeout
        while True:
            errf.seek(0)
            err = errf.read().decode(errors="replace")
            if "listening on" in err:
                break
            if p.poll() is not None or time.monotonic() > deadline:
                raise LabError("capture on %s:%s did not start: %s" % (ns, iface, err.strip()))
            time.sleep(0.02)
        yield path
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        errf.close()


def expert_rows(pcap, analyze=True):
    """[(severity, group, protocol, count, summary)] from `tshark -z expert`."""
    args = ["tshark", "-n", "-r", pcap, "-q", "-z", "expert"]
    if analyze:
        args[1:1] = ["-o", "mptcp.analyze_mptcp:TRUE"]
    p = subprocess.run(args, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise LabError("tshark failed on %s: %s" % (pcap, p.stderr.strip()))
    rows = []
    severity = None
    summary_col = None
    for line in p.stdout.splitlines():
        s = line.strip()
        if not s or s.startswith("==="):
            continue
        head = s.split(" (", 1)[0]
        if head in ("Errors", "Warns", "Notes", "Chats", "Comments") and s.endswith(")"):
            severity = {"Errors": "error", "Warns": "warning", "Notes": "note",
                        "Chats": "chat", "Comments": "comment"}[head]
            summary_col = None
            continue
        if s.startswith("Frequency") and "Summary" in line:
            summary_col = line.index("Summary")
            continue
        if severity is None or summary_col is None:
            continue
        left = line[:summary_col].split()
        if len(left) < 3 or not left[0].isdigit():
            continue
        rows.append((severity, " ".join(left[1:-1]), left[-1], int(left[0]),
                     line[summary_col:].strip()))
    return rows


def mptcp_expert_warnings(pcap, protocols=("MPTCP",)):
    """MPTCP-protocol expert warnings and errors in `pcap` (tshark's MPTCP analysis on),
    as strings like 'warning: <summary> (x3)'.  TCP-level notes/warnings (retransmissions,
    dup ACKs under loss) are not included unless `protocols` asks for them."""
    want = {p.upper() for p in protocols}
    return ["%s: %s (x%d)" % (sev, summary, n)
            for sev, _group, proto, n, summary in expert_rows(pcap)
            if proto.upper() in want and sev in ("warning", "error")]
