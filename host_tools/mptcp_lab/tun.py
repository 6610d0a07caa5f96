"""TUN devices for the link emulator: open one in the root namespace and move it into a lab
namespace under its final name (a temporary unique name avoids clashes in the root namespace)."""

import fcntl
import os
import struct

from .common import run

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def open_tun(name):
    """Create TUN `name` (IFF_TUN|IFF_NO_PI) owned by this process; returns a non-blocking fd.

    The device disappears when the fd is closed (not persistent), so a dead emulator leaves
    no TUN behind.
    """
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        ifr = struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI)
        fcntl.ioctl(fd, TUNSETIFF, ifr)
    except OSError:
        os.close(fd)
        raise
    return fd


def place(tmpname, ns, name, addr, prefix, mtu=1500, routes=()):
    """Move TUN `tmpname` into `ns`, rename it `name`, give it `addr/prefix`, bring it up."""
    run(["ip", "link", "set", "dev", tmpname, "netns", ns])
    run(["ip", "-n", ns, "link", "set", "dev", tmpname, "name", name])
    # IPv4 only: no IPv6 autoconf chatter (router solicitations, MLD) on lab links.
    run(["sysctl", "-qw", "net.ipv6.conf.%s.disable_ipv6=1" % name], ns=ns, check=False)
    run(["ip", "-n", ns, "addr", "add", "%s/%d" % (addr, prefix), "dev", name])
    run(["ip", "-n", ns, "link", "set", "dev", name, "mtu", str(mtu), "txqueuelen", "1000", "up"])
    for dst, via in routes:
        run(["ip", "-n", ns, "route", "replace", dst, "via", via, "dev", name])


def source_route(ns, name, addr, via, table, dst):
    """Policy routing in `ns`: packets from `addr` reach `dst` via `via` on `name` (table
    `table`), whatever the main table prefers; the main table also gets that route at a
    worse metric, for sockets bound to the device (MPTCP endpoints with `dev`)."""
    run(["ip", "-n", ns, "route", "replace", dst, "via", via, "dev", name, "table", str(table)])
    run(["ip", "-n", ns, "rule", "add", "from", addr, "table", str(table), "priority",
         str(1000 + table)])
    run(["ip", "-n", ns, "route", "replace", dst, "via", via, "dev", name, "metric",
         str(table)])
