"""The serving frontier: interactivity against throughput per instance, priced, and its Pareto front.

Every engine cell is a point: output tokens/s **per user** (1 / TPOT p50: how fast one user sees
tokens arrive) against output tokens/s **per instance** (the whole engine's measured output rate;
per chip too where the instance has several: per GPU, or per Neuron chip, never per NeuronCore,
``harness.report.chips``), each with its interval, and USD per million output
tokens at that rate. A concurrency sweep traces a curve (more users: more tokens per instance,
fewer per user); configurations, silicon and runs are more curves. A point is on the **Pareto
front** when no other point of the model has at least as many tokens/s per user *and* per
instance, and more of one: the front is the set of configurations worth choosing among, the rest
are beaten whatever one values.

**The cheapest configuration meeting TTFT/TPOT p99 targets**: among the correct, priced points
whose TTFT and TPOT p99 are within the targets, the lowest USD per million output tokens; with the
confidence that both p99 targets are met (each the distribution-free one-sided bound of
``uncertainty.quantile_met_confidence`` over the cell's requests, combined by Bonferroni, so a
lower bound) and the posterior probability that it is cheaper than the runner-up (the exact
Bayesian bootstrap of ``uncertainty.probability_cheaper``, as the cross-run verdict does for
machines). Intervals: per user from TPOT p50's order-statistic interval; per instance and cost from
the end-to-end median's (a closed loop's rate is users × tokens / end-to-end time, so it maps
monotonically, as ``figures.throughput`` does); see docs/methodology.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from harness.report.chips import Chips, neuron_chips
from harness.report.cost import usd_per_million
from harness.report.figures import median_interval
from harness.report.rows import CellRow, Figure
from harness.report.uncertainty import (
    Side,
    cost_interval,
    probability_cheaper,
    quantile_met_confidence,
    throughput_interval,
)

__all__ = [
    "CheapestServing",
    "Frontier",
    "FrontierPoint",
    "ServingTargets",
    "frontier_table",
    "frontiers",
    "pareto_front_max",
    "serving_targets",
]


def pareto_front_max(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point dominates with both axes maximized, by x descending.

    j dominates i when x_j >= x_i and y_j >= y_i with one strictly greater; equal points are both kept.
    """
    order = sorted(range(len(points)), key=lambda i: (-points[i][0], -points[i][1]))
    front: list[int] = []
    best_y = float("-inf")
    best_x_at_best_y = float("inf")
    for i in order:
        x, y = points[i]
        if y > best_y or (y == best_y and x == best_x_at_best_y):
            front.append(i)
            if y > best_y:
                best_y, best_x_at_best_y = y, x
    return front


def _inverse(figure: Figure, scale: float) -> Figure:
    """``scale / figure`` with its interval's ends swapped (a decreasing map keeps coverage)."""
    low = None if figure.high is None else scale / figure.high
    high = None if figure.low is None or figure.low <= 0 else scale / figure.low
    return Figure(scale / figure.value, low, high)


#: What every per-chip figure is per (the table's header and the JSON say it).
PER_CHIP = "chip (a GPU, or a Neuron chip: not a NeuronCore)"


def _chips(row: CellRow) -> Chips | None:
    """Accelerator chips of the instance the engine ran on: CUDA from the GPUs NVML saw, Neuron from
    the instance type the run file names (``harness.report.chips``); None where neither says."""
    engine = row.engine
    if engine is None:
        return None
    if engine.spec.silicon == "neuron":
        return neuron_chips(row.run.target.instance_type)
    gpus = row.run.environment.gpus
    if engine.spec.silicon == "cuda" and gpus is not None and gpus.available and gpus.devices:
        names = {str(d["name"]) for d in gpus.devices if d.get("name")}
        return Chips(len(gpus.devices), names.pop() if len(names) == 1 else "GPU", None, "NVML, in the run file")
    return None


@dataclass(frozen=True)
class FrontierPoint:
    """One engine cell on the frontier."""

    row: CellRow
    per_user: Figure
    per_instance: Figure
    chip_set: Chips | None
    usd_per_million: Figure | None
    on_front: bool = False

    @property
    def chips(self) -> int | None:
        """How many accelerator chips the instance has, where known."""
        return None if self.chip_set is None else self.chip_set.count

    @property
    def per_chip(self) -> Figure | None:
        """Output tokens/s per chip (``PER_CHIP``), where the instance has several."""
        if self.chips is None or self.chips < 2:
            return None
        n = self.chips
        value = self.per_instance
        return Figure(
            value.value / n,
            None if value.low is None else value.low / n,
            None if value.high is None else value.high / n,
        )

    @property
    def series(self) -> str:
        """The curve the point belongs to: its configuration with every axis but the users."""
        row = self.row
        return f"{row.target} {row.backend} {row.engine_config} {row.preset} (run {row.run_id})"

    def series_name(self, several_runs: bool) -> str:
        """``series`` as a legend or table shows it: the run named only where there are several."""
        row = self.row
        name = f"{row.target} {row.backend} {row.engine_config} {row.preset}"
        return f"{name} (run {row.run_id})" if several_runs else name

    def to_dict(self) -> dict[str, Any]:
        def figure(f: Figure | None) -> dict[str, float | None] | None:
            return None if f is None else {"value": f.value, "low": f.low, "high": f.high}

        row = self.row
        return {
            "run_id": row.run_id,
            "cell_id": row.cell.id,
            "target": row.target,
            "server": row.backend,
            "engine_config": row.engine_config,
            "request_set": row.preset,
            "users": row.users,
            "output_tokens_per_s_per_user": figure(self.per_user),
            "output_tokens_per_s_per_instance": figure(self.per_instance),
            "chips": self.chips,
            "chip": None if self.chip_set is None else self.chip_set.name,
            "neuron_cores_per_chip": None if self.chip_set is None else self.chip_set.neuron_cores_per_chip,
            "output_tokens_per_s_per_chip": figure(self.per_chip),
            "per_chip_is": PER_CHIP if self.per_chip is not None else None,
            "usd_per_million_output_tokens": figure(self.usd_per_million),
            "on_front": self.on_front,
        }


@dataclass(frozen=True)
class ServingTargets:
    """The p99 targets a serving configuration must meet, in milliseconds (None: no target)."""

    ttft_p99_ms: float | None = None
    tpot_p99_ms: float | None = None

    @property
    def empty(self) -> bool:
        return self.ttft_p99_ms is None and self.tpot_p99_ms is None

    def describe(self) -> str:
        parts = []
        if self.ttft_p99_ms is not None:
            parts.append(f"TTFT p99 <= {self.ttft_p99_ms:g} ms")
        if self.tpot_p99_ms is not None:
            parts.append(f"TPOT p99 <= {self.tpot_p99_ms:g} ms")
        return " and ".join(parts) or "no targets"


def serving_targets(rows: Sequence[CellRow], ttft_ms: float | None, tpot_ms: float | None) -> ServingTargets:
    """The targets given to the report, else those every engine cell was run with (``--slo-ttft``)."""
    if ttft_ms is not None or tpot_ms is not None:
        return ServingTargets(ttft_ms, tpot_ms)
    engine_rows = [r for r in rows if r.engine is not None]
    ttfts = {r.cell.config.params.slo_ttft_ms for r in engine_rows}
    tpots = {r.cell.config.params.slo_tpot_ms for r in engine_rows}
    return ServingTargets(
        ttfts.pop() if len(ttfts) == 1 else None,
        tpots.pop() if len(tpots) == 1 else None,
    )


def _request_times(row: CellRow) -> tuple[list[float], list[float]]:
    """Per successful request of the cell's load: its TTFT and its TPOT, in ns (engine_records' rules)."""
    measured = row.measurement
    if measured is None or measured.engine is None:
        return [], []
    ttft: list[float] = []
    tpot: list[float] = []
    for request in measured.engine.load.request_records:
        if request.failure is not None or not request.token_ns:
            continue
        ttft.append(float(request.token_ns[0]))
        out = request.output_tokens
        if out is not None and out > 1 and len(request.token_ns) >= 2:
            tpot.append((request.token_ns[-1] - request.token_ns[0]) / (out - 1))
    return ttft, tpot


@dataclass(frozen=True)
class CheapestServing:
    """The cheapest point meeting the targets, how sure its targets are met and that it is cheapest."""

    targets: ServingTargets
    considered: int
    meeting: int
    pick: FrontierPoint | None
    runner_up: FrontierPoint | None = None
    #: Lower bound of the confidence that both p99 targets hold (Bonferroni over the two).
    met_confidence: float | None = None
    ttft_confidence: float | None = None
    tpot_confidence: float | None = None
    probability_cheaper: float | None = None
    notes: tuple[str, ...] = ()

    def sentence(self) -> str:
        """The answer in one line."""
        if self.pick is None:
            return f"no priced, correct configuration meets {self.targets.describe()} ({self.considered} considered)"
        cost = self.pick.usd_per_million
        assert cost is not None
        interval = f" [{cost.low:.3g}, {cost.high:.3g}]" if cost.low is not None and cost.high is not None else ""
        text = (
            f"cheapest meeting {self.targets.describe()}: {self.pick.row.label} at ${cost.value:.3g}{interval} "
            f"per million output tokens ({self.meeting} of {self.considered} configurations meet the targets)"
        )
        if self.met_confidence is not None:
            text += f"; targets met with confidence >= {self.met_confidence:.2f}"
        if self.runner_up is not None and self.probability_cheaper is not None:
            other = self.runner_up.usd_per_million
            assert other is not None
            p = self.probability_cheaper
            shown = "> 0.999" if p > 0.999 else f"{p:.3f}"
            text += (
                f"; cheaper than the next ({self.runner_up.row.label}, ${other.value:.3g}) with probability {shown}"
                " (one process per cell: blind to run-to-run spread)"
            )
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "targets": {"ttft_p99_ms": self.targets.ttft_p99_ms, "tpot_p99_ms": self.targets.tpot_p99_ms},
            "considered": self.considered,
            "meeting": self.meeting,
            "pick": None if self.pick is None else self.pick.to_dict(),
            "runner_up": None if self.runner_up is None else self.runner_up.to_dict(),
            "met_confidence": self.met_confidence,
            "ttft_confidence": self.ttft_confidence,
            "tpot_confidence": self.tpot_confidence,
            "probability_cheaper": self.probability_cheaper,
            "notes": list(self.notes),
            "sentence": self.sentence(),
        }


@dataclass(frozen=True)
class Frontier:
    """One model's points, its Pareto front (``on_front``), and the cheapest pick at the targets."""

    model: str
    points: tuple[FrontierPoint, ...]
    cheapest: CheapestServing | None

    @property
    def several_runs(self) -> bool:
        return len({p.row.run_id for p in self.points}) > 1

    @property
    def front(self) -> tuple[FrontierPoint, ...]:
        """The points on the front, by tokens/s per user descending."""
        return tuple(sorted((p for p in self.points if p.on_front), key=lambda p: -p.per_user.value))

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "points": [p.to_dict() for p in self.points],
            "cheapest": None if self.cheapest is None else self.cheapest.to_dict(),
        }


def _point(row: CellRow) -> FrontierPoint | None:
    measured = row.measurement
    if measured is None or not row.ok or measured.output_tokens_per_s is None or not measured.output_tokens_per_s > 0:
        return None
    tpot = row.token_ms("tpot_ns", "p50")
    if tpot is None or not tpot.value > 0:
        return None
    per_user = _inverse(tpot, 1000.0)
    rate = measured.output_tokens_per_s
    median = median_interval(measured)
    interval = None if median is None else throughput_interval(rate, median)
    per_instance = (
        Figure(rate)
        if interval is None or interval.low is None or interval.high is None
        else Figure(rate, interval.low, interval.high)
    )
    cost = None
    if row.price is not None:
        point = usd_per_million(row.price.usd_per_hour, rate)
        if point is not None:
            ends = cost_interval(row.price.usd_per_hour, interval)
            cost = Figure(point) if ends is None else Figure(point, ends.low, ends.high)
    return FrontierPoint(row, per_user, per_instance, _chips(row), cost)


def _cheapest(points: Sequence[FrontierPoint], targets: ServingTargets) -> CheapestServing:
    usable = [p for p in points if p.row.measurement is not None and p.row.measurement.correctness.passed]
    notes: list[str] = []
    if len(usable) < len(points):
        notes.append(f"{len(points) - len(usable)} incorrect configuration(s) not considered")

    def meets(point: FrontierPoint) -> bool:
        for metric, target in (("ttft_ns", targets.ttft_p99_ms), ("tpot_ns", targets.tpot_p99_ms)):
            if target is None:
                continue
            p99 = point.row.token_ms(metric, "p99")
            if p99 is None or p99.value > target:
                return False
        return True

    meeting = [p for p in usable if meets(p)]
    priced = sorted((p for p in meeting if p.usd_per_million is not None), key=lambda p: p.usd_per_million.value)  # type: ignore[union-attr]
    if meeting and not priced:
        notes.append("no configuration meeting the targets has a price; give one with --price-per-hour")
    if not priced:
        return CheapestServing(targets, len(usable), len(meeting), None, notes=tuple(notes))
    pick = priced[0]
    ttft, tpot = _request_times(pick.row)
    confidences = []
    ttft_conf = tpot_conf = None
    if targets.ttft_p99_ms is not None and ttft:
        ttft_conf = quantile_met_confidence(ttft, targets.ttft_p99_ms * 1e6)
        confidences.append(ttft_conf)
    if targets.tpot_p99_ms is not None and tpot:
        tpot_conf = quantile_met_confidence(tpot, targets.tpot_p99_ms * 1e6)
        confidences.append(tpot_conf)
    met = max(0.0, 1.0 - sum(1.0 - c for c in confidences)) if confidences else None
    if met is not None and met < 0.95:
        notes.append(
            f"its requests back the p99 targets with confidence {met:.2f} only: more requests (--max-time, "
            "--min-samples) narrow it"
        )
    runner_up = priced[1] if len(priced) > 1 else None
    probability = None
    if runner_up is not None:
        sides = [_side(p) for p in (pick, runner_up)]
        if sides[0] is not None and sides[1] is not None:
            probability = probability_cheaper(sides[0], sides[1])
    return CheapestServing(
        targets,
        len(usable),
        len(meeting),
        pick,
        runner_up,
        met,
        ttft_conf,
        tpot_conf,
        probability,
        tuple(notes),
    )


def _side(point: FrontierPoint) -> Side | None:
    measured = point.row.measurement
    price = point.row.price
    if measured is None or price is None or not measured.samples_ns:
        return None
    return Side(point.row.label, measured.samples_ns, point.per_instance.value, price.usd_per_hour)


def frontiers(rows: Sequence[CellRow], ttft_ms: float | None = None, tpot_ms: float | None = None) -> list[Frontier]:
    """One frontier per model (``workload``) with engine cells, in the order models first appear."""
    by_model: dict[str, list[FrontierPoint]] = {}
    for row in rows:
        if row.engine is None:
            continue
        point = _point(row)
        if point is not None:
            by_model.setdefault(row.workload, []).append(point)
    targets = serving_targets(rows, ttft_ms, tpot_ms)
    found = []
    for model, points in by_model.items():
        front = set(pareto_front_max([(p.per_user.value, p.per_instance.value) for p in points]))
        marked = tuple(replace(p, on_front=i in front) for i, p in enumerate(points))
        cheapest = None if targets.empty else _cheapest(marked, targets)
        found.append(Frontier(model, marked, cheapest))
    return found


def _figure_text(figure: Figure | None, money: bool = False) -> str:
    from harness.report.columns import fmt
    from harness.report.columns import money as usd

    if figure is None:
        return "-"
    show = usd if money else fmt
    if figure.low is not None and figure.high is not None:
        return f"{show(figure.value)} [{show(figure.low)}, {show(figure.high)}]"
    return show(figure.value)


def frontier_table(frontier: Frontier) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of one frontier's points, front first, for every text format and HTML."""
    chips = any(p.per_chip is not None for p in frontier.points)
    neuron = any(p.chip_set is not None and p.chip_set.neuron_cores_per_chip for p in frontier.points)
    headers = ["front", "configuration", "users", "out tok/s per user [95% CI]", "out tok/s per instance [95% CI]"]
    if chips:
        headers += ["chips", "out tok/s per chip (not per NeuronCore)" if neuron else "out tok/s per chip"]
    headers += ["TTFT p99 ms", "TPOT p99 ms", "$/M out tok [95% CI]"]
    ordered = sorted(frontier.points, key=lambda p: (not p.on_front, -p.per_user.value))
    body = []
    for p in ordered:
        row = p.row
        name = p.series_name(frontier.several_runs)
        cells = ["*" if p.on_front else "", name, str(row.users), _figure_text(p.per_user)]
        cells.append(_figure_text(p.per_instance))
        if chips:
            cells += ["-" if p.chip_set is None else p.chip_set.describe(), _figure_text(p.per_chip)]
        ttft, tpot = row.token_ms("ttft_ns", "p99"), row.token_ms("tpot_ns", "p99")
        cells += [_figure_text(None if ttft is None else Figure(ttft.value))]
        cells += [_figure_text(None if tpot is None else Figure(tpot.value))]
        cells.append(_figure_text(p.usd_per_million, money=True))
        body.append(cells)
    return headers, body
