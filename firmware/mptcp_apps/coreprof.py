USAGE = """coreprof: in-memory core benchmark: two Stacks back to back in one process (no
sockets, no links), a bulk transfer a -> b, the cost of each phase of the data path in
steady state.

usage:   coreprof [--size BYTES] [--csum] [--snd-buf BYTES] [--rcv-buf BYTES]
                  [--warmup-fraction F]
  --size BYTES          bytes to transfer (default 8M)
  --csum                DSS checksums on
  --snd-buf/--rcv-buf   ring sizes of both stacks (default 65536; both Stacks share one
                        heap: give smaller rings on a board with little RAM)
  --warmup-fraction F   measure once this fraction of --size was received (default 0.25)
BYTES takes K/M/G (powers of 1024) suffixes: 8M = 8 MiB.

Phases (per call): a_output_data, b_input_data, b_output_ack, a_input_ack, app_write,
app_readinto; per data segment: send side = a.output + a.input + write, receive side =
b.input + b.output + readinto. Bytes allocated per call on MicroPython (gc.mem_alloc, gc
off while measuring), null on CPython. The received stream is checked against the sent one
(SHA-256). Ends by printing ONE JSON line; exit status 0 only if the data and counters are
clean.
"""
# (MicroPython's -m does not define __doc__, so the usage text is a plain constant.)
import sys
import gc
import time
import hashlib

from mptcp import ticks
from mptcp_apps.args import UsageError, parse_size, main as app_main

MPY = sys.implementation.name == "micropython"
if MPY:
    _ticks = time.ticks_us
    _diff = time.ticks_diff  # pyright: ignore[reportAssignmentType]
    _TICKS_PER_US = 1
    _mem = gc.mem_alloc  # pyright: ignore[reportAssignmentType]
else:   # CPython (the lines marked pyright: ignore)
    _ticks = time.perf_counter_ns  # pyright: ignore[reportAttributeAccessIssue]

    def _diff(a, b):
        return a - b
    _TICKS_PER_US = 1000

    def _mem():
        return 0

PHASES = ("a_output_data", "b_input_data", "b_output_ack", "a_input_ack", "app_write",
          "app_readinto")
SEND_SIDE = (0, 3, 4)   # a.output + a.input + write
RECV_SIDE = (1, 2, 5)   # b.input + b.output + readinto
BAD_COUNTERS = ("InternalErrors", "TcpInCsumErrors", "DSSNotMatching", "DataCsumErr")
BLOCK = 16384           # app write/read size (at most the ring size: saves RAM on a board)
STALL_MS = 10000        # simulated ms without progress -> give up
ADDR_A = bytes((198, 18, 1, 2))
ADDR_B = bytes((198, 18, 0, 1))
PORT = 5001


def parse_args(argv):
    o = {"size": 8 * 1024 * 1024, "csum": False, "snd_buf": 65536, "rcv_buf": 65536,
         "warmup": 0.25}
    i = 0
    n = len(argv)
    while i < n:
        a = argv[i]
        if a in ("-h", "--help"):
            raise UsageError("")
        if a == "--csum":
            o["csum"] = True
            i += 1
            continue
        keys = {"--size": "size", "--snd-buf": "snd_buf", "--rcv-buf": "rcv_buf",
                "--warmup-fraction": "warmup"}
        if a not in keys:
            raise UsageError("unknown argument: %s" % a)
        if i + 1 >= n:
            raise UsageError("%s needs a value" % a)
        v = argv[i + 1]
        if a == "--warmup-fraction":
            try:
                o["warmup"] = float(v)
            except ValueError:
                raise UsageError("bad fraction: %r" % v)
        else:
            o[keys[a]] = parse_size(v)
        i += 2
    if o["size"] <= 0 or o["snd_buf"] <= 0 or o["rcv_buf"] <= 0:
        raise UsageError("--size, --snd-buf and --rcv-buf must be > 0")
    if not 0 <= o["warmup"] < 1:
        raise UsageError("--warmup-fraction must be in [0, 1)")
    return o


def _pump(src, dst, k, now, mv, pkt, T, N, M):
    """Move every packet src has for dst; phases k (src.output) and k+1 (dst.input)
    are timed (and their allocations counted) around those calls only."""
    tk = _ticks
    td = _diff
    mem = _mem
    while True:
        m0 = mem()
        t0 = tk()
        n = src.output(now, mv)
        t1 = tk()
        m1 = mem()
        if n <= 0:
            return
        T[k] += td(t1, t0)
        N[k] += 1
        M[k] += m1 - m0
        m0 = mem()
        t0 = tk()
        dst.input(0, pkt, n, now)
        t1 = tk()
        m1 = mem()
        T[k + 1] += td(t1, t0)
        N[k + 1] += 1
        M[k + 1] += m1 - m0


def run(o):
    """The transfer with per-phase timing; returns (ok, result dict)."""
    from mptcp.stack import Stack
    gc.collect()            # the rings and buffers below want contiguous heap
    total = o["size"]
    csum = o["csum"]
    a = Stack(snd_buf=o["snd_buf"], rcv_buf=o["rcv_buf"], max_conns=2, seed=1)
    b = Stack(snd_buf=o["snd_buf"], rcv_buf=o["rcv_buf"], max_conns=2, seed=2)
    a.add_netif(0, ADDR_A)
    b.add_netif(0, ADDR_B)
    b.listen(PORT, True, csum)
    now = 0
    ca = a.connect(now, ADDR_B, PORT, 0, True, csum)
    cb = None
    pkt = bytearray(2048)
    mv = memoryview(pkt)
    bs = min(BLOCK, o["snd_buf"])
    data = bytearray(bs)
    x = 1
    for i in range(bs):     # a pseudo-random pattern (LCG) without a second buffer
        x = (x * 75 + 74) % 65537
        data[i] = x & 0xFF
    dmv = memoryview(data)
    rbuf = bytearray(min(BLOCK, o["rcv_buf"]))
    rmv = memoryview(rbuf)
    h_tx = hashlib.sha256()
    h_rx = hashlib.sha256()
    T = [0] * 6     # ticks, calls, bytes allocated per phase (order of PHASES)
    N = [0] * 6
    M = [0] * 6
    sent = 0
    got = 0
    woff = 0        # offset in the current block (bs bytes) of the stream
    blk = 0
    warm = int(total * o["warmup"])
    measuring = False
    low = 0         # MicroPython: collect between rounds below this much free heap
    err = None
    progress = 0
    tk = _ticks
    td = _diff
    mem = _mem
    while got < total:
        now = (now + 1) & ticks.MASK
        if low and gc.mem_free() < low:
            gc.collect()    # garbage of the untimed hashing (or of an allocating call)
        if not measuring and got >= warm:
            measuring = True
            gc.collect()
            gc.disable()
            if MPY:
                low = (gc.mem_free() + gc.mem_alloc()) // 4
            for i in range(6):
                T[i] = 0
                N[i] = 0
                M[i] = 0
        _pump(a, b, 0, now, mv, pkt, T, N, M)     # data a -> b
        _pump(b, a, 2, now, mv, pkt, T, N, M)     # ACKs b -> a
        if cb is None:
            cb = b.accept()
        if ca.established and sent < total:
            if woff == 0:       # stamp the block number: a misplaced block changes the hash
                data[0] = blk & 0xFF
                data[1] = (blk >> 8) & 0xFF
                data[2] = (blk >> 16) & 0xFF
            end = woff + total - sent
            if end > bs:
                end = bs
            part = dmv[woff:end]
            m0 = mem()
            t0 = tk()
            k = ca.write(part)
            t1 = tk()
            m1 = mem()
            T[4] += td(t1, t0)
            N[4] += 1
            M[4] += m1 - m0
            if k:
                h_tx.update(part[:k] if k < end - woff else part)
                sent += k
                woff += k
                if woff == bs:
                    woff = 0
                    blk += 1
        if cb is not None:
            while True:
                m0 = mem()
                t0 = tk()
                k = cb.readinto(rmv)
                t1 = tk()
                m1 = mem()
                T[5] += td(t1, t0)
                N[5] += 1
                M[5] += m1 - m0
                if not k:
                    break
                h_rx.update(rmv[:k])
                got += k
                progress = now
        if ticks.diff(now, progress) > STALL_MS:
            err = "stalled: no data received for %d ms" % STALL_MS
            break
    gc.enable()
    if not measuring:       # the transfer ended before the measured phase: nothing to report
        T = N = M = [0] * 6
    return _result(o, a, b, ca, cb, got, T, N, M, h_tx.digest() == h_rx.digest(), err)


def _result(o, a, b, ca, cb, got, T, N, M, sha_equal, err):
    """The JSON object: per-phase and per-segment figures, checks."""
    segs = N[0]
    phases = {}
    for i in range(6):
        c = N[i] or 1
        phases[PHASES[i]] = {"calls": N[i], "us_per_call": round(T[i] / c / _TICKS_PER_US, 2),
                             "alloc_per_call": round(M[i] / c, 1) if MPY else None}
    d = (segs or 1) * _TICKS_PER_US
    send = sum([T[i] for i in SEND_SIDE])
    recv = sum([T[i] for i in RECV_SIDE])
    errs = [] if err is None else [err]
    if got != o["size"]:
        errs.append("received %d of %d bytes" % (got, o["size"]))
    elif not sha_equal:
        errs.append("received data differ from the sent data (SHA-256)")
    if segs == 0:
        errs.append("no data segment in the measured phase (--size too small?)")
    if not (ca.mptcp and cb is not None and cb.mptcp):
        errs.append("no MPTCP connection (fell back to TCP or not accepted)")
    elif ca.csum != o["csum"]:
        errs.append("DSS checksum negotiated %s, asked %s" % (ca.csum, o["csum"]))
    for name, st in (("a", a), ("b", b)):
        for c in BAD_COUNTERS:
            v = st.counters.get(c)
            if v:
                errs.append("counter %s of stack %s is %d" % (c, name, v))
    err = "; ".join(errs) if errs else None
    res = {"bench": "core", "impl": sys.implementation.name, "csum": o["csum"], "bytes": got,
           "segments": segs, "us_per_segment": round((send + recv) / d, 2),
           "send_us_per_segment": round(send / d, 2), "recv_us_per_segment": round(recv / d, 2),
           "alloc_bytes_per_segment": round(sum(M) / (segs or 1), 1) if MPY else None,
           "phases": phases, "sha256_equal": sha_equal, "ok": err is None, "error": err}
    return err is None, res


def main(argv=None):
    return app_main("coreprof", USAGE, parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
