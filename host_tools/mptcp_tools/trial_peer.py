"""The trial peer: a kernel MPTCP server for the device's trial agent (firmware/mptcp_apps/trial.py).

Runs inside the lab's peer namespace (`ip netns exec mplab python -m mptcp_tools.trial_peer
--port P`), one thread per connection. Each connection starts with one header line:

  T1 bulk-up N      read N bytes to EOF, report their SHA-256
  T1 bulk-down N    send N pseudo-random bytes (seeded), close, report their SHA-256
  T1 echo N         echo every byte back (requests of N bytes), until EOF
  T1 sink           read and count until EOF

Prints "listening" on stderr once ready, then one JSON line per finished connection on
stdout: {"kind", "bytes", "sha256", "seconds", "mptcp", "error"}.
"""

import argparse
import hashlib
import json
import random
import socket
import sys
import threading
import time

IPPROTO_MPTCP = 262
CHUNK = 65536
_lock = threading.Lock()


def emit(res):
    with _lock:
        sys.stdout.write(json.dumps(res) + "\n")
        sys.stdout.flush()


def _header(sock):
    line = b""
    while not line.endswith(b"\n"):
        b = sock.recv(1)
        if not b:
            raise OSError("connection closed before the header line")
        line += b
        if len(line) > 64:
            raise OSError("header line too long: %r" % line[:64])
    parts = line.decode("ascii", "replace").split()
    if len(parts) < 2 or parts[0] != "T1":
        raise OSError("bad header line %r" % line)
    kind = parts[1]
    n = int(parts[2]) if len(parts) > 2 else 0
    if kind not in ("bulk-up", "bulk-down", "echo", "sink"):
        raise OSError("unknown traffic kind %r" % kind)
    return kind, n


def _is_mptcp(sock):
    try:
        return sock.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL) == IPPROTO_MPTCP
    except OSError:
        return None


def handle(sock, addr, seed):
    t0 = time.monotonic()
    res = {"peer": "%s:%d" % addr, "kind": None, "bytes": 0, "sha256": None, "error": None}
    h = hashlib.sha256()
    try:
        kind, n = _header(sock)
        res["kind"] = kind
        res["mptcp"] = _is_mptcp(sock)
        if kind == "bulk-down":
            rng = random.Random(seed)
            block = rng.randbytes(CHUNK)
            sent = 0
            while sent < n:
                k = min(CHUNK, n - sent)
                part = bytearray(block[:k])
                part[:4] = (sent // CHUNK).to_bytes(4, "big")[:min(4, k)]
                sock.sendall(part)
                h.update(part)
                sent += k
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(CHUNK):
                pass
            res["bytes"] = sent
        else:
            got = 0
            while True:
                b = sock.recv(CHUNK)
                if not b:
                    break
                got += len(b)
                if kind == "echo":
                    sock.sendall(b)
                else:
                    h.update(b)
            res["bytes"] = got
            if kind == "bulk-up" and got != n:
                res["error"] = "got %d of %d bytes" % (got, n)
        if kind in ("bulk-up", "bulk-down", "sink"):
            res["sha256"] = h.hexdigest()
    except (OSError, ValueError) as e:
        res["error"] = str(e)
    finally:
        sock.close()
    res["seconds"] = round(time.monotonic() - t0, 3)
    emit(res)


def serve(port, bind="0.0.0.0", seed=1, tcp=False):
    proto = 0 if tcp else IPPROTO_MPTCP
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((bind, port))
    ls.listen(16)
    sys.stderr.write("listening %s:%d\n" % (bind, port))
    sys.stderr.flush()
    while True:
        c, addr = ls.accept()
        threading.Thread(target=handle, args=(c, addr, seed), daemon=True).start()


def main(argv=None):
    ap = argparse.ArgumentParser(prog="mptcp_tools.trial_peer",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--seed", type=int, default=1, help="seed of the bulk-down data")
    ap.add_argument("--tcp", action="store_true", help="plain TCP instead of MPTCP")
    a = ap.parse_args(argv)
    try:
        serve(a.port, a.bind, a.seed, a.tcp)
    except KeyboardInterrupt:
        return 0
    except OSError as e:
        print("trial_peer: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
