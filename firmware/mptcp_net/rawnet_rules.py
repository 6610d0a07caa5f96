"""The nftables rule set that keeps the kernel's own TCP away from the raw-socket device.

The device (mptcp_net.raw_netif) and the kernel share one interface and one address. Without
these rules the kernel sees every segment of the device's connections, finds no socket
for them and answers with a RST. What `install` puts in place (one table per interface,
`inet mptcp_raw_<ifname>`; PORTS = the device's ports, ADDR = the interface's address):

  chain pre   hook prerouting, priority raw (-300: before conntrack and the kernel's TCP)
      iifname IFNAME ip daddr ADDR tcp dport PORTS   counter dev_in       drop
        The device's inbound TCP: the AF_PACKET socket already has its copy (packet taps
        run before netfilter); the kernel never sees it, so it never resets it.
  chain out   hook output, priority raw
      ip saddr ADDR tcp sport PORTS meta mark MARK   counter dev_out      notrack accept
        The device's own packets (raw socket, SO_MARK): conntrack never sees half a flow.
      ip saddr ADDR tcp sport PORTS tcp flags rst    counter kernel_rst   drop
        A RST from the kernel for a device connection (should stay 0 with the drop above).

It also adds PORTS to net.ipv4.ip_local_reserved_ports so the kernel does not pick them
for its own outgoing connections (the device's ephemeral range overlaps the kernel's).
`remove` deletes the table and restores the sysctl. Runs `nft` through os.system, so the
MicroPython unix port can use it too (as root); `ns` runs it inside a network namespace.
"""
import os

from mptcp_net.raw_netif import MARK, EPHEMERAL

RESERVED = "/proc/sys/net/ipv4/ip_local_reserved_ports"


def table_name(ifname):
    out = "mptcp_raw_"
    for ch in ifname:
        out += ch if (ch.isalpha() or ch.isdigit()) else "_"
    return out


def _ports_text(ports):
    parts = []
    for r in ports:
        parts.append("%d" % r[0] if r[0] == r[1] else "%d-%d" % (r[0], r[1]))
    return ", ".join(parts)


def ruleset(ifname, addr, ports=(EPHEMERAL,), mark=MARK):
    """The rule set text for `nft -f` (addr: dotted quad)."""
    t = table_name(ifname)
    p = _ports_text(ports)
    return "\n".join((
        "table inet %s {" % t,
        "  counter dev_in { }",
        "  counter dev_out { }",
        "  counter kernel_rst { }",
        "  chain pre {",
        "    type filter hook prerouting priority raw; policy accept;",
        '    iifname "%s" ip daddr %s tcp dport { %s } counter name "dev_in" drop' % (ifname, addr, p),
        "  }",
        "  chain out {",
        "    type filter hook output priority raw; policy accept;",
        '    ip saddr %s tcp sport { %s } meta mark 0x%x counter name "dev_out" notrack accept'
        % (addr, p, mark),
        '    ip saddr %s tcp sport { %s } tcp flags & rst == rst counter name "kernel_rst" drop'
        % (addr, p),
        "  }",
        "}",
        ""))


def _sh(cmd, ns=None):
    if ns:
        cmd = "ip netns exec %s %s" % (ns, cmd)
    return os.system(cmd)


def _state_path(ifname, ns):
    return "/tmp/%s.%s.reserved" % (table_name(ifname), ns or "-")


def _reserve(ifname, ports, ns):
    """Add ports to ip_local_reserved_ports; the old value is saved for remove."""
    saved = _state_path(ifname, ns)
    if _sh("sh -c 'cat %s > %s'" % (RESERVED, saved), ns) != 0:
        return False
    with open(saved) as f:
        old = f.read().strip()
    new = _ports_text(ports).replace(" ", "") + ("," + old if old else "")
    return _sh("sh -c 'echo %s > %s'" % (new, RESERVED), ns) == 0


def _unreserve(ifname, ns):
    saved = _state_path(ifname, ns)
    try:
        with open(saved) as f:
            old = f.read().strip()
    except OSError:
        return
    _sh("sh -c 'echo \"%s\" > %s'" % (old, RESERVED), ns)
    try:
        os.remove(saved)
    except OSError:
        pass


def install(ifname, addr, ports=(EPHEMERAL,), mark=MARK, ns=None):
    """Install (or replace) the rule set; OSError saying what failed."""
    remove(ifname, ns)
    path = "/tmp/%s.%s.nft" % (table_name(ifname), ns or "-")
    with open(path, "w") as f:
        f.write(ruleset(ifname, addr, ports, mark))
    rc = _sh("nft -f %s" % path, ns)
    try:
        os.remove(path)
    except OSError:
        pass
    if rc != 0:
        raise OSError(1, "nft -f failed (exit %d): is nftables installed, are we root?" % rc)
    if not _reserve(ifname, ports, ns):
        remove(ifname, ns)
        raise OSError(1, "could not set %s" % RESERVED)


def remove(ifname, ns=None):
    """Delete the table and restore the reserved ports; True if a table was there."""
    _unreserve(ifname, ns)
    return _sh("nft delete table inet %s 2>/dev/null" % table_name(ifname), ns) == 0
