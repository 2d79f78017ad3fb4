"""``--processes N``: every cell measured in N fresh processes, interleaved across cells.

The order is ABAB (round 1: every cell once; round 2: every cell again; ...), not AABB: a machine
that drifts slowly (thermal state, a neighbour's load, frequency scaling) then shifts every cell
alike instead of biasing whichever cell happened to run during the slow spell. Each measurement
is a fresh ``spawn``ed child (``harness.run.isolation``), so nothing carries over from one to the
next but the machine itself.

The N records of a cell become one: its samples pooled (so percentiles describe every process),
its figures recomputed from the pool, and a ``processes`` part with each process's median and
the between-process interval (``harness.measure.between``), which the reports and ``compare``
use in place of the one-process interval. A process that fails leaves the others standing, with
a warning; a cell fails only if every process failed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

from harness.measure.between import spread_of
from harness.runfile.records import CellRecord, HostTiming, ProcessesPart

__all__ = ["merge_processes", "schedule"]


def schedule(cell_count: int, processes: int) -> list[tuple[int, int]]:
    """(round, cell index) pairs in run order: every cell once per round (ABAB)."""
    return [(round_, index) for round_ in range(processes) for index in range(cell_count)]


def _kind(warning: str) -> str:
    """A warning's kind: its words before the first figure ("stopped by time budget before ...")."""
    return re.split(r"[-+±]?\d", warning, maxsplit=1)[0].strip()


def _merged_warnings(per_process: Sequence[Sequence[str]]) -> list[str]:
    """Each kind of warning once, as the first process worded it, with how many processes raised it."""
    first: dict[str, str] = {}
    seen: Counter[str] = Counter()
    for warnings in per_process:
        kinds: dict[str, str] = {}
        for warning in warnings:
            kinds.setdefault(_kind(warning), warning)
        for kind, warning in kinds.items():
            first.setdefault(kind, warning)
            seen[kind] += 1
    return [
        warning
        if seen[kind] == 1 == len(per_process)
        else f"{warning} (in {seen[kind]} of {len(per_process)} processes)"
        for kind, warning in first.items()
    ]


def _scaled(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def merge_processes(records: Sequence[CellRecord], planned: int) -> CellRecord:
    """One cell record from the records of its ``planned`` processes (in run order)."""
    from harness.measure.stats import summarize
    from harness.scenarios.validity import validity

    ok = [r for r in records if r.measurement is not None]
    failed = [r for r in records if r.measurement is None]
    if not ok:
        first_failed = failed[0]
        assert first_failed.error is not None
        message = f"all {len(records)} processes failed; the first: {first_failed.error.message}"
        return replace(first_failed, error=replace(first_failed.error, message=message))
    measured = [r.measurement for r in ok if r.measurement is not None]
    first = measured[0]
    confidence = first.sampling.confidence
    pooled = tuple(s for m in measured for s in m.samples_ns)
    summary = summarize(pooled, confidence)
    factor = first.latency_ns.p50 / summary.p50 if summary.p50 > 0 else 1.0
    spread = spread_of([m.samples_ns for m in measured], confidence)
    part = ProcessesPart(
        medians_ns=spread.medians_ns,
        counts=tuple(len(m.samples_ns) for m in measured),
        mean_ns=spread.mean_ns,
        std_ns=spread.std_ns,
        low_ns=spread.low_ns,
        high_ns=spread.high_ns,
        confidence=spread.confidence,
        rel_spread=spread.rel_spread,
        planned=planned,
        failed=len(failed),
        stop_reasons=tuple(m.sampling.stop_reason for m in measured),
        started_utc=tuple(r.started_utc for r in records),
    )
    sampling = replace(
        first.sampling,
        elapsed_s=sum(m.sampling.elapsed_s for m in measured),
        wall_s=sum(m.sampling.wall_s for m in measured),
        stop_reason=Counter(part.stop_reasons).most_common(1)[0][0],
    )
    host = first.host
    if all(m.host is not None for m in measured):
        host_samples = tuple(s for m in measured if m.host is not None for s in m.host.samples_ns)
        host = HostTiming(summarize(host_samples, confidence), host_samples)
    worst = max(measured, key=lambda m: m.correctness.max_rel_error)
    correctness = replace(worst.correctness, passed=all(m.correctness.passed for m in measured))
    units = list(first.validity.samples) or ["latency"]
    warnings = [
        w for w in _merged_warnings([m.warnings for m in measured]) if not w.startswith(("only ", "p99 withheld"))
    ]
    tail = summary.intervals.get("p99")
    if tail is not None and not tail.backed and tail.note:
        warnings.append(f"p99 withheld: {tail.note} (pooled over {len(measured)} processes)")
    if failed:
        reasons = "; ".join(r.error.message for r in failed if r.error is not None)
        warnings.append(f"{len(failed)} of {planned} processes failed: {reasons[:300]}")
    within = first.sampling.rel_ci_half_width
    if part.low_ns is not None and within is not None and part.rel_spread / 2 > within:
        warnings.append(
            f"between processes the median moved ±{part.rel_spread / 2:.1%}, more than one process's "
            f"interval (±{within:.1%}): only the between-process interval is a fair basis for comparison"
        )
    merged = replace(
        first,
        samples_ns=pooled,
        latency_ns=summary,
        throughput_per_s=first.throughput_per_s * factor,
        tokens_per_s=_scaled(first.tokens_per_s, factor),
        flops_per_s=_scaled(first.flops_per_s, factor),
        host=host,
        correctness=correctness,
        sampling=sampling,
        validity=validity({units[0]: summary.count}, sampling.elapsed_s),
        warnings=tuple(warnings),
        processes=part,
    )
    return replace(ok[0], measurement=merged, finished_utc=records[-1].finished_utc)
