"""The ``throughput`` scenario: the sustained rate of back-to-back calls at the cell's batch.

Unlike ``latency``, the device is synchronized once per block of calls rather than after each,
so an asynchronous device (CUDA, Neuron) can queue the next call while finishing the last, as a
busy server does; on the CPU, where every call is synchronous, the two agree. Inputs stay on the
device: this is the model's ceiling at that batch. ``offline`` is the end-to-end counterpart (a
large query fed through the host batch by batch, optionally under LoadGen's rules).

Samples are per-call times (block time / calls per block), so the record has the same shape as a
latency cell and ``throughput_per_s`` = batch / median per-call time.
"""

from __future__ import annotations

import math
import time
from typing import Any

from harness.scenarios.base import CellContext, sampling_record, workload_record
from harness.scenarios.latency import prepare_checked, warnings_for
from harness.scenarios.validity import validity

__all__ = ["BLOCK_TARGET_S", "SCENARIO", "ThroughputScenario", "calls_per_block"]

#: Aim for blocks of about this long: long enough to hide one synchronize, short enough to sample.
BLOCK_TARGET_S = 0.02
MAX_CALLS_PER_BLOCK = 1000


def calls_per_block(per_call_s: float) -> int:
    """Calls per timed block for a call of ``per_call_s``: 1 when a call alone fills a block."""
    if per_call_s <= 0:
        return MAX_CALLS_PER_BLOCK
    return max(1, min(MAX_CALLS_PER_BLOCK, math.ceil(BLOCK_TARGET_S / per_call_s)))


class ThroughputScenario:
    name = "throughput"

    def run(self, ctx: CellContext) -> dict[str, Any]:
        from harness.measure import Sampling, sample
        from harness.stats import summarize

        config, policy, backend = ctx.config, ctx.policy, ctx.backend
        checked = prepare_checked(ctx)
        prepared, flops_per_inference = checked.prepared, checked.flops_per_inference
        correctness, failure = checked.correctness, checked.warning
        call, synchronize = prepared.call, backend.synchronize

        ctx.phase = "measure"
        start = time.perf_counter()
        for _ in range(3):
            call()
        synchronize()
        calls = calls_per_block((time.perf_counter() - start) / 3)

        def block() -> None:
            for _ in range(calls):
                call()

        measured_at = time.perf_counter()
        blocks = sample(block, policy, synchronize)
        sampling = Sampling(
            samples_ns=[max(1, round(ns / calls)) for ns in blocks.samples_ns],
            warmup_count=blocks.warmup_count * calls,
            warmup_ns=blocks.warmup_ns,
            elapsed_ns=blocks.elapsed_ns,
            stop_reason=blocks.stop_reason,
            rel_ci_half_width=blocks.rel_ci_half_width,
        )
        peak = backend.peak_memory_bytes()

        ctx.phase = "statistics"
        summary = summarize(sampling.samples_ns, policy.confidence)
        median_s = summary.p50 / 1e9
        throughput = config.batch_size / median_s if median_s > 0 else 0.0
        warnings = warnings_for(sampling, summary, policy)
        if failure:
            warnings.insert(0, failure)
        device = backend.device_info()
        device.update(prepared.details)
        tokens = ctx.workload.tokens_per_sample
        return {
            "workload": workload_record(ctx, flops_per_inference),
            "device": device,
            "compile_s": prepared.compile_s,
            "peak_memory_bytes": peak,
            "correctness": correctness,
            "sampling": sampling_record(sampling, policy, time.perf_counter() - measured_at),
            "latency_ns": summary.to_dict(),
            "throughput_per_s": throughput,
            "tokens_per_s": throughput * tokens if tokens else None,
            "flops_per_s": flops_per_inference * throughput if flops_per_inference else None,
            "samples_ns": sampling.samples_ns,
            "block": {"calls": calls, "target_s": BLOCK_TARGET_S},
            "warnings": warnings,
            "validity": validity({"blocks": summary.count}, sampling.elapsed_ns / 1e9),
        }


SCENARIO = ThroughputScenario()
