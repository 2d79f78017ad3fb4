"""The answer at a latency target: per workload, the fastest and the cheapest cell whose p99 meets it.

"Fastest" is the most inferences per second (the MLPerf server-scenario reading: among the
configurations that meet the latency bound, the one that serves the most); "cheapest" is the
lowest USD per million inferences. Only cells that ran, passed the correctness check and have a
p99 are candidates; a failed or wrong cell is never an answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.report.columns import fmt, money
from harness.report.rows import CellRow
from harness.scenarios.specs import MIN_SAMPLES_FOR_P99

__all__ = ["SloChoice", "choose", "describe_pick"]


def _p99(row: CellRow) -> float:
    interval = row.latency_ms("p99")
    assert interval is not None
    return interval.value


def _p50(row: CellRow) -> float:
    interval = row.latency_ms("p50")
    assert interval is not None
    return interval.value


def _throughput(row: CellRow) -> float:
    assert row.measurement is not None
    return row.measurement.throughput_per_s


def describe_pick(row: CellRow | None) -> str:
    """'label: 1,234 inf/s, p99 2.1 ms, $0.05/M inf', or 'none'."""
    if row is None:
        return "none"
    cost = f", ${money(row.usd_per_million_headline)}/M inf" if row.usd_per_million_headline is not None else ""
    return f"{row.label}: {fmt(_throughput(row))} inf/s, p99 {fmt(_p99(row))} ms{cost}"


@dataclass(frozen=True)
class SloChoice:
    """The picks for one workload (``workload:preset``) at ``slo_p99_ms``."""

    workload: str
    slo_p99_ms: float
    considered: int
    meeting: int
    fastest: CellRow | None
    cheapest: CellRow | None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The choice for ``report --format json``."""

        def pick(row: CellRow | None) -> dict[str, Any] | None:
            if row is None:
                return None
            return {
                "run_id": row.run_id,
                "cell_id": row.cell.id,
                "target": row.target,
                "backend": row.backend,
                "dtype": row.dtype,
                "mode": row.mode,
                "threads": row.threads,
                "batch_size": row.batch_size,
                "p50_ms": _p50(row),
                "p99_ms": _p99(row),
                "throughput_per_s": _throughput(row),
                "usd_per_million": row.usd_per_million_headline,
                "usd_per_hour": row.price.usd_per_hour if row.price else None,
                "price": row.price.describe() if row.price else None,
                "label": row.label,
            }

        return {
            "workload": self.workload,
            "slo_p99_ms": self.slo_p99_ms,
            "considered": self.considered,
            "meeting": self.meeting,
            "fastest": pick(self.fastest),
            "cheapest": pick(self.cheapest),
            "notes": list(self.notes),
        }


def choose(rows: Sequence[CellRow], slo_p99_ms: float) -> list[SloChoice]:
    """One choice per workload, in the order workloads first appear in ``rows``."""
    groups: dict[str, list[CellRow]] = {}
    for row in rows:
        groups.setdefault(f"{row.workload}:{row.preset}", []).append(row)
    choices = []
    for name, group in groups.items():
        usable = [r for r in group if r.ok and r.measurement is not None and r.measurement.correctness.passed]
        meeting = [r for r in usable if _p99(r) <= slo_p99_ms]
        fastest = max(meeting, key=lambda r: (_throughput(r), -_p50(r)), default=None)
        priced = [r for r in meeting if r.usd_per_million_headline is not None]
        cheapest = min(priced, key=lambda r: (r.usd_per_million_headline or 0.0, -_throughput(r)), default=None)
        notes = []
        skipped = len(group) - len(usable)
        if skipped:
            notes.append(f"{skipped} failed or incorrect cell(s) not considered")
        if not meeting:
            best = min(usable, key=_p99, default=None)
            if best is not None:
                notes.append(
                    f"no cell meets p99 <= {slo_p99_ms:g} ms; the lowest p99 is {_p99(best):.3g} ms ({best.label})"
                )
        elif not priced:
            notes.append("no cell that meets the target has a price; give one with --price-per-hour")
        for label, chosen in (("fastest", fastest), ("cheapest", cheapest)):
            if chosen is None:
                continue
            if (chosen.samples or 0) < MIN_SAMPLES_FOR_P99:
                notes.append(
                    f"the {label} cell's p99 rests on only {chosen.samples} samples "
                    f"(an interval needs {MIN_SAMPLES_FOR_P99}): rerun it with --tail 99"
                )
            p99 = chosen.latency_ms("p99")
            if p99 is not None and p99.high is not None and p99.high > slo_p99_ms:
                notes.append(f"the {label} cell's p99 confidence interval reaches {p99.high:.3g} ms, above the target")
        choices.append(
            SloChoice(name, slo_p99_ms, len(usable), len(meeting), fastest, cheapest, tuple(dict.fromkeys(notes)))
        )
    return choices
