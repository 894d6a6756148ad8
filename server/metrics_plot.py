"""The label-efficiency curve of a project as a PNG (matplotlib, no display)."""

from __future__ import annotations

import io
from collections.abc import Sequence

from server.round_schemas import CurvePoint


def curve_png(title: str, points: Sequence[CurvePoint]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure  # a Figure, not pyplot: no global state across requests

    figure = Figure(figsize=(6.4, 4.0), dpi=100)
    axes = figure.subplots()
    by_strategy: dict[str, list[CurvePoint]] = {}
    for point in points:
        if point.miou is not None:
            by_strategy.setdefault(point.strategy, []).append(point)
    for strategy, line in sorted(by_strategy.items()):
        line.sort(key=lambda p: p.labeled_count)
        axes.plot([p.labeled_count for p in line], [p.miou for p in line], marker="o", label=strategy)
    if not by_strategy:
        axes.text(0.5, 0.5, "no finished round yet", ha="center", va="center", transform=axes.transAxes)
    else:
        axes.legend(title="strategy")
    axes.set_xlabel("human-labelled images")
    axes.set_ylabel("validation mIoU")
    axes.set_title(f"{title}: label efficiency")
    axes.grid(alpha=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()
