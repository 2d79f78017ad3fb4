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

from harness.scenarios.validity import MIN_SAMPLES_FOR_P99

__all__ = ["SloChoice", "cell_label", "choose"]


def cell_label(row: dict[str, Any]) -> str:
    """Short human name of a cell: where it ran and how."""
    threads = f" t{row['threads']}" if row.get("threads") else ""
    return f"{row['target']} {row['backend']} {row['dtype']} {row['mode']} bs{row['batch_size']}{threads}"


@dataclass(frozen=True)
class SloChoice:
    """The picks for one workload (``workload:preset``) at ``slo_p99_ms``."""

    workload: str
    slo_p99_ms: float
    considered: int
    meeting: int
    fastest: dict[str, Any] | None
    cheapest: dict[str, Any] | None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        def pick(row: dict[str, Any] | None) -> dict[str, Any] | None:
            if row is None:
                return None
            keys = (
                "run_id",
                "cell_id",
                "target",
                "backend",
                "dtype",
                "mode",
                "threads",
                "batch_size",
                "p50_ms",
                "p99_ms",
                "throughput_per_s",
                "usd_per_million",
                "usd_per_hour",
                "price",
            )
            return {k: row.get(k) for k in keys} | {"label": cell_label(row)}

        return {
            "workload": self.workload,
            "slo_p99_ms": self.slo_p99_ms,
            "considered": self.considered,
            "meeting": self.meeting,
            "fastest": pick(self.fastest),
            "cheapest": pick(self.cheapest),
            "notes": list(self.notes),
        }


def choose(rows: Sequence[dict[str, Any]], slo_p99_ms: float) -> list[SloChoice]:
    """One choice per workload, in the order workloads first appear in ``rows``."""
    order: list[str] = []
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        name = f"{row['workload']}:{row['preset']}"
        if name not in groups:
            order.append(name)
            groups[name] = []
        groups[name].append(row)
    choices = []
    for name in order:
        usable = [r for r in groups[name] if r["status"] == "ok" and r.get("correct") and r.get("p99_ms") is not None]
        meeting = [r for r in usable if r["p99_ms"] <= slo_p99_ms]
        fastest = max(meeting, key=lambda r: (r["throughput_per_s"], -r["p50_ms"]), default=None)
        priced = [r for r in meeting if r.get("usd_per_million") is not None]
        cheapest = min(priced, key=lambda r: (r["usd_per_million"], -r["throughput_per_s"]), default=None)
        notes = []
        skipped = len(groups[name]) - len(usable)
        if skipped:
            notes.append(f"{skipped} failed or incorrect cell(s) not considered")
        if not meeting:
            best = min(usable, key=lambda r: r["p99_ms"], default=None)
            if best is not None:
                notes.append(
                    f"no cell meets p99 <= {slo_p99_ms:g} ms; the lowest p99 is {best['p99_ms']:.3g} ms "
                    f"({cell_label(best)})"
                )
        elif not priced:
            notes.append("no cell that meets the target has a price; give one with --price-per-hour")
        for label, pick in (("fastest", fastest), ("cheapest", cheapest)):
            if pick is None:
                continue
            if pick.get("samples", 0) < MIN_SAMPLES_FOR_P99:
                notes.append(
                    f"the {label} cell's p99 rests on only {pick.get('samples')} samples "
                    f"(an interval needs {MIN_SAMPLES_FOR_P99}): rerun it with --tail 99"
                )
            if pick.get("p99_hi_ms") is not None and pick["p99_hi_ms"] > slo_p99_ms:
                notes.append(
                    f"the {label} cell's p99 confidence interval reaches {pick['p99_hi_ms']:.3g} ms, above the target"
                )
        choices.append(
            SloChoice(name, slo_p99_ms, len(usable), len(meeting), fastest, cheapest, tuple(dict.fromkeys(notes)))
        )
    return choices
