"""The serving frontier as an SVG: tokens/s per user against tokens/s per instance, one curve per
configuration, the Pareto front drawn through the points that are not beaten.

Drawn with matplotlib's object API, as the other figures are (``harness.report.plots``), but kept
as SVG with its text as text (``svg.fonttype: none``) and its parts named (``gid``: ``frontier``,
``series-N``, ``pareto-front``, ``point-label``), so the report inlines it at any zoom and a test
reads its structure (the axes, the curves, the front, every point's users and cost) rather than
its pixels.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from harness.report.frontier import Frontier, FrontierPoint
from harness.report.plots import PALETTE

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["LABEL_PLACES", "frontier_svg", "label_places"]


def _error(points: list[FrontierPoint], axis: str) -> list[list[float]]:
    low, high = [], []
    for p in points:
        figure = p.per_user if axis == "x" else p.per_instance
        low.append(max(0.0, figure.value - figure.low) if figure.low is not None else 0.0)
        high.append(max(0.0, figure.high - figure.value) if figure.high is not None else 0.0)
    return [low, high]


def _label(point: FrontierPoint) -> str:
    users = point.row.users
    cost = point.usd_per_million
    price = f" ${cost.value:.3g}/M" if cost is not None else ""
    return f"{users}u{price}"


#: Where a point's label goes, in points from the marker, tried in this order: above right, below
#: right, above left, below left (with the alignment that keeps the text clear of the front's ring,
#: 6 points in radius).
LABEL_PLACES = ((9, 5, "left"), (9, -12, "left"), (-9, 5, "right"), (-9, -12, "right"))
#: Points closer than this share of each axis's span count as one place for their labels.
NEAR_SHARE = 0.04


def label_places(at: list[tuple[float, float]]) -> list[int]:
    """For each point, in drawing order, the index into ``LABEL_PLACES`` of its label: the first place
    that no earlier point near it took. Configurations that perform alike put their points on one
    spot (two caching settings at one user), where labels at one offset would be drawn over each
    other; past four near points the places repeat."""
    if not at:
        return []
    spans = [max(1e-12, max(c[k] for c in at) - min(c[k] for c in at)) for k in (0, 1)]
    chosen: list[int] = []
    for i, (x, y) in enumerate(at):
        taken = {
            chosen[j]
            for j in range(i)
            if abs(at[j][0] - x) <= NEAR_SHARE * spans[0] and abs(at[j][1] - y) <= NEAR_SHARE * spans[1]
        }
        free = [k for k in range(len(LABEL_PLACES)) if k not in taken]
        chosen.append(free[0] if free else i % len(LABEL_PLACES))
    return chosen


def _draw_series(ax: Axes, index: int, name: str, points: list[FrontierPoint], places: list[int]) -> None:
    color = PALETTE[index % len(PALETTE)]
    xs = [p.per_user.value for p in points]
    ys = [p.per_instance.value for p in points]
    container = ax.errorbar(
        xs,
        ys,
        xerr=_error(points, "x"),
        yerr=_error(points, "y"),
        marker="o",
        markersize=6,
        capsize=3,
        linewidth=1.2,
        color=color,
        label=name,
        zorder=3,
    )
    container.lines[0].set_gid(f"series-{index}")
    for p, place in zip(points, places, strict=True):
        at = (p.per_user.value, p.per_instance.value)
        dx, dy, align = LABEL_PLACES[place]
        text = ax.annotate(
            _label(p), at, textcoords="offset points", xytext=(dx, dy), ha=align, fontsize=7, color=color
        )
        text.set_gid("point-label")


def frontier_svg(frontier: Frontier) -> str:
    """The frontier of one model as an ``<svg>`` element (no XML prologue), ready to inline."""
    import matplotlib
    from matplotlib.figure import Figure

    series: dict[str, list[FrontierPoint]] = {}
    for point in frontier.points:
        series.setdefault(point.series_name(frontier.several_runs), []).append(point)
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "siliconbench-frontier"}):
        fig = Figure(figsize=(8.0, 5.2), layout="constrained")
        ax = fig.add_subplot()
        ax.set_gid("frontier")
        ordered = {name: sorted(points, key=lambda p: p.row.users) for name, points in series.items()}
        drawn = [p for points in ordered.values() for p in points]
        places = iter(label_places([(p.per_user.value, p.per_instance.value) for p in drawn]))
        for i, (name, points) in enumerate(ordered.items()):
            _draw_series(ax, i, name, points, [next(places) for _ in points])
        front = sorted(frontier.front, key=lambda p: p.per_user.value)
        (line,) = ax.step(
            [p.per_user.value for p in front],
            [p.per_instance.value for p in front],
            where="pre",
            color="#333333",
            linestyle="--",
            linewidth=1.0,
            zorder=2,
            label=f"Pareto front ({len(front)} of {len(frontier.points)} points)",
        )
        line.set_gid("pareto-front")
        rings = ax.scatter(
            [p.per_user.value for p in front],
            [p.per_instance.value for p in front],
            s=150,
            facecolors="none",
            edgecolors="#333333",
            linewidths=1.3,
            zorder=4,
        )
        rings.set_gid("front-points")
        ax.set_xlabel("output tokens/s per user (1 / TPOT p50), 95% CI")
        ax.set_ylabel("output tokens/s per instance, 95% CI")
        model = frontier.model.rstrip("/").rsplit("/", 1)[-1] if frontier.model.startswith("/") else frontier.model
        title = f"{model}: serving frontier (upper right is better)"
        ax.set_title(f"{title}\npoint labels: users, $ per million output tokens")
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]
