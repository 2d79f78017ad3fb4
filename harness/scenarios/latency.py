"""The ``latency`` scenario: one request at a time, the device synchronized after each.

fp32 CPU reference and FLOPs, ``backend.prepare``, correctness, adaptive sampling, summary.
The record it returns is the original shape of a cell (plus ``validity``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.scenarios.base import CellContext, correctness_record, sampling_record, workload_record
from harness.scenarios.validity import validity

if TYPE_CHECKING:
    from backends.base import PreparedModel
    from harness.measure.sampler import Sampling, SamplingPolicy
    from harness.measure.stats import Summary

__all__ = [
    "DRIFT",
    "HIGH_DISPERSION",
    "SCENARIO",
    "CheckedForward",
    "LatencyScenario",
    "prepare_checked",
    "warnings_for",
]

#: IQR over median above which a distribution is called highly dispersed.
HIGH_DISPERSION = 0.2
#: Relative drift of the median between the first and last third that counts as no steady state.
DRIFT = 0.05


def warnings_for(sampling: Sampling, summary: Summary, policy: SamplingPolicy) -> list[str]:
    """Caveats a reader must see next to the numbers."""
    import numpy as np

    found: list[str] = []
    if sampling.stop_reason != "converged":
        reached = sampling.reached or {"p50": sampling.rel_ci_half_width}
        short = []
        for name, target in policy.targets.items():
            width = reached.get(name, math.inf)
            if width > target:
                got = "no interval yet" if width == math.inf else f"reached ±{width:.1%}"
                short.append(f"{'the median' if name == 'p50' else name}'s CI reached ±{target:.1%} ({got})")
        if short:
            found.append(f"stopped by {sampling.stop_reason.replace('_', ' ')} before {' and '.join(short)}")
    if summary.p50 > 0 and summary.iqr / summary.p50 > HIGH_DISPERSION:
        found.append(f"high dispersion: IQR is {summary.iqr / summary.p50:.0%} of the median")
    samples = np.asarray(sampling.samples_ns, dtype=np.float64)
    if samples.size >= 30:
        third = samples.size // 3
        first, last = float(np.median(samples[:third])), float(np.median(samples[-third:]))
        if first > 0 and abs(last - first) / first > DRIFT:
            found.append(f"no steady state: the median moved {last / first - 1:+.0%} from the first to the last third")
    return found


@dataclass
class CheckedForward:
    """A prepared forward pass with its FLOPs and its correctness against the fp32 CPU reference."""

    prepared: PreparedModel
    flops_per_inference: float
    correctness: dict[str, Any]
    warning: str | None
    staged: Any = None


def prepare_checked(ctx: CellContext, staged: bool = False) -> CheckedForward:
    """Reference, prepare and check a plain forward pass at the cell's batch.

    With ``staged``, the backend prepares a ``sut.StagedModel`` whose inputs can be refilled.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from backends.torch_common import tensors_to_host
    from harness.measure.correctness import max_relative_error

    config, backend = ctx.config, ctx.backend
    inputs = ctx.workload.make_inputs(config.batch_size)

    ctx.phase = "reference"
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        reference = tensors_to_host(ctx.model(*inputs))
    flops_per_inference = counter.get_total_flops() / config.batch_size

    ctx.phase = "prepare"
    backend.reset_peak_memory()
    wrapper = None
    if staged:
        from harness.scenarios.sut import StagedModel

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
) -> dict[str, Any]:
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
    return {
        "workload": workload_record(ctx, flops_per_inference),
        "device": device,
        "compile_s": prepared.compile_s,
        "peak_memory_bytes": peak,
        "correctness": checked.correctness,
        "sampling": sampling_record(sampling, policy, time.perf_counter() - measured_at),
        "latency_ns": summary.to_dict(),
        "throughput_per_s": throughput,
        "tokens_per_s": throughput * tokens if tokens else None,
        "flops_per_s": flops_per_inference * throughput if flops_per_inference else None,
        "samples_ns": sampling.samples_ns,
        "warnings": warnings,
        "validity": validity({unit: summary.count}, sampling.elapsed_ns / 1e9),
    }


class LatencyScenario:
    name = "latency"

    def run(self, ctx: CellContext) -> dict[str, Any]:
        from harness.measure.sampler import sample
        from harness.measure.stats import summarize

        config, policy, backend = ctx.config, ctx.policy, ctx.backend
        checked = prepare_checked(ctx)
        prepared = checked.prepared

        ctx.phase = "measure"
        meter = prepared.energy_meter
        measured_at = time.perf_counter()
        if meter is not None:
            meter.start()
        sampling = sample(prepared.call, policy, backend.synchronize, device_timer=prepared.device_timer)
        energy = None
        if meter is not None:
            energy = meter.stop(sampling.warmup_count + len(sampling.samples_ns), config.batch_size)
        peak = backend.peak_memory_bytes()

        record = measured_record(ctx, checked, sampling, peak, measured_at, "latency")
        if sampling.host_samples_ns is not None:
            # Device-clock samples are primary; the host's of the same calls show what the host adds.
            record["host_latency_ns"] = summarize(sampling.host_samples_ns, policy.confidence).to_dict()
            record["host_samples_ns"] = sampling.host_samples_ns
        if energy is not None:
            record["energy"] = energy
        return record


SCENARIO = LatencyScenario()
