USAGE = """trial: the device's field-trial agent: runs the scenario's traffic against the trial
peer (mptcp_tools.trial_peer) and streams events, one JSON line each, on stdout (the console).

trial --connect HOST:PORT [--bulk BYTES [--bulk-dir up|down]]
      [--interactive BYTES:MS] [--telemetry BYTES:MS] [--duration SECONDS]
options: --links wifi[,lte]  --scheduler minrtt|backup|roundrobin  --backup LINK
         --ring N (event ring slots, default 256)  --sample-ms MS (default 100)
         --timeout SECONDS  --wifi-tunnel HOST:PORT  --snd-buf BYTES  --rcv-buf BYTES
         --lte-serial PATH  --lte-baud BAUD  --lte-timeout SECONDS  --heap BYTES  -v
--interactive 64:200 = a 64-byte request every 200 ms, echoed by the peer (response latency);
--telemetry 32:500 = 32 bytes written every 500 ms. Periodic traffic runs --duration seconds
(default: until the bulk transfer ends). One connection per kind of traffic.

Events ({"t": ms since the agent started, "ev": KIND, ...}): start, link (up/down), sf_up,
sf_down, counter (a MIB counter that changed: name, delta, value), sample (every --sample-ms:
bytes per link in the interval, app bytes, live subflows), resp (a response's latency),
resume (app progress again after >= 50 ms without), stall (> 200 ms without progress while
work is pending), done (a flow ended), then ONE summary line {"ev": "summary", "ok": ...}.
Events wait in a fixed ring of --ring slots; when the console is slower, the oldest are
overwritten and counted ("dropped" in the summary). Exit 0 only if every flow completed.
"""
import sys
import hashlib
import binascii

try:
    import json
except ImportError:  # pragma: no cover
    import ujson as json

from mptcp import ticks
from mptcp import counters as C
from mptcp_runtime import clock
from mptcp_apps.args import UsageError, parse_size, main as app_main
from mptcp_apps.perf import LINKS, MAX_TIMEOUT_S, board_config, make_netifs, wait_links

LINK_NAMES = ("wifi", "lte")
FLOW_NAMES = ("bulk", "interactive", "telemetry")
BULK, INTER, TELEM = 0, 1, 2
RESUME_MS = 50          # a pause in app progress at least this long is reported on resume
STALL_MS = 200          # no progress this long while work is pending: a stall
MAX_SLOTS = 8           # subflows tracked at once (all connections)
BLOCK = 4096

# event kinds (index = code)
KINDS = ("start", "link", "sf_up", "sf_down", "counter", "sample", "resp", "resume",
         "stall", "done")
K_START, K_LINK, K_SFUP, K_SFDOWN, K_CTR, K_SAMPLE, K_RESP, K_RESUME, K_STALL, K_DONE = \
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9

# counters watched for events: the handover story (kernel MPTcpExt names where they exist)
WATCH = ("RmSubflow", "MPTCPReinject", "LinkDown", "SubflowRecreate", "SubflowStale",
         "SubflowRecover", "MPJoinSynTx", "MPJoinSynAckRx", "MPJoinAckRx", "MPJoinRejected",
         "MPJoinSynAckHMacFailure", "MPJoinAckHMacFailure", "MPJoinNoTokenFound",
         "MPRstTx", "MPRstRx", "MPFastcloseTx", "MPFastcloseRx", "OrphanTimeout",
         "MPPrioTx", "MPPrioRx")


def _period(s, what):
    if ":" not in s:
        raise UsageError("%s takes BYTES:MS, e.g. 64:200" % what)
    b, t = s.split(":", 1)
    n = parse_size(b)
    try:
        ms = int(t)
    except ValueError:
        raise UsageError("%s: bad period %r (milliseconds)" % (what, t))
    if n <= 0 or ms <= 0:
        raise UsageError("%s: bytes and period must be > 0" % what)
    return (n, ms)


def parse_args(argv):
    o = {"connect": None, "bulk": None, "bulk_dir": "up", "interactive": None,
         "telemetry": None, "duration": None, "links": "wifi", "scheduler": "minrtt",
         "backup": None, "ring": 256, "sample_ms": 100, "timeout": 120.0,
         "wifi_tunnel": None, "snd_buf": None, "rcv_buf": None, "lte_serial": None,
         "lte_baud": None, "lte_timeout": 60.0, "heap": None, "verbose": False,
         # what mptcp_apps.perf's link set-up looks at
         "raw": None, "raw_addr": None, "raw_rules": True, "listen": None}
    i = 0
    n = len(argv)
    while i < n:
        a = argv[i]
        if a in ("-h", "--help"):
            raise UsageError("")
        if a in ("-v", "--verbose"):
            o["verbose"] = True
            i += 1
            continue
        if i + 1 >= n:
            raise UsageError("%s needs a value" % a if a.startswith("--") else
                             "unknown argument: %s" % a)
        v = argv[i + 1]
        if a == "--connect":
            if ":" not in v:
                raise UsageError("--connect takes HOST:PORT")
            h, p = v.rsplit(":", 1)
            o["connect"] = (h, int(p))
        elif a == "--bulk":
            o["bulk"] = parse_size(v)
        elif a == "--bulk-dir":
            if v not in ("up", "down"):
                raise UsageError("--bulk-dir is up or down")
            o["bulk_dir"] = v
        elif a == "--interactive":
            o["interactive"] = _period(v, a)
        elif a == "--telemetry":
            o["telemetry"] = _period(v, a)
        elif a in ("--duration", "--timeout", "--lte-timeout"):
            try:
                o[a[2:].replace("-", "_")] = float(v)
            except ValueError:
                raise UsageError("%s takes seconds, not %r" % (a, v))
        elif a in ("--ring", "--sample-ms", "--lte-baud"):
            try:
                o[a[2:].replace("-", "_")] = int(v)
            except ValueError:
                raise UsageError("%s takes an integer, not %r" % (a, v))
        elif a in ("--snd-buf", "--rcv-buf", "--heap"):
            o[a[2:].replace("-", "_")] = parse_size(v)
        elif a in ("--links", "--scheduler", "--backup", "--wifi-tunnel", "--lte-serial"):
            o[a[2:].replace("-", "_")] = v
        else:
            raise UsageError("unknown argument: %s" % a)
        i += 2
    if o["connect"] is None:
        raise UsageError("--connect HOST:PORT is required (the trial peer)")
    if o["bulk"] is None and o["interactive"] is None and o["telemetry"] is None:
        raise UsageError("no traffic: give --bulk, --interactive and/or --telemetry")
    if o["bulk"] is None and o["duration"] is None:
        raise UsageError("periodic traffic without --bulk needs --duration SECONDS")
    for name in o["links"].split(","):
        if name not in LINKS:
            raise UsageError("unknown link %r (known: wifi, lte)" % name)
    if o["ring"] < 8 or o["sample_ms"] < 10:
        raise UsageError("--ring must be >= 8 and --sample-ms >= 10")
    for k in ("timeout", "lte_timeout"):
        if not 0 < o[k] <= MAX_TIMEOUT_S:
            raise UsageError("--%s must be in (0, %d] seconds" % (k.replace("_", "-"), MAX_TIMEOUT_S))
    if o["duration"] is not None and not 0 < o["duration"] <= MAX_TIMEOUT_S:
        raise UsageError("--duration must be in (0, %d] seconds" % MAX_TIMEOUT_S)
    from mptcp.sched import NAMES as SCHEDULERS
    if o["scheduler"] not in SCHEDULERS:
        raise UsageError("unknown scheduler %r (known: %s)" % (o["scheduler"], ", ".join(SCHEDULERS)))
    if o["backup"] is None and o["scheduler"] == "backup" and "," in o["links"]:
        o["backup"] = o["links"].split(",")[-1]
    if o["backup"] is not None and o["backup"] not in o["links"].split(","):
        raise UsageError("--backup %s is not one of --links %s" % (o["backup"], o["links"]))
    return o


class EventRing:
    """Fixed-size event ring: N slots of 8 ints (t, kind, a..f), allocated once.

    push() never allocates (small ints into existing lists); when full it overwrites the
    oldest event and counts it in `dropped`. The console drains it with pop_into()."""

    def __init__(self, n):
        self.n = n
        self.slots = [[0] * 8 for _ in range(n)]
        self.head = 0           # oldest
        self.count = 0
        self.dropped = 0
        self.pushed = 0

    def push(self, t, kind, a=0, b=0, c=0, d=0, e=0, f=0):
        if self.count == self.n:
            self.head = (self.head + 1) % self.n
            self.count -= 1
            self.dropped += 1
        s = self.slots[(self.head + self.count) % self.n]
        s[0] = t
        s[1] = kind
        s[2] = a
        s[3] = b
        s[4] = c
        s[5] = d
        s[6] = e
        s[7] = f
        self.count += 1
        self.pushed += 1

    def pop(self):
        """The oldest slot (valid until the next push), or None."""
        if self.count == 0:
            return None
        s = self.slots[self.head]
        self.head = (self.head + 1) % self.n
        self.count -= 1
        return s


def event_dict(s):
    """One ring slot -> the JSON object streamed on the console."""
    k = s[1]
    ev = {"t": s[0], "ev": KINDS[k]}
    if k == K_LINK:
        ev["link"] = LINK_NAMES[s[2]]
        ev["state"] = "up" if s[3] else "down"
    elif k == K_SFUP or k == K_SFDOWN:
        ev["link"] = LINK_NAMES[s[2]] if s[2] < len(LINK_NAMES) else str(s[2])
        ev["id"] = s[3]
        ev["flow"] = FLOW_NAMES[s[4]] if 0 <= s[4] < 3 else None
        if k == K_SFUP:
            ev["join"] = bool(s[5])
        else:
            ev["bytes_tx"] = s[5]
            ev["bytes_rx"] = s[6]
    elif k == K_CTR:
        ev["name"] = C.NAMES[s[2]]
        ev["delta"] = s[3]
        ev["value"] = s[4]
    elif k == K_SAMPLE:
        ev["ms"] = s[2]
        ev["wifi"] = s[3]
        ev["lte"] = s[4]
        ev["app"] = s[5]
        ev["subflows"] = s[6]
        ev["pending"] = s[7]
    elif k == K_RESP:
        ev["flow"] = FLOW_NAMES[s[2]]
        ev["latency_ms"] = s[3]
    elif k == K_RESUME:
        ev["flow"] = FLOW_NAMES[s[2]]
        ev["idle_ms"] = s[3]
        ev["since"] = s[4]
    elif k == K_STALL:
        ev["flow"] = FLOW_NAMES[s[2]]
        ev["since"] = s[3]
    elif k == K_DONE:
        ev["flow"] = FLOW_NAMES[s[2]]
        ev["bytes"] = s[3]
        ev["ok"] = bool(s[4])
    elif k == K_START:
        ev["flows"] = s[2]
    return ev


class Flow:
    """One kind of traffic on its own connection; step() moves data without blocking.

    Progress is what the application sees: bytes the peer acknowledged at the data level
    (upload) or bytes read (download, responses)."""

    def __init__(self, kind, conn, buf):
        self.kind = kind
        self.c = conn
        self.buf = buf
        self.mv = memoryview(buf)
        self.written = 0
        self.read = 0
        self.progress = 0       # bytes of app progress so far
        self.last_prog = -1     # tick of the last progress
        self.idle_since = -1    # tick since when no progress while pending (-1: none)
        self.busy_since = -1    # tick the pending work began (a request or write issued)
        self.stalled = False
        self.done = False
        self.ok = False
        self.error = None
        self.seen = 0        # progress at the last sample

    def pending(self):
        return False

    def acked(self):
        """Bytes of ours the peer acknowledged (the header line, still in the ring until
        it is acknowledged, does not count)."""
        a = self.written - self.c.snd.len
        return a if a > 0 else 0


class BulkFlow(Flow):
    def __init__(self, conn, buf, nbytes, up):
        Flow.__init__(self, BULK, conn, buf)
        self.n = nbytes
        self.up = up
        self.h = hashlib.sha256()
        self.closing = False
        self.busy_since = clock.now_ms()
        self.blk = 0
        self.pos = 0            # offset in the current block

    def pending(self):
        return not self.done

    def step(self, now, t_end):
        c = self.c
        if self.done:
            return
        if c.error is not None:
            self.error = c.error
            self.done = True
            return
        if self.up:
            while self.written < self.n:
                k = self.n - self.written
                room = len(self.buf) - self.pos
                if k > room:
                    k = room
                if self.pos == 0:
                    b = self.buf
                    b[0] = self.blk & 0xFF
                    b[1] = (self.blk >> 8) & 0xFF
                    b[2] = (self.blk >> 16) & 0xFF
                m = c.write(self.mv[self.pos:self.pos + k])
                if m == 0:
                    break
                self.h.update(self.mv[self.pos:self.pos + m])
                self.written += m
                self.pos += m
                if self.pos == len(self.buf):
                    self.pos = 0
                    self.blk += 1
            self.progress = self.acked()
            if self.written >= self.n and not self.closing:
                c.close()
                self.closing = True
            if self.closing and c.closed:
                self.done = True
                self.ok = c.error is None and self.acked() == self.n
                if not self.ok:
                    self.error = c.error or "closed with %d of %d bytes acknowledged" % (
                        self.acked(), self.n)
        else:
            while True:
                m = c.readinto(self.mv)
                if m == 0:
                    break
                self.h.update(self.mv[:m])
                self.read += m
            self.progress = self.read
            if c.eof and not self.closing:
                c.close()
                self.closing = True
            if self.closing and c.closed:
                self.done = True
                self.ok = c.error is None and self.read == self.n
                if not self.ok:
                    self.error = c.error or "got %d of %d bytes" % (self.read, self.n)


class PeriodicFlow(Flow):
    """interactive: an n-byte request every `every` ms, the peer echoes it (latency);
    telemetry: n bytes written every `every` ms."""

    def __init__(self, kind, conn, buf, n, every):
        Flow.__init__(self, kind, conn, buf)
        self.n = n
        self.every = every
        self.next_at = -1
        self.sent_at = -1       # interactive: tick the outstanding request was written
        self.req_left = 0       # bytes of the current request still to write
        self.resp_left = 0      # bytes of the current response still to read
        self.count = 0          # requests (interactive) or writes (telemetry) started
        self.answered = 0
        self.missed = 0         # periods skipped: request outstanding / no room
        self.lat = []           # latencies (ms), at most LAT_KEEP kept for the summary
        self.lat_sum = 0
        self.lat_max = 0
        self.closing = False

    def pending(self):
        if self.done:
            return False
        if self.kind == INTER:
            return self.sent_at >= 0
        return self.acked() < self.written

    def step(self, now, t_end, ring=None, t0=0):
        c = self.c
        if self.done:
            return
        if c.error is not None:
            self.error = c.error
            self.done = True
            return
        if self.next_at < 0:
            self.next_at = now
        finished = t_end >= 0 and ticks.diff(now, t_end) >= 0
        if not finished and ticks.diff(now, self.next_at) >= 0:
            self.next_at = ticks.add(self.next_at, self.every)
            if ticks.diff(now, self.next_at) > 0:     # fell behind: re-anchor
                self.next_at = ticks.add(now, self.every)
            if self.kind == INTER and (self.req_left or self.resp_left):
                self.missed += 1
            elif self.kind == TELEM and c.snd.size - c.snd.len < self.n:
                self.missed += 1
            else:
                if not self.pending():
                    self.busy_since = now
                self.count += 1
                self.req_left = self.n
                if self.kind == INTER:
                    self.resp_left = self.n
                    self.sent_at = now
        while self.req_left:
            k = self.req_left if self.req_left < len(self.buf) else len(self.buf)
            m = c.write(self.mv[:k])
            if m == 0:
                break
            self.req_left -= m
            self.written += m
        if self.kind == INTER:
            while self.resp_left:
                m = c.readinto(self.mv)
                if m == 0:
                    break
                self.read += m
                self.resp_left -= m if m <= self.resp_left else self.resp_left
            if self.sent_at >= 0 and self.resp_left == 0 and self.req_left == 0:
                lat = ticks.diff(now, self.sent_at)
                self.answered += 1
                self.lat_sum += lat
                if lat > self.lat_max:
                    self.lat_max = lat
                if len(self.lat) < 512:
                    self.lat.append(lat)
                if ring is not None:
                    ring.push(ticks.diff(now, t0), K_RESP, self.kind, lat)
                self.sent_at = -1
            self.progress = self.read
        else:
            self.progress = self.acked()
        if finished and not self.req_left and not self.resp_left:
            if not self.closing:
                c.close()
                self.closing = True
            if c.eof or c.closed:
                # drain what is left (nothing expected)
                c.readinto(self.mv)
            if c.closed:
                self.done = True
                self.ok = c.error is None and self.acked() == self.written
                if not self.ok:
                    self.error = c.error or "closed with data unacknowledged"


class Tracker:
    """Samples the stack every sample_ms: subflows that appeared or closed, watched counters
    that changed, bytes per link in the interval; and the flows' progress (resume/stall)."""

    def __init__(self, st, ring, t0, sample_ms):
        self.st = st
        self.ring = ring
        self.t0 = t0
        self.sample_ms = sample_ms
        self.watch = tuple(i for i in range(C.COUNT) if C.NAMES[i] in WATCH)
        self.prev = [0] * C.COUNT
        self.sf = [None] * MAX_SLOTS  # type: list
        self.sf_up = [False] * MAX_SLOTS
        self.sf_tx = [0] * MAX_SLOTS
        self.sf_rx = [0] * MAX_SLOTS
        self.sf_flow = [-1] * MAX_SLOTS
        self.ids = 0
        self.sf_id = [0] * MAX_SLOTS
        self.link_bytes = [0, 0]      # this interval
        self.link_total = [[0, 0], [0, 0]]   # tx, rx per link over the run
        self.last = -1
        self.app_prev = 0

    def t(self, now):
        return ticks.diff(now, self.t0)

    def _slot(self, sf):
        for i in range(MAX_SLOTS):
            if self.sf[i] is sf:
                return i
        return -1

    def _account(self, i, sf):
        dtx = sf.bytes_tx() - self.sf_tx[i]
        drx = sf.bytes_rx() - self.sf_rx[i]
        self.sf_tx[i] = sf.bytes_tx()
        self.sf_rx[i] = sf.bytes_rx()
        li = sf.ifindex if sf.ifindex < 2 else 1
        self.link_bytes[li] += dtx + drx
        self.link_total[li][0] += dtx
        self.link_total[li][1] += drx

    def subflows(self, now, conn_flow):
        t = self.t(now)
        live = 0
        seen = [False] * MAX_SLOTS
        for c in self.st.conns:
            fl = conn_flow(c)
            for sf in c.subflows:
                i = self._slot(sf)
                if i < 0 and sf.is_closed():
                    continue        # closed before it was seen (or already reported)
                if i < 0:
                    for j in range(MAX_SLOTS):
                        if self.sf[j] is None:
                            i = j
                            self.sf[i] = sf
                            self.sf_up[i] = False
                            self.sf_tx[i] = 0
                            self.sf_rx[i] = 0
                            self.sf_flow[i] = fl
                            self.ids += 1
                            self.sf_id[i] = self.ids
                            break
                if i < 0:
                    continue        # more subflows than slots: not tracked
                seen[i] = True
                self._account(i, sf)
                closed = sf.is_closed()
                if not closed:
                    live += 1
                if not self.sf_up[i] and sf.state_name() == "ESTABLISHED":
                    self.sf_up[i] = True
                    self.ring.push(t, K_SFUP, sf.ifindex, self.sf_id[i], fl, 1 if sf.join else 0)
                if closed:
                    seen[i] = False     # treat as gone
        for i in range(MAX_SLOTS):
            if self.sf[i] is not None and not seen[i]:
                sf = self.sf[i]
                self._account(i, sf)
                if self.sf_up[i]:
                    self.ring.push(t, K_SFDOWN, sf.ifindex, self.sf_id[i], self.sf_flow[i],
                                   sf.bytes_tx(), sf.bytes_rx())
                self.sf[i] = None
        return live

    def counters(self, now):
        v = self.st.counters.v
        t = self.t(now)
        for i in self.watch:
            if v[i] != self.prev[i]:
                self.ring.push(t, K_CTR, i, v[i] - self.prev[i], v[i])
                self.prev[i] = v[i]

    def progress(self, now, flows):
        """Per flow (called every loop iteration): a resume event after a pause in progress
        (>= RESUME_MS for bulk; for periodic traffic, whose pauses are its period, only
        after a stall), a stall event once a pause with work pending passes STALL_MS. A
        pause starts at the last progress or when the pending work began, the later."""
        t = self.t(now)
        for f in flows:
            if f is None:
                continue
            if f.progress != f.seen:
                if f.idle_since >= 0:
                    idle = ticks.diff(now, f.idle_since)
                    if idle >= (RESUME_MS if f.kind == BULK else STALL_MS):
                        self.ring.push(t, K_RESUME, f.kind, idle, self.t(f.idle_since))
                f.seen = f.progress
                f.last_prog = now
                f.idle_since = -1
                f.stalled = False
            elif f.pending():
                if f.idle_since < 0:
                    f.idle_since = now
                    if f.busy_since >= 0 and ticks.diff(f.busy_since, f.idle_since) < 0:
                        f.idle_since = f.busy_since
                    if f.last_prog >= 0 and ticks.diff(f.last_prog, f.idle_since) > 0:
                        f.idle_since = f.last_prog
                if not f.stalled and ticks.diff(now, f.idle_since) > STALL_MS:
                    f.stalled = True
                    self.ring.push(t, K_STALL, f.kind, self.t(f.idle_since))
            else:
                f.idle_since = -1
                f.stalled = False

    def due(self, now):
        return self.last < 0 or ticks.diff(now, self.last) >= self.sample_ms

    def sample(self, now, flows, conn_flow):
        ms = self.sample_ms if self.last < 0 else ticks.diff(now, self.last)
        self.last = now
        live = self.subflows(now, conn_flow)
        self.counters(now)
        app = 0
        pending = 0
        for f in flows:
            if f is not None:
                app += f.progress
                if f.pending():
                    pending |= 1 << f.kind
        self.ring.push(self.t(now), K_SAMPLE, ms, self.link_bytes[0], self.link_bytes[1],
                       app - self.app_prev, live, pending)
        self.app_prev = app
        self.link_bytes[0] = 0
        self.link_bytes[1] = 0


def _emit(ev):
    print(json.dumps(ev))


def _flush():
    try:
        sys.stdout.flush()
    except AttributeError:
        pass


def drain(ring, limit=64):
    """Print up to `limit` events from the ring (the console is the bottleneck)."""
    k = 0
    while k < limit:
        s = ring.pop()
        if s is None:
            break
        _emit(event_dict(s))
        k += 1
    if k:
        _flush()


def _open(st, loop, o, first, header, tmo):
    from mptcp_net.netif import ip_aton
    h, p = o["connect"]
    c = st.connect(clock.now_ms(), ip_aton(h), p, first)
    if not loop.run_until(lambda: c.established or c.error is not None or c.closed, tmo):
        c.abort()
        raise OSError(110, "connect to %s:%d timed out" % (h, p))
    if c.error is not None or not c.established:
        raise OSError(111, "connect to %s:%d: %s" % (h, p, c.error or c.state))
    hb = header.encode()
    off = 0
    while off < len(hb):
        off += c.write(memoryview(hb)[off:])
        if off < len(hb):
            loop.run_once(10)
    return c


def _latency_summary(f):
    lat = sorted(f.lat)
    out = {"requests": f.count, "answered": f.answered, "missed": f.missed,
           "bytes": f.n, "every_ms": f.every}
    if lat:
        out["latency_ms"] = {"avg": f.lat_sum // f.answered, "max": f.lat_max,
                             "p50": lat[len(lat) // 2], "p95": lat[(len(lat) * 95) // 100]}
    return out


def run(o):
    from mptcp.stack import Stack
    from mptcp_runtime.loop import Loop
    board = board_config()
    snd = o["snd_buf"] or getattr(board, "SND_BUF", 32768)
    rcv = o["rcv_buf"] or getattr(board, "RCV_BUF", 32768)
    st = Stack(snd_buf=snd, rcv_buf=rcv, max_conns=4, scheduler=o["scheduler"],
               max_subflows=getattr(board, "MAX_SUBFLOWS", 4))
    ring = EventRing(o["ring"])
    t0 = clock.now_ms()
    nifs = make_netifs(o, board)
    for n in nifs:
        n.backup = n.name == o["backup"]
    loop = Loop(st, nifs)

    def on_link(name, nif):
        if name in ("up", "down"):
            ring.push(ticks.diff(clock.now_ms(), t0), K_LINK, nif.ifindex,
                      1 if name == "up" else 0)
    loop.on_link_event = on_link  # pyright: ignore[reportAttributeAccessIssue]
    first = LINKS[o["links"].split(",")[0]]
    tmo = int(o["timeout"] * 1000)
    flows = [None, None, None]  # type: list
    err = None
    tracker = Tracker(st, ring, t0, o["sample_ms"])
    conns = []

    def conn_flow(c):
        for f in flows:
            if f is not None and f.c is c:
                return f.kind
        return -1
    t_start = t0
    try:
        wait_links(o, loop, nifs)
        for n in nifs:
            ring.push(ticks.diff(clock.now_ms(), t0), K_LINK, n.ifindex, 1 if n.up else 0)
        if o["bulk"] is not None:
            up = o["bulk_dir"] == "up"
            c = _open(st, loop, o, first, "T1 bulk-%s %d\n" % (o["bulk_dir"], o["bulk"]), tmo)
            conns.append(c)
            flows[BULK] = BulkFlow(c, bytearray(BLOCK if BLOCK <= snd else snd), o["bulk"], up)
            if up:      # random data, the first 3 bytes of each block are its number
                import os
                b = flows[BULK].buf
                for i in range(0, len(b), 256):
                    b[i:i + 256] = os.urandom(256)
        if o["interactive"] is not None:
            n, every = o["interactive"]
            c = _open(st, loop, o, first, "T1 echo %d\n" % n, tmo)
            conns.append(c)
            flows[INTER] = PeriodicFlow(INTER, c, bytearray(min(n, BLOCK)), n, every)
        if o["telemetry"] is not None:
            n, every = o["telemetry"]
            c = _open(st, loop, o, first, "T1 sink\n", tmo)
            conns.append(c)
            flows[TELEM] = PeriodicFlow(TELEM, c, bytearray(min(n, BLOCK)), n, every)
            b = flows[TELEM].buf
            for i in range(len(b)):
                b[i] = 0x30 + i % 10
        t_start = clock.now_ms()
        mask = 0
        for f in flows:
            if f is not None:
                mask |= 1 << f.kind
        ring.push(ticks.diff(t_start, t0), K_START, mask)
        drain(ring)
        t_end = -1
        if o["duration"] is not None:
            t_end = ticks.add(t_start, int(o["duration"] * 1000))
        deadline = ticks.add(t_start, tmo)
        while True:
            now = clock.now_ms()
            bulk = flows[BULK]
            te = t_end
            if te < 0:      # periodic traffic lasts as long as the bulk transfer
                te = now if bulk is None or bulk.done else -1
            for f in flows:
                if f is not None and not f.done:
                    was = f.done
                    if f.kind == BULK:
                        f.step(now, te)
                    else:
                        f.step(now, te, ring, t0)
                    if f.done and not was:
                        ring.push(ticks.diff(now, t0), K_DONE, f.kind, f.progress,
                                  1 if f.ok else 0)
            tracker.progress(now, flows)
            if tracker.due(now):
                tracker.sample(now, flows, conn_flow)
            drain(ring)
            if all(f is None or f.done for f in flows):
                break
            if ticks.diff(now, deadline) >= 0:
                err = "timed out after %gs" % o["timeout"]
                break
            loop.run_once(5)
        now = clock.now_ms()
        tracker.progress(now, flows)
        tracker.sample(now, flows, conn_flow)
    except OSError as e:
        err = "%s" % (e,)
    for c in conns:
        if not c.closed:
            c.abort()
    t1 = clock.now_ms()
    drain(ring, ring.n)
    ok = err is None
    out_flows = {}  # type: dict
    out_links = {}  # type: dict
    out_ctr = {}  # type: dict
    res = {"ev": "summary", "t": ticks.diff(t1, t0), "ok": False, "error": err,
           "seconds": ticks.diff(t1, t_start) / 1000, "flows": out_flows,
           "links": out_links, "counters": out_ctr, "events": ring.pushed, "dropped": ring.dropped,
           "ring": ring.n, "impl": sys.implementation.name, "scheduler": o["scheduler"]}
    for f in flows:
        if f is None:
            continue
        name = FLOW_NAMES[f.kind]
        d = {"ok": f.ok, "error": f.error, "progress": f.progress}
        if f.kind == BULK:
            d["bytes"] = f.written if f.up else f.read
            d["direction"] = "up" if f.up else "down"
            d["sha256"] = binascii.hexlify(f.h.digest()).decode()
        else:
            d.update(_latency_summary(f) if f.kind == INTER else
                     {"writes": f.count, "missed": f.missed, "bytes": f.written,
                      "every_ms": f.every})
        res["flows"][name] = d
        if not f.ok:
            ok = False
            if err is None:
                err = "%s: %s" % (name, f.error or "did not complete")
    for i in range(2):
        if i < len(LINK_NAMES) and any(n.ifindex == i for n in nifs):
            res["links"][LINK_NAMES[i]] = {"bytes_tx": tracker.link_total[i][0],
                                           "bytes_rx": tracker.link_total[i][1]}
    for name, v in st.counters.nonzero():
        res["counters"][name] = v
    res["ok"] = ok
    res["error"] = err
    res["heap_peak"] = loop.heap_peak
    loop.close()
    return ok, res


def main(argv=None):
    return app_main("trial", USAGE, parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
