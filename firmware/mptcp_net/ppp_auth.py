"""PPP authentication: PAP (RFC 1334) and CHAP with MD5 (RFC 1994), both roles.

The device is the authenticatee when the network asks (PapClient, ChapClient);
the authenticator roles (PapServer, ChapServer) exist for back-to-back tests.
Each object is sans-IO like the rest: start(now), timer(now), input(buf, off, n,
now), packets out through out(proto, a, aoff, alen, b, boff, blen); `done` is 0
while pending, 1 on success, -1 on failure. Malformed packets are counted
(`rx_bad`) and dropped.
"""
import hashlib

from mptcp import ticks
from mptcp.compat import const

# hashlib's MD5 where the build has one; else mptcp_net.md5 (pure Python, e.g. the WebAssembly port)
if hasattr(hashlib, "md5"):
    _md5 = hashlib.md5
    MD5_IMPL = "hashlib"
else:
    from mptcp_net.md5 import md5 as _md5
    MD5_IMPL = "pure-python"

PROTO_PAP = const(0xC023)
PROTO_CHAP = const(0xC223)

PAP_REQ = const(1)
PAP_ACK = const(2)
PAP_NAK = const(3)
CHAP_CHALLENGE = const(1)
CHAP_RESPONSE = const(2)
CHAP_SUCCESS = const(3)
CHAP_FAILURE = const(4)


def _b(s):
    return s.encode() if isinstance(s, str) else bytes(s)


def chap_md5(ident, secret, challenge):
    """The CHAP-MD5 response value: MD5(Identifier || secret || challenge)."""
    h = _md5(bytes((ident,)))
    h.update(secret)
    h.update(challenge)
    return h.digest()


class _Auth:
    def __init__(self, proto, out, user, password, restart_ms=3000, max_tries=10):
        self.proto = proto
        self.out = out
        self.user = _b(user or b"")
        self.password = _b(password or b"")
        self.restart_ms = restart_ms
        self.max_tries = max_tries
        self.deadline = -1
        self.tries = 0
        self.ident = 0
        self.done = 0
        self.rx_bad = 0
        self.buf = bytearray(4 + 2 + 255 + 255)

    def _hdr(self, code, ident, ln):
        b = self.buf
        b[0] = code
        b[1] = ident
        b[2] = ln >> 8
        b[3] = ln & 0xFF

    def _parse(self, buf, off, n):
        """(code, ident, length) or None if malformed."""
        if n < 4:
            return None
        ln = (buf[off + 2] << 8) | buf[off + 3]
        if ln < 4 or ln > n:
            return None
        return buf[off], buf[off + 1], ln

    def start(self, now):
        pass

    def timer(self, now):
        pass


class _Sender(_Auth):
    """The side that sends first (PAP peer, CHAP authenticator): resends on the restart timer."""

    def start(self, now):
        self.tries = 0
        self.done = 0
        self._send(now)

    def _send(self, now):
        raise NotImplementedError   # each sender writes its own request

    def timer(self, now):
        if self.done or not ticks.due(now, self.deadline):
            return
        if self.tries >= self.max_tries:
            self.deadline = -1
            self.done = -1
        else:
            self._send(now)


class PapClient(_Sender):
    def __init__(self, out, user, password, **kw):
        _Auth.__init__(self, PROTO_PAP, out, user, password, **kw)

    def _send(self, now):
        u = self.user[:255]
        p = self.password[:255]
        b = self.buf
        ln = 6 + len(u) + len(p)
        self.ident = (self.ident + 1) & 0xFF
        self._hdr(PAP_REQ, self.ident, ln)
        b[4] = len(u)
        b[5:5 + len(u)] = u
        b[5 + len(u)] = len(p)
        b[6 + len(u):ln] = p
        self.tries += 1
        self.deadline = ticks.add(now, self.restart_ms)
        self.out(self.proto, b, 0, ln, None, 0, 0)

    def input(self, buf, off, n, now):
        h = self._parse(buf, off, n)
        if h is None:
            self.rx_bad += 1
            return
        code, ident, ln = h
        if self.done or ident != self.ident or (code != PAP_ACK and code != PAP_NAK):
            return
        self.deadline = -1
        self.done = 1 if code == PAP_ACK else -1


class ChapClient(_Auth):
    """Answers every Challenge (the authenticator may re-challenge while the link runs)."""

    def __init__(self, out, user, password, **kw):
        _Auth.__init__(self, PROTO_CHAP, out, user, password, **kw)

    def input(self, buf, off, n, now):
        h = self._parse(buf, off, n)
        if h is None:
            self.rx_bad += 1
            return
        code, ident, ln = h
        if code == CHAP_CHALLENGE:
            if ln < 5:
                self.rx_bad += 1
                return
            vs = buf[off + 4]
            if vs == 0 or 5 + vs > ln:
                self.rx_bad += 1
                return
            self.ident = ident
            v = chap_md5(ident, self.password, bytes(buf[off + 5:off + 5 + vs]))
            u = self.user[:255]
            b = self.buf
            rl = 5 + 16 + len(u)
            self._hdr(CHAP_RESPONSE, ident, rl)
            b[4] = 16
            b[5:21] = v
            b[21:rl] = u
            self.out(self.proto, b, 0, rl, None, 0, 0)
        elif code == CHAP_SUCCESS:
            if ident == self.ident and self.done == 0:
                self.done = 1
        elif code == CHAP_FAILURE:
            if ident == self.ident:
                self.done = -1


class PapServer(_Auth):
    def __init__(self, out, user, password, **kw):
        _Auth.__init__(self, PROTO_PAP, out, user, password, **kw)

    def input(self, buf, off, n, now):
        h = self._parse(buf, off, n)
        if h is None:
            self.rx_bad += 1
            return
        code, ident, ln = h
        if code != PAP_REQ:
            return
        if ln < 6:
            self.rx_bad += 1
            return
        ul = buf[off + 4]
        if 6 + ul > ln:
            self.rx_bad += 1
            return
        pl = buf[off + 5 + ul]
        if 6 + ul + pl > ln:
            self.rx_bad += 1
            return
        user = bytes(buf[off + 5:off + 5 + ul])
        pw = bytes(buf[off + 6 + ul:off + 6 + ul + pl])
        ok = user == self.user and pw == self.password
        if self.done == 0:
            self.done = 1 if ok else -1
        self._hdr(PAP_ACK if ok else PAP_NAK, ident, 5)
        self.buf[4] = 0
        self.out(self.proto, self.buf, 0, 5, None, 0, 0)


class ChapServer(_Sender):
    def __init__(self, out, user, password, rand, name=b"mptcp-ppp", **kw):
        _Auth.__init__(self, PROTO_CHAP, out, user, password, **kw)
        self.rand = rand
        self.name = _b(name)
        self.challenge = b""

    def _send(self, now):
        b = self.buf
        nm = self.name[:64]
        ln = 5 + 16 + len(nm)
        self._hdr(CHAP_CHALLENGE, self.ident, ln)
        b[4] = 16
        b[5:21] = self.challenge
        b[21:ln] = nm
        self.tries += 1
        self.deadline = ticks.add(now, self.restart_ms)
        self.out(self.proto, b, 0, ln, None, 0, 0)

    def start(self, now):
        self.ident = (self.ident + 1) & 0xFF
        self.challenge = bytes(self.rand(16))
        _Sender.start(self, now)

    def input(self, buf, off, n, now):
        h = self._parse(buf, off, n)
        if h is None:
            self.rx_bad += 1
            return
        code, ident, ln = h
        if code != CHAP_RESPONSE or ident != self.ident:
            return
        if ln < 5 or 5 + buf[off + 4] > ln:
            self.rx_bad += 1
            return
        vs = buf[off + 4]
        want = chap_md5(ident, self.password, self.challenge)
        got = bytes(buf[off + 5:off + 5 + vs])
        name = bytes(buf[off + 5 + vs:off + ln])
        ok = got == want and name == self.user
        self.deadline = -1
        if self.done == 0:
            self.done = 1 if ok else -1
        self._hdr(CHAP_SUCCESS if ok else CHAP_FAILURE, ident, 4)
        self.out(self.proto, self.buf, 0, 4, None, 0, 0)
