"""IPCP (RFC 1332) with the RFC 1877 DNS options.

Client (the device): asks for IP-Address 0.0.0.0 and primary/secondary DNS
0.0.0.0 and takes the values the network Configure-Naks back; accepts whatever
address the peer gives itself; rejects IP-Compression-Protocol (no Van Jacobson)
and everything else. Server (back-to-back tests only): Naks the peer to
`peer_addr` and to its DNS servers. Results: `addr`, `peer_addr`, `dns` (list of
4-byte addresses) once the layer is up.
"""
from mptcp.compat import const
from mptcp_net.ppp_fsm import Fsm, CONFACK, CONFNAK, CONFREJ, opt_len

PROTO_IPCP = const(0x8021)
PROTO_IP = const(0x0021)

OPT_ADDRS = const(1)
OPT_COMP = const(2)
OPT_ADDR = const(3)
OPT_DNS1 = const(129)
OPT_NBNS1 = const(130)
OPT_DNS2 = const(131)
OPT_NBNS2 = const(132)

ZERO4 = b"\x00\x00\x00\x00"


class Ipcp(Fsm):
    name = "IPCP"

    def __init__(self, out, notify, server=False, local_addr=None, peer_addr=None,
                 dns=None, **kw):
        """notify(event, now) with "up"/"down"/"started"/"finished". Server role:
        local_addr is requested for ourselves, peer_addr and dns (list of up to two
        4-byte addresses) are handed to the peer."""
        Fsm.__init__(self, PROTO_IPCP, out, **kw)
        self.notify = notify
        self.server = server
        self.cfg_addr = bytes(local_addr) if local_addr else ZERO4
        self.give_addr = bytes(peer_addr) if peer_addr else None
        self.give_dns = [bytes(d) for d in (dns or ())][:2]
        self.w_addr = bytearray(4)
        self.w_dns = [bytearray(4), bytearray(4)]
        self.his_addr = bytearray(4)
        self.reset_request()

    def reset_request(self):
        self.w_addr[0:4] = self.cfg_addr
        self.r_addr = True
        self.w_dns[0][0:4] = ZERO4
        self.w_dns[1][0:4] = ZERO4
        self.r_dns = [not self.server, not self.server]

    def build_request(self, b):
        n = 0
        if self.r_addr:
            b[0] = OPT_ADDR
            b[1] = 6
            b[2:6] = self.w_addr
            n = 6
        for k in range(2):
            if self.r_dns[k]:
                b[n] = OPT_DNS1 if k == 0 else OPT_DNS2
                b[n + 1] = 6
                b[n + 2:n + 6] = self.w_dns[k]
                n += 6
        return n

    def _walk_ok(self, buf, off, n):
        end = off + n
        i = off
        while i < end:
            ln = opt_len(buf, i, end)
            if ln < 0:
                return False
            i += ln
        return True

    def on_nak(self, buf, off, n):
        if not self._walk_ok(buf, off, n):
            return False
        end = off + n
        i = off
        while i < end:
            t = buf[i]
            ln = buf[i + 1]
            if ln == 6:
                if t == OPT_ADDR and not self.server:
                    self.w_addr[0:4] = buf[i + 2:i + 6]
                    self.r_addr = True
                elif (t == OPT_DNS1 or t == OPT_DNS2) and not self.server:
                    k = 0 if t == OPT_DNS1 else 1
                    self.w_dns[k][0:4] = buf[i + 2:i + 6]
                    self.r_dns[k] = True
            i += ln
        return True

    def on_reject(self, buf, off, n):
        if not self._walk_ok(buf, off, n):
            return False
        end = off + n
        i = off
        while i < end:
            t = buf[i]
            if t == OPT_ADDR:
                self.r_addr = False
            elif t == OPT_DNS1:
                self.r_dns[0] = False
            elif t == OPT_DNS2:
                self.r_dns[1] = False
            i += buf[i + 1]
        return True

    def check_request(self, buf, off, n):
        self.his_addr[0:4] = ZERO4
        end = off + n
        i = off
        nak_ok = self.can_nak()
        while i < end:
            ln = opt_len(buf, i, end)
            if ln < 0:
                return -1
            t = buf[i]
            if t == OPT_ADDR and ln == 6:
                a = buf[i + 2:i + 6]
                if self.server and self.give_addr is not None:
                    if bytes(a) != self.give_addr:
                        if nak_ok:
                            self.add_nak_bytes(OPT_ADDR, self.give_addr, 4)
                        else:
                            self.add_rej(buf, i, ln)
                    else:
                        self.his_addr[0:4] = a
                else:
                    self.his_addr[0:4] = a        # the network's own address: take any
            elif self.server and (t == OPT_DNS1 or t == OPT_DNS2) and ln == 6:
                k = 0 if t == OPT_DNS1 else 1
                if k >= len(self.give_dns):
                    self.add_rej(buf, i, ln)
                elif bytes(buf[i + 2:i + 6]) != self.give_dns[k]:
                    if nak_ok:
                        self.add_nak_bytes(t, self.give_dns[k], 4)
                    else:
                        self.add_rej(buf, i, ln)
            else:
                self.add_rej(buf, i, ln)         # IP-Compression (VJ), IP-Addresses, NBNS...
            i += ln
        if self.rlen:
            return CONFREJ
        if self.nlen:
            return CONFNAK
        return CONFACK

    @property
    def addr(self):
        return bytes(self.w_addr) if self.r_addr else ZERO4

    @property
    def peer_addr(self):
        return bytes(self.his_addr)

    @property
    def dns(self):
        out = []
        for k in range(2):
            if self.r_dns[k] and self.w_dns[k] != ZERO4:
                out.append(bytes(self.w_dns[k]))
        return out

    def layer_up(self, now):
        self.notify("up", now)

    def layer_down(self, now):
        self.notify("down", now)

    def layer_started(self, now):
        self.notify("started", now)

    def layer_finished(self, now):
        self.notify("finished", now)
