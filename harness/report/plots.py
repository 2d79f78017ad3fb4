"""Report figures as PNG bytes: latency distributions, batch sweeps, cost against p99, history.

Drawn with matplotlib's object API on the Agg canvas (no pyplot, no display, no global state), so
a report renders the same on a headless CI machine. Every figure is one workload; a figure that
would show nothing (no prices, a single batch size, a single run) is not drawn, and the report
says why instead.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from harness.report.rows import CellRow

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["Plot", "make_plots", "pareto_front"]

DPI = 110
#: Colours that stay distinguishable for common colour-vision deficiencies (Okabe & Ito 2008).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")


@dataclass(frozen=True)
class Plot:
    """One rendered figure: which section it belongs to, a title, alt text and the PNG."""

    section: str
    title: str
    alt: str
    png: bytes


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (both minimized), by x ascending."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    front: list[int] = []
    best_y = float("inf")
    for i in order:
        if points[i][1] < best_y:
            front.append(i)
            best_y = points[i][1]
    return front


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def _new_figure(width: float, height: float) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def _by_workload(rows: Sequence[CellRow]) -> dict[str, list[CellRow]]:
    groups: dict[str, list[CellRow]] = {}
    for row in rows:
        if row.ok:
            groups.setdefault(f"{row.workload}:{row.preset}", []).append(row)
    return groups


def _series_key(row: CellRow) -> str:
    threads = f" t{row.threads}" if row.threads else ""
    return f"{row.target} {row.backend} {row.dtype} {row.mode}{threads}"


def _latency_distribution(workload: str, rows: list[CellRow]) -> Plot:
    import numpy as np

    labels, data = [], []
    for row in rows:
        values = row.measurement.samples_ns if row.measurement is not None else ()
        if values:
            labels.append(row.label + (f" ({row.run_id[:15]})" if _multi_run(rows) else ""))
            data.append(np.asarray(values, dtype=np.float64) / 1e6)
    import matplotlib

    fig, ax = _new_figure(8.0, 1.2 + 0.45 * len(data))
    # matplotlib 3.10 renamed vert=False to orientation="horizontal" and deprecates the old name.
    major, minor = (int(part) for part in matplotlib.__version__.split(".")[:2])
    horizontal: dict[str, Any] = {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}
    ax.boxplot(
        data,
        whis=(1, 99),
        showfliers=False,
        widths=0.6,
        medianprops={"color": PALETTE[3], "linewidth": 2},
        **horizontal,
    )
    for i, cell_ms in enumerate(data, start=1):
        p99 = float(np.percentile(cell_ms, 99))
        ax.plot([p99], [i], marker="|", color=PALETTE[0], markersize=14, markeredgewidth=2)
    lows = [float(np.min(d)) for d in data]
    highs = [float(np.percentile(d, 99)) for d in data]
    if min(lows) > 0 and max(highs) / min(lows) > 20:
        ax.set_xscale("log")
    ax.set_yticks(range(1, len(labels) + 1), labels)
    engine = all(r.engine is not None for r in rows)
    ax.set_xlabel("end-to-end latency per request (ms)" if engine else "latency per call (ms)")
    ax.set_title(f"{workload}: latency distribution per cell")
    ax.grid(axis="x", alpha=0.3)
    fig.text(0.01, 0.0, "box: quartiles; whiskers: p1 to p99; red: median; blue tick: p99", fontsize=8, color="#555555")
    alt = f"Latency distribution of {len(data)} cells of {workload}"
    return Plot("Latency distribution per cell", workload, alt, _png(fig))


def _ms(row: CellRow, key: str) -> float:
    interval = row.latency_ms(key)
    assert interval is not None
    return interval.value


def _end(row: CellRow, end: int) -> float:
    """The low (0) or high (1) end of the median's interval, in ms (the median without one)."""
    interval = row.latency_ms("p50")
    assert interval is not None
    found = interval.low if end == 0 else interval.high
    return interval.value if found is None else found


def _cost(row: CellRow) -> float:
    cost = row.usd_per_million_headline
    assert cost is not None
    return cost


def _throughput(row: CellRow) -> float:
    assert row.measurement is not None
    return row.measurement.throughput_per_s


def _multi_run(rows: Sequence[CellRow]) -> bool:
    return len({r.run_id for r in rows}) > 1


def _batch_sweep(workload: str, rows: list[CellRow]) -> Plot | None:
    from matplotlib.figure import Figure

    series: dict[str, list[CellRow]] = {}
    for row in rows:
        series.setdefault(_series_key(row) + (f" {row.run_id[:15]}" if _multi_run(rows) else ""), []).append(row)
    swept = {k: sorted(v, key=lambda r: r.batch_size) for k, v in series.items() if len({r.batch_size for r in v}) > 1}
    if not swept:
        return None
    fig = Figure(figsize=(10.0, 4.2), layout="constrained")
    lat_ax, thr_ax = fig.subplots(1, 2)
    for i, (name, points) in enumerate(sorted(swept.items())):
        color = PALETTE[i % len(PALETTE)]
        batches = [r.batch_size for r in points]
        lat_ax.plot(batches, [_ms(r, "p50") for r in points], marker="o", color=color, label=f"{name} p50")
        lat_ax.plot(
            batches, [_ms(r, "p99") for r in points], marker="x", linestyle="--", color=color, label=f"{name} p99"
        )
        thr_ax.plot(batches, [_throughput(r) for r in points], marker="o", color=color, label=name)
    for ax in (lat_ax, thr_ax):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_formatter("{x:g}")
    lat_ax.set_ylabel("latency per call (ms)")
    lat_ax.set_title("latency against batch size")
    thr_ax.set_ylabel("inferences per second")
    thr_ax.set_title("throughput against batch size")
    lat_ax.legend(fontsize=7)
    thr_ax.legend(fontsize=7)
    fig.suptitle(workload)
    alt = f"Latency and throughput of {workload} against batch size for {len(swept)} configurations"
    return Plot("Latency and throughput against batch size", workload, alt, _png(fig))


def _cost_vs_p99(workload: str, rows: list[CellRow], slo_p99_ms: float | None) -> Plot | None:
    priced = [r for r in rows if r.usd_per_million_headline is not None and r.latency_ms("p99") is not None]
    if not priced:
        return None
    points = [(_ms(r, "p99"), _cost(r)) for r in priced]
    front = pareto_front(points)
    fig, ax = _new_figure(8.0, 5.0)
    targets = sorted({r.target for r in priced})
    for i, target in enumerate(targets):
        mine = [r for r in priced if r.target == target]
        ax.scatter(
            [_ms(r, "p99") for r in mine],
            [_cost(r) for r in mine],
            s=40,
            color=PALETTE[i % len(PALETTE)],
            label=target,
            zorder=3,
        )
    front_points = [points[i] for i in front]
    ax.step(
        [p[0] for p in front_points],
        [p[1] for p in front_points],
        where="post",
        color="#333333",
        linewidth=1.2,
        zorder=2,
        label="Pareto front",
    )
    ax.scatter(
        [p[0] for p in front_points],
        [p[1] for p in front_points],
        s=140,
        facecolors="none",
        edgecolors="#333333",
        linewidths=1.4,
        zorder=4,
    )
    for i in front:
        row = priced[i]
        name = (
            f"{row.engine_config} {row.users}u"
            if row.engine is not None
            else f"{row.backend} {row.dtype} bs{row.batch_size}"
        )
        ax.annotate(
            name,
            points[i],
            textcoords="offset points",
            xytext=(6, 6),
            fontsize=7,
        )
    if slo_p99_ms is not None:
        ax.axvline(slo_p99_ms, color=PALETTE[3], linestyle=":", label=f"p99 target {slo_p99_ms:g} ms")
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    if min(xs) > 0 and max(xs) / min(xs) > 20:
        ax.set_xscale("log")
    if min(ys) > 0 and max(ys) / min(ys) > 20:
        ax.set_yscale("log")
    ax.set_xlabel("p99 latency (ms)")
    ax.set_ylabel("USD per million inferences")
    ax.set_title(f"{workload}: cost against p99 latency (lower left is better)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    alt = f"Cost per million inferences against p99 latency for {len(priced)} priced cells of {workload}"
    return Plot("Cost per million inferences against p99 latency", workload, alt, _png(fig))


def _history_name(row: CellRow) -> str:
    """A history line's legend: the engine cell's label, or the in-process configuration and batch."""
    if row.engine is not None:
        return row.label
    return f"{_series_key(row)} bs{row.batch_size}"


def _history(workload: str, rows: list[CellRow]) -> Plot | None:
    from matplotlib import dates

    # One line per configuration with every axis in its key (``CellRow.config_key``): a 1-user and a
    # 4-user run, or two request sets, are two configurations, never one line that "regressed".
    series: dict[str, list[CellRow]] = {}
    for row in rows:
        if row.run.started_utc:
            series.setdefault(row.config_key, []).append(row)
    kept = [(k, v) for k, v in sorted(series.items()) if len({r.run.started_utc for r in v}) > 1]
    names = [_history_name(v[0]) for _, v in kept]
    lines = {(k if names.count(name) > 1 else name): v for (k, v), name in zip(kept, names, strict=True)}
    if not lines:
        return None
    fig, ax = _new_figure(9.0, 4.5)

    def when(row: CellRow) -> datetime:
        return datetime.fromisoformat(str(row.run.started_utc).replace("Z", "+00:00"))

    for i, (name, points) in enumerate(lines.items()):
        points = sorted(points, key=when)
        xs = [float(dates.date2num(when(r))) for r in points]  # type: ignore[no-untyped-call]
        ys = [_ms(r, "p50") for r in points]
        low = [max(0.0, _ms(r, "p50") - _end(r, 0)) for r in points]
        high = [max(0.0, _end(r, 1) - _ms(r, "p50")) for r in points]
        ax.errorbar(xs, ys, yerr=[low, high], marker="o", capsize=3, color=PALETTE[i % len(PALETTE)], label=name)
    ax.set_ylabel("median latency (ms), 95% CI")
    ax.set_title(f"{workload}: median latency over time")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.xaxis_date()
    locator: Any = dates.AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    alt = f"Median latency of {len(lines)} configurations of {workload} across runs"
    return Plot("History", workload, alt, _png(fig))


def make_plots(rows: Sequence[CellRow], slo_p99_ms: float | None = None) -> tuple[list[Plot], list[str]]:
    """Every figure the rows support, and one line per figure kind that was skipped, saying why."""
    plots: list[Plot] = []
    skipped: list[str] = []
    groups = _by_workload(rows)
    for workload, mine in groups.items():
        plots.append(_latency_distribution(workload, mine))
    sweeps = [p for w, mine in groups.items() if (p := _batch_sweep(w, mine)) is not None]
    costs = [p for w, mine in groups.items() if (p := _cost_vs_p99(w, mine, slo_p99_ms)) is not None]
    history = [p for w, mine in groups.items() if (p := _history(w, mine)) is not None]
    plots += sweeps + costs + history
    if groups and not sweeps:
        skipped.append(
            "Latency and throughput against batch size: no configuration was measured at more than one "
            "batch size (run with several --batch-size)"
        )
    if groups and not costs:
        skipped.append(
            "Cost against p99 latency: no cell has a price (give --price-per-hour, or run on a priced instance type)"
        )
    if groups and not history:
        skipped.append("History: give run files from several runs of the same configuration")
    return plots, skipped
