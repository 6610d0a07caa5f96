"""The .mpy header: which MicroPython (bytecode version) and which native arch can load it.

Byte 0 'M', byte 1 the .mpy version, byte 2 (arch << 2) | sub-version, byte 3 the
small-int bits. A board reports the same fields in sys.implementation._mpy
(version | flags << 8). Only a file with native code (arch != 0) depends on the arch.
"""
ARCHS = ("none", "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp",
         "armv7emdp", "xtensa", "xtensawin", "rv32imc", "rv64imc")


def header(data):
    """(version, sub-version, arch number) of an .mpy file, or None if it is not one."""
    if len(data) < 4 or data[0] != ord("M"):
        return None
    return data[1], data[2] & 3, data[2] >> 2


def arch_name(n):
    return ARCHS[n] if 0 <= n < len(ARCHS) else "arch#%d" % n
