"""The report columns that carry a measurement's uncertainty into what it implies.

One function per cell, ``uncertainty_fields``, adds to a report row: the throughput and cost
intervals (from the median's interval, or from the between-process interval when the cell was
measured in several processes), the server capacity's bracket and the confidence that the p99
is met at it, the spread between processes, and the achieved FLOP/s as a fraction of the
machine's measured matmul peak. The reasoning lives in ``harness.report.verdict``,
``harness.measure.between`` and ``harness.measure.peak``.
"""

from __future__ import annotations

from typing import Any

from harness.measure.peak import peak_key
from harness.measure.stats import Interval
from harness.report.verdict import capacity_estimate, cost_interval, throughput_interval

__all__ = ["median_interval", "uncertainty_fields"]


def median_interval(cell: dict[str, Any]) -> Interval | None:
    """The interval a cell's throughput rests on: between processes if measured in several, else
    the median's own (``intervals.p50``, or the older files' ``ci.p50``)."""
    latency = cell.get("latency_ns") or {}
    processes = cell.get("processes")
    if processes and processes.get("low_ns") is not None and processes.get("high_ns") is not None:
        confidence = float(processes.get("confidence", 0.95))
        return Interval(
            float(latency.get("p50", processes["mean_ns"])),
            float(processes["low_ns"]),
            float(processes["high_ns"]),
            confidence,
            confidence,
            f"student t between {len(processes['medians_ns'])} processes",
        )
    stored = (latency.get("intervals") or {}).get("p50")
    if isinstance(stored, dict):
        return Interval.from_dict(stored)
    ci = (latency.get("ci") or {}).get("p50")
    if ci and "p50" in latency:
        confidence = float(latency.get("confidence", 0.95))
        return Interval(float(latency["p50"]), float(ci[0]), float(ci[1]), confidence, confidence, "recorded")
    return None


def _ends(prefix: str, interval: Interval | None) -> dict[str, Any]:
    return {
        f"{prefix}_lo": None if interval is None else interval.low,
        f"{prefix}_hi": None if interval is None else interval.high,
    }


def uncertainty_fields(run: dict[str, Any], cell: dict[str, Any], usd_per_hour: float | None) -> dict[str, Any]:
    """The uncertainty columns of one ok cell's report row."""
    fields: dict[str, Any] = {}
    median = median_interval(cell)
    per_s = throughput_interval(cell.get("throughput_per_s") or 0.0, median) if median else None
    tokens = throughput_interval(cell.get("tokens_per_s") or 0.0, median) if median else None
    fields.update(_ends("throughput_per_s", per_s))
    fields.update(_ends("usd_per_million", cost_interval(usd_per_hour, per_s) if usd_per_hour else None))
    fields.update(_ends("usd_per_million_tokens", cost_interval(usd_per_hour, tokens) if usd_per_hour else None))

    server = cell.get("server") or {}
    if cell.get("capacity_rps"):
        slo_ms = (server.get("slo_ms") or {}).get("e2e_p99")
        search = server.get("search") or {}
        estimate = capacity_estimate(
            cell["capacity_rps"],
            search.get("lowest_failing_rps"),
            cell.get("samples_ns"),
            None if slo_ms is None else slo_ms * 1e6,
        )
        fields.update(capacity_hi_rps=estimate.lowest_failing_rps, capacity_met_confidence=estimate.met_confidence)
        if usd_per_hour and estimate.lowest_failing_rps:
            batch = cell["config"]["batch_size"]
            fields["usd_per_million_at_capacity_lo"] = usd_per_hour / (3600 * estimate.lowest_failing_rps * batch) * 1e6

    processes = cell.get("processes")
    if processes:
        medians = processes["medians_ns"]
        mean = processes["mean_ns"]
        fields.update(
            processes=len(medians),
            process_rel_spread=(max(medians) - min(medians)) / mean if mean else None,
            process_p50_lo_ms=None if processes.get("low_ns") is None else processes["low_ns"] / 1e6,
            process_p50_hi_ms=None if processes.get("high_ns") is None else processes["high_ns"] / 1e6,
        )
        if processes.get("low_ns") is not None:
            # The pooled samples' own interval would ignore the spread between processes.
            fields.update(p50_lo_ms=fields["process_p50_lo_ms"], p50_hi_ms=fields["process_p50_hi_ms"])

    config = cell["config"]
    peaks = (run.get("environment") or {}).get("matmul_peaks") or {}
    threads = (cell.get("device") or {}).get("threads", config.get("threads"))
    peak = peaks.get(peak_key(config["backend"], config.get("device"), config["dtype"], config.get("threads")))
    if peak is None and threads is not None:
        peak = peaks.get(peak_key(config["backend"], config.get("device"), config["dtype"], threads))
    if peak and cell.get("flops_per_s") and peak.get("flops_per_s"):
        fields.update(
            peak_gflops_per_s=peak["flops_per_s"] / 1e9, fraction_of_peak=cell["flops_per_s"] / peak["flops_per_s"]
        )
    return fields
