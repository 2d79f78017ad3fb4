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
from typing import Any

from harness.measure.between import spread_of

__all__ = ["MERGEABLE_SCENARIOS", "merge_processes", "process_part", "schedule"]

#: Scenarios whose records are per-call samples that can be pooled across processes.
MERGEABLE_SCENARIOS = ("latency", "throughput")


def schedule(cell_count: int, processes: int) -> list[tuple[int, int]]:
    """(round, cell index) pairs in run order: every cell once per round (ABAB)."""
    return [(round_, index) for round_ in range(processes) for index in range(cell_count)]


def process_part(samples_per_process: Sequence[Sequence[float]], confidence: float) -> dict[str, Any]:
    """The record's ``processes`` part: each process's median and the between-process interval."""
    spread = spread_of(samples_per_process, confidence)
    return {
        "medians_ns": list(spread.medians_ns),
        "mean_ns": spread.mean_ns,
        "std_ns": spread.std_ns,
        "low_ns": spread.low_ns,
        "high_ns": spread.high_ns,
        "confidence": spread.confidence,
        "rel_spread": spread.rel_spread,
        "method": "student t on the process medians",
    }


def _kind(warning: str) -> str:
    """A warning's kind: its words before the first figure ("stopped by time budget before ...")."""
    return re.split(r"[\d±]", warning, maxsplit=1)[0].strip()


def _merged_warnings(records: Sequence[dict[str, Any]]) -> list[str]:
    """Each kind of warning once, as the first process worded it, with how many processes raised it."""
    first: dict[str, str] = {}
    seen: Counter[str] = Counter()
    for record in records:
        kinds: dict[str, str] = {}
        for warning in record.get("warnings", []):
            kinds.setdefault(_kind(warning), warning)
        for kind, warning in kinds.items():
            first.setdefault(kind, warning)
            seen[kind] += 1
    return [
        warning if seen[kind] == 1 == len(records) else f"{warning} (in {seen[kind]} of {len(records)} processes)"
        for kind, warning in first.items()
    ]


def _scaled(value: Any, factor: float) -> Any:
    return None if value is None else value * factor


def merge_processes(records: Sequence[dict[str, Any]], planned: int) -> dict[str, Any]:
    """One cell record from the records of its ``planned`` processes (in run order)."""
    from harness.measure.stats import summarize
    from harness.scenarios.validity import validity

    ok = [r for r in records if r["status"] == "ok"]
    failed = [r for r in records if r["status"] != "ok"]
    if not ok:
        merged = dict(failed[0])
        merged["error"] = dict(merged["error"] or {})
        merged["error"]["message"] = f"all {len(records)} processes failed; the first: {merged['error'].get('message')}"
        return merged
    first = ok[0]
    confidence = float(first["sampling"].get("confidence", 0.95))
    pooled = [s for r in ok for s in r["samples_ns"]]
    summary = summarize(pooled, confidence)
    factor = first["latency_ns"]["p50"] / summary.p50 if summary.p50 > 0 else 1.0
    part = process_part([r["samples_ns"] for r in ok], confidence)
    part["planned"] = planned
    part["failed"] = len(failed)
    part["stop_reasons"] = [r["sampling"]["stop_reason"] for r in ok]
    part["started_utc"] = [r["started_utc"] for r in records]
    part["counts"] = [len(r["samples_ns"]) for r in ok]

    merged = dict(first)
    merged["samples_ns"] = pooled
    merged["latency_ns"] = summary.to_dict()
    for key in ("throughput_per_s", "tokens_per_s", "flops_per_s"):
        merged[key] = _scaled(first.get(key), factor)
    if all("host_samples_ns" in r for r in ok):
        host = [s for r in ok for s in r["host_samples_ns"]]
        merged["host_samples_ns"] = host
        merged["host_latency_ns"] = summarize(host, confidence).to_dict()
    worst = max(ok, key=lambda r: r["correctness"]["max_rel_error"])
    merged["correctness"] = dict(worst["correctness"], passed=all(r["correctness"]["passed"] for r in ok))
    sampling = dict(first["sampling"])
    sampling["elapsed_s"] = sum(r["sampling"]["elapsed_s"] for r in ok)
    sampling["stop_reason"] = Counter(part["stop_reasons"]).most_common(1)[0][0]
    if all("wall_s" in r["sampling"] for r in ok):
        sampling["wall_s"] = sum(r["sampling"]["wall_s"] for r in ok)
    merged["sampling"] = sampling
    if "validity" in first:
        units = list(first["validity"]["samples"]) or ["latency"]
        merged["validity"] = validity({units[0]: summary.count}, sampling["elapsed_s"])
    # Sample-count caveats of one process do not hold for the pool: judged again on it.
    warnings = [w for w in _merged_warnings(ok) if not w.startswith(("only ", "p99 withheld"))]
    tail = summary.intervals.get("p99")
    if tail is not None and not tail.backed and tail.note:
        warnings.append(f"p99 withheld: {tail.note} (pooled over {len(ok)} processes)")
    if failed:
        reasons = "; ".join(f"{(r.get('error') or {}).get('message', '?')}" for r in failed)
        warnings.append(f"{len(failed)} of {planned} processes failed: {reasons[:300]}")
    within = first["sampling"].get("rel_ci_half_width")
    if part["low_ns"] is not None and within is not None and part["rel_spread"] / 2 > within:
        warnings.append(
            f"between processes the median moved ±{part['rel_spread'] / 2:.1%}, more than one process's "
            f"interval (±{within:.1%}): only the between-process interval is a fair basis for comparison"
        )
    merged["warnings"] = warnings
    merged["processes"] = part
    merged["finished_utc"] = records[-1]["finished_utc"]
    return merged
