"""Reason codes returned by parsers and the core instead of raising.

Small ints so the hot path never allocates; 0 means success. `name(code)`
turns a code into text for logs and counters. Codes are generic so that
codecs, TCP and the connection layer can share them.
"""
from mptcp.compat import const

OK = const(0)
E_SHORT = const(1)      # buffer shorter than the header/option claims
E_BADLEN = const(2)     # a length field has an impossible value
E_BADVER = const(3)     # unsupported version (IP version handled by E_NOTV4)
E_BADOPT = const(4)     # malformed option (bad kind/length, runs past header)
E_PROTO = const(5)      # well-formed but violates the protocol
E_CSUM = const(6)       # checksum mismatch
E_FRAG = const(7)       # IPv4 fragment (not supported)
E_NOTV4 = const(8)      # not an IPv4 packet
E_NOTTCP = const(9)     # not TCP
E_UNKNOWN = const(10)   # unknown MPTCP subtype (skip it)
E_BADADDR = const(11)   # address not ours / invalid
E_STATE = const(12)     # not valid in the current state
E_NOMEM = const(13)     # no room (buffer, slot, table full)
E_HMAC = const(14)      # HMAC / token mismatch
E_RESET = const(15)     # peer reset
E_TIMEOUT = const(16)   # timer expired

_NAMES = (
    "OK", "E_SHORT", "E_BADLEN", "E_BADVER", "E_BADOPT", "E_PROTO", "E_CSUM",
    "E_FRAG", "E_NOTV4", "E_NOTTCP", "E_UNKNOWN", "E_BADADDR", "E_STATE",
    "E_NOMEM", "E_HMAC", "E_RESET", "E_TIMEOUT",
)


def name(code):
    """Text for a reason code (never raises)."""
    if 0 <= code < len(_NAMES):
        return _NAMES[code]
    return "E_%d" % code
