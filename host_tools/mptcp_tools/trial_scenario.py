"""The trial scenario file (JSON): links and profiles, a timed schedule, the traffic.

    {
      "name": "handover_wifi_lte",
      "links": {"wifi": "slow", "lte": "clean"},
      "scheduler": "minrtt",
      "schedule": [{"at": 5, "link": "wifi", "action": "down"},
                   {"at": 15, "link": "wifi", "action": "up"}],
      "traffic": [{"type": "bulk", "bytes": "6M", "direction": "up"},
                  {"type": "interactive", "bytes": 64, "every_ms": 200},
                  {"type": "telemetry", "bytes": 32, "every_ms": 500}],
      "duration": 20,
      "timeout": 120
    }

`links`: link name -> lab profile, in order (the first carries the first subflow).
`schedule`: entries of `mptcp-lab schedule` (mptcp_lab.schedule), `at` in seconds from the
start of the traffic. `traffic`: at most one of each type; `bulk` {bytes, direction up|down},
`interactive` {bytes, every_ms} (request/response, latency), `telemetry` {bytes, every_ms}.
`duration` (s): how long periodic traffic runs (default: as long as the bulk transfer; then
required without bulk). `timeout` (s, default duration + 120 or 300): the device gives up.
`scheduler`: minrtt (default), backup, roundrobin.  `load` raises ScenarioError with ONE line
naming the file, the place and the problem.
"""

import json

from mptcp_lab.schedule import parse as parse_schedule

KEYS = {"name", "description", "links", "scheduler", "schedule", "traffic", "duration",
        "timeout"}
TRAFFIC_KEYS = {"bulk": {"type", "bytes", "direction"},
                "interactive": {"type", "bytes", "every_ms"},
                "telemetry": {"type", "bytes", "every_ms"}}
SCHEDULERS = ("minrtt", "backup", "roundrobin")
MAX_S = 86400
# The lab device's heap: one connection per kind of traffic, each with its two rings
# (32 KiB + 32 KiB by default), beside the LTE link's modem/PPP code (~80 KB on the unix port).
HEAP = "1m"


class ScenarioError(ValueError):
    """A malformed scenario: the message is one line saying where and what."""


def _profiles():
    from mptcp_lab.impair import PROFILES
    from mptcp_lab.modem_emu import PROFILES as LTE_PROFILES
    return {"wifi": tuple(PROFILES), "lte": tuple(LTE_PROFILES)}


def parse_bytes(v, where):
    """64, "64", "4K", "8M", "1G" (powers of 1024) -> int > 0."""
    if isinstance(v, bool):
        raise ScenarioError("%s: bytes must be a number or a size like \"8M\", not %r" % (where, v))
    if isinstance(v, int):
        n = v
    elif isinstance(v, str):
        t = v.strip().upper().replace("IB", "").rstrip("B")
        mult = 1
        if t and t[-1] in "KMG":
            mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[t[-1]]
            t = t[:-1]
        if not t.isdigit():
            raise ScenarioError("%s: bad size %r (bytes, or with K/M/G)" % (where, v))
        n = int(t) * mult
    else:
        raise ScenarioError("%s: bytes must be a number or a size like \"8M\", not %r" % (where, v))
    if n <= 0:
        raise ScenarioError("%s: bytes must be > 0" % where)
    return n


def _seconds(v, where):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= MAX_S:
        raise ScenarioError("%s must be a number of seconds in (0, %d], not %r" % (where, MAX_S, v))
    return float(v)


def _traffic(items):
    if not isinstance(items, list) or not items:
        raise ScenarioError("'traffic' must be a non-empty list of {\"type\": bulk|interactive|telemetry, ...}")
    out = {}
    for i, t in enumerate(items):
        where = "traffic[%d]" % i
        if not isinstance(t, dict):
            raise ScenarioError("%s: not an object" % where)
        kind = t.get("type")
        if kind not in TRAFFIC_KEYS:
            raise ScenarioError("%s: 'type' must be bulk, interactive or telemetry, not %r" % (where, kind))
        bad = set(t) - TRAFFIC_KEYS[kind]
        if bad:
            raise ScenarioError("%s: unknown key(s) %s for %s (use %s)" % (
                where, ", ".join(sorted(bad)), kind, ", ".join(sorted(TRAFFIC_KEYS[kind]))))
        if kind in out:
            raise ScenarioError("%s: a second %s entry (at most one of each type)" % (where, kind))
        if "bytes" not in t:
            raise ScenarioError("%s: %s needs 'bytes'" % (where, kind))
        e = {"bytes": parse_bytes(t["bytes"], where)}
        if kind == "bulk":
            d = t.get("direction", "up")
            if d not in ("up", "down"):
                raise ScenarioError("%s: 'direction' must be up (device to peer) or down, not %r" % (where, d))
            e["direction"] = d
        else:
            ms = t.get("every_ms")
            if isinstance(ms, bool) or not isinstance(ms, int) or not 10 <= ms <= 3600000:
                raise ScenarioError("%s: %s needs 'every_ms', an integer in [10, 3600000], not %r"
                                    % (where, kind, ms))
            if e["bytes"] > 65536:
                raise ScenarioError("%s: %s bytes must be <= 65536 (a request or a write)" % (where, kind))
            e["every_ms"] = ms
        out[kind] = e
    return out


def validate(doc, name="scenario"):
    """A parsed JSON document -> the canonical scenario dict (ScenarioError if malformed)."""
    if not isinstance(doc, dict):
        raise ScenarioError("the scenario must be a JSON object, not %s" % type(doc).__name__)
    bad = set(doc) - KEYS
    if bad:
        raise ScenarioError("unknown key(s) %s (use %s)" % (", ".join(sorted(bad)),
                                                           ", ".join(sorted(KEYS))))
    links = doc.get("links")
    if not isinstance(links, dict) or not links:
        raise ScenarioError("'links' must be an object of link name -> profile, e.g. "
                            "{\"wifi\": \"clean\", \"lte\": \"clean\"}")
    profiles = _profiles()
    out_links = {}
    for ln, prof in links.items():
        if ln not in profiles:
            raise ScenarioError("links: unknown link %r (known: wifi, lte)" % ln)
        if isinstance(prof, dict) and set(prof) == {"profile"}:
            prof = prof["profile"]
        if prof not in profiles[ln]:
            raise ScenarioError("links.%s: unknown profile %r (known: %s)"
                                % (ln, prof, ", ".join(profiles[ln])))
        out_links[ln] = prof
    sched = doc.get("scheduler", "minrtt")
    if sched not in SCHEDULERS:
        raise ScenarioError("'scheduler' must be one of %s, not %r" % (", ".join(SCHEDULERS), sched))
    entries = doc.get("schedule", [])
    if not isinstance(entries, list):
        raise ScenarioError("'schedule' must be a list of entries like "
                            "{\"at\": 5, \"link\": \"wifi\", \"action\": \"down\"}")
    try:
        schedule = parse_schedule(json.dumps(entries)) if entries else []
    except ValueError as e:
        raise ScenarioError("schedule: %s" % e)
    for i, e in enumerate(schedule):
        if e["link"] not in out_links:
            raise ScenarioError("schedule: an entry at %gs acts on link %s, which is not in "
                                "'links'" % (e["at"], e["link"]))
    traffic = _traffic(doc.get("traffic"))
    duration = doc.get("duration")
    if duration is not None:
        duration = _seconds(duration, "'duration'")
    elif "bulk" not in traffic:
        raise ScenarioError("'duration' (seconds) is required when there is no bulk traffic")
    timeout = doc.get("timeout")
    if timeout is not None:
        timeout = _seconds(timeout, "'timeout'")
    else:
        timeout = (duration + 120.0) if duration is not None else 300.0
    title = doc.get("name", name)
    if not isinstance(title, str):
        raise ScenarioError("'name' must be a string")
    return {"name": title, "description": str(doc.get("description", "")),
            "links": out_links, "scheduler": sched, "schedule": schedule,
            "traffic": traffic, "duration": duration, "timeout": timeout}


def load(path):
    """Read and validate a scenario file; ScenarioError('PATH: problem') if anything is wrong."""
    import os
    name = os.path.splitext(os.path.basename(path))[0]
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise ScenarioError("%s: cannot read: %s" % (path, e.strerror or e))
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise ScenarioError("%s: not valid JSON: %s" % (path, e))
    try:
        return validate(doc, name)
    except ScenarioError as e:
        raise ScenarioError("%s: %s" % (path, e))


def agent_args(sc, port, host="198.18.0.1", heap=HEAP, buf=None):
    """The device trial agent's command line for scenario `sc` against the peer on `port`;
    heap: the MicroPython heap (the lab process's -X heapsize); buf: each connection's send
    and receive ring in bytes (default: the board config's SND_BUF / RCV_BUF)."""
    t = sc["traffic"]
    args = ["--connect", "%s:%d" % (host, port), "--links", ",".join(sc["links"]),
            "--scheduler", sc["scheduler"], "--timeout", "%g" % sc["timeout"],
            "--heap", heap]
    if buf is not None:
        args += ["--snd-buf", str(buf), "--rcv-buf", str(buf)]
    if "bulk" in t:
        args += ["--bulk", str(t["bulk"]["bytes"]), "--bulk-dir", t["bulk"]["direction"]]
    if "interactive" in t:
        args += ["--interactive", "%d:%d" % (t["interactive"]["bytes"], t["interactive"]["every_ms"])]
    if "telemetry" in t:
        args += ["--telemetry", "%d:%d" % (t["telemetry"]["bytes"], t["telemetry"]["every_ms"])]
    if sc["duration"] is not None:
        args += ["--duration", "%g" % sc["duration"]]
    return args


def cuts(sc):
    """[(at_s, link, how)]: the schedule's link losses ("down", or "loss" for set loss>=100)."""
    out = []
    for e in sc["schedule"]:
        if e["action"] == "down":
            out.append((e["at"], e["link"], "down"))
        elif e["action"] == "set" and e["settings"].get("loss", 0) >= 100:
            out.append((e["at"], e["link"], "loss"))
    return out


def restores(sc):
    """[(at_s, link)]: the schedule's link returns (up, or set loss below 100)."""
    out = []
    for e in sc["schedule"]:
        if e["action"] == "up" or (e["action"] == "set" and "loss" in e["settings"]
                                   and e["settings"]["loss"] < 100):
            out.append((e["at"], e["link"]))
    return out
