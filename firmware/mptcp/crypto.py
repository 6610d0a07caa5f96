"""MPTCP v1 keys, token, IDSN and HMAC-SHA256 (RFC 8684 §3.1, §3.2, §3.4.1; RFC 2104).

Per-connection/per-subflow setup only, never per packet, so clarity beats speed here.
MicroPython has no `hmac` module, so HMAC is written on `hashlib.sha256`.
Checked against the kernel's own values in tests/unit/test_crypto.py (golden captures).
"""
import hashlib

_BLOCK = 64  # SHA-256 block size in bytes


def new_key():
    """8 random bytes for MP_CAPABLE (os.urandom; boards without it use random.getrandbits)."""
    try:
        import os
        k = os.urandom(8)
        if len(k) == 8:
            return bytes(k)
    except (ImportError, AttributeError, OSError, NotImplementedError):
        pass
    import random  # lazily: only boards without os.urandom need it
    b = bytearray(8)
    for i in range(8):
        b[i] = random.getrandbits(8)
    return bytes(b)


def _sha256(data):
    return hashlib.sha256(data).digest()


def key_token(key):
    """Token: most significant 32 bits of SHA-256(key) (an int; may exceed a small int)."""
    return int.from_bytes(_sha256(key)[:4], "big")


def key_idsn(key):
    """Initial data sequence number: least significant 64 bits of SHA-256(key)."""
    return int.from_bytes(_sha256(key)[24:32], "big")


def hmac_sha256(key, msg):
    """HMAC-SHA256 (RFC 2104) -> 32 bytes. key and msg: bytes-like."""
    if len(key) > _BLOCK:
        key = _sha256(key)
    ipad = bytearray(_BLOCK)
    opad = bytearray(_BLOCK)
    for i in range(len(key)):
        ipad[i] = key[i]
        opad[i] = key[i]
    for i in range(_BLOCK):
        ipad[i] ^= 0x36
        opad[i] ^= 0x5C
    h = hashlib.sha256(ipad)
    h.update(msg)
    inner = h.digest()
    h = hashlib.sha256(opad)
    h.update(inner)
    return h.digest()


def join_hmac(key_a, key_b, nonce_a, nonce_b):
    """MP_JOIN HMAC (RFC 8684 §3.2): HMAC(Key-A||Key-B, R-A||R-B) -> 32 bytes.

    A is the side that sends this HMAC. The SYN/ACK carries the leftmost 8 bytes
    (server: key_a=server key, nonce_a=server nonce); the third ACK the leftmost 20
    (client: key_a=client key, nonce_a=client nonce).
    """
    return hmac_sha256(bytes(key_a) + bytes(key_b), bytes(nonce_a) + bytes(nonce_b))


def add_addr_hmac(key_a, key_b, addr_id, addr4, port):
    """ADD_ADDR truncated HMAC (RFC 8684 §3.4.1) -> 8 bytes.

    HMAC(Key-A||Key-B, Address ID || IP address || Port), Key-A being the
    announcer's key. Like Linux (add_addr_generate_hmac) the 2-byte port is always
    in the message, zero when the option carries none; the option carries the
    RIGHTMOST 64 bits (verified against the kernel in the golden capture).
    """
    p = port or 0
    msg = bytearray(1 + len(addr4) + 2)
    msg[0] = addr_id & 0xFF
    n = 1
    for i in range(len(addr4)):
        msg[n] = addr4[i]
        n += 1
    msg[n] = (p >> 8) & 0xFF
    msg[n + 1] = p & 0xFF
    return hmac_sha256(bytes(key_a) + bytes(key_b), msg)[24:32]
