"""The report figures that carry a measurement's uncertainty into what it implies, per row.

Read by the columns (``harness.report.columns``): the p50, throughput and cost with their
intervals (from the median's interval, or from the between-process interval when the cell was
measured with ``--processes``), the server capacity's bracket and the confidence that the p99 is
met at it, the spread between processes, and the achieved FLOP/s as a fraction of the machine's
measured matmul peak. Every cost is ``harness.report.cost.usd_per_million`` on a named basis: the
measured throughput (``*_measured``) or the searched capacity (``*_at_capacity``). The reasoning
lives in ``harness.report.uncertainty``, ``harness.measure.between`` and ``harness.measure.peak``.
"""

from __future__ import annotations

from harness.measure.stats import Interval as StatInterval
from harness.report.cost import usd_per_million
from harness.report.roofline import RooflinePoint
from harness.report.rows import CellRow, Figure
from harness.report.uncertainty import capacity_estimate, cost_interval, throughput_interval
from harness.runfile.records import Measurement, peak_key

__all__ = [
    "capacity",
    "fraction_of_peak",
    "median_interval",
    "p50_ms",
    "p99_met",
    "peak_exceeded",
    "process_spread",
    "roofline",
    "roofline_fraction",
    "roofline_text",
    "throughput",
    "usd_per_million_at_capacity",
    "usd_per_million_measured",
    "usd_per_million_output_tokens_measured",
    "usd_per_million_tokens_measured",
]


def median_interval(measured: Measurement) -> StatInterval | None:
    """The interval a cell's throughput rests on: between processes if measured in several,
    else the median's own order-statistic interval (None where it is withheld)."""
    part = measured.processes
    if part is not None and part.low_ns is not None and part.high_ns is not None:
        return StatInterval(
            measured.latency_ns.p50,
            part.low_ns,
            part.high_ns,
            part.confidence,
            part.confidence,
            f"student t between {len(part.medians_ns)} processes",
        )
    stored = measured.latency_ns.intervals.get("p50")
    if stored is not None:
        return stored
    ci = measured.latency_ns.ci.get("p50")
    if ci is None:
        return None
    level = measured.latency_ns.confidence
    return StatInterval(measured.latency_ns.p50, ci[0], ci[1], level, level, "recorded")


def _as_row_interval(value: float, interval: StatInterval | None) -> Figure:
    if interval is None or interval.low is None or interval.high is None:
        return Figure(value)
    return Figure(value, interval.low, interval.high)


def p50_ms(row: CellRow) -> Figure | None:
    """The p50 in ms; its interval is the between-process one when the cell has processes."""
    measured = row.measurement
    if measured is None:
        return None
    interval = median_interval(measured)
    p50 = measured.latency_ns.p50 / 1e6
    if interval is None or interval.low is None or interval.high is None or not interval.backed:
        return Figure(p50)
    return Figure(p50, interval.low / 1e6, interval.high / 1e6)


def _throughput(row: CellRow, per_s: float | None) -> StatInterval | None:
    measured = row.measurement
    if measured is None or not per_s:
        return None
    median = median_interval(measured)
    return None if median is None else throughput_interval(per_s, median)


def throughput(row: CellRow) -> Figure | None:
    """Inferences per second with the interval the median's interval gives it."""
    measured = row.measurement
    if measured is None:
        return None
    return _as_row_interval(measured.throughput_per_s, _throughput(row, measured.throughput_per_s))


def _cost(row: CellRow, per_s: float | None) -> Figure | None:
    if row.price is None or not per_s:
        return None
    point = usd_per_million(row.price.usd_per_hour, per_s)
    if point is None:
        return None
    return _as_row_interval(point, cost_interval(row.price.usd_per_hour, _throughput(row, per_s)))


def usd_per_million_measured(row: CellRow) -> Figure | None:
    """USD per million inferences at the measured throughput, with its interval."""
    measured = row.measurement
    return None if measured is None else _cost(row, measured.throughput_per_s)


def usd_per_million_tokens_measured(row: CellRow) -> Figure | None:
    """USD per million tokens at the measured token rate, with its interval."""
    measured = row.measurement
    return None if measured is None else _cost(row, measured.tokens_per_s)


def usd_per_million_output_tokens_measured(row: CellRow) -> Figure | None:
    """USD per million output tokens at the measured output rate, with its interval."""
    measured = row.measurement
    return None if measured is None else _cost(row, measured.output_tokens_per_s)


def capacity(row: CellRow) -> Figure | None:
    """The searched capacity (req/s) and the rates that bracket it: passed at low, failed at high."""
    measured = row.measurement
    if measured is None or measured.server is None or measured.server.capacity_rps is None:
        return None
    search = measured.server.search
    failing = None if search is None else search.lowest_failing_rps
    cap = measured.server.capacity_rps
    return Figure(cap, cap if failing is not None else None, failing)


def p99_met(row: CellRow) -> float | None:
    """Confidence that the true p99 meets the end-to-end SLO at the reported rate."""
    measured = row.measurement
    if measured is None or measured.server is None or measured.server.slo_ms.e2e_p99 is None:
        return None
    estimate = capacity_estimate(
        measured.server.capacity_rps or 0.0,
        None,
        measured.samples_ns,
        measured.server.slo_ms.e2e_p99 * 1e6,
    )
    return estimate.met_confidence


def usd_per_million_at_capacity(row: CellRow) -> Figure | None:
    """Cost per million at the capacity; the failing rate bounds it from below."""
    at = row.usd_per_million_at_capacity
    bracket = capacity(row)
    if at is None or row.price is None or bracket is None or bracket.high is None:
        return None if at is None else Figure(at)
    low = usd_per_million(row.price.usd_per_hour, bracket.high * row.batch_size)
    return Figure(at, low, at)


def fraction_of_peak(row: CellRow) -> float | None:
    """Achieved FLOP/s over the run's measured matmul peak for the cell's backend, dtype, threads.

    Above 1 the "peak" was no ceiling (measured while the machine was busy, say): the report
    says so (``peak_note``) instead of printing a fraction over 100%."""
    measured = row.measurement
    if measured is None or not measured.flops_per_s:
        return None
    peaks = row.run.environment.matmul_peaks
    config = row.cell.config
    peak = peaks.get(peak_key(config.backend, config.device, config.dtype, config.threads))
    if peak is None or not peak.flops_per_s > 0:
        return None
    fraction = measured.flops_per_s / peak.flops_per_s
    return None if fraction > 1.0 else fraction


def peak_exceeded(row: CellRow) -> bool:
    """Whether the cell ran faster than the run's measured matmul peak (so the peak is wrong)."""
    measured = row.measurement
    if measured is None or not measured.flops_per_s:
        return False
    config = row.cell.config
    peak = row.run.environment.matmul_peaks.get(peak_key(config.backend, config.device, config.dtype, config.threads))
    return peak is not None and peak.flops_per_s > 0 and measured.flops_per_s > peak.flops_per_s


def process_spread(row: CellRow) -> float | None:
    """(max − min) / mean of the process medians; None without ``--processes``."""
    measured = row.measurement
    return None if measured is None or measured.processes is None else measured.processes.rel_spread


def roofline(row: CellRow) -> RooflinePoint | None:
    """The cell on its roofline (``CellRow.roofline``); None for cells without ceilings or bytes."""
    return row.roofline()


def roofline_fraction(row: CellRow) -> float | None:
    """Achieved FLOP/s over the attainable rate at the cell's intensity (its roofline)."""
    point = roofline(row)
    return None if point is None else point.fraction


def roofline_text(row: CellRow) -> str:
    """ "62% mem" or "85% compute": the fraction and the roof that binds ('!' above it: see notes)."""
    point = roofline(row)
    if point is None:
        return "-"
    bound = "mem" if point.bound == "memory" else "compute"
    return f"{point.fraction:.0%} {bound}{'!' if point.above else ''}"
