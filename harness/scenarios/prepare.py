"""Shared preparation of forward-pass scenarios: reference, prepare, check; and their measurement.

``latency``, ``throughput``, ``server``, ``offline`` and LoadGen cells all start from a prepared
model whose output matched the fp32 CPU reference; this module is where that happens, so no
scenario imports another.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.runfile.records import Correctness, Measurement
from harness.scenarios.base import CellContext, correctness_record, sampling_record, workload_record
from harness.scenarios.specs import FORWARD_COLUMNS
from harness.scenarios.validity import validity
from harness.scenarios.warnings import warnings_for

if TYPE_CHECKING:
    from backends.base import PreparedModel
    from harness.measure.sampler import Sampling

__all__ = ["FORWARD_COLUMNS", "CheckedForward", "Prepared", "measured_record", "prepare_checked"]


@dataclass
class CheckedForward:
    """A prepared forward pass with its FLOPs and its correctness against the fp32 CPU reference."""

    prepared: PreparedModel
    flops_per_inference: float
    correctness: Correctness
    warning: str | None
    staged: Any = None


def prepare_checked(ctx: CellContext, staged: bool = False) -> CheckedForward:
    """Reference, prepare and check a plain forward pass at the cell's batch.

    With ``staged``, the backend prepares a ``staged.StagedModel`` whose inputs can be refilled.
    """
    import torch

    from backends.torch_common import tensors_to_host
    from harness.measure.correctness import max_relative_error
    from harness.measure.flops import flop_counter

    config, backend = ctx.config, ctx.backend
    inputs = ctx.workload.make_inputs(config.batch_size)

    ctx.phase = "reference"
    with torch.inference_mode(), flop_counter() as counter:
        reference = tensors_to_host(ctx.model(*inputs))
    flops_per_inference = counter.get_total_flops() / config.batch_size

    ctx.phase = "prepare"
    backend.reset_peak_memory()
    wrapper = None
    if staged:
        from harness.scenarios.staged import StagedModel

        wrapper = StagedModel(ctx.model, inputs)
        prepared = backend.prepare(wrapper, (), ctx.options)
    else:
        prepared = backend.prepare(ctx.model, inputs, ctx.options)

    ctx.phase = "correctness"
    output = backend.to_host(prepared.call())
    backend.synchronize()
    error = max_relative_error(reference, output)
    record, warning = correctness_record(error, config.dtype)
    return CheckedForward(prepared, flops_per_inference, record, warning, wrapper)


def measured_record(
    ctx: CellContext, checked: CheckedForward, sampling: Sampling, peak: int | None, measured_at: float, unit: str
) -> Measurement:
    """The record of a forward-pass cell from its per-call samples (latency and throughput share it).

    ``unit`` names what a sample is in the validity verdict ("latency" or "blocks").
    """
    from harness.measure.stats import summarize

    config, policy, backend = ctx.config, ctx.policy, ctx.backend
    prepared, flops_per_inference = checked.prepared, checked.flops_per_inference
    ctx.phase = "statistics"
    summary = summarize(sampling.samples_ns, policy.confidence)
    median_s = summary.p50 / 1e9
    throughput = config.batch_size / median_s if median_s > 0 else 0.0
    warnings = warnings_for(sampling, summary, policy)
    if checked.warning:
        warnings.insert(0, checked.warning)
    device = backend.device_info()
    device.update(prepared.details)
    tokens = ctx.workload.tokens_per_sample
    return Measurement(
        workload=workload_record(ctx, flops_per_inference),
        device=device,
        compile_s=prepared.compile_s,
        peak_memory_bytes=peak,
        correctness=checked.correctness,
        sampling=sampling_record(sampling, policy, time.perf_counter() - measured_at),
        latency_ns=summary,
        throughput_per_s=throughput,
        tokens_per_s=throughput * tokens if tokens else None,
        flops_per_s=flops_per_inference * throughput if flops_per_inference else None,
        samples_ns=tuple(sampling.samples_ns),
        warnings=tuple(warnings),
        validity=validity({unit: summary.count}, sampling.elapsed_ns / 1e9),
    )


@dataclass(frozen=True)
class Prepared:
    """What a load scenario's record needs from preparing its model (forward pass or decoder)."""

    flops: float | None
    correctness: Correctness
    warning: str | None
    device: dict[str, Any]
    compile_s: float
    decoder: bool
    tokens_per_sample: int
    token_agreement: float | None = None
