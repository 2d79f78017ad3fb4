"""The ``generate`` scenario: LLM generation in a closed loop, one batch of requests at a time.

Each request is a batch of ``batch_size`` prompts of exactly ``prompt_tokens`` tokens, generating
exactly ``output_tokens`` tokens greedily (end-of-sequence ignored). The sequences of a batch
share one timeline (static batching), so per-request percentiles count one sample per batch, not
``batch_size`` copies of it. Metrics follow ``harness.scenarios.tokens``:

- per request: TTFT (the prefill, plus the first token's synchronize), TPOT, the ITL gaps and
  end-to-end latency; each summarized with bootstrap CIs;
- per cell: output tokens/s = batch × output_tokens × requests / total busy time, and total
  tokens/s the same with prompt + output tokens (what a price per hour is divided by).

Requests repeat under the sampler's rule: at least ``min_count``, then until the median
end-to-end latency's CI is within the target or the time budget is spent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.runfile.records import GenerationPart, Measurement
from harness.scenarios.base import CellContext, sampling_record, workload_record
from harness.scenarios.specs import ScenarioSpec, prompt_label
from harness.scenarios.tokens import RequestTimeline, timeline_summaries
from harness.scenarios.validity import validity
from harness.scenarios.warnings import stop_warning

if TYPE_CHECKING:
    from harness.measure.sampler import SamplingPolicy

__all__ = ["SCENARIO", "GenerateScenario", "RequestSampling", "TokenRates", "sample_requests", "token_rates"]


@dataclass(frozen=True)
class RequestSampling:
    """The timed requests of a closed loop and why it stopped."""

    timelines: list[RequestTimeline]
    warmup_count: int
    warmup_ns: int
    elapsed_ns: int
    stop_reason: str
    rel_ci_half_width: float
    timer: str = "host_clock"
    reached: dict[str, float] | None = None


def sample_requests(
    request: Callable[[], RequestTimeline], policy: SamplingPolicy, clock: Callable[[], int] = time.perf_counter_ns
) -> RequestSampling:
    """Warm up (at least one request), then repeat ``request`` under the sampler's stopping rule.

    The rule watches the end-to-end latency's median, and its tail percentile when the policy has
    one (``--tail``, or a TTFT/TPOT SLO): every per-request metric then has as many samples.
    """
    from harness.measure.sampler import Convergence

    warmup_start = clock()
    warmup_count = 0
    while warmup_count < 1 or clock() - warmup_start < policy.warmup_time_s * 1e9:
        request()
        warmup_count += 1
    warmup_ns = clock() - warmup_start
    start = clock()
    deadline = start + int(policy.max_time_s * 1e9)
    timelines: list[RequestTimeline] = []
    e2e: list[int] = []
    check = Convergence(policy)
    while True:
        timelines.append(request())
        e2e.append(timelines[-1].e2e_ns)
        count = len(timelines)
        if count >= policy.min_count:
            if check.met(check.widths(e2e)):
                reason = "converged"
                break
        if count >= policy.max_count:
            reason = "max_count"
            break
        if count >= policy.min_count and clock() >= deadline:
            reason = "time_budget"
            break
    elapsed = clock() - start
    widths = check.widths(e2e)
    return RequestSampling(timelines, warmup_count, warmup_ns, elapsed, reason, widths["p50"], reached=widths)


@dataclass(frozen=True)
class TokenRates:
    sequences_per_s: float
    output_tokens_per_s: float
    total_tokens_per_s: float


def token_rates(requests: int, batch_size: int, prompt_tokens: int, output_tokens: int, busy_ns: float) -> TokenRates:
    """Sequences, output tokens and total (prompt + output) tokens per second over ``busy_ns``."""
    seconds = busy_ns / 1e9
    if seconds <= 0:
        return TokenRates(0.0, 0.0, 0.0)
    sequences = requests * batch_size
    return TokenRates(
        sequences / seconds, sequences * output_tokens / seconds, sequences * (prompt_tokens + output_tokens) / seconds
    )


class GenerateScenario:
    name = "generate"

    def run(self, ctx: CellContext) -> Measurement:
        from harness.scenarios.decoding import prepare_decoder, require_generation

        config, policy, backend = ctx.config, ctx.policy, ctx.backend
        params = config.params
        spec = require_generation(ctx)
        prompts = spec.make_prompts(config.batch_size, params.prompt_tokens)
        prepared, check = prepare_decoder(ctx, config.batch_size, prompts)

        ctx.phase = "measure"
        synchronize, clock = backend.synchronize, time.perf_counter_ns

        def request() -> RequestTimeline:
            due = clock()
            return RequestTimeline(due, tuple(prepared.request(clock, synchronize)))

        measured_at = time.perf_counter()
        sampling = sample_requests(request, policy, clock)
        peak = backend.peak_memory_bytes()

        ctx.phase = "statistics"
        timelines = sampling.timelines
        tokens = timeline_summaries(timelines, policy.confidence)
        e2e = [t.e2e_ns for t in timelines]
        rates = token_rates(len(timelines), config.batch_size, params.prompt_tokens, params.output_tokens, sum(e2e))
        warnings = []
        if check.warning:
            warnings.append(check.warning)
        stopped = stop_warning(sampling.stop_reason, sampling.reached, policy, "end-to-end latency")
        if stopped:
            warnings.append(stopped)
        counts = {"requests (TTFT, TPOT, end-to-end)": len(timelines)}
        if tokens.itl_ns is not None:
            counts["ITL gaps"] = tokens.itl_ns.count
        device = backend.device_info()
        device.update(prepared.prefill.details)
        flops_per_sequence = check.flops_per_request / config.batch_size
        assert tokens.e2e_ns is not None  # at least one request ran
        return Measurement(
            workload=workload_record(ctx, flops_per_sequence, params.prompt_tokens + params.output_tokens),
            device=device,
            compile_s=prepared.compile_s,
            peak_memory_bytes=peak,
            correctness=check.correctness,
            sampling=sampling_record(sampling, policy, time.perf_counter() - measured_at),
            latency_ns=tokens.e2e_ns,
            throughput_per_s=rates.sequences_per_s,
            tokens_per_s=rates.total_tokens_per_s,
            flops_per_s=flops_per_sequence * rates.sequences_per_s or None,
            samples_ns=tuple(e2e),
            output_tokens_per_s=rates.output_tokens_per_s,
            total_tokens_per_s=rates.total_tokens_per_s,
            generation=GenerationPart(
                prompt_tokens=params.prompt_tokens,
                output_tokens=params.output_tokens,
                batch_size=config.batch_size,
                requests=len(timelines),
                tokens=tokens,
                sequences_per_s=rates.sequences_per_s,
                output_tokens_per_s=rates.output_tokens_per_s,
                total_tokens_per_s=rates.total_tokens_per_s,
                token_agreement=check.token_agreement,
                reference_tokens=check.reference_tokens,
            ),
            warnings=tuple(warnings),
            validity=validity(counts, sampling.elapsed_ns / 1e9),
        )


SCENARIO = GenerateScenario()

SPEC = ScenarioSpec(
    name="generate",
    help="LLM generation in a closed loop for decoders (llama, gpt2): TTFT, TPOT, ITL, output and total tokens/s",
    runner="harness.scenarios.generate:SCENARIO",
    order=2,
    workloads="decoders",
    params=("prompt_tokens", "output_tokens"),
    uses_prompts=True,
    engine="closed",
    label=prompt_label,
    part="generation",
    columns=(
        "concurrency",
        "prompt_tokens",
        "output_tokens",
        "ttft_p50_ms",
        "ttft_p99_ms",
        "tpot_p50_ms",
        "itl_p99_ms",
        "output_tokens_per_s",
        "total_tokens_per_s",
        "samples",
        "usd_per_million_output_tokens",
        "usd_per_million_total_tokens",
    ),
)
