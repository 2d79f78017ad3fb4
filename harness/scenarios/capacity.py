"""Find a system's capacity: the highest arrival rate at which it still meets its SLO.

The search brackets the answer by doubling or halving from a first guess (the rate the measured
service time would sustain), then bisects the bracket geometrically until its ends are within
``rel_tol`` of each other. Rates are compared on a log scale because the answer can lie anywhere
over orders of magnitude. The capacity reported is the highest rate *seen to pass*, never an
interpolation, so it is always backed by a measurement.

Each probe is a noisy experiment, so pass/fail need not be perfectly monotone in the rate;
common random numbers in the schedule (see ``arrivals``) keep it close, and the result lists
every probe so a reader can see how clear the boundary was.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from harness.errors import ConfigError

__all__ = ["CapacitySearch", "Probe", "find_capacity"]

T = TypeVar("T")


@dataclass(frozen=True)
class Probe(Generic[T]):
    """One rate tried: whether it met the SLO, and what was measured there."""

    rate: float
    passed: bool
    result: T


@dataclass(frozen=True)
class CapacitySearch(Generic[T]):
    """The highest passing rate (0 if none passed), the bracket around it, and every probe."""

    capacity: float
    lowest_failing: float | None
    converged: bool
    stop_reason: str
    probes: list[Probe[T]] = field(default_factory=list)

    def best(self) -> Probe[T] | None:
        """The probe at the capacity (the highest passing rate)."""
        passing = [p for p in self.probes if p.passed and p.rate == self.capacity]
        return passing[-1] if passing else None


def find_capacity(
    measure: Callable[[float], T],
    passes: Callable[[T], bool],
    start_rate: float,
    *,
    rel_tol: float = 0.05,
    max_probes: int = 12,
    min_rate: float | None = None,
    out_of_time: Callable[[], bool] | None = None,
) -> CapacitySearch[T]:
    """Search rates from ``start_rate`` for the highest one whose measurement ``passes``.

    Stops when the bracket is within ``rel_tol`` (``converged``), after ``max_probes``
    (``max_probes``), when even ``min_rate`` fails (``nothing_passed``), or when ``out_of_time()``
    says so before a probe (``time_budget``).
    """
    if not start_rate > 0 or not math.isfinite(start_rate):
        raise ConfigError(f"the capacity search needs a positive start rate, got {start_rate!r}")
    if not 0 < rel_tol < 1:
        raise ConfigError(f"relative tolerance must be in (0, 1), got {rel_tol!r}")
    floor = min_rate if min_rate is not None else start_rate / 1024
    probes: list[Probe[T]] = []

    def probe(rate: float) -> bool:
        result = measure(rate)
        ok = bool(passes(result))
        probes.append(Probe(rate, ok, result))
        return ok

    def may_probe() -> bool:
        return len(probes) < max_probes and not (probes and out_of_time is not None and out_of_time())

    passing: float | None = None
    failing: float | None = None
    rate = start_rate
    # Bracket: double while passing, halve while failing.
    while may_probe():
        if probe(rate):
            passing = rate
            if failing is not None:
                break
            rate *= 2
        else:
            failing = rate
            if passing is not None:
                break
            if rate / 2 < floor:
                return CapacitySearch(0.0, failing, False, "nothing_passed", probes)
            rate /= 2
    # Bisect on a log scale until the bracket is tight.
    while passing is not None and failing is not None and failing / passing - 1 > rel_tol and may_probe():
        middle = math.sqrt(passing * failing)
        if probe(middle):
            passing = middle
        else:
            failing = middle
    converged = passing is not None and failing is not None and failing / passing - 1 <= rel_tol
    reason = "converged" if converged else ("max_probes" if len(probes) >= max_probes else "time_budget")
    return CapacitySearch(passing or 0.0, failing, converged, reason, probes)
