"""A verdict across silicon: which run's pick is cheaper at an SLO, how sure, and the break-even price.

The probability and the break-even interval are the uncertainty maths of
``harness.report.uncertainty`` (exact Bayesian bootstrap of each run's median, or the posterior
of the process medians with ``--processes``); this module picks what to compare and says it in
one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from harness.measure.stats import Interval
from harness.report.uncertainty import CONFIDENCE, Side, break_even_price, probability_cheaper

if TYPE_CHECKING:
    from harness.report.rows import CellRow

__all__ = ["Verdict", "compare_costs", "cross_run_verdicts"]


@dataclass(frozen=True)
class Verdict:
    """A against B for one workload at one SLO: which is cheaper, how sure, and the break-even price."""

    workload: str
    cheaper: str
    other: str
    probability: float
    cheaper_usd_per_million: float
    other_usd_per_million: float
    break_even_usd_per_hour: Interval
    other_usd_per_hour: float
    method: str = "exact Bayesian bootstrap of each run's median"
    #: "between processes" when both rest on ``--processes`` medians, else "within one process".
    basis: str = "within one process"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sentence"] = self.sentence()
        return data

    def sentence(self) -> str:
        """The verdict as one line a reader can act on."""
        be = self.break_even_usd_per_hour
        return (
            f"{self.cheaper} is cheaper than {self.other} with probability {_probability(self.probability)} "
            f"(${self.cheaper_usd_per_million:.3g} vs ${self.other_usd_per_million:.3g} per million); "
            f"{self.other} would match it at ${be.estimate:.3g}/h "
            f"[{be.confidence:.0%} interval ${be.low or 0:.3g}–${be.high or 0:.3g}], "
            f"against ${self.other_usd_per_hour:.3g}/h now"
            + (
                ""
                if self.basis == "between processes"
                else "; from one process per run, blind to run-to-run spread (measure with --processes N)"
            )
        )


def _probability(p: float) -> str:
    if p > 0.999:
        return "> 0.999"
    return f"{p:.3f}"


def compare_costs(workload: str, a: Side, b: Side, confidence: float = CONFIDENCE) -> Verdict:
    """The verdict between two candidates; A and B are swapped so that ``cheaper`` is the lower point cost."""
    cost_a, cost_b = a.usd_per_million, b.usd_per_million
    if cost_b < cost_a:
        a, b, cost_a, cost_b = b, a, cost_b, cost_a
    both = a.between_processes and b.between_processes
    return Verdict(
        workload=workload,
        cheaper=a.label,
        other=b.label,
        probability=probability_cheaper(a, b),
        cheaper_usd_per_million=cost_a,
        other_usd_per_million=cost_b,
        break_even_usd_per_hour=break_even_price(a, b, confidence),
        other_usd_per_hour=b.usd_per_hour,
        method="posterior of each run's mean process median (Student t)"
        if both
        else "exact Bayesian bootstrap of each run's median",
        basis="between processes" if both else "within one process",
    )


def cross_run_verdicts(rows: Sequence[CellRow], slo_p99_ms: float, confidence: float = CONFIDENCE) -> list[Verdict]:
    """For each workload measured in several runs: the cheapest run's pick against every other's.

    Per run, the pick is that run's cheapest correct, priced cell whose p99 meets the SLO (as
    ``report --slo-p99`` chooses). Server cells priced at a searched capacity are left out: their
    cost rests on a capacity bracket, not on sampled latencies (their bracket is shown instead).
    """
    from harness.report.slo import choose

    by_workload: dict[str, list[CellRow]] = {}
    for run_id in dict.fromkeys(r.run_id for r in rows):
        run_rows = [
            r for r in rows if r.run_id == run_id and not (r.measurement is not None and r.measurement.capacity_rps)
        ]
        for choice in choose(run_rows, slo_p99_ms):
            if choice.cheapest is not None:
                by_workload.setdefault(choice.workload, []).append(choice.cheapest)
    verdicts: list[Verdict] = []
    for workload, picks in by_workload.items():
        sides = []
        for row in picks:
            measured = row.measurement
            if measured is not None and measured.samples_ns and row.price is not None and measured.throughput_per_s:
                label = f"{row.label} (run {row.run_id})"
                medians = measured.processes.medians_ns if measured.processes is not None else ()
                sides.append(
                    Side(label, measured.samples_ns, measured.throughput_per_s, row.price.usd_per_hour, medians)
                )
        if len(sides) < 2:
            continue
        sides.sort(key=lambda s: s.usd_per_hour / s.per_s)
        verdicts.extend(compare_costs(workload, sides[0], other, confidence) for other in sides[1:])
    return verdicts
