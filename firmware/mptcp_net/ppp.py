"""A PPP session (RFC 1661 §3 phases): LCP, then PAP/CHAP if asked, then IPCP.

Sans-IO: control frames come in as input(proto, buf, off, n, now), packets go out
through emit(proto, a, aoff, alen, b, boff, blen), timers run in poll(now) which
returns the next deadline (a tick, mptcp.ticks; -1 = none). The owner (ppp_netif)
learns about changes through on_change(event, now): "lcp-up", "lcp-down", "ip-up",
"ip-down", "dead".

Phases (`phase`): "dead", "establish", "authenticate", "network", "running"
(IPCP opened: IPv4 flows), "terminate". Keepalive: an LCP Echo-Request every
echo_interval_ms while LCP is opened; echo_fails unanswered in a row means a
dead peer: LCP closes (the netif goes down at once). A looped-back line found by
the magic numbers closes LCP too. Unknown protocols get an LCP Protocol-Reject.
`reason` says why the link went (or is going) down: "closed", "peer-terminated",
"echo-timeout", "auth-failed", "loopback", "ipcp-failed", "negotiation-failed", or
what lower_down() was given ("no-carrier", "hangup", ...); None while it is up.
"""
from mptcp import ticks
from mptcp.compat import const
from mptcp_net import ppp_fsm
from mptcp_net.lcp import Lcp, PROTO_LCP, PROTO_PAP, PROTO_CHAP
from mptcp_net.ipcp import Ipcp, PROTO_IPCP, PROTO_IP
from mptcp_net import ppp_auth
TYPE_CHECKING = False
if TYPE_CHECKING:           # type checkers only: MicroPython has no typing module
    from typing import Any

AUTH_TIMEOUT_MS = const(30000)


def _default_rand(n):
    try:
        import os
        return os.urandom(n)
    except (ImportError, AttributeError, NotImplementedError):
        import random
        return bytes(random.getrandbits(8) for _ in range(n))


class PppSession:
    def __init__(self, emit, auth=None, mru=1500, accm=0, echo_interval_ms=10000,
                 echo_fails=3, server=False, local_addr=None, peer_addr=None, dns=None,
                 rand=None, restart_ms=3000, max_configure=10, max_terminate=2,
                 max_failure=5, auth_timeout_ms=AUTH_TIMEOUT_MS):
        """auth: None or (method, user, password) with method "pap" or "chap".
        As the device (server=False) it gives the credentials the network may ask
        for (None: empty ones, either method); as the server it demands them."""
        self.emit = emit
        self.rand = rand or _default_rand
        self.server = server
        self.on_change = None           # type: Any
        self.phase = "dead"
        method = None
        self.user = b""
        self.password = b""
        if auth:
            method, self.user, self.password = auth
            if method not in ("pap", "chap"):
                raise ValueError("auth method must be 'pap' or 'chap'")
        proto = 0
        if method == "pap":
            proto = PROTO_PAP
        elif method == "chap":
            proto = PROTO_CHAP
        kw = {"restart_ms": restart_ms, "max_configure": max_configure,
              "max_terminate": max_terminate, "max_failure": max_failure}
        self.lcp = Lcp(emit, self._lcp_event, self.rand, mru=mru, accm=accm, max_rx=mru,
                       auth_pref=0 if server else proto, auth_req=proto if server else 0,
                       **kw)
        self.lcp.on_proto_reject = self._proto_rejected
        self.ipcp = Ipcp(emit, self._ipcp_event, server=server, local_addr=local_addr,
                         peer_addr=peer_addr, dns=dns, **kw)
        self.echo_interval_ms = echo_interval_ms
        self.echo_fails = echo_fails
        self.auth_timeout_ms = auth_timeout_ms
        self.restart_ms = restart_ms
        self.echo_deadline = -1
        self.auth_deadline = -1
        self.auths = []               # the PAP/CHAP objects of this link session
        self.reason = None
        self._termreq_rx = 0
        self._loop_seen = 0
        # counters
        self.rx_proto_reject = 0      # frames of protocols we do not speak (Protocol-Rejected)
        self.rx_unexpected = 0        # frames of a known protocol outside its phase
        self.echo_fail = 0            # dead peers detected by the keepalive
        self.auth_fail = 0
        self.loopback = 0

    def _notify(self, ev, now):
        if self.on_change is not None:
            self.on_change(ev, now)

    # ---- administrative events ----
    def start(self, now):
        """The line is connected (modem said CONNECT): begin LCP."""
        lcp = self.lcp
        if lcp.state != ppp_fsm.INITIAL and lcp.state != ppp_fsm.STARTING:
            lcp.down(now)
        self.reason = None
        self._termreq_rx = lcp.rx_termreq
        self.phase = "establish"
        lcp.open(now)
        lcp.up(now)

    def close(self, now):
        """LCP Terminate-Request; the phase becomes "dead" on Terminate-Ack or timeout."""
        lcp = self.lcp
        if self.reason is None:
            self.reason = "closed"
        lcp.close(now)
        s = lcp.state
        if s == ppp_fsm.CLOSING or s == ppp_fsm.STOPPING:
            self.phase = "terminate"
        elif self.phase != "dead":
            self._dead(now)

    def lower_down(self, now, reason="lower-down"):
        """The line went away (NO CARRIER, hang-up): no more packets can be sent."""
        if self.reason is None:
            self.reason = reason
        self.lcp.down(now)
        self.lcp.close(now)
        self.ipcp.down(now)
        self.ipcp.close(now)
        if self.phase != "dead":
            self._dead(now)

    def _dead(self, now):
        self.phase = "dead"
        self.auths = []
        self.echo_deadline = -1
        self.auth_deadline = -1
        self._notify("dead", now)

    # ---- layer events ----
    def _lcp_event(self, ev, now):
        if ev == "up":
            self._notify("lcp-up", now)
            if self.echo_interval_ms > 0:
                self.echo_deadline = ticks.add(now, self.echo_interval_ms)
            self._begin_auth(now)
        elif ev == "down":
            s = self.lcp.state
            self.phase = "terminate" if s == ppp_fsm.CLOSING or s == ppp_fsm.STOPPING \
                else "establish"
            self.auths = []
            self.echo_deadline = -1
            self.auth_deadline = -1
            self.ipcp.down(now)
            self._notify("lcp-down", now)
        elif ev == "finished":
            if self.reason is None:
                self.reason = ("peer-terminated" if self.lcp.rx_termreq != self._termreq_rx
                               else "negotiation-failed")
            self.ipcp.down(now)
            self.ipcp.close(now)
            self._dead(now)

    def _begin_auth(self, now):
        lcp = self.lcp
        out = self.emit
        kw = {"restart_ms": self.restart_ms}  # type: dict
        auths = []
        p = lcp.auth_peer           # the peer wants us to authenticate
        if p == PROTO_PAP:
            auths.append(ppp_auth.PapClient(out, self.user, self.password, **kw))
        elif p == PROTO_CHAP:
            auths.append(ppp_auth.ChapClient(out, self.user, self.password, **kw))
        p = lcp.auth_ours           # we want the peer to authenticate (server role)
        if p == PROTO_PAP:
            auths.append(ppp_auth.PapServer(out, self.user, self.password, **kw))
        elif p == PROTO_CHAP:
            auths.append(ppp_auth.ChapServer(out, self.user, self.password, self.rand, **kw))
        self.auths = auths
        if lcp.auth_req and not lcp.auth_ours:      # server role: the peer refused to authenticate
            self._auth_failed(now)
            return
        if not auths:
            self._network(now)
            return
        self.phase = "authenticate"
        self.auth_deadline = ticks.add(now, self.auth_timeout_ms)
        for a in auths:
            a.start(now)

    def _check_auth(self, now):
        if self.phase != "authenticate":
            return
        ok = True
        for a in self.auths:
            if a.done < 0:
                self._auth_failed(now)
                return
            if a.done == 0:
                ok = False
        if ok:
            self.auth_deadline = -1
            self._network(now)

    def _auth_failed(self, now):
        self.auth_fail += 1
        if self.reason is None:
            self.reason = "auth-failed"
        self.auth_deadline = -1
        self.lcp.close(now)
        if self.phase != "dead":
            self.phase = "terminate"

    def _network(self, now):
        self.phase = "network"
        self.ipcp.open(now)
        self.ipcp.up(now)

    def _ipcp_event(self, ev, now):
        if ev == "up":
            self.phase = "running"
            self._notify("ip-up", now)
        elif ev == "down":
            if self.phase == "running":
                self.phase = "network"
            self._notify("ip-down", now)
        elif ev == "finished":
            # no network protocol left: close the link (as pppd does)
            if self.lcp.opened():
                if self.reason is None:
                    self.reason = "ipcp-failed"
                self.lcp.close(now)
                self.phase = "terminate"

    def _proto_rejected(self, proto, now):
        if proto == PROTO_IPCP:
            self.ipcp.protocol_rejected(now)
        elif proto == PROTO_PAP or proto == PROTO_CHAP:
            if self.phase == "authenticate":
                self._auth_failed(now)

    # ---- input ----
    def input(self, proto, buf, off, n, now):
        """One frame's information field buf[off:off+n] of a non-IPv4 protocol."""
        lcp = self.lcp
        if proto == PROTO_LCP:
            lcp.input(buf, off, n, now)
            if lcp.loopback != self._loop_seen:
                self._loop_seen = lcp.loopback
                self.loopback += 1
                if self.reason is None:
                    self.reason = "loopback"
                lcp.close(now)
                self.phase = "terminate"
            return
        if not lcp.opened():
            self.rx_unexpected += 1
            return
        if proto == PROTO_PAP or proto == PROTO_CHAP:
            used = False
            for a in self.auths:
                if a.proto == proto:
                    a.input(buf, off, n, now)
                    used = True
            if not used:
                self.rx_unexpected += 1
            self._check_auth(now)
        elif proto == PROTO_IPCP:
            if self.phase == "network" or self.phase == "running":
                self.ipcp.input(buf, off, n, now)
            else:
                self.rx_unexpected += 1
        elif proto == PROTO_IP:
            self.rx_unexpected += 1
        else:
            self.rx_proto_reject += 1
            lcp.send_proto_reject(proto, buf, off, n)

    # ---- timers ----
    def poll(self, now):
        """Run every timer that expired; return the next deadline (a tick) or -1."""
        lcp = self.lcp
        ipcp = self.ipcp
        lcp.timer(now)
        ipcp.timer(now)
        if self.phase == "authenticate":
            for a in self.auths:
                a.timer(now)
            self._check_auth(now)
            if self.phase == "authenticate" and ticks.due(now, self.auth_deadline):
                self._auth_failed(now)
        if ticks.due(now, self.echo_deadline) and lcp.opened():
            if lcp.echo_pending >= self.echo_fails:
                self.echo_fail += 1
                self.echo_deadline = -1
                if self.reason is None:
                    self.reason = "echo-timeout"
                lcp.close(now)
                self.phase = "terminate"
            else:
                lcp.send_echo()
                self.echo_deadline = ticks.add(now, self.echo_interval_ms)
        dl = ticks.earlier(ticks.earlier(lcp.deadline, ipcp.deadline),
                           ticks.earlier(self.echo_deadline, self.auth_deadline))
        if self.phase == "authenticate":
            for a in self.auths:
                dl = ticks.earlier(dl, a.deadline)
        return dl
