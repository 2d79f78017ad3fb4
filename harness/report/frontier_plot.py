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

__all__ = ["frontier_svg"]


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


def _draw_series(ax: Axes, index: int, name: str, points: list[FrontierPoint]) -> None:
    color = PALETTE[index % len(PALETTE)]
    points = sorted(points, key=lambda p: p.row.users)
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
    for p in points:
        at = (p.per_user.value, p.per_instance.value)
        text = ax.annotate(_label(p), at, textcoords="offset points", xytext=(6, 5), fontsize=7, color=color)
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
        for i, (name, points) in enumerate(series.items()):
            _draw_series(ax, i, name, points)
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
