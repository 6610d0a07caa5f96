"""Pure arithmetic of the multipath benchmark (bench_multipath): ideal times and Linux's pass
mark for aggregation, and the longest receiver-side stall from capture fields for handover.

Kept apart from the lab-driving code so the host tests can check it without root or a lab.
"""

# Linux's tools/testing/selftests/net/mptcp/simult_flows.sh pass mark, as issue 8 states it:
# transfer time <= ideal x factor + slack (balanced links: 10+10, unbalanced: 10+3).
PASS_FACTOR_BALANCED = 1.18
PASS_FACTOR_UNBALANCED = 1.155
PASS_SLACK_S = 0.45

DSN_MOD = 1 << 32        # data-level positions are compared modulo 2^32 (transfers < 2 GiB)


def ideal_seconds(size, rates_mbit):
    """Transfer time of `size` bytes at the sum of the link rates (Mbit/s = 10^6 bit/s), no
    header overhead: the yardstick simult_flows.sh scales."""
    total = sum(rates_mbit)
    if total <= 0:
        raise ValueError("the link rates must add up to more than 0")
    return size * 8.0 / (total * 1e6)


def pass_factor(rate1_mbit, rate2_mbit):
    """simult_flows.sh's factor: 1.18 when both links have the same rate, 1.155 otherwise."""
    return PASS_FACTOR_BALANCED if rate1_mbit == rate2_mbit else PASS_FACTOR_UNBALANCED


def pass_mark(size, rate1_mbit, rate2_mbit):
    """Seconds a transfer may take and still pass: ideal x factor + 0.45 s."""
    return ideal_seconds(size, (rate1_mbit, rate2_mbit)) * pass_factor(rate1_mbit, rate2_mbit) \
        + PASS_SLACK_S


def baud_for_mbit(rate_mbit):
    """The LTE serial line's baud for an IP payload rate (the lab: baud/10 bytes per second)."""
    return int(round(rate_mbit * 1e6 / 8 * 10))


def mbit_of_baud(baud):
    return baud / 10.0 * 8 / 1e6


# --- handover: the receiver's progress from a capture ------------------------------------------

TSHARK_FIELDS = ("frame.time_epoch", "tcp.stream", "tcp.seq", "tcp.len",
                 "tcp.options.mptcp.rawdataseqno", "tcp.options.mptcp.subflowseqno",
                 "tcp.options.mptcp.datalvllen")


def _first_int(text):
    """tshark prints repeated fields comma-separated: the first value, or None if empty."""
    text = text.strip()
    if not text:
        return None
    return int(text.split(",")[0], 0)


def segments_from_fields(lines, tag=""):
    """Data-level segments [(time, dsn_start, length)] from tshark -T fields lines (tab
    separated, TSHARK_FIELDS order, relative tcp.seq; one capture, packets towards the
    receiver carrying payload).

    A packet's data-level position is its mapping's DSN plus its offset in the mapping
    (tcp.seq - subflow sequence number): a kernel mapping may span several packets. A packet
    without a mapping uses the last mapping of its subflow (stream) if it falls inside it;
    otherwise (MP_CAPABLE's first data, plain TCP) it is left out. DSNs are taken modulo 2^32.
    `tag` keeps streams of different captures apart."""
    maps = {}
    out = []
    for line in lines:
        f = line.rstrip("\n").split("\t")
        if len(f) < len(TSHARK_FIELDS):
            continue
        try:
            t = float(f[0])
            stream = tag + f[1]
            seq = _first_int(f[2])
            length = _first_int(f[3])
            dsn = _first_int(f[4])
            ssn = _first_int(f[5])
            dlen = _first_int(f[6])
        except ValueError:
            continue
        if seq is None or not length:
            continue
        if dsn is not None and ssn is not None:
            m = (dsn % DSN_MOD, ssn, dlen if dlen else length)
            maps[stream] = m
        else:
            m = maps.get(stream)
            if m is None:
                continue
        mdsn, mssn, mlen = m
        off = (seq - mssn) % DSN_MOD
        if off >= mlen and not (dsn is not None and ssn is not None):
            continue            # outside the remembered mapping: position unknown
        out.append((t, (mdsn + off) % DSN_MOD, length))
    return out


def progress_times(segments, in_order=True):
    """Times at which the receiver made data-level progress, from [(time, dsn, length)].

    in_order=True: the in-order data-level point advanced (what the application can read);
    False: a packet brought data-level bytes never seen before (out of order counts).
    Positions are relative to the first segment in time order (modulo 2^32); anything
    before it is old data."""
    segs = sorted(segments, key=lambda s: s[0])
    if not segs:
        return []
    base = segs[0][1]
    times = []
    front = 0                # in order: bytes [0, front) delivered
    holes = []               # out-of-order ranges [start, end) beyond front, sorted
    seen = []                # for in_order=False: covered ranges, merged, sorted
    for t, dsn, length in segs:
        start = (dsn - base) % DSN_MOD
        if start >= DSN_MOD // 2:
            continue         # before the first segment: old data
        end = start + length
        if in_order:
            if end <= front:
                continue
            if start > front:
                holes = _merge(holes, start, end)
                continue
            front = end
            while holes and holes[0][0] <= front:
                front = max(front, holes.pop(0)[1])
            times.append(t)
        else:
            before = _covered(seen)
            seen = _merge(seen, start, end)
            if _covered(seen) > before:
                times.append(t)
    return times


def _merge(ranges, start, end):
    """Insert [start, end) into sorted disjoint ranges, merging overlaps and neighbours."""
    out = []
    placed = False
    for a, b in ranges:
        if b < start:
            out.append((a, b))
        elif end < a:
            if not placed:
                out.append((start, end))
                placed = True
            out.append((a, b))
        else:
            start, end = min(a, start), max(b, end)
    if not placed:
        out.append((start, end))
    out.sort()
    return out


def _covered(ranges):
    return sum(b - a for a, b in ranges)


def longest_gap(times):
    """(gap, t_before, t_after) of the longest interval between consecutive times (sorted
    first); (0.0, None, None) with fewer than two."""
    ts = sorted(times)
    best = (0.0, None, None)
    for a, b in zip(ts, ts[1:]):
        if b - a > best[0]:
            best = (b - a, a, b)
    return best


def stall(segments, cut_time=None, in_order=True):
    """The longest stall of the receiver's progress: {"stall_s", "from_cut_s" (the stall's
    start relative to the cut, None without a cut), "progress_events"}."""
    times = progress_times(segments, in_order)
    gap, a, _b = longest_gap(times)
    return {"stall_s": round(gap, 4),
            "from_cut_s": None if (cut_time is None or a is None) else round(a - cut_time, 4),
            "progress_events": len(times)}


def handover_goals(lte_rtt_ms):
    """Issue 8's goals in seconds: signalled <= one LTE RTT + 200 ms; silent <= 1 s."""
    return {"signalled": round((lte_rtt_ms + 200.0) / 1000.0, 3), "silent": 1.0}
