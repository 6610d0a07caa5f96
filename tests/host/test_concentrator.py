"""mptcp-concentrator without the lab: a local MPTCP client -> the concentrator (a real
process) -> a local plain TCP server, on loopback. Every transfer is checked by SHA-256 at
both ends and by the concentrator's own counters (SIGUSR1 / exit JSON).

If this kernel will not give the test process an MPTCP connection on loopback, the module
moves its main thread (and so every thread and process it starts) into a throwaway network
namespace with MPTCP enabled, and back and removes it at the end. The checks that need a
namespace of their own (net.mptcp.enabled=0, unprivileged ports) always make one (root).
CONC_TEST_NETNS=1 takes the namespace path even where loopback MPTCP works."""
import ctypes
import hashlib
import json
import os
import queue
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

import hostenv

IPPROTO_MPTCP = 262
ROOT = hostenv.ROOT
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(
    [os.path.join(ROOT, "host_tools"), os.path.join(ROOT, "firmware")]))
CMD = [sys.executable, "-m", "mptcp_tools.concentrator"]
GUARD = 60.0         # hang guard for waits (never an assertion on time)


# --- the network the tests run in ---------------------------------------------------------------

def _mptcp_loopback_works():
    """Can this process connect an MPTCP socket to an MPTCP listener on 127.0.0.1?"""
    try:
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP)
    except OSError:
        return False
    try:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP)
        c.settimeout(5)
        c.connect(srv.getsockname())
        a, _ = srv.accept()
        ok = a.getsockopt(284, 1, 256)[8] & 1 == 0      # MPTCP_INFO: not fallen back
        a.close()
        c.close()
        return ok
    except OSError:
        return False
    finally:
        srv.close()


def _setns(path):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, 0x40000000) != 0:      # CLONE_NEWNET
            e = ctypes.get_errno()
            raise OSError(e, "setns(%s): %s" % (path, os.strerror(e)))
    finally:
        os.close(fd)


def _ns(name, *cmd):
    subprocess.run(["ip", "netns", "exec", name] + list(cmd), check=True,
                   capture_output=True)


class Netns:
    """A throwaway network namespace (lo up, given sysctls), removed by close()."""

    def __init__(self, tag, **sysctls):
        hostenv.root()
        self.name = "mpconc-%s-%d" % (tag, os.getpid())
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        try:
            _ns(self.name, "ip", "link", "set", "lo", "up")
            for k, v in sysctls.items():
                _ns(self.name, "sysctl", "-qw", "%s=%s" % (k.replace("__", "."), v))
        except BaseException:
            self.close()
            raise

    def close(self):
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


@pytest.fixture(scope="module", autouse=True)
def mptcp_net():
    """Loopback with MPTCP: here, or in a namespace the main thread enters for the module."""
    if _mptcp_loopback_works() and not os.environ.get("CONC_TEST_NETNS"):
        yield "current namespace"
        return
    ns = Netns("lo", net__mptcp__enabled=1)
    home = "/proc/self/ns/net"
    back = os.open(home, os.O_RDONLY)
    try:
        _setns("/run/netns/" + ns.name)
        try:
            if not _mptcp_loopback_works():
                pytest.fail("no MPTCP on loopback even in a fresh namespace: kernel without "
                            "CONFIG_MPTCP?")
            yield ns.name
        finally:
            libc = ctypes.CDLL(None, use_errno=True)
            assert libc.setns(back, 0x40000000) == 0, os.strerror(ctypes.get_errno())
    finally:
        os.close(back)
        ns.close()


# --- the concentrator process and the test's peers ----------------------------------------------

class Conc:
    """The concentrator as a process; its stdout JSON lines arrive through a queue."""

    def __init__(self, *args, prefix=()):
        self.proc = subprocess.Popen(list(prefix) + CMD + list(args), env=ENV,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        self.err = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines.put),
                         daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, self.err.append),
                         daemon=True).start()
        self.ready = self._next("listening")
        self.ports = [s["port"] for s in self.ready["services"]]
        self.port = self.ports[0]

    @staticmethod
    def _pump(f, put):
        for line in f:
            put(line)
        put(None)

    def _next(self, event, reason=None):
        while True:
            try:
                line = self.lines.get(timeout=GUARD)
            except queue.Empty:
                self.kill()
                pytest.fail("concentrator printed no %s line; stderr: %s"
                            % (event, "".join(self.err)))
            if line is None:
                self.proc.wait()
                pytest.fail("concentrator ended (rc %s) before a %s line; stderr: %s"
                            % (self.proc.returncode, event, "".join(self.err)))
            d = json.loads(line)
            if d["event"] == event and (reason is None or d["reason"] == reason):
                return d

    def stats(self):
        self.proc.send_signal(signal.SIGUSR1)
        return self._next("stats", "sigusr1")

    def wait_stats(self, pred):
        """SIGUSR1 until pred(total counters) holds (the relay closes after the client saw
        its last byte); the last reading either way."""
        deadline = time.monotonic() + GUARD
        while True:
            st = self.stats()
            if pred(st["total"]) or time.monotonic() > deadline:
                return st
            time.sleep(0.05)

    def wait_err(self, pred):
        """The first stderr line pred() accepts (stderr arrives through a thread)."""
        deadline = time.monotonic() + GUARD
        while True:
            hit = [l for l in list(self.err) if pred(l)]
            if hit or time.monotonic() > deadline:
                assert hit, "no such line in the concentrator's stderr: %s" % "".join(self.err)
                return hit[0]
            time.sleep(0.01)

    def stop(self):
        """SIGTERM: exit 0 and a final stats line."""
        self.proc.send_signal(signal.SIGTERM)
        st = self._next("stats", "exit")
        assert self.proc.wait(GUARD) == 0, "".join(self.err)
        return st

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def conc():
    made = []

    def start(*args, **kw):
        c = Conc(*args, **kw)
        made.append(c)
        return c
    yield start
    for c in made:
        c.kill()


class Server:
    """A plain TCP server on 127.0.0.1; each accepted connection runs handler(sock, result)
    in a thread; results[i] is the dict of connection i."""

    def __init__(self, handler):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.results = []
        self.threads = []
        self.t = threading.Thread(target=self._accept, daemon=True)
        self.t.start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            c.settimeout(GUARD)
            res = {}
            self.results.append(res)
            t = threading.Thread(target=self._run, args=(c, res), daemon=True)
            self.threads.append(t)
            t.start()

    def _run(self, c, res):
        try:
            self.handler(c, res)
        except OSError as e:
            res["error"] = e
        finally:
            c.close()
            res["done"] = True

    def join(self, n=1):
        deadline = time.monotonic() + GUARD
        while len(self.results) < n or not all(r.get("done") for r in self.results[:n]):
            assert time.monotonic() < deadline, "server: %r" % self.results
            time.sleep(0.01)
        for r in self.results[:n]:
            # a handler's unexpected OSError (timeout, broken pipe) fails the test here,
            # whatever the test itself goes on to check
            assert "error" not in r, "server handler failed: %r" % (r,)
        return self.results[:n]

    def close(self):
        """Stop accepting and wait for every thread: close() alone does not wake a thread
        blocked in accept(), shutdown() does (EINVAL), so no thread outlives its test."""
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        for t in [self.t] + self.threads:
            t.join(GUARD)
            assert not t.is_alive(), "server thread %s still running" % t.name


@pytest.fixture
def server():
    made = []

    def start(handler):
        s = Server(handler)
        made.append(s)
        return s
    yield start
    for s in made:
        s.close()


def data(seed, n):
    return random.Random(seed).randbytes(n)


def sha(b):
    return hashlib.sha256(b).hexdigest()


def recv_all(s, into=None):
    h, n = hashlib.sha256(), 0
    while True:
        b = s.recv(65536)
        if not b:
            return n, h.hexdigest()
        h.update(b)
        n += len(b)
        if into is not None:
            into.append(b)


def recv_exact(s, n):
    """n bytes (a stream may deliver them in pieces); fewer only at EOF."""
    out = b""
    while len(out) < n:
        b = s.recv(n - len(out))
        if not b:
            break
        out += b
    return out


def client(port, proto=IPPROTO_MPTCP):
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto)
    c.settimeout(GUARD)
    c.connect(("127.0.0.1", port))
    return c


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def _abort(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


# --- relaying ------------------------------------------------------------------------------------

UP = data(1, 3 * 1024 * 1024 + 17)
DOWN = data(2, 2 * 1024 * 1024 + 5)


def _bulk_server(c, res):
    """Receives to EOF while sending DOWN at the same time, then closes."""
    t = threading.Thread(target=lambda: (c.sendall(DOWN), c.shutdown(socket.SHUT_WR)))
    t.start()
    res["rx"] = recv_all(c)
    t.join()


def _bulk_client(port, proto=IPPROTO_MPTCP):
    c = client(port, proto)
    t = threading.Thread(target=lambda: (c.sendall(UP), c.shutdown(socket.SHUT_WR)))
    t.start()
    got = recv_all(c)
    t.join()
    c.close()
    return got


def test_bulk_both_ways_sha256(conc, server):
    srv = server(_bulk_server)
    cc = conc("--listen", "127.0.0.1:0", "--target", "127.0.0.1:%d" % srv.port)
    assert cc.ready["fallback_detection"] == "MPTCP_INFO"
    got = _bulk_client(cc.port)
    res, = srv.join()
    assert "error" not in res, res
    assert res["rx"] == (len(UP), sha(UP))
    assert got == (len(DOWN), sha(DOWN))
    st = cc.wait_stats(lambda t: t["active"] == 0)["total"]
    assert (st["accepted"], st["closed"], st["active"]) == (1, 1, 0), st
    assert (st["bytes_up"], st["bytes_down"]) == (len(UP), len(DOWN)), st
    assert (st["mptcp"], st["fallback_tcp"]) == (1, 0), st
    assert st["resets"] == st["target_connect_failures"] == st["internal_errors"] == 0, st
    final = cc.stop()
    assert final["total"] == st and final["services"][0]["target"] == "127.0.0.1:%d" % srv.port


def test_plain_tcp_client_is_relayed_and_counted_as_fallback(conc, server):
    srv = server(_bulk_server)
    cc = conc("--listen", "127.0.0.1:0", "--target", "127.0.0.1:%d" % srv.port)
    got = _bulk_client(cc.port, proto=0)
    res, = srv.join()
    assert res["rx"] == (len(UP), sha(UP)) and got == (len(DOWN), sha(DOWN))
    st = cc.wait_stats(lambda t: t["active"] == 0)["total"]
    assert (st["mptcp"], st["fallback_tcp"], st["closed"]) == (0, 1, 1), st


def test_half_close_client_first(conc, server):
    """The client's EOF reaches the server (which only answers after it); the answer still
    comes back over the half-closed connection."""
    req = data(3, 100000)

    def answer_after_eof(c, res):
        res["rx"] = recv_all(c)             # returns only on the relayed EOF
        c.sendall(sha(req).encode() + data(4, 200000))
    srv = server(answer_after_eof)
    cc = conc("--listen", "127.0.0.1:0", "--target", "127.0.0.1:%d" % srv.port)
    c = client(cc.port)
    c.sendall(req)
    c.shutdown(socket.SHUT_WR)
    got = []
    n, h = recv_all(c, got)
    c.close()
    srv.join()
    assert srv.results[0]["rx"] == (len(req), sha(req))
    assert b"".join(got) == sha(req).encode() + data(4, 200000)
    assert cc.wait_stats(lambda t: t["active"] == 0)["total"]["closed"] == 1


def test_half_close_server_first(conc, server):
    """The server sends a greeting and half-closes; the client sees EOF and can still send,
    and the server receives all of it."""
    hello = data(5, 50000)
    body = data(6, 300000)

    def greet_then_read(c, res):
        c.sendall(hello)
        c.shutdown(socket.SHUT_WR)
        res["rx"] = recv_all(c)
    srv = server(greet_then_read)
    cc = conc("--listen", "127.0.0.1:0", "--target", "127.0.0.1:%d" % srv.port)
    c = client(cc.port)
    assert recv_all(c) == (len(hello), sha(hello))     # EOF first ...
    c.sendall(body)                                     # ... then the client still sends
    c.shutdown(socket.SHUT_WR)
    assert c.recv(1) == b""
    c.close()
    srv.join()
    assert srv.results[0]["rx"] == (len(body), sha(body))
    st = cc.wait_stats(lambda t: t["active"] == 0)["total"]
    assert (st["closed"], st["resets"], st["bytes_up"], st["bytes_down"]) == \
        (1, 0, len(body), len(hello)), st


def test_several_listeners_with_map(conc, server):
    def tagged(tag):
        def h(c, res):
            res["rx"] = recv_all(c)
            c.sendall(tag)
        return h
    a, b = server(tagged(b"A" * 1000)), server(tagged(b"B" * 2000))
    pa, pb = free_port(), free_port()
    cc = conc("--listen", "127.0.0.1", "--map", "%d=127.0.0.1:%d" % (pa, a.port),
              "--map", "%d=127.0.0.1:%d" % (pb, b.port))
    assert cc.ports == [pa, pb]
    for port, payload, tag in ((pa, data(7, 70000), b"A" * 1000),
                               (pb, data(8, 90000), b"B" * 2000)):
        c = client(port)
        c.sendall(payload)
        c.shutdown(socket.SHUT_WR)
        got = []
        recv_all(c, got)
        c.close()
        assert b"".join(got) == tag
    assert a.join()[0]["rx"] == (70000, sha(data(7, 70000)))
    assert b.join()[0]["rx"] == (90000, sha(data(8, 90000)))
    st = cc.wait_stats(lambda t: t["active"] == 0)
    per = {s["listen"]: s for s in st["services"]}
    assert per["127.0.0.1:%d" % pa]["bytes_up"] == 70000
    assert per["127.0.0.1:%d" % pb]["bytes_up"] == 90000
    assert per["127.0.0.1:%d" % pb]["bytes_down"] == 2000
    assert st["total"]["closed"] == 2


# --- failures ------------------------------------------------------------------------------------

def test_target_down_client_reset_and_counted(conc):
    dead = free_port()                       # nothing listens there: connection refused
    cc = conc("--listen", "127.0.0.1:0", "--target", "127.0.0.1:%d" % dead)
    c = client(cc.port)
    with pytest.raises(ConnectionResetError):
        c.recv(1)
    c.close()
    st = cc.wait_stats(lambda t: t["active"] == 0)["total"]
    assert (st["accepted"], st["target_connect_failures"], st["closed"]) == (1, 1, 0), st
    cc.wait_err(lambda l: "unreachable" in l and "Connection refused" in l)


def test_target_reset_resets_client(conc, server):
    def reset_after_some(c, res):
        res["rx"] = c.recv(10)
        _abort(c)
    srv = server(reset_after_some)
    cc = conc("--listen", "127.0.0.1:0", "--target", "127.0.0.1:%d" % srv.port)
    c = client(cc.port)
    c.sendall(b"hello")
    with pytest.raises(ConnectionResetError):
        while c.recv(65536):
            pass
    c.close()
    st = cc.wait_stats(lambda t: t["active"] == 0)["total"]
    assert (st["resets"], st["resets_target"], st["resets_client"]) == (1, 1, 0), st


def test_client_reset_resets_target(conc, server):
    got = threading.Event()

    def read_until_reset(c, res):
        res["first"] = recv_exact(c, 5)
        got.set()
        try:
            while c.recv(65536):
                pass
            res["end"] = "eof"
        except ConnectionResetError:
            res["end"] = "reset"
    srv = server(read_until_reset)
    cc = conc("--listen", "127.0.0.1:0", "--target", "127.0.0.1:%d" % srv.port)
    c = client(cc.port)
    c.sendall(b"hello")
    assert got.wait(GUARD)
    _abort(c)
    res, = srv.join()
    assert res["first"] == b"hello" and res["end"] == "reset", res
    st = cc.wait_stats(lambda t: t["active"] == 0)["total"]
    assert (st["resets"], st["resets_client"], st["resets_target"]) == (1, 1, 0), st


def test_idle_timeout_resets_both(conc, server):
    def wait_for_end(c, res):
        try:
            res["rx"] = c.recv(1)
        except ConnectionResetError:
            res["rx"] = "reset"
    srv = server(wait_for_end)
    cc = conc("--listen", "127.0.0.1:0", "--target", "127.0.0.1:%d" % srv.port,
              "--idle-timeout", "0.3")
    c = client(cc.port)
    with pytest.raises(ConnectionResetError):
        c.recv(1)
    c.close()
    assert srv.join()[0]["rx"] == "reset"
    st = cc.wait_stats(lambda t: t["active"] == 0)["total"]
    assert (st["idle_timeouts"], st["closed"], st["resets"]) == (1, 0, 0), st


def test_max_conns_rejects_the_extra_connection(conc, server):
    seen = threading.Event()

    def echo_once(c, res):
        res["rx"] = recv_exact(c, 5)
        seen.set()
        c.sendall(res["rx"])
        res["end"] = c.recv(1)
    srv = server(echo_once)
    cc = conc("--listen", "127.0.0.1:0", "--target", "127.0.0.1:%d" % srv.port,
              "--max-conns", "1")
    first = client(cc.port)
    first.sendall(b"first")
    assert seen.wait(GUARD) and recv_exact(first, 5) == b"first"      # the first one is relayed
    second = client(cc.port)
    with pytest.raises(ConnectionResetError):
        second.recv(1)
    second.close()
    first.shutdown(socket.SHUT_WR)
    assert first.recv(1) == b""
    first.close()
    st = cc.wait_stats(lambda t: t["active"] == 0)["total"]
    assert (st["accepted"], st["rejected_max_conns"], st["closed"]) == (2, 1, 1), st


def test_sigterm_resets_live_relays_and_prints_counters(conc, server):
    seen = threading.Event()

    def hold(c, res):
        res["rx"] = recv_exact(c, 5)
        seen.set()
        try:
            res["end"] = c.recv(1)
        except ConnectionResetError:
            res["end"] = "reset"
    srv = server(hold)
    cc = conc("--listen", "127.0.0.1:0", "--target", "127.0.0.1:%d" % srv.port)
    c = client(cc.port)
    c.sendall(b"hello")
    assert seen.wait(GUARD)
    final = cc.stop()
    assert final["total"]["accepted"] == 1 and final["total"]["active"] == 0, final
    assert srv.join()[0]["end"] == "reset"
    with pytest.raises(ConnectionResetError):
        c.recv(1)
    c.close()


# --- the command line ----------------------------------------------------------------------------

def _run(args, prefix=(), **kw):
    p = subprocess.run(list(prefix) + CMD + list(args), env=ENV, capture_output=True,
                       text=True, timeout=GUARD, **kw)
    return p.returncode, p.stderr.strip().splitlines()


@pytest.mark.parametrize("args, text", [
    ([], "nothing to relay"),
    (["--target", "127.0.0.1:80"], "needs a port in --listen"),
    (["--listen", "127.0.0.1:5000"], "nothing to relay"),
    (["--listen", "127.0.0.1:5000", "--map", "5001=127.0.0.1:1"], "has a port but no --target"),
    (["--listen", "127.0.0.1:0", "--target", "127.0.0.1"], "expected HOST:PORT"),
    (["--listen", "127.0.0.1:0", "--target", "127.0.0.1:0"], "port 0 is not a target"),
    (["--listen", "127.0.0.1:99999", "--target", "127.0.0.1:1"], "out of range"),
    (["--listen", "nohost:1", "--target", "127.0.0.1:1"], "is not an IP address"),
    (["--listen", "127.0.0.1:0", "--target", "no-such-host.invalid:80"], "cannot resolve"),
    (["--map", "x=127.0.0.1:1"], "is not a number"),
    (["--map", "5001"], "expected LISTENPORT=HOST:PORT"),
    (["--map", "5001=127.0.0.1:1", "--map", "5001=127.0.0.1:2"], "given twice"),
    (["--listen", "127.0.0.1:0", "--target", "127.0.0.1:1", "--max-conns", "0"],
     "--max-conns must be at least 1"),
    (["--listen", "127.0.0.1:0", "--target", "127.0.0.1:1", "--idle-timeout", "-1"],
     "must not be negative"),
    (["--listen", "127.0.0.1:0", "--target", "127.0.0.1:1", "--log-level", "loud"],
     "invalid choice"),
])
def test_bad_arguments_one_line_exit_2(args, text):
    rc, err = _run(args)
    assert rc == 2 and len(err) == 1 and text in err[0], (rc, err)
    assert err[0].startswith("mptcp-concentrator: error: ")


def test_help_explains_the_counters():
    p = subprocess.run(CMD + ["--help"], env=ENV, capture_output=True, text=True,
                       timeout=GUARD)
    assert p.returncode == 0
    for word in ("--target", "--map", "--max-conns", "--idle-timeout", "--stats-interval",
                 "target_connect_failures", "fallback_tcp", "SIGUSR1", "Half-close", "MPTCP"):
        assert word in p.stdout, word


def test_port_in_use():
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        rc, err = _run(["--listen", "127.0.0.1:%d" % busy.getsockname()[1],
                        "--target", "127.0.0.1:1"])
    finally:
        busy.close()
    assert rc == 1 and len(err) == 1 and "address already in use" in err[0], (rc, err)


def test_check_target_unreachable():
    rc, err = _run(["--listen", "127.0.0.1:0", "--target", "127.0.0.1:%d" % free_port(),
                    "--check-target"])
    assert rc == 1 and len(err) == 1, (rc, err)
    assert "unreachable" in err[0] and "refused" in err[0], err


def test_mptcp_disabled_in_namespace():
    ns = Netns("off", net__mptcp__enabled=0)
    try:
        rc, err = _run(["--listen", "127.0.0.1:0", "--target", "127.0.0.1:1"],
                       prefix=("ip", "netns", "exec", ns.name))
    finally:
        ns.close()
    assert rc == 1 and len(err) == 1 and "net.mptcp.enabled=0" in err[0], (rc, err)


def test_privileged_port_without_root():
    """As an unprivileged user, port 80 fails with EACCES and a hint about the capability."""
    ns = Netns("priv", net__ipv4__ip_unprivileged_port_start=1024)
    try:
        rc, err = _run(["--listen", "127.0.0.1:80", "--target", "127.0.0.1:1"],
                       prefix=("ip", "netns", "exec", ns.name, "setpriv", "--reuid=65534",
                               "--regid=65534", "--clear-groups", "--inh-caps=-all"),
                       cwd="/")
    finally:
        ns.close()
    assert rc == 1 and len(err) == 1, (rc, err)
    assert "permission denied" in err[0] and "CAP_NET_BIND_SERVICE" in err[0], err


def test_check_target_reachable_starts(conc, server):
    def count(c, res):
        res["rx"] = recv_all(c)
    srv = server(count)
    cc = conc("--listen", "127.0.0.1:0", "--target", "127.0.0.1:%d" % srv.port,
              "--check-target")
    assert srv.join()[0]["rx"] == (0, sha(b""))        # the probe: one empty connection
    assert cc.stats()["total"]["accepted"] == 0


def test_stats_interval_prints_counters(conc):
    cc = conc("--listen", "127.0.0.1:0", "--target", "127.0.0.1:1", "--stats-interval", "0.1")
    st = cc._next("stats", "interval")
    assert st["total"]["accepted"] == 0 and st["services"][0]["listen"] == \
        "127.0.0.1:%d" % cc.port
