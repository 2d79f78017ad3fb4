"""The ``offline`` scenario: one large query, processed batch by batch, end to end.

MLPerf's Offline scenario: every sample is available at once and only the total time counts.
The query is cycled from a host-side sample library; each batch of ``batch_size`` samples is
gathered on the host, copied to the device, run (a forward pass, or a whole generation for a
decoder), and its results copied back (``sut``). So unlike ``throughput`` (inputs resident on
the device, the model's ceiling) it includes the host-side work a real batch job pays.

The query is sized to fill the time budget (at least ``min_count`` batches), from a two-batch
calibration; samples/s = samples / wall time from the first batch's start to the last result.
``--loadgen`` runs the same system under MLPerf LoadGen's Offline scenario and rules instead.
"""

from __future__ import annotations

import math
import time

from harness.runfile.records import Measurement, OfflinePart
from harness.scenarios.base import CellContext, sampling_fields, workload_record
from harness.scenarios.specs import ScenarioSpec, prompt_label
from harness.scenarios.validity import validity

__all__ = ["SCENARIO", "OfflineScenario"]


class OfflineScenario:
    name = "offline"

    def run(self, ctx: CellContext) -> Measurement:
        from harness.measure.stats import summarize

        config, policy, backend = ctx.config, ctx.policy, ctx.backend
        params = config.params
        from harness.scenarios.sut import build_runner

        runner = build_runner(ctx)
        info = runner.details
        batch, library = runner.batch_size, runner.library_size
        clock = time.perf_counter_ns

        def indices(number: int) -> list[int]:
            return [(number * batch + offset) % library for offset in range(batch)]

        ctx.phase = "measure"
        calibrated_at = clock()
        for number in range(2):
            runner.run(indices(number), clock, None)
        per_batch_s = (clock() - calibrated_at) / 2 / 1e9
        batches = max(policy.min_count, min(policy.max_count, math.ceil(policy.max_time_s / max(per_batch_s, 1e-9))))

        start = clock()
        ends: list[int] = []
        for number in range(batches):
            ends.append(runner.run(indices(number), clock, None)[-1])
        wall_ns = ends[-1] - start
        peak = backend.peak_memory_bytes()

        ctx.phase = "statistics"
        durations = [end - begin for begin, end in zip([start, *ends[:-1]], ends, strict=True)]
        summary = summarize(durations, policy.confidence)
        samples = batches * batch
        samples_per_s = samples / (wall_ns / 1e9)
        tokens = info.tokens_per_sample
        output_tps = total_tps = None
        if info.decoder:
            output_tps = samples * params.output_tokens / (wall_ns / 1e9)
            total_tps = samples * (params.prompt_tokens + params.output_tokens) / (wall_ns / 1e9)
        offline = OfflinePart(
            samples=samples,
            batches=batches,
            batch_size=batch,
            library_size=library,
            wall_s=wall_ns / 1e9,
            samples_per_s=samples_per_s,
            prompt_tokens=params.prompt_tokens if info.decoder else None,
            output_tokens=params.output_tokens if info.decoder else None,
            token_agreement=info.token_agreement,
        )
        warnings = [info.warning] if info.warning else []
        device = backend.device_info()
        device.update(info.device)
        flops = info.flops
        return Measurement(
            workload=workload_record(ctx, flops, tokens),
            device=device,
            compile_s=info.compile_s,
            peak_memory_bytes=peak,
            correctness=info.correctness,
            sampling=sampling_fields(
                policy,
                warmup_count=2,
                warmup_s=(start - calibrated_at) / 1e9,
                elapsed_s=wall_ns / 1e9,
                stop_reason="max_count" if batches == policy.max_count else "time_budget",
                wall_s=wall_ns / 1e9,
            ),
            latency_ns=summary,
            throughput_per_s=samples_per_s,
            tokens_per_s=samples_per_s * tokens if tokens else None,
            flops_per_s=flops * samples_per_s if flops else None,
            samples_ns=tuple(durations),
            output_tokens_per_s=output_tps,
            total_tokens_per_s=total_tps,
            offline=offline,
            warnings=tuple(warnings),
            validity=validity({"batches": batches}, wall_ns / 1e9),
        )


SCENARIO = OfflineScenario()

SPEC = ScenarioSpec(
    name="offline",
    help="one large query fed through the host, batch by batch: samples/s end to end",
    runner="harness.scenarios.offline:SCENARIO",
    order=4,
    params=("prompt_tokens", "output_tokens"),
    uses_prompts=True,
    label=prompt_label,
    part="offline",
    columns=(
        "samples_per_s",
        "output_tokens_per_s",
        "batch_p50_ms",
        "batches",
        "usd_per_million_offline",
        "usd_per_million_output_tokens",
    ),
    loadgen="Offline",
)
