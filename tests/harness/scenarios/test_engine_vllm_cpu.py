"""The engine scenarios against the real vLLM CPU engine: every figure from the per-token times.

Marked ``engine`` (and ``slow``): run by ``.ci/run``'s engine stage with ``--run-engine``. The
engine is the session's (``tests/vllm_cpu.py``): the tiny Llama on vLLM's CPU build.
"""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from backends.engine.serving import ServingEngine
from harness.measure.sampler import SamplingPolicy
from harness.scenarios.engine import EngineTarget, measure_closed_loop, measure_unloaded, search_capacity
from harness.scenarios.engine_check import check_engine
from harness.scenarios.engine_records import EngineLoadRecord, load_record
from harness.scenarios.tokens import SLO
from tests.vllm_cpu import VllmCpu
from workloads.request_sets import TokenCounts, load_tokenizer, synthetic_requests

pytestmark = [pytest.mark.engine, pytest.mark.slow]

PROMPT_TOKENS, OUTPUT_TOKENS = 32, 48


@pytest.fixture(scope="module")
def target(vllm_server: ServingEngine, vllm_cpu: VllmCpu) -> EngineTarget:
    tokenizer = load_tokenizer(vllm_cpu.model)
    requests = synthetic_requests(
        tokenizer, 16, TokenCounts.parse(str(PROMPT_TOKENS)), TokenCounts.parse(str(OUTPUT_TOKENS))
    )
    return EngineTarget(vllm_server.endpoint, requests)


def _check_against_token_times(record: EngineLoadRecord) -> None:
    """Every summary of the record recomputed from the per-request token times it keeps."""
    ok = [r for r in record.request_records if r.failure is None]
    assert len(ok) == record.ok == record.requests and record.failed == 0
    ttft = [float(r.token_ns[0]) for r in ok]
    e2e = [float(r.end_ns) for r in ok]
    tpot = [(r.token_ns[-1] - r.token_ns[0]) / (r.output_tokens - 1) for r in ok if r.output_tokens]
    itl = [float(b - a) for r in ok for a, b in zip(r.token_ns, r.token_ns[1:], strict=False)]
    for summary, values in ((record.ttft_ns, ttft), (record.e2e_ns, e2e), (record.tpot_ns, tpot), (record.itl_ns, itl)):
        assert summary is not None
        assert summary.count == len(values)
        assert summary.p50 == pytest.approx(statistics.median(values))
        assert summary.p99 == pytest.approx(float(np.percentile(values, 99)))
        assert summary.min == pytest.approx(min(values)) and summary.max == pytest.approx(max(values))
    for r in ok:
        assert list(r.token_ns) == sorted(r.token_ns) and 0 <= r.sent_ns <= r.token_ns[0] <= r.end_ns
        # The server's counts: exactly what was forced (ignore_eos) and what the request set built.
        assert r.output_tokens == r.max_tokens == OUTPUT_TOKENS
        assert r.input_tokens == r.expected_input_tokens == PROMPT_TOKENS
        # vLLM streams a token per event when its API server keeps up and coalesces when it lags
        # (a loaded machine): never more events than the server's token count, never none.
        assert 1 <= len(r.token_ns) <= r.output_tokens
    assert record.output_tokens == sum(r.output_tokens or 0 for r in ok)
    assert record.input_tokens == sum(r.input_tokens or 0 for r in ok)
    assert record.output_tokens_per_s == pytest.approx(record.output_tokens / record.duration_s)
    assert record.output_short == 0 and record.input_mismatched == 0


def test_greedy_tokens_agree_with_transformers(target: EngineTarget, vllm_cpu: VllmCpu) -> None:
    result = check_engine(target, vllm_cpu.model, tokens=24)
    assert result.prompts == 4 and result.tokens_per_prompt == 24
    assert result.passed, result.warning
    # fp32 against fp32 on a model drawn with wide logit margins: every position agrees.
    assert result.agreement == 1.0, result.first_divergence


def test_generate_figures_are_the_token_times(target: EngineTarget) -> None:
    policy = SamplingPolicy(max_time_s=6.0, warmup_time_s=0.2, warmup_min_count=2, min_count=8, target_rel_ci=0.05)
    result = measure_closed_loop(target, 1, policy)
    _check_against_token_times(load_record(result.run, None, policy.confidence))


def test_four_users_get_more_output_tokens_per_second_than_one(target: EngineTarget) -> None:
    """Continuous batching: four streams share each decode step, so tokens/s rise with users."""
    policy = SamplingPolicy(max_time_s=6.0, warmup_time_s=0.2, warmup_min_count=4, min_count=16, target_rel_ci=0.05)
    one = load_record(measure_closed_loop(target, 1, policy).run, None)
    four = load_record(measure_closed_loop(target, 4, policy).run, None)
    _check_against_token_times(four)
    assert four.output_tokens_per_s > one.output_tokens_per_s, (one.output_tokens_per_s, four.output_tokens_per_s)


def test_capacity_search_lands_between_a_passing_and_a_failing_rate(target: EngineTarget) -> None:
    unloaded = load_record(measure_unloaded(target), None)
    assert unloaded.ttft_ns is not None and unloaded.e2e_ns is not None
    # A TTFT target a few times the unloaded one: met at low rates, missed once requests queue.
    slo = SLO(ttft_ns=max(5 * unloaded.ttft_ns.p50, 20e6))
    policy = SamplingPolicy(max_time_s=16.0, min_count=20, max_count=400)
    search = search_capacity(target, slo, policy, unloaded.e2e_ns.p50 / 1e9)
    best = search.best()
    assert best is not None, [(p.rate, p.result.passed) for p in search.probes]
    assert best.result.passed and best.result.run.meets(slo)
    failing = [p.result for p in search.probes if p.rate > best.rate]
    assert failing, "the search never found a rate that misses the SLO"
    next_up = min(failing, key=lambda p: p.rate)
    assert not next_up.passed and search.lowest_failing == next_up.rate
    record = load_record(best.result.run, slo)
    assert record.slo_met is True and record.ttft_ns is not None and slo.ttft_ns is not None
    assert record.ttft_ns.p99 <= slo.ttft_ns
    _check_against_token_times(record)
    above = load_record(next_up.run, slo)
    assert above.slo_met is False
    assert above.failed > 0 or (above.ttft_ns is not None and above.ttft_ns.p99 > slo.ttft_ns)
