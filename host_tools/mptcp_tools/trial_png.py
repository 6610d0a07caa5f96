"""The trial report's PNG timeline: goodput per link over time, vertical markers for events
(link up/down, subflows, notable counters) and shaded stalls; one panel per side (the device,
and the kernel reference when run with --with-ref)."""

from . import trial_report as R

COLORS = {"wifi": "tab:blue", "lte": "tab:orange", "app": "tab:gray"}
MARK_COLORS = {"down": "red", "up": "green", "closed": "purple", "LinkDown": "red",
               "RmSubflow": "purple", "SubflowRecreate": "green", "MPTCPReinject": "brown"}


def _mark_color(label):
    for k, c in MARK_COLORS.items():
        if k in label:
            return c
    return "black"


def _panel(ax, title, events, cuts, back=()):
    g = R.goodput(events)
    for ln in ("wifi", "lte"):
        if any(g[ln]):
            ax.plot(g["t"], [v * 8 / 1e6 for v in g[ln]], label="%s goodput" % ln,
                    color=COLORS[ln], linewidth=1.2)
    if any(g["app"]):
        ax.plot(g["t"], [v * 8 / 1e6 for v in g["app"]], label="app progress",
                color=COLORS["app"], linewidth=0.8, linestyle="--")
    for p in R.stalls(events):
        ax.axvspan(p["from"] / 1000.0, p["to"] / 1000.0, color="red", alpha=0.12,
                   label=None)
    ymax = ax.get_ylim()[1]
    ax.set_ylim(0, ymax * 1.25)             # head room for the event labels
    marks = R.marks(events)
    xmax = max([t for t, _ in marks] + [g["t"][-1] if g["t"] else 0] + [1.0])
    for t, label in marks:
        ax.axvline(t, color=_mark_color(label), linewidth=0.7, alpha=0.6)
    # one boxed label per group of close events, alternating heights, right-aligned near
    # the right edge so that it stays inside the panel
    for i, (t0, t1, labels) in enumerate(R.mark_groups(marks)):
        right = t0 > 0.8 * xmax
        ax.text(t1 if right else t0, ymax * (1.22 if i % 2 == 0 else 0.9), "\n".join(labels),
                fontsize=6, va="top", ha="right" if right else "left",
                color=_mark_color(labels[0]),
                bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": _mark_color(labels[0]),
                      "alpha": 0.85, "linewidth": 0.6})
    for t_ms, link, source in cuts:
        ax.axvline(t_ms / 1000.0, color="red", linewidth=1.5, linestyle=":")
    for t_ms, link in back:
        ax.axvline(t_ms / 1000.0, color="green", linewidth=1.5, linestyle=":")
    ax.set_title(title, fontsize=9)
    ax.set_ylabel("Mbit/s")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize=7)


def write(path, sides, title="trial"):
    """sides: [(label, events, cuts)] or [(label, events, cuts, back)], cuts as
    trial_report.cut_times gives them, back = [(t_ms, link)] scheduled link returns.
    Writes a PNG at `path` and returns it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = max(1, len(sides))
    fig, axes = plt.subplots(n, 1, figsize=(11, 3.4 * n), sharex=True, squeeze=False)
    for ax, side in zip(axes[:, 0], sides):
        _panel(ax, *side)
    axes[-1, 0].set_xlabel("seconds since the agent started (dotted: scheduled cuts red, "
                           "returns green; shaded: stalls)")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
