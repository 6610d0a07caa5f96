"""Timed link actions: the schedule file format and the emulator's timer for it.

`mptcp-lab schedule FILE` and `mptcp-lab link wifi down --for 10 --at 5` hand entries to the
emulator, which runs them on its own clock (precise, and independent of the CLI process).

FILE is JSON, a list of entries, `at` in seconds from the moment the command is issued:

    [{"at": 5, "link": "wifi", "action": "down"},
     {"at": 15, "link": "wifi", "action": "up"},
     {"at": 20, "link": "wifi", "action": "set", "settings": {"loss": 100}, "dir": "up"},
     {"at": 25, "link": "lte", "action": "set", "settings": {"baud": 115200, "delay": "75ms"}}]

or lines `AT LINK ACTION [NAME=VALUE ...]` (`#` starts a comment; `dir=up|down` for a Wi-Fi
set), e.g. `5 wifi down` / `15 wifi up` / `20 wifi set loss=100 dir=up`.  Settings are those
of `mptcp-lab link NAME set` (values as strings with units, or plain numbers in the canonical
unit: bit/s, ms, percent; baud).  `parse` turns either into canonical entries
{"at", "link", "action", "settings", "dir"} or raises ValueError with one line saying which
entry is wrong and why.  `normalize` is idempotent (the emulator re-checks what it gets).
"""

import json

from .impair import parse_value

LINK_NAMES = ("wifi", "lte")
ACTIONS = ("down", "up", "set")
MAX_ENTRIES = 1000
MAX_AT_S = 86400.0
KEYS = {"at", "link", "action", "settings", "dir"}


def parse_lte_settings(items):
    """baud=921600 delay=30ms -> {"baud": 921600, "delay_ms": 30.0} (delay one way)."""
    out = {}
    for it in items:
        if "=" not in it:
            raise ValueError("setting %r is not NAME=VALUE" % it)
        k, v = it.split("=", 1)
        k = k.strip().lower()
        if k == "baud":
            try:
                out["baud"] = int(v)
            except ValueError:
                raise ValueError("bad baud %r (an integer, e.g. 115200)" % v)
            if out["baud"] < 300:
                raise ValueError("baud must be >= 300")
        elif k in ("delay", "delay_ms"):
            out["delay_ms"] = parse_value("delay", v)
        elif k == "corrupt":
            raise ValueError("corrupt is only supported on the wifi link (the LTE link's "
                             "packets go through the modem emulator's PPP path)")
        else:
            raise ValueError("unknown setting %r for the LTE link (use baud, delay)" % k)
    return out


def _wifi_settings(items):
    out = {}
    for it in items:
        k, v = it.split("=", 1)
        k = k.strip().lower()
        out[k] = parse_value(k, v)
    return out


def _num(v):
    """A JSON number or a numeric string, as a string parse_value understands."""
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise ValueError("bad value %r" % (v,))
    return repr(v) if isinstance(v, float) else str(v)


def normalize(entry):
    """One entry (dict) -> canonical entry; ValueError with the reason."""
    if not isinstance(entry, dict):
        raise ValueError("not an object")
    bad = set(entry) - KEYS
    if bad:
        raise ValueError("unknown key(s) %s (use at, link, action, settings, dir)"
                         % ", ".join(sorted(bad)))
    at = entry.get("at")
    if isinstance(at, bool) or not isinstance(at, (int, float)):
        raise ValueError("'at' must be a number of seconds, not %r" % (at,))
    if not 0 <= at <= MAX_AT_S:
        raise ValueError("'at' must be in [0, %d] seconds, not %r" % (MAX_AT_S, at))
    link = entry.get("link")
    if link not in LINK_NAMES:
        raise ValueError("'link' must be one of %s, not %r" % (", ".join(LINK_NAMES), link))
    action = entry.get("action")
    if action not in ACTIONS:
        raise ValueError("'action' must be one of %s, not %r" % (", ".join(ACTIONS), action))
    settings = entry.get("settings")
    direction = entry.get("dir", "both")
    if direction not in ("both", "up", "down"):
        raise ValueError("'dir' must be both, up or down, not %r" % (direction,))
    if action != "set":
        if settings:
            raise ValueError("'settings' only go with action set")
        if direction != "both":
            raise ValueError("'dir' only goes with action set")
        settings = {}
    else:
        if not isinstance(settings, dict) or not settings:
            raise ValueError("action set needs 'settings', an object of name: value")
        items = ["%s=%s" % (k, _num(v)) for k, v in settings.items()]
        if link == "lte":
            if direction != "both":
                raise ValueError("the LTE link's settings apply to both directions (no dir)")
            settings = parse_lte_settings(items)
        else:
            settings = _wifi_settings(items)
    return {"at": float(at), "link": link, "action": action, "settings": settings,
            "dir": direction}


def _from_lines(text):
    entries = []
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) < 3:
            raise ValueError("line %d: expected AT LINK ACTION [NAME=VALUE ...], got %r"
                             % (no, raw.strip()))
        try:
            at = float(parts[0])
        except ValueError:
            raise ValueError("line %d: 'at' must be a number of seconds, not %r"
                             % (no, parts[0]))
        e = {"at": at, "link": parts[1], "action": parts[2]}
        settings = {}
        for it in parts[3:]:
            if "=" not in it:
                raise ValueError("line %d: setting %r is not NAME=VALUE" % (no, it))
            k, v = it.split("=", 1)
            if k == "dir":
                e["dir"] = v
            else:
                settings[k] = v
        if settings:
            e["settings"] = settings
        entries.append((no, e))
    return entries


def parse(text):
    """Schedule text (JSON list or lines) -> canonical entries sorted by `at` (stable)."""
    t = text.strip()
    if not t:
        raise ValueError("empty schedule")
    if t[0] in "[{":
        try:
            data = json.loads(t)
        except ValueError as e:
            raise ValueError("not valid JSON: %s" % e)
        if not isinstance(data, list):
            raise ValueError("JSON schedule must be a list of entries")
        numbered = [("entry %d" % i, e) for i, e in enumerate(data, 1)]
    else:
        numbered = [("line %d" % no, e) for no, e in _from_lines(t)]
    if not numbered:
        raise ValueError("no entries")
    if len(numbered) > MAX_ENTRIES:
        raise ValueError("too many entries (%d, at most %d)" % (len(numbered), MAX_ENTRIES))
    out = []
    for where, e in numbered:
        try:
            out.append(normalize(e))
        except ValueError as err:
            raise ValueError("%s: %s" % (where, err))
    return sorted(out, key=lambda e: e["at"])


def outage(link, at=0.0, duration=None, action="down", settings=None, direction="both"):
    """The entries of `link LINK ACTION --at AT [--for DURATION]` (for: down, then up)."""
    es = [{"at": at, "link": link, "action": action}]
    if action == "set":
        es[0]["settings"] = settings
        es[0]["dir"] = direction
    if duration is not None:
        if action != "down":
            raise ValueError("--for goes with down only (an outage of that length)")
        if not duration > 0:
            raise ValueError("--for must be > 0 seconds")
        es.append({"at": at + duration, "link": link, "action": "up"})
    return [normalize(e) for e in es]


class Scheduler:
    """Pending timed actions, run by the emulator's loop (times are time.monotonic()).

    apply(entry) performs one action (raises on error: recorded in `done`, the rest go on).
    Entries issued together keep their order for equal times."""

    DONE_KEPT = 50

    def __init__(self, apply):
        self.apply = apply
        self.pending = []      # [due, seq, issued, entry]
        self.done = []
        self.seq = 0

    def add(self, entries, now):
        if not isinstance(entries, list):
            raise ValueError("entries must be a list")
        entries = [normalize(e) for e in entries]     # all or nothing
        for e in entries:
            self.seq += 1
            self.pending.append([now + e["at"], self.seq, now, e])
        self.pending.sort(key=lambda p: (p[0], p[1]))
        return len(entries)

    def clear(self):
        n = len(self.pending)
        self.pending = []
        return n

    def next_deadline(self):
        return self.pending[0][0] if self.pending else None

    def on_timer(self, now):
        while self.pending and self.pending[0][0] <= now:
            due, seq, issued, e = self.pending.pop(0)
            rec = dict(e, due_after_s=round(due - issued, 6), ran_after_s=round(now - issued, 6))
            try:
                self.apply(e)
            except Exception as err:   # a bad action must never kill the emulator
                rec["error"] = "%s: %s" % (type(err).__name__, err)
            self.done.append(rec)
            del self.done[:-self.DONE_KEPT]

    def status(self, now):
        return {"pending": [dict(e, in_s=round(max(0.0, due - now), 3), seq=seq)
                            for due, seq, issued, e in self.pending],
                "done": list(self.done)}
