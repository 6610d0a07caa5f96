"""mptcp-embedded: a Multipath TCP v1 (RFC 8684) stack for MicroPython and CPython.

The protocol core is sans-IO: objects take packets and `now` (milliseconds)
and return packets and a deadline. See docs/ARCHITECTURE.md.
"""
VERSION = "0.1.0"
