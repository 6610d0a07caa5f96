"""mptcp_net.md5, the pure-Python MD5 behind CHAP where hashlib has none: RFC 1321's test
suite (appendix A.5) on every interpreter, block-boundary lengths and split updates,
and the choice ppp_auth makes."""
import hashlib

from mptcp_net import md5 as pure
from mptcp_net import ppp_auth
from tutil import hexb

# RFC 1321, A.5 "Test suite"
RFC1321 = (
    (b"", "d41d8cd98f00b204e9800998ecf8427e"),
    (b"a", "0cc175b9c0f1b6a831c399e269772661"),
    (b"abc", "900150983cd24fb0d6963f7d28e17f72"),
    (b"message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
    (b"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
    (b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
     "d174ab98d277d9f5a5611c2c9f419d9f"),
    (b"1234567890" * 8, "57edf4a22be3c955ac49da2e2107b67a"),
)


def _data(n):
    """n deterministic bytes covering every value, high bits included."""
    return bytes((i * 181 + 7) & 0xFF for i in range(n))


def test_rfc1321_vectors():
    for msg, want in RFC1321:
        h = pure.md5(msg)
        assert h.hexdigest() == want, (msg, h.hexdigest())
        assert h.digest() == hexb(want)


def test_incremental_updates_equal_one_shot():
    """Every split point of a two-block message, and byte-at-a-time, give one digest."""
    msg = b"1234567890" * 8
    want = hexb(RFC1321[-1][1])
    for k in range(len(msg) + 1):
        h = pure.md5(msg[:k])
        h.update(msg[k:])
        assert h.digest() == want, k
    h = pure.md5()
    for i in range(len(msg)):
        h.update(msg[i:i + 1])
    assert h.digest() == want


def test_digest_does_not_finalize_and_copy_is_independent():
    h = pure.md5(b"a")
    assert h.hexdigest() == RFC1321[1][1]
    c = h.copy()
    h.update(b"bc")
    assert h.hexdigest() == RFC1321[2][1]
    assert c.hexdigest() == RFC1321[1][1]
    c.update(bytearray(b"bc"))
    assert c.digest() == h.digest()


def test_padding_boundaries_against_hashlib():
    """Lengths around the 56/64-byte padding edges; checked against hashlib.md5 where the
    interpreter has it (CPython, the unix port), else against the multi-block RFC vector
    above (the WebAssembly port has no hashlib.md5)."""
    ref = getattr(hashlib, "md5", None)
    seen = set()
    for n in (55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000):
        d = pure.md5(_data(n)).digest()
        assert len(d) == 16
        seen.add(d)
        if ref is not None:
            assert d == ref(_data(n)).digest(), n
    assert len(seen) == 12


def test_chap_md5_uses_hashlib_only_when_present():
    want = "hashlib" if hasattr(hashlib, "md5") else "pure-python"
    assert ppp_auth.MD5_IMPL == want
    # RFC 1994: MD5(Identifier || secret || challenge), the same whichever MD5 runs
    ch = _data(16)
    assert ppp_auth.chap_md5(7, b"s3cret", ch) == pure.md5(bytes((7,)) + b"s3cret" + ch).digest()
