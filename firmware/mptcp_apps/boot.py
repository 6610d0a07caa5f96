"""What main.py runs when the board starts: the app and arguments mptcp-flash wrote into
mptcp_config.json (`--app perf --app-args "..." --autostart`), after a pause in which
Ctrl-C keeps the board at the REPL (a board whose app fails at boot stays reachable).

main.py (written by mptcp-flash --autostart) is two lines: `import mptcp_apps.boot` and
`mptcp_apps.boot.run()`. By hand:
`import mptcp_apps.perf; mptcp_apps.perf.main(["--connect", ...])`.
"""
import time

from mptcp_runtime import config

APPS = ("perf", "trial")


def _main_of(app):
    if app == "perf":
        from mptcp_apps.perf import main
    else:
        from mptcp_apps.trial import main
    return main


def run(path=config.CONFIG, sleep=time.sleep):
    """Start the configured app; its exit status (0 when none is configured)."""
    cfg = config.load(path)
    app = cfg.get("app")
    if not app or not cfg.get("autostart"):
        print("mptcp: no app to start (mptcp-flash --app perf --app-args '...' --autostart); "
              "by hand: import mptcp_apps.perf; mptcp_apps.perf.main([...])")
        return 0
    if app not in APPS:
        print("mptcp: unknown app %r in %s (known: %s): flash again" % (app, path, ", ".join(APPS)))
        return 2
    args = cfg.get("args") or []
    if not isinstance(args, list):
        print("mptcp: args in %s is not a list: flash again" % path)
        return 2
    delay = cfg.get("delay_s", 3)
    print("mptcp: starting mptcp_apps.%s %s in %s s (Ctrl-C: stay at the REPL)"
          % (app, " ".join(args), delay))
    try:
        sleep(delay)
    except KeyboardInterrupt:
        print("mptcp: not started")
        return 0
    return _main_of(app)(list(args))
