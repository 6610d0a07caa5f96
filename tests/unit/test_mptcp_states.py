"""MPTCP v1 connection level, one endpoint, exact segments (RFC 8684): MP_CAPABLE in both
roles, DSS mappings and DATA_ACK, DATA_FIN both ways, fallback, MP_FAIL, MP_FASTCLOSE.

The device is a Stack driven only through its packet interface; the test is its
peer (tests/unit/segtest.py). DSNs are relative to the IDSN of the side whose data
they number; the device's key is read from its SYN/ACK or third ACK.
"""
from segtest import (Peer, Mpc, Dss, send, expect, expect_nothing, expect_deadline, recv,
                     drain, at, passive_open, active_open, write_all, read_all, pattern,
                     SYN, ACK, FIN, RST, PSH, T0, MP)

H = MP.CAP_H
A = MP.CAP_A


def _est(csum=False, **kw):
    """Passive MPTCP connection: SYN, SYN/ACK, third ACK with both keys."""
    t = Peer(**kw)
    passive_open(t, mptcp=True, csum=csum)
    send(t, 1, 1, ACK, mpc=Mpc(H | (A if csum else 0), t.peer_key, t.dev_key))
    c = t.st.accept()
    assert c is not None and c.mptcp and c.state == "ESTABLISHED"
    t.conn = c
    return t, c


def _est_active(csum=False, peer_csum=False):
    """Active MPTCP connection up to the third ACK (device key learned from it)."""
    t = Peer()
    c, syn = active_open(t, mptcp=True, csum=csum)
    send(t, 0, 1, SYN | ACK, mss=1460, mpc=Mpc(H | (A if peer_csum else 0), t.peer_key))
    s = recv(t)
    assert s is not None and "mpc" in s.opts, s
    t.set_dev_key(s.opts["mpc"].skey)
    return t, c, s


# ---------------------------------------------------------------- MP_CAPABLE, passive
def test_passive_synack_carries_mp_capable_with_key():
    t = Peer()
    s = passive_open(t, mptcp=True)
    assert s.opts == {"mss": 1460, "mpc": Mpc(H, t.dev_key)}
    assert len(t.dev_key) == 8
    assert t.ctr("MPCapableSYNRX") == 1
    expect_deadline(t, T0 + 1000)


def test_passive_synack_sets_a_when_peer_asks_checksums():
    t = Peer()
    s = passive_open(t, mptcp=True, csum=True, listen_mptcp=True)
    assert s.opts["mpc"] == Mpc(H | A, t.dev_key)


def test_passive_listener_csum_sets_a_even_if_peer_does_not():
    t = Peer()
    t.st.listen(80, mptcp=True, csum=True)
    send(t, 0, None, SYN, mss=1460, mpc=Mpc(H))
    s = recv(t)
    t.set_dev_key(s.opts["mpc"].skey)
    assert s.opts["mpc"] == Mpc(H | A, t.dev_key)


def test_passive_third_ack_with_keys_establishes_mptcp():
    t, c = _est()
    expect_nothing(t)
    expect_deadline(t, -1)
    assert t.ctr("MPCapableACKRX") == 1 and t.ctr("MPCapableFallbackACK") == 0


def test_passive_syn_without_mp_capable_gets_plain_synack():
    t = Peer()
    s = passive_open(t, mptcp=False, listen_mptcp=True)
    assert s.opts == {"mss": 1460}
    send(t, 1, 1, ACK)
    c = t.st.accept()
    assert c is not None and not c.mptcp


def test_passive_mp_capable_version_0_gets_plain_synack():
    """RFC 8684 3.1: only version 1 here; an unknown version falls back to TCP."""
    t = Peer()
    t.st.listen(80, mptcp=True)
    send(t, 0, None, SYN, mss=1460, mpc=Mpc(H, version=0))
    expect(t, 0, 1, SYN | ACK, mss=1460)


def test_passive_plain_listener_ignores_mp_capable():
    t = Peer()
    t.st.listen(80, mptcp=False)
    send(t, 0, None, SYN, mss=1460, mpc=Mpc(H))
    expect(t, 0, 1, SYN | ACK, mss=1460)


def test_passive_third_ack_without_mp_capable_falls_back():
    t = Peer()
    passive_open(t, mptcp=True)
    send(t, 1, 1, ACK)
    c = t.st.accept()
    assert c is not None and not c.mptcp
    assert t.ctr("MPCapableFallbackACK") == 1
    write_all(c, b"plain")
    expect(t, 1, 1, ACK | PSH, payload=b"plain")


def test_passive_first_data_with_mp_capable_dll_is_delivered():
    """RFC 8684 3.1: the client's first data repeats MP_CAPABLE with the data-level
    length (here the third ACK was lost)."""
    t = Peer()
    passive_open(t, mptcp=True)
    send(t, 1, 1, ACK | PSH, payload=b"hello", mpc=Mpc(H, t.peer_key, t.dev_key, dll=5))
    c = t.st.accept()
    assert c is not None and c.mptcp
    at(t, T0 + 40)
    expect(t, 1, 6, ACK, window=8187, dss=Dss(ack=6))
    assert read_all(c) == b"hello"


# ---------------------------------------------------------------- MP_CAPABLE, active
def test_active_syn_carries_mp_capable():
    t = Peer()
    c, syn = active_open(t, mptcp=True)
    assert syn.opts["mpc"] == Mpc(H)
    assert t.ctr("MPCapableSYNTX") == 1


def test_active_syn_with_checksums_sets_a():
    t = Peer()
    c, syn = active_open(t, mptcp=True, csum=True)
    assert syn.opts["mpc"] == Mpc(H | A)


def test_active_third_ack_carries_both_keys():
    t, c, s = _est_active()
    assert s.seq == 1 and s.ack == 1 and s.flags == ACK and s.payload == b""
    assert s.opts == {"mpc": Mpc(H, t.dev_key, t.peer_key)}
    assert c.mptcp and c.state == "ESTABLISHED"
    assert t.ctr("MPCapableSYNACKRX") == 1
    expect_nothing(t)


def test_active_first_data_mp_capable_dll_then_dss():
    """First data: MP_CAPABLE with keys and DLL; the next segment waits until the
    peer's DSS confirms, then it carries a DSS mapping."""
    t, c, s = _est_active()
    data = pattern(2000)
    write_all(c, data)
    expect(t, 1, 1, ACK, payload=data[:1432], mpc=Mpc(H, t.dev_key, t.peer_key, dll=1432))
    expect_nothing(t)
    send(t, 1, 1433, ACK, dss=Dss(ack=1433))
    expect(t, 1433, 1, ACK | PSH, payload=data[1432:],
           dss=Dss(ack=1, dsn=1433, ssn=1433, dll=568))
    expect_nothing(t)


def test_active_first_data_with_checksum():
    t, c, s = _est_active(peer_csum=True)
    assert c.csum
    write_all(c, b"abc")
    expect(t, 1, 1, ACK | PSH, payload=b"abc",
           mpc=Mpc(H | A, t.dev_key, t.peer_key, dll=3, csum=True))


def test_active_synack_without_mp_capable_falls_back():
    t = Peer()
    c, syn = active_open(t, mptcp=True)
    send(t, 0, 1, SYN | ACK, mss=1460)
    expect(t, 1, 1, ACK)
    assert not c.mptcp and c.state == "ESTABLISHED"
    assert t.ctr("MPCapableFallbackSYNACK") == 1
    write_all(c, b"plain")
    expect(t, 1, 1, ACK | PSH, payload=b"plain")


# ---------------------------------------------------------------- DSS in and out
def test_dss_mapping_received_delivered_and_data_acked():
    t, c = _est()
    send(t, 1, 1, ACK | PSH, payload=b"hello", dss=Dss(ack=1, dsn=1, ssn=1, dll=5))
    expect_nothing(t)
    expect_deadline(t, T0 + 40)
    at(t, T0 + 40)
    expect(t, 1, 6, ACK, window=8187, dss=Dss(ack=6))
    assert read_all(c) == b"hello"


def test_dss_4_byte_fields_accepted():
    t, c = _est()
    send(t, 1, 1, ACK, payload=b"abcd", dss=Dss(ack=1, dsn=1, ssn=1, dll=4, ack8=False,
                                                dsn8=False))
    at(t, T0 + 40)
    expect(t, 1, 5, ACK, window=8188, dss=Dss(ack=5))
    assert read_all(c) == b"abcd"


def test_a_4_byte_data_ack_releases_the_data_it_covers():
    """A 4-byte DATA_ACK carries the low 32 bits of the 64-bit DSN: the device completes it
    from its own IDSN's high half (RFC 8684 3.3.1) and frees the data it acknowledges."""
    t, c, s = _est_active()
    data = pattern(2000)
    write_all(c, data)
    expect(t, 1, 1, ACK, payload=data[:1432], mpc=Mpc(H, t.dev_key, t.peer_key, dll=1432))
    send(t, 1, 1433, ACK, dss=Dss(ack=1433, ack8=False))
    expect(t, 1433, 1, ACK | PSH, payload=data[1432:],
           dss=Dss(ack=1, dsn=1433, ssn=1433, dll=568))
    send(t, 1, 2001, ACK, dss=Dss(ack=2001, ack8=False))
    expect_nothing(t)
    assert c.data_ack == 2001 and c.snd_base == 2001, (c.data_ack, c.snd_base)


def test_dss_mapping_over_two_segments():
    t, c = _est()
    data = pattern(2000)
    send(t, 1, 1, ACK, payload=data[:1000], dss=Dss(ack=1, dsn=1, ssn=1, dll=2000))
    send(t, 1001, 1, ACK, payload=data[1000:])
    expect(t, 1, 2001, ACK, window=8192 - 2000, dss=Dss(ack=2001))
    assert read_all(c) == data


def test_dss_mapping_with_data_level_offset():
    """The mapping maps subflow bytes to any DSN (here the peer's data starts at DSN 1
    but subflow byte 1 carries DSN 1 and subflow byte 4 DSN 4 through a second mapping)."""
    t, c = _est()
    send(t, 1, 1, ACK, payload=b"abc", dss=Dss(ack=1, dsn=1, ssn=1, dll=3))
    send(t, 4, 1, ACK, payload=b"def", dss=Dss(ack=1, dsn=4, ssn=4, dll=3))
    expect(t, 1, 7, ACK, window=8186, dss=Dss(ack=7))
    assert read_all(c) == b"abcdef"


def test_dss_mapping_out_of_order_at_data_level():
    """Data arriving in subflow order but with DSNs swapped lands in DSN order."""
    t, c = _est()
    send(t, 1, 1, ACK, payload=b"def", dss=Dss(ack=1, dsn=4, ssn=1, dll=3))
    send(t, 4, 1, ACK, payload=b"abc", dss=Dss(ack=1, dsn=1, ssn=4, dll=3))
    expect(t, 1, 7, ACK, window=8186, dss=Dss(ack=7))
    assert read_all(c) == b"abcdef"


def test_dss_retransmitted_mapping_delivered_once():
    t, c = _est()
    send(t, 1, 1, ACK, payload=b"abc", dss=Dss(ack=1, dsn=1, ssn=1, dll=3))
    at(t, T0 + 40)
    expect(t, 1, 4, ACK, window=8189, dss=Dss(ack=4))
    send(t, 1, 1, ACK, payload=b"abc", dss=Dss(ack=1, dsn=1, ssn=1, dll=3))
    expect(t, 1, 4, ACK, window=8189, dss=Dss(ack=4))
    assert read_all(c) == b"abc"


def test_data_outside_its_mapping_dropped():
    t, c = _est()
    send(t, 1, 1, ACK, payload=b"abcdef", dss=Dss(ack=1, dsn=1, ssn=1, dll=3))
    assert read_all(c) == b""
    assert t.ctr("DSSNotMatching") == 1


def test_dss_sent_mapping_and_data_ack_stops_rto():
    t, c = _est()
    write_all(c, pattern(3000))
    expect(t, 1, 1, ACK, payload=pattern(1432), dss=Dss(ack=1, dsn=1, ssn=1, dll=1432))
    expect(t, 1433, 1, ACK, payload=pattern(1432, 1432),
           dss=Dss(ack=1, dsn=1433, ssn=1433, dll=1432))
    expect(t, 2865, 1, ACK | PSH, payload=pattern(136, 2864),
           dss=Dss(ack=1, dsn=2865, ssn=2865, dll=136))
    expect_nothing(t)
    expect_deadline(t, T0 + 200)
    send(t, 1, 3001, ACK, dss=Dss(ack=3001))
    expect_nothing(t)
    expect_deadline(t, -1)


def test_dss_retransmission_repeats_the_original_mapping():
    t, c = _est()
    write_all(c, b"abc")
    expect(t, 1, 1, ACK | PSH, payload=b"abc", dss=Dss(ack=1, dsn=1, ssn=1, dll=3))
    at(t, T0 + 200)
    expect(t, 1, 1, ACK | PSH, payload=b"abc", dss=Dss(ack=1, dsn=1, ssn=1, dll=3))


def test_dss_checksum_sent_when_negotiated():
    t, c = _est(csum=True)
    assert c.csum
    write_all(c, b"abcde")
    expect(t, 1, 1, ACK | PSH, payload=b"abcde",
           dss=Dss(ack=1, dsn=1, ssn=1, dll=5, csum=True))


def test_dss_checksum_good_data_delivered():
    t, c = _est(csum=True)
    send(t, 1, 1, ACK, payload=b"hello", dss=Dss(ack=1, dsn=1, ssn=1, dll=5, csum=True))
    at(t, T0 + 40)
    expect(t, 1, 6, ACK, window=8187, dss=Dss(ack=6))
    assert read_all(c) == b"hello"
    assert t.ctr("DataCsumErr") == 0


def test_dss_without_checksum_when_required_dropped():
    t, c = _est(csum=True)
    send(t, 1, 1, ACK, payload=b"hello", dss=Dss(ack=1, dsn=1, ssn=1, dll=5))
    assert read_all(c) == b""
    assert t.ctr("DataCsumErr") == 1


# ---------------------------------------------------------------- DATA_FIN
def test_data_fin_received_acked_at_once_and_eof():
    t, c = _est()
    send(t, 1, 1, ACK | PSH, payload=b"bye", dss=Dss(ack=1, dsn=1, ssn=1, dll=4, fin=True))
    expect(t, 1, 4, ACK, window=8189, dss=Dss(ack=5))
    expect_nothing(t)
    assert c.state == "ESTABLISHED" and not c.eof
    assert read_all(c) == b"bye" and c.eof
    assert t.ctr("DataFinRx") == 1


def test_data_fin_alone_received():
    """A DATA_FIN on a segment without data: mapping SSN 0, length 1 (RFC 8684 3.3.3)."""
    t, c = _est()
    send(t, 1, 1, ACK, payload=b"abc", dss=Dss(ack=1, dsn=1, ssn=1, dll=3))
    send(t, 4, 1, ACK, dss=Dss(ack=1, dsn=4, ssn=0, dll=1, fin=True))
    expect(t, 1, 4, ACK, window=8189, dss=Dss(ack=5))
    assert read_all(c) == b"abc" and c.eof


def test_data_fin_sent_and_retransmitted_with_backoff():
    t, c = _est()
    c.shutdown_write()
    expect(t, 1, 1, ACK, dss=Dss(ack=1, dsn=1, ssn=0, dll=1, fin=True))
    expect_nothing(t)
    expect_deadline(t, T0 + 200)
    at(t, T0 + 200)
    expect(t, 1, 1, ACK, dss=Dss(ack=1, dsn=1, ssn=0, dll=1, fin=True))
    expect_nothing(t)
    expect_deadline(t, T0 + 600)
    at(t, T0 + 600)
    expect(t, 1, 1, ACK, dss=Dss(ack=1, dsn=1, ssn=0, dll=1, fin=True))
    expect_deadline(t, T0 + 1400)
    assert t.ctr("DataFinTx") == 3 and t.ctr("MPTCPRetrans") == 2


def test_data_fin_after_data_numbers_past_it():
    t, c = _est()
    write_all(c, b"abc")
    c.shutdown_write()
    expect(t, 1, 1, ACK | PSH, payload=b"abc", dss=Dss(ack=1, dsn=1, ssn=1, dll=3))
    expect(t, 4, 1, ACK, dss=Dss(ack=1, dsn=4, ssn=0, dll=1, fin=True))
    expect_nothing(t)
    send(t, 1, 4, ACK, dss=Dss(ack=5))
    expect_nothing(t)
    expect_deadline(t, -1)


def test_data_fin_acked_stops_its_timer():
    t, c = _est()
    c.shutdown_write()
    expect(t, 1, 1, ACK, dss=Dss(ack=1, dsn=1, ssn=0, dll=1, fin=True))
    send(t, 1, 1, ACK, dss=Dss(ack=2))
    expect_nothing(t)
    expect_deadline(t, -1)
    assert c.state == "ESTABLISHED"


def test_close_both_data_fins_then_subflow_fin_and_time_wait():
    t, c = _est()
    send(t, 1, 1, ACK, dss=Dss(ack=1, dsn=1, ssn=0, dll=1, fin=True))
    expect(t, 1, 1, ACK, dss=Dss(ack=2))
    assert c.eof
    c.close()
    expect(t, 1, 1, ACK, dss=Dss(ack=2, dsn=1, ssn=0, dll=1, fin=True))
    send(t, 1, 1, ACK, dss=Dss(ack=2))                 # our DATA_FIN acked
    expect(t, 1, 1, ACK | FIN, dss=Dss(ack=2))        # both done: the subflow closes
    assert c.state == "FIN_WAIT_1"
    send(t, 1, 2, ACK | FIN, dss=Dss(ack=2))
    expect(t, 2, 2, ACK, dss=Dss(ack=2))
    assert c.state == "TIME_WAIT"
    expect_deadline(t, t.now + 1000)


# ---------------------------------------------------------------- fallback
def test_data_without_dss_falls_back():
    """RFC 8684 3.7: the first data has no mapping: continue as plain TCP."""
    t, c = _est()
    send(t, 1, 1, ACK | PSH, payload=b"plain")
    assert not c.mptcp
    assert t.ctr("DSSFallback") == 1
    at(t, T0 + 40)
    expect(t, 1, 6, ACK, window=8187)
    write_all(c, b"back")
    expect(t, 1, 6, ACK | PSH, window=8187, payload=b"back")
    assert read_all(c) == b"plain"


def test_our_data_acked_without_dss_falls_back():
    """Client: our first data (MP_CAPABLE + data) is ACKed but the peer never sent a DSS:
    options are stripped; fall back (RFC 8684 3.7)."""
    t, c, s = _est_active()
    write_all(c, b"abc")
    s = recv(t)
    assert s is not None and s.payload == b"abc" and "mpc" in s.opts, s
    send(t, 1, 4, ACK)
    assert not c.mptcp
    assert t.ctr("DSSFallback") == 1
    write_all(c, b"def")
    expect(t, 4, 1, ACK | PSH, payload=b"def")


def test_server_fully_established_does_not_fall_back_on_an_ack_without_dss():
    """Server: after the MP_CAPABLE third ACK it is fully established (Linux); an ACK of
    its data without a DSS (one stripped pure ACK) must not make it fall back alone."""
    t, c = _est()
    write_all(c, b"abc")
    expect(t, 1, 1, ACK | PSH, payload=b"abc", dss=Dss(ack=1, dsn=1, ssn=1, dll=3))
    send(t, 1, 4, ACK)
    assert c.mptcp
    assert t.ctr("DSSFallback") == 0
    write_all(c, b"def")
    expect(t, 4, 1, ACK | PSH, payload=b"def", dss=Dss(ack=1, dsn=4, ssn=4, dll=3))


def test_infinite_mapping_received_falls_back():
    t, c = _est()
    send(t, 1, 1, ACK, payload=b"abc", dss=Dss(ack=1, dsn=1, ssn=1, dll=0))
    assert not c.mptcp
    assert t.ctr("InfiniteMapRx") == 1
    send(t, 4, 1, ACK, payload=b"def")
    expect(t, 1, 7, ACK, window=8186)
    assert read_all(c) == b"abcdef"


# ---------------------------------------------------------------- MP_FAIL
def test_checksum_failure_sends_mp_fail_with_mapping_dsn():
    """RFC 8684 3.7 (as Linux on a single subflow): MP_FAIL carries the DSN of the bad
    mapping; the data is kept; the peer's answer is awaited."""
    t, c = _est(csum=True)
    send(t, 1, 1, ACK, payload=b"hello", dss=Dss(ack=1, dsn=1, ssn=1, dll=5, csum=0x1234))
    expect(t, 1, 6, ACK, window=8187, dss=Dss(ack=6), mp_fail=1)
    expect_nothing(t)
    assert t.ctr("DataCsumErr") == 1 and t.ctr("MPFailTx") == 1
    expect_deadline(t, T0 + 120000)


def test_mp_fail_unanswered_resets():
    t, c = _est(csum=True)
    send(t, 1, 1, ACK, payload=b"hello", dss=Dss(ack=1, dsn=1, ssn=1, dll=5, csum=0x1234))
    expect(t, 1, 6, ACK, window=8187, dss=Dss(ack=6), mp_fail=1)
    at(t, T0 + 120000)
    expect(t, 1, 6, RST | ACK, window=0)
    assert c.state == "CLOSED" and c.error is not None


def test_mp_fail_answered_then_infinite_mapping_falls_back():
    t, c = _est(csum=True)
    send(t, 1, 1, ACK, payload=b"hello", dss=Dss(ack=1, dsn=1, ssn=1, dll=5, csum=0x1234))
    expect(t, 1, 6, ACK, window=8187, dss=Dss(ack=6), mp_fail=1)
    send(t, 6, 1, ACK, dss=Dss(ack=1), mp_fail=1)            # the echo
    expect_nothing(t)
    expect_deadline(t, -1)
    send(t, 6, 1, ACK, payload=b"more", dss=Dss(ack=1, dsn=6, ssn=6, dll=0, csum=True))
    assert not c.mptcp
    assert read_all(c) == b"hellomore"


def test_mp_fail_received_echoed_then_infinite_mapping_sent():
    t, c = _est()
    send(t, 1, 1, ACK, payload=b"hello", dss=Dss(ack=1, dsn=1, ssn=1, dll=5))
    send(t, 6, 1, ACK, dss=Dss(ack=1), mp_fail=1)
    expect(t, 1, 6, ACK, window=8187, dss=Dss(ack=6), mp_fail=6)
    assert t.ctr("MPFailRx") == 1
    write_all(c, b"abc")
    expect(t, 1, 6, ACK | PSH, window=8187, payload=b"abc",
           dss=Dss(ack=6, dsn=1, ssn=1, dll=0))
    assert not c.mptcp and t.ctr("InfiniteMapTx") == 1
    write_all(c, b"def")
    expect(t, 4, 6, ACK | PSH, window=8187, payload=b"def")


# ---------------------------------------------------------------- MP_FASTCLOSE / abort
def test_mp_fastclose_received_answered_with_rst():
    t, c = _est()
    send(t, 1, 1, ACK, fastclose=t.dev_key)
    expect(t, 1, 1, RST | ACK, window=0)
    expect_nothing(t)
    assert c.state == "CLOSED" and c.error == "reset"
    assert t.ctr("MPFastcloseRx") == 1


def test_mp_fastclose_with_wrong_key_ignored():
    t, c = _est()
    send(t, 1, 1, ACK, fastclose=b"\x00" * 8)
    expect_nothing(t)
    assert c.state == "ESTABLISHED" and c.error is None


def test_abort_sends_rst_with_mp_fastclose():
    """RFC 8684 3.5: RST carrying MP_FASTCLOSE with the peer's key."""
    t, c = _est()
    c.abort()
    expect(t, 1, 1, RST | ACK, window=0, fastclose=t.peer_key)
    expect_nothing(t)
    assert c.state == "CLOSED" and c.error == "aborted"
    assert t.ctr("MPFastcloseTx") == 1


def test_rst_with_exact_seq_resets_the_subflow_not_the_connection():
    """As Linux: a plain RST on an MPTCP subflow ends that subflow; the connection waits
    CLOSE_TIMEOUT_MS for a new one (break-before-make), then ends with 'timeout'."""
    from mptcp.connection import CLOSE_TIMEOUT_MS
    t, c = _est()
    send(t, 1, 1, RST | ACK)
    assert c.sf.state_name() == "CLOSED" and c.error is None
    assert c.state == "ESTABLISHED" and not c.closed
    assert t.ctr("RmSubflow") == 1 and t.ctr("TcpInRsts") == 1
    expect_nothing(t)
    expect_deadline(t, t.now + CLOSE_TIMEOUT_MS)
    at(t, t.now + CLOSE_TIMEOUT_MS - 1)
    expect_nothing(t)
    assert c.error is None
    at(t, t.now + 1)
    expect_nothing(t)
    assert c.error == "timeout" and c.closed and t.ctr("OrphanTimeout") == 1
    assert t.st.conns == []


def test_rst_with_fastclose_resets_the_connection():
    t, c = _est()
    send(t, 1, 1, RST | ACK, fastclose=t.dev_key)
    assert c.state == "CLOSED" and c.error == "reset" and c.closed
    assert t.ctr("MPFastcloseRx") == 1
    expect_nothing(t)


def test_mp_join_syn_with_unknown_token_refused_with_mp_tcprst():
    """RFC 8684 3.2: a join naming no connection is refused: RST with MP_TCPRST
    (reason 1, MPTCP-specific error, as Linux), counted MPJoinNoTokenFound."""
    t = Peer()
    t.st.listen(80, mptcp=True)
    t.iss = 0
    raw = bytes([30, 12, 0x10, 0, 1, 2, 3, 4, 5, 6, 7, 8])
    send(t, 0, None, SYN, mss=1460, raw_opts=raw)
    expect(t, 0, 1, RST | ACK, window=0, tcprst=(0, 1))
    assert t.ctr("MPJoinSynRx") == 1 and t.ctr("MPJoinNoTokenFound") == 1
    assert t.ctr("MPRstTx") == 1 and t.st.conns == []
