"""Wall-clock limits of a cell, enforced from outside it.

A cell has two parts with very different natural lengths:

- **preparation** (``setup``, ``build``, ``reference``, ``prepare``, ``correctness``): building the
  model, compiling it, a Neuron trace, starting an engine. Minutes are normal (a Neuron trace of a
  large model takes several), so it gets one large limit, ``PREPARE_LIMIT_S`` by default.
- **sampling** (``measure``, ``statistics``): bounded by the sampling budget the user gave
  (``--max-time``), so its limit is derived from that budget plus a small grace for the calls in
  flight when the budget ran out, the minimum sample count and the statistics:
  ``SAMPLING_GRACE_S`` seconds by default.

The limits are enforced by the parent of an isolated cell (which kills the child's process
group) or by a watchdog thread for a cell in this process, never by an alarm inside the cell: a
hung C call does not run Python signal handlers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.errors import ConfigError

if TYPE_CHECKING:
    from harness.measure.sampler import SamplingPolicy

__all__ = [
    "LOADGEN_BUDGET_FACTOR",
    "LOADGEN_EXTRA_S",
    "PREPARE_LIMIT_S",
    "PREPARE_PHASES",
    "SAMPLING_GRACE_S",
    "CellLimits",
    "sampling_budget_s",
]

#: Default limit of a cell's preparation (build, compile, trace, engine start), in seconds.
PREPARE_LIMIT_S = 1800.0
#: Default grace beyond a cell's sampling budget, in seconds.
SAMPLING_GRACE_S = 30.0
#: The phases a cell's preparation limit covers; every later phase is under the sampling limit.
PREPARE_PHASES = ("setup", "build", "reference", "prepare", "correctness")
#: LoadGen's own ``max_duration_ms`` is 10 × the budget + 60 s (harness.scenarios.loadgen).
LOADGEN_BUDGET_FACTOR = 10
LOADGEN_EXTRA_S = 60.0


def sampling_budget_s(policy: SamplingPolicy, scenario: str, loadgen: bool = False) -> float:
    """How long a scenario may sample under ``policy``, by its own stopping rules (seconds).

    Warmup plus as many budgets as the scenario's stopping rule may spend (``ScenarioSpec.budgets``:
    one, or several for a search such as the server's capacity search); LoadGen stops at its own
    maximum duration.
    """
    if loadgen:
        return policy.warmup_time_s + LOADGEN_BUDGET_FACTOR * policy.max_time_s + LOADGEN_EXTRA_S
    from harness.scenarios.registry import spec

    return policy.warmup_time_s + spec(scenario).budgets * policy.max_time_s


def _check(value: float, flag: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{flag} must be a finite positive number of seconds, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class CellLimits:
    """The two wall-clock limits of a cell (seconds): ``prepare_s`` for its preparation and
    ``sampling_grace_s`` beyond its sampling budget for the rest."""

    prepare_s: float = PREPARE_LIMIT_S
    sampling_grace_s: float = SAMPLING_GRACE_S

    def __post_init__(self) -> None:
        _check(self.prepare_s, "--prepare-limit")
        _check(self.sampling_grace_s, "--sampling-grace")

    def sampling_s(self, policy: SamplingPolicy, scenario: str, loadgen: bool = False) -> float:
        """The sampling limit of a cell: its budget plus the grace."""
        return sampling_budget_s(policy, scenario, loadgen) + self.sampling_grace_s

    def for_phase(self, phase: str, policy: SamplingPolicy, scenario: str, loadgen: bool = False) -> float:
        """The limit that starts when ``phase`` starts (preparation phases share one limit)."""
        if phase in PREPARE_PHASES:
            return self.prepare_s
        return self.sampling_s(policy, scenario, loadgen)

    def describe(self, phase: str, policy: SamplingPolicy, scenario: str, loadgen: bool = False) -> str:
        """Why a cell was stopped in ``phase``, with the flag that changes the limit."""
        if phase in PREPARE_PHASES:
            return f"exceeded its preparation limit of {self.prepare_s:g} s in phase {phase!r} (--prepare-limit)"
        budget = sampling_budget_s(policy, scenario, loadgen)
        return (
            f"exceeded its sampling limit of {budget + self.sampling_grace_s:g} s (budget {budget:g} s + "
            f"{self.sampling_grace_s:g} s grace) in phase {phase!r} (--sampling-grace)"
        )
