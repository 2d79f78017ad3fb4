"""What every scenario shares: the context a cell hands it and the record parts it returns.

``harness.run.cell.run_cell`` does the common part (resolve the backend, build the workload) and
hands a ``CellContext`` to the scenario, which does the rest (reference, prepare, check, measure,
summarize) and returns the scenario's keys of the cell record. A scenario sets ``ctx.phase`` as
it goes, so a failure is recorded with the phase it happened in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from harness.measure.correctness import tolerance_for
from harness.runfile.records import Correctness, Measurement, SamplingRecord, WorkloadFacts

if TYPE_CHECKING:
    import torch

    from backends.base import Backend, BackendOptions
    from harness.measure.sampler import SamplingPolicy
    from harness.runfile.records import CellConfig
    from workloads.base import Workload

__all__ = ["CellContext", "Scenario", "correctness_record", "sampling_fields", "sampling_record", "workload_record"]


@dataclass
class CellContext:
    """Everything a scenario needs: the cell, its policy, the backend and the built model."""

    config: CellConfig
    policy: SamplingPolicy
    backend: Backend
    options: BackendOptions
    workload: Workload
    model: torch.nn.Module
    params: int
    phase: str = "build"
    #: Told every phase as it starts, so the cell's time limits can be enforced from outside it.
    on_phase: Callable[[str], None] | None = field(default=None, repr=False, compare=False)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name == "phase" and getattr(self, "on_phase", None) is not None:
            self.on_phase(value)  # type: ignore[misc]


class Scenario(Protocol):
    """Runs one cell's measurement and returns what it measured."""

    name: str

    def run(self, ctx: CellContext) -> Measurement: ...


def workload_record(
    ctx: CellContext, flops_per_inference: float | None, tokens_per_sample: int | None = None
) -> WorkloadFacts:
    """The record's workload facts; generation cells pass their prompt + output tokens per sample."""
    workload = ctx.workload
    return WorkloadFacts(
        task=workload.task,
        description=workload.description,
        params=int(ctx.params),
        flops_per_inference=None if flops_per_inference is None else float(flops_per_inference),
        tokens_per_sample=int(workload.tokens_per_sample if tokens_per_sample is None else tokens_per_sample),
    )


#: A relative error this large stands for "no agreement at all" (JSON has no infinity).
UNBOUNDED_ERROR = 1e300


def correctness_record(error: float, dtype: str, reference: str = "cpu eager fp32") -> tuple[Correctness, str | None]:
    """The record's correctness and, when it failed, the warning that leads the warnings list."""
    tolerance = tolerance_for(dtype)
    passed = error <= tolerance
    record = Correctness(
        max_rel_error=error if error == error and error != float("inf") else UNBOUNDED_ERROR,
        tolerance=tolerance,
        passed=passed,
        reference=reference,
    )
    warning = (
        None
        if passed
        else (f"correctness: max relative error {error:.2e} exceeds the {dtype} tolerance {tolerance:.0e}")
    )
    return record, warning


class SamplingOutcome(Protocol):
    """What a sampling record needs from a sampler's result (``Sampling`` or a request sampler's)."""

    @property
    def warmup_count(self) -> int: ...
    @property
    def warmup_ns(self) -> int: ...
    @property
    def elapsed_ns(self) -> int: ...
    @property
    def stop_reason(self) -> str: ...
    @property
    def rel_ci_half_width(self) -> float: ...
    @property
    def reached(self) -> Mapping[str, float] | None: ...
    @property
    def timer(self) -> str: ...


def sampling_fields(
    policy: SamplingPolicy,
    *,
    warmup_count: int,
    warmup_s: float,
    elapsed_s: float,
    stop_reason: str,
    wall_s: float,
    rel_ci_half_width: float | None = None,
    timer: str = "host_clock",
    reached: Mapping[str, float] | None = None,
    too_few: str | None = None,
) -> SamplingRecord:
    """The record's sampling part: what the sampler did, under which policy."""
    finite = (
        rel_ci_half_width is not None and rel_ci_half_width == rel_ci_half_width and rel_ci_half_width != float("inf")
    )
    return SamplingRecord(
        warmup_count=warmup_count,
        warmup_s=warmup_s,
        elapsed_s=elapsed_s,
        stop_reason=stop_reason,
        rel_ci_half_width=rel_ci_half_width if finite else None,
        targets=dict(policy.targets),
        reached={k: (v if math.isfinite(v) else None) for k, v in (reached or {}).items()},
        target_rel_ci=policy.target_rel_ci,
        confidence=policy.confidence,
        max_time_s=policy.max_time_s,
        min_count=policy.min_count,
        max_count=policy.max_count,
        wall_s=wall_s,
        timer=timer,
        too_few=too_few,
    )


def sampling_record(sampling: SamplingOutcome, policy: SamplingPolicy, wall_s: float) -> SamplingRecord:
    """``sampling_fields`` from a sampler's result."""
    return sampling_fields(
        policy,
        warmup_count=sampling.warmup_count,
        warmup_s=sampling.warmup_ns / 1e9,
        elapsed_s=sampling.elapsed_ns / 1e9,
        stop_reason=sampling.stop_reason,
        wall_s=wall_s,
        rel_ci_half_width=sampling.rel_ci_half_width,
        timer=sampling.timer,
        reached=sampling.reached,
        too_few=getattr(sampling, "too_few", None),
    )
