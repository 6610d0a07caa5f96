"""Golden vectors: every packet the Linux kernel wrote in ../shared/vectors.

- every IPv4/TCP header parses, and its IP header and TCP checksums verify;
- TCP header fields and options agree with scapy's independent dissection;
- every MPTCP option (kind 30) decodes and re-encodes to exactly the same bytes;
- token, IDSN, MP_JOIN HMACs, ADD_ADDR HMAC and DSS checksums recomputed from
  the keys in the capture match what the kernel sent.
"""
import struct

import pytest

from scapy.all import rdpcap, raw
from scapy.layers.inet import IP, TCP

from mptcp import ipv4, tcpwire, mpopts, crypto
from mptcp.errors import OK, name
import hostenv

FILES = ("mpc_nocsum.pcap", "mpc_csum.pcap", "join_addaddr_prio_rmaddr.pcap",
         "fastclose.pcap", "fallback_plain_client.pcap")
SERVER_ADDRS = (bytes([198, 18, 0, 1]), bytes([198, 18, 0, 2]))


def _sum16(b):
    if len(b) & 1:
        b = b + b"\x00"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


class Pkt:
    """One parsed IPv4/TCP packet with its MPTCP options (decoded copies)."""

    def __init__(self, b, scapy_pkt, frame=0):
        self.b = b
        self.frame = frame   # 1-based frame number in the capture
        self.sp = scapy_pkt
        self.ip = ipv4.IPv4Header()
        self.tcp = tcpwire.TcpSegment()
        self.ip_err = ipv4.parse(b, len(b), self.ip)
        self.tcp_err = -1
        self.opts = []   # (raw option bytes, MpOptions)
        if self.ip_err == OK and self.ip.proto == 6:
            self.tcp_err = tcpwire.parse(b, self.ip.hlen, self.ip.total, self.tcp)
            if self.tcp_err == OK:
                for i in range(self.tcp.mp_n):
                    o, n = self.tcp.mp_off[i], self.tcp.mp_len[i]
                    mo = mpopts.MpOptions()
                    e = mpopts.parse(b, o, n, mo)
                    assert e == OK, "%s: %s" % (b[o:o + n].hex(), name(e))
                    self.opts.append((b[o:o + n], mo))

    @property
    def src(self):
        return self.b[12:16]

    @property
    def from_server(self):
        return self.src in SERVER_ADDRS

    @property
    def payload(self):
        return self.b[self.tcp.data_off:self.ip.total]

    def mp(self, subtype):
        return [mo for _, mo in self.opts if mo.subtype == subtype]


def _load(fn):
    out = []
    for i, p in enumerate(rdpcap(str(hostenv.vectors() / fn))):
        if IP not in p:
            continue
        b = bytes(raw(p[IP]))
        out.append(Pkt(b, p[IP], i + 1))
    return out


@pytest.fixture(scope="module")
def caps():
    return {fn: _load(fn) for fn in FILES}


def test_vectors_present(caps):
    for fn in FILES:
        assert len(caps[fn]) > 5, fn


def test_ipv4_tcp_parse_and_checksums(caps):
    n = full = partial = 0
    for fn, pkts in caps.items():
        for p in pkts:
            assert p.ip_err == OK, (fn, name(p.ip_err))
            assert p.ip.total == len(p.b) == p.sp.len
            assert p.ip.hlen == p.sp.ihl * 4 and p.ip.ttl == p.sp.ttl and p.ip.ident == p.sp.id
            assert _sum16(p.b[:p.ip.hlen]) == 0xFFFF
            if p.ip.proto != 6:
                continue
            assert p.tcp_err == OK, (fn, name(p.tcp_err))
            tl = p.ip.total - p.ip.hlen
            ps = ipv4.pseudo_sum(p.b, p.b, 6, tl, p.ip.src, p.ip.dst)
            s = _sum16(p.b[p.ip.hlen:p.ip.total]) + ps
            while s >> 16:
                s = (s & 0xFFFF) + (s >> 16)
            if s == 0xFFFF:
                full += 1
            else:
                # Captured before the veth's checksum offload: the field holds the
                # kernel's pseudo-header sum (CHECKSUM_PARTIAL), which must equal ours.
                assert p.tcp.csum == ps, (fn, "bad TCP checksum")
                partial += 1
            # the writer re-creates the fixed header and the IP header byte for byte
            h = bytearray(20)
            t = p.tcp
            tcpwire.write_header(h, 0, t.sport, t.dport, t.seq, t.ack, t.flags, t.window,
                                 t.hlen - 20)
            tcpwire.set_csum(h, 0, t.csum)
            assert bytes(h) == p.b[p.ip.hlen:p.ip.hlen + 20]
            if p.ip.hlen == 20:
                ih = bytearray(20)
                ipv4.write(ih, 0, p.b[12:16], p.b[16:20], 6, tl, p.ip.ident, p.ip.ttl, p.ip.df)
                ih[1] = p.b[1]   # TOS/ECN is not ours to choose
                ih[10] = ih[11] = 0
                c = 0xFFFF - _sum16(bytes(ih))
                ih[10], ih[11] = c >> 8, c & 0xFF
                assert bytes(ih) == p.b[:20]
            n += 1
    assert n > 4000 and full >= 10 and partial + full == n


def test_tcp_fields_match_scapy(caps):
    for fn, pkts in caps.items():
        for p in pkts:
            if p.ip.proto != 6:
                continue
            st, t = p.sp[TCP], p.tcp
            assert (t.sport, t.dport, t.seq, t.ack) == (st.sport, st.dport, st.seq, st.ack)
            assert t.flags == int(st.flags) and t.window == st.window
            assert t.hlen == st.dataofs * 4 and t.data_len == len(bytes(st.payload))
            opts = dict((k, v) for k, v in st.options if isinstance(k, str))
            assert t.mss == opts.get("MSS", 0)
            assert t.wscale == opts.get("WScale", -1)
            assert t.sackp == ("SAckOK" in opts)
            if "Timestamp" in opts:
                assert t.ts_present and (t.ts_val, t.ts_ecr) == opts["Timestamp"]
            else:
                assert not t.ts_present
            if "SAck" in opts:
                blocks = list(opts["SAck"])
                assert t.sack_blocks[:2 * t.sack_n] == blocks[:8]
            else:
                assert t.sack_n == 0
            n_mp = sum(1 for k, _ in st.options if k in (30, "MPTCP", "Multipath TCP"))
            assert t.mp_n == n_mp or n_mp == 0


def test_every_mptcp_option_reencodes_identically(caps):
    seen = set()
    for fn, pkts in caps.items():
        for p in pkts:
            for raw_opt, mo in p.opts:
                out = bytearray(40)
                n = mpopts.put(out, 0, mo)
                assert bytes(out[:n]) == raw_opt, (fn, raw_opt.hex(), out[:n].hex())
                seen.add(mo.subtype)
    assert seen == {mpopts.MP_CAPABLE, mpopts.MP_JOIN, mpopts.DSS, mpopts.ADD_ADDR,
                    mpopts.REMOVE_ADDR, mpopts.MP_PRIO, mpopts.MP_FASTCLOSE, mpopts.MP_TCPRST}


def _keys(pkts):
    """(client key, server key) from the third ACK's MP_CAPABLE."""
    for p in pkts:
        if not p.from_server and not (p.tcp.flags & tcpwire.SYN):
            for mo in p.mp(mpopts.MP_CAPABLE):
                if mo.rkey is not None:
                    return mo.skey, mo.rkey
    raise AssertionError("no MP_CAPABLE with both keys")


def _check_keys_echoed(pkts, ck, sk):
    syn = [mo for p in pkts for mo in p.mp(mpopts.MP_CAPABLE) if p.tcp.flags == tcpwire.SYN]
    synack = [mo for p in pkts for mo in p.mp(mpopts.MP_CAPABLE)
              if p.tcp.flags == tcpwire.SYN | tcpwire.ACK]
    assert len(syn) == 1 and syn[0].length == 4 and syn[0].version == 1
    assert len(synack) == 1 and synack[0].skey == sk


def _first_dsn(pkts, from_server):
    """DSN of the first mapping (MP_CAPABLE with data implies IDSN+1)."""
    for p in pkts:
        if p.from_server != from_server or p.tcp.data_len == 0:
            continue
        for mo in p.mp(mpopts.MP_CAPABLE):
            if mo.dll is not None:
                return None   # first data rides on MP_CAPABLE: DSN implicit
        for mo in p.mp(mpopts.DSS):
            if mo.dss_flags & mpopts.DSS_MAP:
                return mo.dsn
    return -1


# How each capture's first data byte per direction is mapped (client, server):
# None = carried by MP_CAPABLE (DSN implicit), -1 = no data that way.
FIRST_DATA = {
    "mpc_nocsum.pcap": {False: None, True: -1},
    "mpc_csum.pcap": {False: None, True: -1},
    "join_addaddr_prio_rmaddr.pcap": {False: "idsn+1", True: -1},
    "fastclose.pcap": {False: None, True: "idsn+1"},
}


@pytest.mark.parametrize("fn", ["mpc_nocsum.pcap", "mpc_csum.pcap",
                                "join_addaddr_prio_rmaddr.pcap", "fastclose.pcap"])
def test_idsn_and_data_ack(caps, fn):
    pkts = caps[fn]
    ck, sk = _keys(pkts)
    _check_keys_echoed(pkts, ck, sk)
    c_idsn, s_idsn = crypto.key_idsn(ck), crypto.key_idsn(sk)
    mask = (1 << 64) - 1
    for srv, idsn in ((False, c_idsn), (True, s_idsn)):
        dsns = [mo.dsn for p in pkts if p.from_server == srv for mo in p.mp(mpopts.DSS)
                if mo.dss_flags & mpopts.DSS_MAP]
        if dsns:   # every mapping lies after the IDSN (a DATA_FIN alone may be at IDSN+1)
            assert min((d - idsn) & mask for d in dsns) >= 1
        # first data: a DSS mapping at exactly IDSN+1, or implicit in MP_CAPABLE
        first = _first_dsn(pkts, srv)
        want = FIRST_DATA[fn][srv]
        assert first == (want if want != "idsn+1" else (idsn + 1) & mask), (fn, srv)
    # the server's first DATA_ACK acknowledges relative to the client's IDSN
    acks = [(mo.data_ack, mo.data_ack8) for p in pkts if p.from_server
            for mo in p.mp(mpopts.DSS) if mo.dss_flags & mpopts.DSS_ACK]
    assert acks
    a, a8 = acks[0]
    base = c_idsn if a8 else c_idsn & 0xFFFFFFFF
    assert 1 <= (a - base) & (mask if a8 else 0xFFFFFFFF) <= 1 << 24
    # the client's DATA_ACKs acknowledge the server's data space (IDSN+1 if no data)
    cacks = [(mo.data_ack, mo.data_ack8) for p in pkts if not p.from_server
             for mo in p.mp(mpopts.DSS) if mo.dss_flags & mpopts.DSS_ACK]
    a, a8 = cacks[0]
    base = s_idsn if a8 else s_idsn & 0xFFFFFFFF
    assert 1 <= (a - base) & (mask if a8 else 0xFFFFFFFF) <= 1 << 24


def test_join_token_and_hmacs(caps):
    pkts = caps["join_addaddr_prio_rmaddr.pcap"]
    ck, sk = _keys(pkts)
    token = crypto.key_token(sk)
    joins = {}
    for p in pkts:
        for mo in p.mp(mpopts.MP_JOIN):
            t = p.tcp
            four = (p.b[12:16], t.sport, p.b[16:20], t.dport)
            if p.from_server:
                four = (four[2], four[3], four[0], four[1])
            joins.setdefault(four, {})[mo.length] = mo
    assert len(joins) == 2
    for four, j in joins.items():
        syn, synack, ack = j[12], j[16], j[24]
        assert syn.token == token
        r_a, r_b = syn.nonce, synack.nonce
        assert synack.hmac == crypto.join_hmac(sk, ck, r_b, r_a)[:8]
        assert ack.hmac == crypto.join_hmac(ck, sk, r_a, r_b)[:20]
    # one join is to the announced address, one from the second link
    assert {f[2] for f in joins} == {bytes([198, 18, 0, 2]), bytes([198, 18, 0, 1])}
    assert {f[0] for f in joins} == {bytes([198, 18, 1, 2]), bytes([198, 18, 2, 2])}


def test_add_addr_hmac_and_echo(caps):
    pkts = caps["join_addaddr_prio_rmaddr.pcap"]
    ck, sk = _keys(pkts)
    ann = [mo for p in pkts if p.from_server for mo in p.mp(mpopts.ADD_ADDR)]
    echo = [mo for p in pkts if not p.from_server for mo in p.mp(mpopts.ADD_ADDR)]
    assert len(ann) == 1 and not ann[0].echo and ann[0].addr == bytes([198, 18, 0, 2])
    a = ann[0]
    assert a.hmac == crypto.add_addr_hmac(sk, ck, a.addr_id, a.addr, a.port)
    assert len(echo) == 1 and echo[0].echo and echo[0].hmac is None
    assert (echo[0].addr, echo[0].addr_id, echo[0].port) == (a.addr, a.addr_id, a.port)


def test_prio_rmaddr_tcprst_fastclose(caps):
    pkts = caps["join_addaddr_prio_rmaddr.pcap"]
    prio = [mo for p in pkts for mo in p.mp(mpopts.MP_PRIO)]
    assert len(prio) == 1 and prio[0].backup and prio[0].length == 3
    rm = [mo for p in pkts if p.from_server for mo in p.mp(mpopts.REMOVE_ADDR)]
    ann = [mo for p in pkts if p.from_server for mo in p.mp(mpopts.ADD_ADDR)]
    assert len(rm) == 1 and rm[0].ids == bytes([ann[0].addr_id])
    rst = [(p, mo) for p in pkts for mo in p.mp(mpopts.MP_TCPRST)]
    assert len(rst) == 1 and rst[0][0].tcp.flags & tcpwire.RST
    fc = caps["fastclose.pcap"]
    ck, sk = _keys(fc)
    close = [(p, mo) for p in fc for mo in p.mp(mpopts.MP_FASTCLOSE)]
    assert len(close) == 1
    p, mo = close[0]
    assert p.tcp.flags & tcpwire.RST and not p.from_server
    assert mo.rkey == sk   # the receiver's key
    assert p.mp(mpopts.MP_TCPRST)


def test_fallback_has_no_mptcp_from_server(caps):
    pkts = caps["fallback_plain_client.pcap"]
    assert all(not p.opts for p in pkts if p.from_server)
    assert all(not p.opts for p in pkts)


def test_dss_checksums(caps):
    """Recompute every DSS checksum of mpc_csum over the reassembled subflow stream."""
    pkts = caps["mpc_csum.pcap"]
    ck, sk = _keys(pkts)
    for from_server, key in ((False, ck), (True, sk)):
        isn = None
        stream = {}
        maps = []
        for p in pkts:
            if p.from_server != from_server:
                continue
            t = p.tcp
            if t.flags & tcpwire.SYN:
                isn = t.seq
                continue
            if t.data_len:
                stream[(t.seq - isn) & 0xFFFFFFFF] = p.payload
            for mo in p.mp(mpopts.MP_CAPABLE):
                if mo.dll is not None:
                    assert mo.csum is not None   # checksums negotiated (A flag)
                    maps.append(((crypto.key_idsn(key) + 1) & ((1 << 64) - 1), 1, mo.dll,
                                 mo.csum))
            for mo in p.mp(mpopts.DSS):
                if mo.dss_flags & mpopts.DSS_MAP:
                    assert mo.csum is not None and mo.dsn8
                    maps.append((mo.dsn, mo.ssn, mo.dll, mo.csum))
        data = bytearray()
        for rel in sorted(stream):
            seg = stream[rel]
            if rel - 1 < len(data):
                data[rel - 1:rel - 1 + len(seg)] = seg
            else:
                assert rel - 1 == len(data)
                data += seg
        checked = 0
        for dsn, ssn, dll, cs in maps:
            if ssn == 0:   # DATA_FIN alone: no payload
                payload = b""
            else:
                payload = bytes(data[ssn - 1:ssn - 1 + dll])
                assert len(payload) == dll
            s = mpopts.dss_csum_sum(dsn, ssn, dll) + _sum16(payload) + cs
            while s >> 16:
                s = (s & 0xFFFF) + (s >> 16)
            assert s == 0xFFFF, (hex(dsn), ssn, dll, hex(cs))
            checked += 1
        if not from_server:
            assert checked >= 2


# ---------------------------------------------------------------- tshark as a second oracle

TSHARK_FIELDS = ("subtype", "rawdataack", "rawdataseqno", "subflowseqno", "datalvllen",
                 "checksum", "sendkey", "recvkey", "recvtok", "sendrand", "sendtrunchmac",
                 "sendhmac", "addrid", "ipv4", "port", "addaddrtrunchmac", "echo", "rst_reason")


def _u64(b):
    return str(int.from_bytes(b, "big"))


def _ours(p):
    """Our decoded values, rendered like tshark's -T fields (one list per field)."""
    v = {f: [] for f in TSHARK_FIELDS}
    for _, mo in p.opts:
        st = mo.subtype
        v["subtype"].append(str(st))
        if st == mpopts.MP_CAPABLE:
            if mo.skey is not None:
                v["sendkey"].append(_u64(mo.skey))
            if mo.rkey is not None:
                v["recvkey"].append(_u64(mo.rkey))
            if mo.dll is not None:
                v["datalvllen"].append(str(mo.dll))
            if mo.csum is not None:
                v["checksum"].append("0x%04x" % mo.csum)
        elif st == mpopts.DSS:
            if mo.dss_flags & mpopts.DSS_ACK:
                v["rawdataack"].append(str(mo.data_ack))
            if mo.dss_flags & mpopts.DSS_MAP:
                v["rawdataseqno"].append(str(mo.dsn))
                v["subflowseqno"].append(str(mo.ssn))
                v["datalvllen"].append(str(mo.dll))
                # tshark 4.0 does not show the DSS checksum (checked by
                # test_dss_checksums instead)
        elif st == mpopts.MP_JOIN:
            if mo.length == 12:
                v["addrid"].append(str(mo.addr_id))
                v["recvtok"].append(str(mo.token))
                v["sendrand"].append(_u64(mo.nonce))
            elif mo.length == 16:
                v["addrid"].append(str(mo.addr_id))
                v["sendtrunchmac"].append(_u64(mo.hmac))
                v["sendrand"].append(_u64(mo.nonce))
            else:
                v["sendhmac"].append(mo.hmac.hex())
        elif st == mpopts.ADD_ADDR:
            v["echo"].append(str(int(mo.echo)))
            v["addrid"].append(str(mo.addr_id))
            v["ipv4"].append(".".join(str(x) for x in mo.addr))
            if mo.has_port:
                v["port"].append(str(mo.port))
            if mo.hmac is not None:
                v["addaddrtrunchmac"].append(_u64(mo.hmac))
        elif st == mpopts.REMOVE_ADDR:
            v["addrid"].extend(str(x) for x in mo.ids)
        elif st == mpopts.MP_FASTCLOSE:
            v["recvkey"].append(_u64(mo.rkey))
        elif st == mpopts.MP_TCPRST:
            v["rst_reason"].append("0x%02x" % mo.reason)
    return {f: ",".join(x) for f, x in v.items()}


@pytest.mark.parametrize("fn", FILES)
def test_options_match_tshark(caps, fn):
    import subprocess
    hostenv.tshark()
    cmd = ["tshark", "-r", str(hostenv.vectors() / fn), "-o", "mptcp.analyze_mptcp:FALSE", "-T", "fields",
           "-E", "occurrence=a", "-E", "separator=|", "-e", "frame.number"]
    for f in TSHARK_FIELDS:
        cmd += ["-e", "tcp.options.mptcp." + f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rows = {}
    for line in out.splitlines():
        cols = line.split("|")
        rows[int(cols[0])] = dict(zip(TSHARK_FIELDS, cols[1:]))
    n = 0
    for p in caps[fn]:
        if p.ip.proto != 6:
            continue
        theirs = rows[p.frame]
        ours = _ours(p)
        assert ours == theirs, (fn, p.frame, {f: (ours[f], theirs[f]) for f in TSHARK_FIELDS
                                              if ours[f] != theirs[f]})
        n += 1
    assert n > 10
