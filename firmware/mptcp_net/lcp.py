"""LCP (RFC 1661): link options, Echo keepalive, Protocol-Reject, loopback detection.

The automaton is ppp_fsm.Fsm; this file decides the options: MRU, ACCM, the
Authentication-Protocol the peer demands (we accept PAP or CHAP-MD5, Nak'ing
towards the method we have credentials for; the server role demands one), the
Magic-Number (a peer magic equal to ours means a looped-back line: Nak it with a
fresh value, pick a new one ourselves, and count), PFC and ACFC. Results are read
by the session when the layer comes up: `rx_accm`, `tx_accm`, `peer_mru`,
`tx_pfc`, `tx_acfc`, `auth_peer` (what we must do), `auth_ours` (what the peer must do).
"""
from mptcp.compat import const
from mptcp_net import ppp_fsm
from mptcp_net.ppp_fsm import Fsm, CONFACK, CONFNAK, CONFREJ, opt_len
TYPE_CHECKING = False
if TYPE_CHECKING:           # type checkers only: MicroPython has no typing module
    from typing import Any

PROTO_LCP = const(0xC021)
PROTO_PAP = const(0xC023)
PROTO_CHAP = const(0xC223)
CHAP_MD5 = const(5)

OPT_MRU = const(1)
OPT_ACCM = const(2)
OPT_AUTH = const(3)
OPT_QUALITY = const(4)
OPT_MAGIC = const(5)
OPT_PFC = const(7)
OPT_ACFC = const(8)

PROTREJ = const(8)
ECHOREQ = const(9)
ECHOREP = const(10)
DISCREQ = const(11)

MIN_MRU = const(128)
DEFAULT_MRU = const(1500)
LOOP_LIMIT = const(10)     # consecutive equal magics before we call the line looped back (pppd: 10)

_ACCM_ALL = 0xFFFFFFFF


def _be32(buf, off):
    return (buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]


class Lcp(Fsm):
    name = "LCP"

    def __init__(self, out, notify, rand, mru=1500, accm=0, max_rx=1500, auth_pref=0,
                 auth_req=0, **kw):
        """out: see Fsm; notify(event, now) with "up"/"down"/"started"/"finished";
        rand(n) -> n random bytes; max_rx: the largest information field we can receive;
        auth_pref: PAP/CHAP protocol we have credentials for (0 = either, empty ones);
        auth_req: the protocol we demand from the peer (server role) or 0."""
        Fsm.__init__(self, PROTO_LCP, out, **kw)
        self.notify = notify
        self.rand = rand
        self.cfg_mru = mru if mru <= max_rx else max_rx
        self.cfg_accm = accm
        self.max_rx = max_rx
        self.auth_pref = auth_pref
        self.auth_req = auth_req
        self.magic = bytearray(4)
        self.his_magic = bytearray(4)
        self._echo = bytearray(8)
        self._er = bytearray(8)
        self._pr = bytearray(6)
        self.on_proto_reject = None     # type: Any
        # callable(proto, now)
        self.loop_count = 0
        self.loopback = 0               # times a looped-back line was detected
        self.echo_id = 0
        self.echo_pending = 0
        self.echo_tx = 0
        self.echo_rx = 0
        self.echo_req_rx = 0
        self.echo_loop = 0
        self.discard_rx = 0
        self.proto_reject_rx = 0
        self.reset_request()
        self._his_defaults()

    # ---- our request ----
    def _new_magic(self):
        m = self.rand(4)
        if not (m[0] | m[1] | m[2] | m[3]):
            m = b"\x5a\x5a\x5a\x5a"
        self.magic[0:4] = m

    def reset_request(self):
        self.w_mru = self.cfg_mru
        self.r_mru = self.cfg_mru != DEFAULT_MRU
        self.w_accm = self.cfg_accm
        self.r_accm = self.cfg_accm != _ACCM_ALL
        self.r_magic = True
        self._new_magic()
        self.r_pfc = True
        self.r_acfc = True
        self.w_auth = self.auth_req
        self.auth_refused = False

    def build_request(self, b):
        n = 0
        if self.r_mru:
            b[0] = OPT_MRU
            b[1] = 4
            b[2] = self.w_mru >> 8
            b[3] = self.w_mru & 0xFF
            n = 4
        if self.r_accm:
            a = self.w_accm
            b[n] = OPT_ACCM
            b[n + 1] = 6
            b[n + 2] = (a >> 24) & 0xFF
            b[n + 3] = (a >> 16) & 0xFF
            b[n + 4] = (a >> 8) & 0xFF
            b[n + 5] = a & 0xFF
            n += 6
        if self.w_auth:
            b[n] = OPT_AUTH
            b[n + 2] = self.w_auth >> 8
            b[n + 3] = self.w_auth & 0xFF
            if self.w_auth == PROTO_CHAP:
                b[n + 1] = 5
                b[n + 4] = CHAP_MD5
                n += 5
            else:
                b[n + 1] = 4
                n += 4
        if self.r_magic:
            b[n] = OPT_MAGIC
            b[n + 1] = 6
            b[n + 2:n + 6] = self.magic
            n += 6
        if self.r_pfc:
            b[n] = OPT_PFC
            b[n + 1] = 2
            n += 2
        if self.r_acfc:
            b[n] = OPT_ACFC
            b[n + 1] = 2
            n += 2
        return n

    def on_nak(self, buf, off, n):
        end = off + n
        i = off
        while i < end:
            ln = opt_len(buf, i, end)
            if ln < 0:
                return False
            t = buf[i]
            if t == OPT_MRU and ln == 4:
                v = (buf[i + 2] << 8) | buf[i + 3]
                if MIN_MRU <= v <= self.max_rx:
                    self.w_mru = v
                    self.r_mru = v != DEFAULT_MRU
            elif t == OPT_ACCM and ln == 6:
                self.w_accm |= _be32(buf, i + 2)
                self.r_accm = True
            elif t == OPT_MAGIC and ln == 6:
                self._new_magic()
            elif t == OPT_AUTH and ln >= 4 and self.auth_req:
                p = (buf[i + 2] << 8) | buf[i + 3]
                if p == PROTO_PAP or (p == PROTO_CHAP and ln == 5 and buf[i + 4] == CHAP_MD5):
                    self.w_auth = p
            i += ln
        return True

    def on_reject(self, buf, off, n):
        end = off + n
        i = off
        while i < end:
            ln = opt_len(buf, i, end)
            if ln < 0:
                return False
            t = buf[i]
            if t == OPT_MRU:
                self.r_mru = False
                self.w_mru = DEFAULT_MRU
            elif t == OPT_ACCM:
                self.r_accm = False
                self.w_accm = _ACCM_ALL
            elif t == OPT_MAGIC:
                self.r_magic = False
            elif t == OPT_PFC:
                self.r_pfc = False
            elif t == OPT_ACFC:
                self.r_acfc = False
            elif t == OPT_AUTH:
                self.w_auth = 0
                if self.auth_req:
                    self.auth_refused = True
            i += ln
        return True

    # ---- the peer's request ----
    def _his_defaults(self):
        self.his_mru = DEFAULT_MRU
        self.his_accm = _ACCM_ALL
        self.his_has_magic = False
        self.his_pfc = False
        self.his_acfc = False
        self.his_auth = 0

    def _nak_auth(self):
        if self.auth_pref == PROTO_PAP:
            self.add_nak_int(OPT_AUTH, PROTO_PAP, 2)
        else:
            self.add_nak_bytes(OPT_AUTH, b"\xc2\x23\x05", 3)

    def check_request(self, buf, off, n):
        self._his_defaults()
        end = off + n
        i = off
        nak_ok = self.can_nak()
        while i < end:
            ln = opt_len(buf, i, end)
            if ln < 0:
                return -1
            t = buf[i]
            if t == OPT_MRU and ln == 4:
                v = (buf[i + 2] << 8) | buf[i + 3]
                if v >= MIN_MRU:
                    self.his_mru = v
                elif nak_ok:
                    self.add_nak_int(OPT_MRU, DEFAULT_MRU, 2)
                else:
                    self.add_rej(buf, i, ln)
            elif t == OPT_ACCM and ln == 6:
                self.his_accm = _be32(buf, i + 2)
            elif t == OPT_AUTH and ln >= 4 and not self.auth_req:
                p = (buf[i + 2] << 8) | buf[i + 3]
                pref = self.auth_pref
                if p == PROTO_PAP and ln == 4 and (pref == 0 or pref == PROTO_PAP):
                    self.his_auth = PROTO_PAP
                elif (p == PROTO_CHAP and ln == 5 and buf[i + 4] == CHAP_MD5
                      and (pref == 0 or pref == PROTO_CHAP)):
                    self.his_auth = PROTO_CHAP
                elif nak_ok:
                    self._nak_auth()
                else:
                    self.add_rej(buf, i, ln)
            elif t == OPT_MAGIC and ln == 6:
                m = self.his_magic
                for k in range(4):
                    m[k] = buf[i + 2 + k]
                zero = not (m[0] | m[1] | m[2] | m[3])
                same = self.r_magic and m == self.magic
                if same:
                    self.loop_count += 1
                    if self.loop_count >= LOOP_LIMIT:
                        self.loopback += 1
                        self.loop_count = 0
                    self._new_magic()
                if zero or same:
                    if nak_ok:
                        self.add_nak_bytes(OPT_MAGIC, self.rand(4), 4)
                    else:
                        self.add_rej(buf, i, ln)
                else:
                    self.his_has_magic = True
            elif t == OPT_PFC and ln == 2:
                self.his_pfc = True
            elif t == OPT_ACFC and ln == 2:
                self.his_acfc = True
            else:
                self.add_rej(buf, i, ln)
            i += ln
        if self.rlen:
            return CONFREJ
        if self.nlen:
            return CONFNAK
        return CONFACK

    # ---- results ----
    @property
    def rx_accm(self):
        return self.w_accm if self.r_accm else _ACCM_ALL

    @property
    def tx_accm(self):
        return self.his_accm

    @property
    def peer_mru(self):
        return self.his_mru

    @property
    def tx_pfc(self):
        return self.his_pfc

    @property
    def tx_acfc(self):
        return self.his_acfc

    @property
    def auth_peer(self):
        return self.his_auth

    @property
    def auth_ours(self):
        return self.w_auth

    # ---- layer events ----
    def layer_up(self, now):
        self.loop_count = 0
        self.echo_pending = 0
        self.max_data = self.his_mru - 4
        self.notify("up", now)

    def layer_down(self, now):
        self.notify("down", now)

    def layer_started(self, now):
        self.notify("started", now)

    def layer_finished(self, now):
        self.notify("finished", now)

    # ---- codes 8..11 ----
    def _our_magic(self):
        return self.magic if self.r_magic else b"\x00\x00\x00\x00"

    def _is_ours(self, buf, off):
        if not self.r_magic:
            return False
        m = self.magic
        return (buf[off] == m[0] and buf[off + 1] == m[1] and buf[off + 2] == m[2]
                and buf[off + 3] == m[3])

    def other_code(self, code, ident, buf, off, n, now):
        if code < PROTREJ or code > DISCREQ:
            return False
        if self.state != ppp_fsm.OPENED:
            return True                       # only meaningful when opened: discard
        if code == PROTREJ:
            if n >= 6:
                self.proto_reject_rx += 1
                if self.on_proto_reject is not None:
                    self.on_proto_reject((buf[off + 4] << 8) | buf[off + 5], now)
            else:
                self.rx_bad += 1
        elif code == ECHOREQ:
            if n < 8:
                self.rx_bad += 1
                return True
            self.echo_req_rx += 1
            if self._is_ours(buf, off + 4):
                self.echo_loop += 1
            d = n - 8                         # reply: same id and data, our magic
            if d > self.max_data - 4:
                d = self.max_data - 4
            h = self._er
            ln = 8 + d
            h[0] = ECHOREP
            h[1] = ident
            h[2] = ln >> 8
            h[3] = ln & 0xFF
            h[4:8] = self._our_magic()
            self.out(self.proto, h, 0, 8, buf, off + 8, d)
        elif code == ECHOREP:
            if n < 8:
                self.rx_bad += 1
            elif self._is_ours(buf, off + 4):
                self.echo_loop += 1
            else:
                self.echo_rx += 1
                self.echo_pending = 0
        else:
            self.discard_rx += 1
        return True

    def send_echo(self):
        """One Echo-Request (the session calls this on its keepalive timer)."""
        self.echo_id = (self.echo_id + 1) & 0xFF
        e = self._echo
        e[0:4] = self._our_magic()
        self.echo_tx += 1
        self.echo_pending += 1
        self._send(ECHOREQ, self.echo_id, e, 0, 4)

    def send_proto_reject(self, proto, buf, off, n):
        """Protocol-Reject a frame of an unknown protocol (information in buf[off:off+n])."""
        if n > self.max_data - 2:
            n = self.max_data - 2
        if n < 0:
            n = 0
        h = self._pr                  # code, id, length, rejected protocol; then the data
        ln = 6 + n
        h[0] = PROTREJ
        h[1] = self.next_id()
        h[2] = ln >> 8
        h[3] = ln & 0xFF
        h[4] = proto >> 8
        h[5] = proto & 0xFF
        self.out(self.proto, h, 0, 6, buf, off, n)
