"""Run one cell: build, reference, prepare, check, sample, summarize — and never raise.

Whatever goes wrong inside a cell becomes a ``failed`` cell naming the phase it failed in, so
one broken configuration never costs the measurements of the others.
"""

from __future__ import annotations

import time
import traceback
from typing import Any

from backends.base import BackendOptions
from harness.correctness import max_relative_error, tolerance_for
from harness.environment import utc_now
from harness.failures import describe_failure
from harness.measure import Sampling, SamplingPolicy, sample
from harness.plan import CellConfig
from harness.stats import Summary, summarize

__all__ = ["failed_cell", "run_cell", "warnings_for"]

#: Below this many samples the p99 is little more than the maximum.
MIN_SAMPLES_FOR_P99 = 100
#: IQR over median above which a distribution is called highly dispersed.
HIGH_DISPERSION = 0.2
#: Relative drift of the median between the first and last third that counts as no steady state.
DRIFT = 0.05


def failed_cell(config: CellConfig, phase: str, exc: BaseException | str, started: str) -> dict[str, Any]:
    """A cell record for a failure, with a one-line message."""
    if isinstance(exc, BaseException):
        kind, message = describe_failure(exc, config.batch_size)
    else:
        kind, message = "ChildProcessError", exc
    return {
        "id": config.cell_id,
        "config": config.to_dict(),
        "status": "failed",
        "error": {"type": kind, "message": message[:500], "phase": phase},
        "started_utc": started,
        "finished_utc": utc_now(),
    }


def warnings_for(sampling: Sampling, summary: Summary, policy: SamplingPolicy) -> list[str]:
    """Caveats a reader must see next to the numbers."""
    import numpy as np

    found: list[str] = []
    if sampling.stop_reason != "converged":
        reached = sampling.rel_ci_half_width
        found.append(
            f"stopped by {sampling.stop_reason.replace('_', ' ')} before the median's CI reached "
            f"±{policy.target_rel_ci:.1%} (reached ±{reached:.1%})"
        )
    if summary.count < MIN_SAMPLES_FOR_P99:
        found.append(f"only {summary.count} samples: p99 needs at least {MIN_SAMPLES_FOR_P99}")
    if summary.p50 > 0 and summary.iqr / summary.p50 > HIGH_DISPERSION:
        found.append(f"high dispersion: IQR is {summary.iqr / summary.p50:.0%} of the median")
    samples = np.asarray(sampling.samples_ns, dtype=np.float64)
    if samples.size >= 30:
        third = samples.size // 3
        first, last = float(np.median(samples[:third])), float(np.median(samples[-third:]))
        if first > 0 and abs(last - first) / first > DRIFT:
            found.append(f"no steady state: the median moved {last / first - 1:+.0%} from the first to the last third")
    return found


def run_cell(config: CellConfig, policy: SamplingPolicy) -> dict[str, Any]:
    """Measure one cell in this process; failures come back as a failed cell record."""
    started = utc_now()
    phase = "setup"
    try:
        import torch
        from torch.utils.flop_counter import FlopCounterMode

        from backends.registry import require_backend
        from backends.torch_common import tensors_to_host
        from workloads.registry import resolve

        backend = require_backend(config.backend)
        options = BackendOptions(dtype=config.dtype, mode=config.mode, threads=config.threads, device=config.device)
        backend.validate(options)
        if config.threads is not None:
            torch.set_num_threads(config.threads)

        phase = "build"
        workload = resolve(config.workload, config.preset)
        torch.manual_seed(0)
        model = workload.build_model().eval()
        inputs = workload.make_inputs(config.batch_size)
        params = sum(p.numel() for p in model.parameters())

        phase = "reference"
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            reference = tensors_to_host(model(*inputs))
        flops_per_inference = counter.get_total_flops() / config.batch_size

        phase = "prepare"
        backend.reset_peak_memory()
        prepared = backend.prepare(model, inputs, options)

        phase = "correctness"
        output = backend.to_host(prepared.call())
        backend.synchronize()
        error = max_relative_error(reference, output)
        tolerance = tolerance_for(config.dtype)
        del output, reference

        phase = "measure"
        meter = prepared.energy_meter
        measured_at = time.perf_counter()
        if meter is not None:
            meter.start()
        sampling = sample(prepared.call, policy, backend.synchronize, device_timer=prepared.device_timer)
        energy = None
        if meter is not None:
            energy = meter.stop(sampling.warmup_count + len(sampling.samples_ns), config.batch_size)
        peak = backend.peak_memory_bytes()

        phase = "statistics"
        summary = summarize(sampling.samples_ns, policy.confidence)
        median_s = summary.p50 / 1e9
        throughput = config.batch_size / median_s if median_s > 0 else 0.0
        warnings = warnings_for(sampling, summary, policy)
        passed = error <= tolerance
        if not passed:
            warnings.insert(
                0, f"correctness: max relative error {error:.2e} exceeds the {config.dtype} tolerance {tolerance:.0e}"
            )
        device = backend.device_info()
        device.update(prepared.details)
        record: dict[str, Any] = {
            "id": config.cell_id,
            "config": config.to_dict(),
            "status": "ok",
            "error": None,
            "workload": {
                "task": workload.task,
                "description": workload.description,
                "params": int(params),
                "flops_per_inference": float(flops_per_inference),
                "tokens_per_sample": int(workload.tokens_per_sample),
            },
            "device": device,
            "compile_s": prepared.compile_s,
            "peak_memory_bytes": peak,
            "correctness": {
                "max_rel_error": error if error != float("inf") else 1e300,
                "tolerance": tolerance,
                "passed": passed,
                "reference": "cpu eager fp32",
            },
            "sampling": {
                "warmup_count": sampling.warmup_count,
                "warmup_s": sampling.warmup_ns / 1e9,
                "elapsed_s": sampling.elapsed_ns / 1e9,
                "stop_reason": sampling.stop_reason,
                "rel_ci_half_width": sampling.rel_ci_half_width,
                "target_rel_ci": policy.target_rel_ci,
                "confidence": policy.confidence,
                "max_time_s": policy.max_time_s,
                "min_count": policy.min_count,
                "max_count": policy.max_count,
                "wall_s": time.perf_counter() - measured_at,
                "timer": sampling.timer,
            },
            "latency_ns": summary.to_dict(),
            "throughput_per_s": throughput,
            "tokens_per_s": throughput * workload.tokens_per_sample if workload.tokens_per_sample else None,
            "flops_per_s": flops_per_inference * throughput if flops_per_inference else None,
            "samples_ns": sampling.samples_ns,
            "warnings": warnings,
            "started_utc": started,
            "finished_utc": utc_now(),
        }
        if sampling.host_samples_ns is not None:
            # Device-clock samples are primary; the host's of the same calls show what the host adds.
            record["host_latency_ns"] = summarize(sampling.host_samples_ns, policy.confidence).to_dict()
            record["host_samples_ns"] = sampling.host_samples_ns
        if energy is not None:
            record["energy"] = energy
        return record
    except Exception as exc:  # a cell must fail alone, whatever it raised
        record = failed_cell(config, phase, exc, started)
        record["error"]["traceback"] = traceback.format_exc(limit=8)
        return record
