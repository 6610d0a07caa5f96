"""The live terminal view of a running trial: link states, goodput per link, subflows, the
last events and a progress bar. render(state) is a pure function (tested); Live redraws it
in place with plain ANSI on a tty, and prints one plain line per event (and a status line
every second) when stdout is not a tty (a log file, CI)."""

import collections
import time

BAR = 30
GREEN, RED, DIM, BOLD, RESET = "\x1b[32m", "\x1b[31m", "\x1b[2m", "\x1b[1m", "\x1b[0m"


def rate(bps):
    """Bytes/s -> '12.3 Mbit/s' style text."""
    b = bps * 8
    if b >= 1e6:
        return "%.2f Mbit/s" % (b / 1e6)
    if b >= 1e3:
        return "%.1f kbit/s" % (b / 1e3)
    return "%d bit/s" % b


def size(n):
    for unit, k in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= k:
            return "%.1f %s" % (n / k, unit)
    return "%d B" % n


def describe(ev):
    """One event as a short line of text (None for samples: they are the numbers above)."""
    k = ev.get("ev")
    t = "%7.2fs " % (ev.get("t", 0) / 1000.0)
    if k == "link":
        return t + "link %s %s" % (ev["link"], ev["state"].upper())
    if k == "sf_up":
        return t + "subflow #%s up on %s (%s%s)" % (ev.get("id"), ev.get("link"), ev.get("flow"),
                                                    ", join" if ev.get("join") else "")
    if k == "sf_down":
        return t + "subflow #%s on %s closed (%s)" % (ev.get("id"), ev.get("link"), ev.get("flow"))
    if k == "counter":
        return t + "%s +%d (= %d)" % (ev["name"], ev.get("delta", 0), ev.get("value", 0))
    if k == "stall":
        return t + "STALL %s (no progress since %.2fs)" % (ev.get("flow"), ev.get("since", 0) / 1000.0)
    if k == "resume":
        return t + "%s resumed after %d ms" % (ev.get("flow"), ev.get("idle_ms", 0))
    if k == "done":
        return t + "%s done: %s %s" % (ev.get("flow"), size(ev.get("bytes", 0)),
                                       "ok" if ev.get("ok") else "FAILED")
    if k == "start":
        return t + "traffic started"
    if k == "resp":
        return None
    if k == "summary":
        return t + "summary: %s" % ("ok" if ev.get("ok") else "FAILED: %s" % ev.get("error"))
    if k in ("sample",):
        return None
    return t + str(ev)


class State:
    """What the view shows, updated from the device's events."""

    def __init__(self, name, links, expected_s=None, bulk_bytes=None, keep=8):
        self.name = name
        self.links = {ln: "?" for ln in links}
        self.goodput = {ln: 0.0 for ln in links}
        self.subflows = 0
        self.app_bytes = 0
        self.bulk_bytes = bulk_bytes
        self.expected_s = expected_s
        self.t_s = 0.0
        self.t_start_s = None
        self.stalls = 0
        self.last_latency = None
        self.events = collections.deque(maxlen=keep)
        self.done = False

    def update(self, ev):
        k = ev.get("ev")
        if isinstance(ev.get("t"), (int, float)):
            self.t_s = ev["t"] / 1000.0
        if k == "start":
            self.t_start_s = self.t_s
        elif k == "link":
            self.links[ev["link"]] = ev["state"]
        elif k == "sample":
            ms = ev.get("ms") or 1
            for ln in self.goodput:
                self.goodput[ln] = ev.get(ln, 0) * 1000.0 / ms
            self.subflows = ev.get("subflows", self.subflows)
            self.app_bytes += ev.get("app", 0)
        elif k == "stall":
            self.stalls += 1
        elif k == "resp":
            self.last_latency = ev.get("latency_ms")
        elif k == "summary":
            self.done = True
        line = describe(ev)
        if line:
            self.events.append(line)

    def fraction(self):
        """Progress in [0, 1]: the bulk bytes moved, or the time against the expected run."""
        f = 0.0
        if self.bulk_bytes:
            f = self.app_bytes / float(self.bulk_bytes)
        elif self.expected_s and self.t_start_s is not None:
            f = (self.t_s - self.t_start_s) / self.expected_s
        if self.done:
            f = 1.0
        return max(0.0, min(1.0, f))


def progress_bar(frac, width=BAR):
    n = int(round(frac * width))
    return "[" + "#" * n + "." * (width - n) + "] %3d%%" % int(frac * 100)


def render(st, color=True):
    """The whole view as a string (no cursor movement)."""
    def c(code, text):
        return code + text + RESET if color else text
    lines = [c(BOLD, "mptcp-trial: %s" % st.name) + "   t=%.1fs" % st.t_s]
    for ln, state in st.links.items():
        mark = c(GREEN, "UP  ") if state == "up" else c(RED, "DOWN") if state == "down" else "?   "
        lines.append("  %-5s %s  %14s" % (ln, mark, rate(st.goodput.get(ln, 0.0))))
    extra = "  subflows %d   app %s" % (st.subflows, size(st.app_bytes))
    if st.bulk_bytes:
        extra += " of %s" % size(st.bulk_bytes)
    if st.last_latency is not None:
        extra += "   rtt %d ms" % st.last_latency
    if st.stalls:
        extra += "   " + c(RED, "stalls %d" % st.stalls)
    lines.append(extra)
    lines.append("  " + progress_bar(st.fraction()))
    lines.append(c(DIM, "  last events:"))
    for e in st.events:
        lines.append("   " + e)
    return "\n".join(lines) + "\n"


class Live:
    """Shows a State on `out`: redrawn in place on a tty (at most every `every` s), plain
    lines otherwise."""

    def __init__(self, state, out, tty=None, every=0.1):
        self.st = state
        self.out = out
        self.tty = out.isatty() if tty is None else tty
        self.every = every
        self._lines = 0
        self._last = 0.0
        self._status = 0.0

    def update(self, ev):
        self.st.update(ev)
        if self.tty:
            now = time.monotonic()
            if now - self._last >= self.every or ev.get("ev") != "sample":
                self.draw()
                self._last = now
            return
        line = describe(ev)
        if line:
            self.out.write(line + "\n")
        elif ev.get("ev") == "sample" and self.st.t_s - self._status >= 1.0:
            self._status = self.st.t_s
            self.out.write("%7.2fs %s %s\n" % (self.st.t_s, "  ".join(
                "%s %s %s" % (ln, s, rate(self.st.goodput.get(ln, 0)))
                for ln, s in self.st.links.items()), progress_bar(self.st.fraction(), 20)))
        self.out.flush()

    def draw(self):
        text = render(self.st, color=True)
        if self._lines:
            self.out.write("\x1b[%dA\x1b[J" % self._lines)
        self.out.write(text)
        self.out.flush()
        self._lines = text.count("\n")

    def message(self, text):
        """A line outside the view (set-up steps, the report's location)."""
        if self.tty and self._lines:
            self.out.write("\x1b[%dA\x1b[J" % self._lines)
            self._lines = 0
        self.out.write(text + "\n")
        self.out.flush()
