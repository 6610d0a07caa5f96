"""The device's configuration: the board module (mptcp_board.py, from boards/<board>/) with the
settings mptcp-flash wrote into mptcp_config.json on top (`--set NAME=VALUE`), and the app
main.py starts (`--app`, `--app-args`, `--autostart`).

mptcp_config.json: {"board": NAME, "version": V, "app": "perf"|"trial"|null,
"args": [...], "autostart": bool, "delay_s": N, "settings": {NAME: value}}. A missing file
is an empty config; a malformed one is reported once and ignored (a board must still boot).
"""
import sys

CONFIG = "mptcp_config.json"
_cache = []


def load(path=CONFIG):
    """The config as a dict ({} when there is none or it is malformed)."""
    try:
        f = open(path)
    except OSError:
        return {}
    try:
        import json
        cfg = json.loads(f.read())
    except ValueError as e:
        print("mptcp: %s is not valid JSON (%s): ignoring it; flash again" % (path, e))
        return {}
    finally:
        f.close()
    if not isinstance(cfg, dict):
        print("mptcp: %s is not a JSON object: ignoring it; flash again" % path)
        return {}
    return cfg


def board(path=CONFIG):
    """The board module with the config's settings applied, or None without an mptcp_board.py."""
    if _cache:
        return _cache[0]
    try:
        import mptcp_board as b
    except ImportError:
        b = None
    if b is not None:
        s = load(path).get("settings")
        if isinstance(s, dict):
            for k in s:
                setattr(b, k, s[k])
    _cache.append(b)
    return b


def forget():
    """Drop the cached board (tests; a re-flashed config)."""
    del _cache[:]
    sys.modules.pop("mptcp_board", None)
