"""The ``latency`` scenario: one request at a time, the device synchronized after each.

fp32 CPU reference and FLOPs, ``backend.prepare``, correctness, adaptive sampling, summary.
Preparation and the record are shared with ``throughput`` (``harness.scenarios.prepare``).
"""

from __future__ import annotations

import time
from dataclasses import replace

from harness.runfile.records import HostTiming, Measurement
from harness.scenarios.base import CellContext
from harness.scenarios.prepare import measured_record, prepare_checked
from harness.scenarios.specs import FORWARD_COLUMNS, ScenarioSpec

__all__ = ["SCENARIO", "SPEC", "LatencyScenario"]


class LatencyScenario:
    name = "latency"

    def run(self, ctx: CellContext) -> Measurement:
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
        host = None
        if sampling.host_samples_ns is not None:
            # Device-clock samples are primary; the host's of the same calls show what the host adds.
            host = HostTiming(summarize(sampling.host_samples_ns, policy.confidence), tuple(sampling.host_samples_ns))
        return replace(record, host=host, energy=energy)


SCENARIO = LatencyScenario()

SPEC = ScenarioSpec(
    name="latency",
    help="one request at a time, the device synchronized after each: latency percentiles (the default)",
    runner="harness.scenarios.latency:SCENARIO",
    order=0,
    columns=FORWARD_COLUMNS,
    loadgen="SingleStream",
    mergeable=True,
)
