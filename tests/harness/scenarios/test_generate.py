"""The generate scenario: the request loop on a fake clock, and whole cells on tiny decoders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from harness.measure.sampler import SamplingPolicy
from harness.run.cell import run_cell
from harness.scenarios.generate import TokenRates, sample_requests, token_rates
from harness.scenarios.tokens import RequestTimeline
from harness.scenarios.validity import MIN_SAMPLES_FOR_P99

MS = 1_000_000


def test_request_loop_on_a_fake_clock() -> None:
    now = [0]

    def clock() -> int:
        return now[0]

    def request() -> RequestTimeline:
        due = now[0]
        times = []
        for cost in (5 * MS, 2 * MS, 2 * MS):  # TTFT 5 ms, then two tokens 2 ms apart
            now[0] += cost
            times.append(now[0])
        return RequestTimeline(due, tuple(times))

    policy = SamplingPolicy(max_time_s=1.0, warmup_time_s=0.05, min_count=10)
    sampling = sample_requests(request, policy, clock)
    assert sampling.warmup_count == 6  # 9 ms a request: 6 requests pass 50 ms of warmup
    assert sampling.stop_reason == "converged"  # identical requests: the CI is zero at min_count
    assert len(sampling.timelines) == 10
    assert {t.ttft_ns for t in sampling.timelines} == {5 * MS}
    assert {t.tpot_ns for t in sampling.timelines} == {2 * MS}


def test_request_loop_stops_on_the_time_budget() -> None:
    now = [0]
    costs = iter([10 * MS, 30 * MS] * 1000)

    def request() -> RequestTimeline:
        due = now[0]
        now[0] += next(costs)
        return RequestTimeline(due, (now[0],))

    sampling = sample_requests(request, SamplingPolicy(max_time_s=0.5, warmup_time_s=0.0), lambda: now[0])
    assert sampling.stop_reason == "time_budget"
    assert sum(t.e2e_ns for t in sampling.timelines) >= 500 * MS


def test_token_rates_by_hand() -> None:
    # 4 requests of batch 2, 10 prompt + 5 output tokens, 2 s busy: 8 sequences in 2 s.
    rates = token_rates(4, 2, 10, 5, 2e9)
    assert rates == TokenRates(sequences_per_s=4.0, output_tokens_per_s=20.0, total_tokens_per_s=60.0)
    assert token_rates(1, 1, 1, 1, 0).output_tokens_per_s == 0.0


@pytest.mark.parametrize("workload", ["llama", "gpt2"])
def test_generate_cell_on_a_tiny_decoder(
    workload: str, tiny_cell: Any, short: SamplingPolicy, through_run_file: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    record = run_cell(tiny_cell(workload, "generate", batch_size=2, prompt_tokens=8, output_tokens=5), short)
    assert record.status == "ok", record.error
    assert record.id.endswith("/bs2/generate-p8o5")
    assert record.measurement.correctness.passed and record.measurement.correctness.max_rel_error < 1e-5
    gen = record.measurement.generation
    assert gen.token_agreement == 1.0 and gen.reference_tokens == 5
    timelines = [RequestTimeline(0, tuple(offsets)) for offsets in gen.tokens.timelines_ns]
    assert gen.requests == len(timelines) >= short.min_count
    assert all(t.output_tokens == 5 for t in timelines)
    # Every figure follows from the raw timelines by the definitions.
    assert gen.tokens.ttft_ns.count == len(timelines)
    assert gen.tokens.ttft_ns.min == min(t.ttft_ns for t in timelines)
    assert gen.tokens.tpot_ns.mean == pytest.approx(sum(t.tpot_ns or 0 for t in timelines) / len(timelines))
    assert gen.tokens.itl_ns.count == 4 * len(timelines)
    busy = sum(t.e2e_ns for t in timelines)
    assert list(record.measurement.samples_ns) == [t.e2e_ns for t in timelines]
    assert record.measurement.output_tokens_per_s == pytest.approx(2 * 5 * len(timelines) / (busy / 1e9))
    assert record.measurement.total_tokens_per_s == pytest.approx(2 * 13 * len(timelines) / (busy / 1e9))
    assert record.measurement.throughput_per_s == pytest.approx(2 * len(timelines) / (busy / 1e9))
    assert record.measurement.workload.tokens_per_sample == 13
    assert record.measurement.workload.flops_per_inference > 0
    assert record.measurement.validity.valid is False  # a 0.3 s run of a few requests: too short for p99
    # Which rule fails depends on how many requests fit in 0.3 s here; each must match the counts.
    reasons = record.measurement.validity.reasons
    assert any("p99 interval needs" in reason for reason in reasons) == (len(timelines) < MIN_SAMPLES_FOR_P99)
    assert through_run_file(record).measurement.generation.requests == gen.requests


def test_one_output_token_has_no_tpot(
    tiny_cell: Any, short: SamplingPolicy, through_run_file: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    record = run_cell(tiny_cell("gpt2", "generate", prompt_tokens=6, output_tokens=1), short)
    assert record.status == "ok", record.error
    assert record.measurement.generation.tokens.tpot_ns is None and record.measurement.generation.tokens.itl_ns is None
    assert record.measurement.generation.tokens.ttft_ns.p50 == record.measurement.latency_ns.p50
    through_run_file(record)


def test_generate_needs_a_decoder(tiny_cell: Any, short: SamplingPolicy) -> None:
    record = run_cell(tiny_cell("mlp", "generate"), short)
    assert record.status == "failed"
    assert "needs a decoder workload" in record.error.message


def test_too_many_tokens_fail_the_cell_with_the_limit(tiny_cell: Any, short: SamplingPolicy) -> None:
    record = run_cell(tiny_cell("gpt2", "generate", prompt_tokens=1000, output_tokens=100), short)
    assert record.status == "failed" and "1024 positions" in record.error.message


def test_a_tail_target_keeps_requests_coming_until_the_p99_interval_exists() -> None:
    import numpy as np

    now = [0]
    ttfts = iter(int(x) for x in np.random.default_rng(0).lognormal(np.log(5 * MS), 0.03, 100_000))

    def request() -> RequestTimeline:
        due = now[0]
        now[0] += next(ttfts)
        first = now[0]
        now[0] += 2 * MS
        return RequestTimeline(due, (first, now[0]))

    def clock() -> int:
        return now[0]

    plain = SamplingPolicy(max_time_s=60.0, warmup_time_s=0.0, min_count=10)
    assert len(sample_requests(request, plain, clock).timelines) < MIN_SAMPLES_FOR_P99
    tail = SamplingPolicy(max_time_s=60.0, warmup_time_s=0.0, min_count=10, tail_percentile=99)
    sampling = sample_requests(request, tail, clock)
    assert sampling.stop_reason == "converged"
    assert len(sampling.timelines) >= MIN_SAMPLES_FOR_P99
