"""mptcp.crypto: RFC 4231 HMAC vectors and values the Linux kernel put on the wire.

Golden values were read once with
  tshark -r F -o mptcp.analyze_mptcp:TRUE -T fields -e tcp.options.mptcp.sendkey ...
from /work/shared/vectors (tshark prints keys/nonces/HMACs as decimal; converted to hex).
"""
from tutil import hexb
from mptcp import crypto

# join_addaddr_prio_rmaddr.pcap
# frame 2 (SYN/ACK 198.18.0.1:6003 -> 198.18.1.2:50988): server key; tshark: token 3844110875,
#   IDSN 9325346118464012279
SRV_KEY = hexb("42d1d0ecf393e341")
# frame 3 (ACK client -> server): client key; tshark: token 1937511512, IDSN 13052359693708120395
CLI_KEY = hexb("e6d5fc4af4b47fe1")


def test_rfc4231_vectors():
    cases = (
        (b"\x0b" * 20, b"Hi There",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        (b"Jefe", b"what do ya want for nothing?",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        (b"\xaa" * 20, b"\xdd" * 50,
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        (bytes(range(1, 26)), b"\xcd" * 50,
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
        (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        (b"\xaa" * 131, b"This is a test using a larger than block-size key and a larger "
         b"than block-size data. The key needs to be hashed before being used by the HMAC "
         b"algorithm.",
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
    )
    for key, msg, want in cases:
        assert crypto.hmac_sha256(key, msg) == hexb(want), want
    # test case 5: truncation to 128 bits
    got = crypto.hmac_sha256(b"\x0c" * 20, b"Test With Truncation")[:16]
    assert got == hexb("a3b6167473100ee06e0c796c2955552b")


def test_hmac_accepts_bytearray_and_memoryview():
    want = crypto.hmac_sha256(b"Jefe", b"what do ya want for nothing?")
    assert crypto.hmac_sha256(bytearray(b"Jefe"), memoryview(b"what do ya want for nothing?")) == want
    assert crypto.hmac_sha256(b"", b"") == hexb(
        "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")


def test_token_idsn_join_addaddr_capture():
    assert crypto.key_token(SRV_KEY) == 3844110875
    assert crypto.key_idsn(SRV_KEY) == 9325346118464012279
    assert crypto.key_token(CLI_KEY) == 1937511512
    assert crypto.key_idsn(CLI_KEY) == 13052359693708120395


def test_token_idsn_mpc_csum_capture():
    # mpc_csum.pcap frame 2 (SYN/ACK): server key 10962710897813707506
    k = hexb("98235f7a877d5af2")
    assert crypto.key_token(k) == 576346914
    assert crypto.key_idsn(k) == 18165036497650596980
    # mpc_csum.pcap frame 3 (ACK): client key 15862434733593571439
    k = hexb("dc22b058f0a9b06f")
    assert crypto.key_token(k) == 4002887543
    assert crypto.key_idsn(k) == 16305841959684578555


def test_join_hmac_first_join():
    # frame 6 MP_JOIN SYN 198.18.1.2:44871 -> 198.18.0.2:6003: token 3844110875 (server's),
    #   client nonce 1078894481; frame 7 SYN/ACK: server nonce 368409228,
    #   truncated HMAC 15251558794845089578; frame 8 ACK: HMAC ecf53a57...
    n_cli = hexb("404e9f91")
    n_srv = hexb("15f57a8c")
    synack = crypto.join_hmac(SRV_KEY, CLI_KEY, n_srv, n_cli)
    assert synack[:8] == hexb("d3a86beaedb9ef2a")
    ack = crypto.join_hmac(CLI_KEY, SRV_KEY, n_cli, n_srv)
    assert ack[:20] == hexb("ecf53a571e407c9039be260c3b9b07283bbeb2c0")


def test_join_hmac_second_join():
    # frames 87/88/89: 198.18.2.2:41963 -> 198.18.0.1:6003, client nonce 1760131360,
    #   server nonce 1444492334, truncated HMAC 4296728651055503544, ACK HMAC 80962a68...
    n_cli = hexb("68e97920")
    n_srv = hexb("5619342e")
    assert crypto.join_hmac(SRV_KEY, CLI_KEY, n_srv, n_cli)[:8] == hexb("3ba10bf16e6818b8")
    assert crypto.join_hmac(CLI_KEY, SRV_KEY, n_cli, n_srv)[:20] == hexb(
        "80962a68591565ac533e96165a823da2d7d0ca6f")


def test_add_addr_hmac_capture():
    # frame 4: server 198.18.0.1 announces id 1 = 198.18.0.2, no port, truncated HMAC
    #   2671001981574348328; the announcer's key comes first, port counted as 0.
    got = crypto.add_addr_hmac(SRV_KEY, CLI_KEY, 1, bytes((198, 18, 0, 2)), 0)
    assert got == hexb("25114e26921a7e28")
    assert crypto.add_addr_hmac(SRV_KEY, CLI_KEY, 1, bytes((198, 18, 0, 2)), None) == got
    assert len(got) == 8
    # a port changes it (it is in the message)
    assert crypto.add_addr_hmac(SRV_KEY, CLI_KEY, 1, bytes((198, 18, 0, 2)), 6003) != got


def test_new_key():
    a = crypto.new_key()
    b = crypto.new_key()
    assert isinstance(a, bytes) and len(a) == 8
    assert a != b
