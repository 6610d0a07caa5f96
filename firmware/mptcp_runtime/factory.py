"""Builds a device's stack from its board config (boards/<board>/mptcp_board.py), so every app
sizes memory and picks multipath policy the same way.

Board names read (all optional; the default in brackets): SND_BUF, RCV_BUF [32768]: the
rings of each connection; MAX_CONNECTIONS [2]; MAX_SUBFLOWS [4] per connection;
SCHEDULER ["minrtt"]: mptcp.sched's name; BACKUP_LINK [None]: the link joined with the
backup flag ("lte" for a handover device; the `backup` scheduler makes the last link the
backup when none is named).
"""
from mptcp.stack import Stack

INT_DEFAULTS = (("SND_BUF", 32768), ("RCV_BUF", 32768), ("MAX_CONNECTIONS", 2),
                ("MAX_SUBFLOWS", 4))
STR_DEFAULTS = (("SCHEDULER", "minrtt"), ("BACKUP_LINK", None))


def setting(board, name):
    """The board's value of `name`, or its default (a name not listed: KeyError)."""
    for k, v in INT_DEFAULTS:
        if k == name:
            return _get(board, name, v)
    for k, v in STR_DEFAULTS:
        if k == name:
            return _get(board, name, v)
    raise KeyError(name)


def _get(board, name, dflt):
    return getattr(board, name, dflt) if board is not None else dflt


def _int(board, name):
    for k, v in INT_DEFAULTS:
        if k == name:
            return int(_get(board, name, v))
    raise KeyError(name)


def make_stack(board, snd_buf=None, rcv_buf=None, scheduler=None, max_conns=None):
    """A Stack sized and configured by the board; arguments given override it."""
    return Stack(snd_buf=snd_buf or _int(board, "SND_BUF"),
                 rcv_buf=rcv_buf or _int(board, "RCV_BUF"),
                 max_conns=max_conns or _int(board, "MAX_CONNECTIONS"),
                 max_subflows=_int(board, "MAX_SUBFLOWS"),
                 scheduler=scheduler or str(setting(board, "SCHEDULER")))


def backup_link(board, scheduler, links):
    """The link (a name in `links`) to join as backup, or None."""
    b = setting(board, "BACKUP_LINK")
    if b is not None and b in links:
        return b
    if scheduler == "backup" and len(links) > 1:
        return links[-1]
    return None
