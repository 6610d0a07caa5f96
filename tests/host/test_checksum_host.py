"""Property tests: every checksum implementation agrees with an obvious reference.

CPython paths are called directly; the MicroPython ones (viper from source, viper from an
x64 .mpy, pure Python) run in one `micropython` process per hypothesis example over a
batch of cases. Also checks the whole 20000-byte DSS mapping of the golden capture,
summed segment by segment (needs scapy).
"""
import json
import os
import shutil
import subprocess
import tempfile

import pytest
import scapy.all as scapy_all
from hypothesis import HealthCheck, given, settings, strategies as st

from mptcp import checksum as C
import hostenv

ROOT = hostenv.ROOT
FW = os.path.join(ROOT, "firmware")
MPY = hostenv.MPY
MPY_CROSS = hostenv.MPY_CROSS


def ref_sum(data, acc=0):
    data = bytes(data)
    if len(data) & 1:
        data += b"\x00"
    s = acc + sum((data[i] << 8) | data[i + 1] for i in range(0, len(data), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


# a case: (data, start, end, acc); end may run past the buffer, start may be past end
cases = st.binary(min_size=0, max_size=3000).flatmap(
    lambda d: st.tuples(st.just(d), st.integers(0, len(d) + 2), st.integers(0, len(d) + 3),
                        st.integers(0, 0x2FFFF)))


def expected(data, start, end, acc):
    return ref_sum(data[start:end], acc) if end > start else ref_sum(b"", acc)


@settings(max_examples=400, deadline=None)
@given(cases)
def test_cpython_impls_agree(case):
    data, start, end, acc = case
    want = expected(data, start, end, acc)
    for buf in (data, bytearray(data), memoryview(data)):
        assert C._sum_frombytes(buf, start, end, acc) == want
        assert C._sum_py(buf, start, end, acc) == want
        assert C.ones_sum(buf, start, end, acc) == want
        assert C.inet_checksum(buf, start, end, acc) == ~want & 0xFFFF


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=500), st.integers(0, 501))
def test_chunked_stream_sum(data, cut):
    cut = min(cut, len(data))
    a = C.ones_sum(data, 0, cut)
    assert C.ones_sum_at(data, cut, len(data), a, cut) == ref_sum(data)


MPY_SCRIPT = r"""
import sys, json, binascii
from mptcp import checksum as C
out = {"impl": C.IMPL, "r": []}
try:
    from mptcp import _csum_viper as V
    vs = V.sum_into
except Exception as e:
    vs = None
    out["viper_err"] = repr(e)
for d, kind, s, e, acc in json.load(open(sys.argv[1])):
    b = binascii.unhexlify(d)
    if kind == 1:
        b = bytearray(b)
    elif kind == 2:
        b = memoryview(b)
    elif kind == 3:
        b = memoryview(bytearray(b"\x00" + b))[1:]
    row = [C.ones_sum(b, s, e, acc), C._sum_py(b, s, e, acc), vs(b, s, e, acc) if vs else -1]
    out["r"].append(row)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def mpy_env():
    hostenv.micropython()
    hostenv.mpy_cross()
    tmp = tempfile.mkdtemp(prefix="csum_host_")
    try:
        bundle = os.path.join(tmp, "x64")
        os.makedirs(os.path.join(bundle, "mptcp"))
        for name in ("__init__", "compat", "checksum", "_csum_viper"):
            subprocess.run([MPY_CROSS, "-march=x64", "-o",
                            os.path.join(bundle, "mptcp", name + ".mpy"),
                            os.path.join(FW, "mptcp", name + ".py")], check=True)
        script = os.path.join(tmp, "run.py")
        with open(script, "w") as f:
            f.write(MPY_SCRIPT)
        yield tmp, script, (FW, bundle)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run_mpy(path, script, batch_file):
    env = dict(os.environ, MICROPYPATH=path)
    r = subprocess.run([MPY, script, batch_file], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0, r.stderr + r.stdout
    return json.loads(r.stdout.strip().splitlines()[-1])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.data_too_large])
@given(st.lists(st.tuples(cases, st.integers(0, 3)), min_size=1, max_size=40))
def test_micropython_impls_agree(mpy_env, batch):
    tmp, script, paths = mpy_env
    rows = [[d.hex(), kind, s, e, acc] for (d, s, e, acc), kind in batch]
    bf = os.path.join(tmp, "batch.json")
    with open(bf, "w") as f:
        json.dump(rows, f)
    for path in paths:
        out = _run_mpy(path, script, bf)
        assert out["impl"] == "viper-native", out
        for ((d, s, e, acc), kind), got in zip(batch, out["r"]):
            want = expected(d, s, e, acc)
            assert got == [want, want, want], (path, kind, len(d), s, e, acc, got, want)


def test_micropython_fallback_on_wrong_arch(tmp_path):
    """An armv6m .mpy on this x64 port must fall back to pure Python, not fail."""
    hostenv.micropython()
    hostenv.mpy_cross()
    pkg = tmp_path / "mptcp"
    pkg.mkdir()
    for name, arch in (("__init__", "x64"), ("compat", "x64"), ("checksum", "x64"),
                       ("_csum_viper", "armv6m")):
        subprocess.run([MPY_CROSS, "-march=" + arch, "-o", str(pkg / (name + ".mpy")),
                        os.path.join(FW, "mptcp", name + ".py")], check=True)
    code = ("from mptcp import checksum as C\n"
            "print(C.IMPL, C.inet_checksum(bytes((0,1,0xf2,3,0xf4,0xf5,0xf6,0xf7))))")
    r = subprocess.run([MPY, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, MICROPYPATH=str(tmp_path)), timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["pure-python", str(~0xDDF2 & 0xFFFF)]


def test_capture_dss_mapping_whole():
    """mpc_csum.pcap: the kernel's 20000-byte mapping (15 segments), checksum 0xdcb3."""
    path = os.path.join(str(hostenv.vectors()), "mpc_csum.pcap")
    assert os.path.exists(path), path
    pk = scapy_all.rdpcap(path)
    IP, TCP = scapy_all.IP, scapy_all.TCP
    by_seq = {}
    for p in pk:
        if IP in p and p[IP].src == "198.18.1.2" and len(p[TCP].payload):
            by_seq[p[TCP].seq] = bytes(p[TCP].payload)
    segs = [by_seq[k] for k in sorted(by_seq)]
    data = b"".join(segs)
    assert len(data) == 20000
    dsn, ssn, dll = 0xE249FCDECAA89CFC, 1, 20000
    assert C.dss_checksum(dsn, ssn, dll, data, 0, len(data)) == 0xDCB3
    assert C.dss_checksum_ok(dsn, ssn, dll, 0xDCB3, data, 0, len(data))
    # per segment, as a receiver does; also with odd-sized chunks
    for chunks in ([len(s) for s in segs], [1447] * 13 + [20000 - 1447 * 13]):
        s = C.dss_pseudo_sum(dsn, ssn, dll)
        pos = 0
        for n in chunks:
            s = C.ones_sum_at(data, pos, pos + n, s, pos)
            pos += n
        assert ~s & 0xFFFF == 0xDCB3
