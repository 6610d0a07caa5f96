"""The kernel as the device (mplab-ref) for `mptcp-trial --with-ref`: the scenario's bulk
transfer by a kernel MPTCP socket over the same two links, with the same schedule, sampled
from outside every SAMPLE_S with `ss -tin` (subflows per link, bytes) and `nstat` (MPTcpExt
counters). The samples become events of the device agent's shape (sample, sf_up, sf_down,
counter, resume, stall, done) so the same report code applies; resolution = SAMPLE_S."""

import re
import subprocess
import threading
import time

from mptcp_lab import api, nstat as lab_nstat
from mptcp_lab.common import LINKS, NS_REF, SERVER_ADDR

SAMPLE_S = 0.1
RESUME_MS = 50
STALL_MS = 200
ADDR_LINK = {cfg["dev_addr"]: name for name, cfg in LINKS.items()}
_TOKEN = re.compile(r"(\d+\.\d+\.\d+\.\d+)(?:%[^:\s]+)?:(\d+)")


def parse_ss(text, port):
    """`ss -tinH` output -> {(laddr, lport): {"link", "acked", "received"}} for the
    subflows towards SERVER_ADDR:port (every TCP subflow of an MPTCP connection is listed)."""
    out = {}
    cur = None
    for line in text.splitlines():
        addrs = _TOKEN.findall(line)
        if len(addrs) >= 2 and not line.startswith(("\t", " ")):
            (la, lp), (ra, rp) = addrs[0], addrs[1]
            cur = None
            if ra == SERVER_ADDR and int(rp) == port:
                cur = out[(la, int(lp))] = {"link": ADDR_LINK.get(la, la), "acked": 0,
                                            "received": 0}
            continue
        if cur is None:
            continue
        for tok in line.split():
            if tok.startswith("bytes_acked:"):
                cur["acked"] = int(tok.split(":", 1)[1])
            elif tok.startswith("bytes_received:"):
                cur["received"] = int(tok.split(":", 1)[1])
    return out


class Sampler(threading.Thread):
    """Samples mplab-ref until stop(); events in self.events (t in ms since start)."""

    def __init__(self, port, t0):
        threading.Thread.__init__(self, daemon=True)
        self.port = port
        self.t0 = t0
        self.events = []
        self._halt = threading.Event()
        self.prev_sf = {}
        self.up = {}
        self.ids = 0
        self.prev_ctr = None
        self.idle_since = None
        self.last_prog = None
        self.stalled = False
        self.moved = 0

    def t(self):
        return int((time.monotonic() - self.t0) * 1000)

    def stop(self):
        self._halt.set()
        self.join(10)

    def _counters(self, t):
        try:
            now = lab_nstat.read(NS_REF, ("MPTcpExt",))
        except Exception:       # nstat missing or the namespace gone: no counter events
            return
        if self.prev_ctr is not None:
            for k, v in sorted(now.items()):
                d = v - self.prev_ctr.get(k, 0)
                if d:
                    self.events.append({"t": t, "ev": "counter", "name": k.replace("MPTcpExt", ""),
                                        "delta": d, "value": v})
        self.prev_ctr = now

    def sample(self, last=False):
        t = self.t()
        p = subprocess.run(["ip", "netns", "exec", NS_REF, "ss", "-tinH"], capture_output=True,
                           text=True)
        cur = parse_ss(p.stdout, self.port)
        per = {"wifi": 0, "lte": 0}
        for key, sf in cur.items():
            old = self.prev_sf.get(key, {"acked": 0, "received": 0})
            d = max(0, sf["acked"] - old["acked"]) + max(0, sf["received"] - old["received"])
            per[sf["link"]] = per.get(sf["link"], 0) + d
            if key not in self.up:
                self.ids += 1
                self.up[key] = self.ids
                self.events.append({"t": t, "ev": "sf_up", "link": sf["link"], "id": self.ids,
                                    "flow": "bulk", "join": self.ids > 1})
        for key in list(self.up):
            if key not in cur:
                self.events.append({"t": t, "ev": "sf_down", "link": ADDR_LINK.get(key[0], key[0]),
                                    "id": self.up.pop(key), "flow": "bulk"})
        self.prev_sf = cur
        app = per["wifi"] + per["lte"]
        self._counters(t)
        self.events.append({"t": t, "ev": "sample", "ms": int(SAMPLE_S * 1000), "wifi": per["wifi"],
                            "lte": per["lte"], "app": app, "subflows": len(cur)})
        if app:
            self.moved += app
            if self.idle_since is not None and t - self.idle_since >= RESUME_MS:
                self.events.append({"t": t, "ev": "resume", "flow": "bulk",
                                    "idle_ms": t - self.idle_since, "since": self.idle_since})
            self.idle_since = None
            self.stalled = False
            self.last_prog = t
        elif self.moved and not last:
            if self.idle_since is None:
                self.idle_since = self.last_prog if self.last_prog is not None else t
            if not self.stalled and t - self.idle_since > STALL_MS:
                self.stalled = True
                self.events.append({"t": t, "ev": "stall", "flow": "bulk", "since": self.idle_since})

    def run(self):
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(SAMPLE_S)


def run(sc, port, on_start=None, timeout=None, on_event=None):
    """Run the scenario's bulk transfer on the kernel reference device. on_start(t0) is
    called when the transfer starts (the runner applies the schedule then); on_event(ev)
    sees each sampled event as it comes (the live view). Returns (events, summary dict)."""
    bulk = sc["traffic"].get("bulk")
    if bulk is None:
        return [], {"ok": False, "error": "the reference side runs bulk traffic only"}
    n = bulk["bytes"]
    up = bulk["direction"] == "up"
    srv = api.start_peer("server", port=port, mode="recv" if up else "send",
                         nbytes=None if up else n, once=True)
    args = ["--connect", "%s:%d" % (SERVER_ADDR, port), "--links", ",".join(sc["links"])]
    args += ["--send", str(n)] if up else ["--recv"]
    t0 = time.monotonic()
    sampler = Sampler(port, t0)
    events = [{"t": 0, "ev": "start", "flows": 1}]
    ref = api.start_ref(args)
    sampler.start()
    if on_start is not None:
        on_start(t0)
    deadline = time.monotonic() + (timeout or sc["timeout"])
    shown = 0
    while ref.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
        if on_event is not None:
            evs = sampler.events[:]      # appended by the sampler thread
            for ev in evs[shown:]:
                on_event(ev)
            shown = len(evs)
    if ref.proc.poll() is None:
        ref.stop()
    sampler.stop()
    sampler.sample(last=True)
    res = api.last_json(ref.stdout) or {}
    ref.stop()
    try:
        peer = srv.wait(10)
    except Exception as e:      # the peer's failure is reported, not raised
        peer = {"error": str(e)}
    srv.stop()
    t_end = int((time.monotonic() - t0) * 1000)
    ok = ref.proc.returncode == 0 and res.get("bytes") == n and \
        res.get("sha256") == peer.get("sha256")
    events = events + sampler.events
    events.append({"t": t_end, "ev": "done", "flow": "bulk", "bytes": res.get("bytes", 0), "ok": ok})
    summary = {"ev": "summary", "t": t_end, "ok": ok, "rc": ref.proc.returncode,
               "error": None if ok else (ref.stderr.strip()[-300:] or "sha256/bytes mismatch"),
               "flows": {"bulk": {"bytes": res.get("bytes"), "sha256": res.get("sha256"),
                                  "direction": bulk["direction"], "ok": ok}},
               "peer": peer, "ref": res}
    return events, summary
