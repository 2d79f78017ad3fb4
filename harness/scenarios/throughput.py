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
from dataclasses import replace

from harness.runfile.records import BlockInfo, Measurement
from harness.scenarios.base import CellContext
from harness.scenarios.prepare import measured_record, prepare_checked
from harness.scenarios.specs import FORWARD_COLUMNS, ScenarioSpec

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

    def run(self, ctx: CellContext) -> Measurement:
        from harness.measure.sampler import Sampling, sample

        policy, backend = ctx.policy, ctx.backend
        checked = prepare_checked(ctx)
        prepared = checked.prepared
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

        record = measured_record(ctx, checked, sampling, peak, measured_at, "blocks")
        return replace(record, block=BlockInfo(calls=calls, target_s=BLOCK_TARGET_S))


SCENARIO = ThroughputScenario()

SPEC = ScenarioSpec(
    name="throughput",
    help="back-to-back calls at the cell's batch, synchronized once per block: the sustained rate",
    runner="harness.scenarios.throughput:SCENARIO",
    order=1,
    part="block",
    columns=FORWARD_COLUMNS,
    mergeable=True,
)
