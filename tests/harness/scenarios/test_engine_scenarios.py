"""The engine's generate (closed loop) and server (capacity search) logic, on the scripted server.

The server runs on its own thread's event loop, as an engine runs in its own process; each load
then runs on a fresh loop of its own. Timings are never asserted tightly (shared machine): the
capacity bound below is the queue's hard limit with a wide margin.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import pytest

from backends.engine import Endpoint, EngineRequest
from backends.engine.scripted import Script, ScriptedServer
from harness.errors import ConfigError
from harness.measure.sampler import SamplingPolicy
from harness.scenarios.engine import EngineTarget, measure_closed_loop, measure_unloaded, probe_rate, search_capacity
from harness.scenarios.tokens import SLO
from workloads.request_sets import RequestSet

TOKENS = 4


def _request_set() -> RequestSet:
    requests = tuple(EngineRequest(f"s{i}", max_tokens=TOKENS, prompt="one two", input_tokens=2) for i in range(3))
    return RequestSet(requests, "test", "2", str(TOKENS), 0)


@pytest.fixture
def target(request: pytest.FixtureRequest) -> Iterator[EngineTarget]:
    script = getattr(request, "param", Script(ttft_s=0.01, itl_s=0.002))
    with ScriptedServer.in_thread(script) as server:
        yield EngineTarget(Endpoint(server.base_url, "scripted"), _request_set())


def _peak(run_outcomes: tuple[object, ...]) -> int:
    marks = sorted([(o.sent_ns, 1) for o in run_outcomes] + [(o.end_ns, -1) for o in run_outcomes])  # type: ignore[attr-defined]
    level = peak = 0
    for _, step in marks:
        level += step
        peak = max(peak, level)
    return peak


@pytest.mark.parametrize("users", [1, 3])
def test_closed_loop_measures_under_the_sampling_rule(target: EngineTarget, users: int) -> None:
    policy = SamplingPolicy(max_time_s=2.0, warmup_time_s=0.05, warmup_min_count=2, min_count=6, target_rel_ci=0.5)
    result = measure_closed_loop(target, users, policy)
    assert result.warmup.ok and len(result.warmup.outcomes) >= max(users, 2)
    run = result.run
    assert run.failed == 0 and len(run.outcomes) >= policy.min_count
    assert result.stop_reason in ("converged", "time_budget")
    assert _peak(run.outcomes) == users
    assert run.output_tokens == TOKENS * len(run.outcomes)
    assert {o.request_id[0] for o in run.outcomes} == {"m"} and {o.request_id[0] for o in result.warmup.outcomes} == {
        "w"
    }


def test_closed_loop_stops_at_max_count(target: EngineTarget) -> None:
    policy = SamplingPolicy(
        max_time_s=60, warmup_time_s=0, warmup_min_count=1, min_count=3, max_count=5, target_rel_ci=1e-9
    )
    result = measure_closed_loop(target, 2, policy)
    assert result.stop_reason == "max_count"
    assert 5 <= len(result.run.outcomes) <= 6  # the other user's request in flight is kept


def test_the_stopping_rules_interval_is_computed_as_the_count_grows_not_per_request(
    target: EngineTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The interval runs on the event loop between a user's response and its next request (5-16 ms
    # at 50-300 requests here): computed after every completion it held back every user's next
    # request. It is computed at min_count, then once the count has grown by a tenth.
    import harness.measure.stats as stats

    counts: list[int] = []

    def never_converged(samples: Sequence[float], confidence: float = 0.95) -> float:
        counts.append(len(samples))
        return math.inf

    monkeypatch.setattr(stats, "relative_half_width", never_converged)
    policy = SamplingPolicy(
        max_time_s=60, warmup_time_s=0, warmup_min_count=1, min_count=10, max_count=60, target_rel_ci=0.01
    )
    result = measure_closed_loop(target, 1, policy)
    assert result.stop_reason == "max_count" and len(result.run.outcomes) == 60
    assert counts == [10, 11, 13, 15, 17, 19, 21, 24, 27, 30, 33, 37, 41, 46, 51, 57]


def test_a_probe_replays_the_set_on_a_poisson_schedule(target: EngineTarget) -> None:
    probe = probe_rate(target, 50.0, SLO(ttft_ns=5e9), 8, grace_s=5.0)
    assert probe.passed and probe.run.shape.rate_rps == 50.0
    assert len(probe.run.outcomes) == 8 and probe.run.failed == 0
    offsets = [o.scheduled_ns - probe.run.origin_ns for o in probe.run.outcomes]
    assert offsets == sorted(offsets) and offsets[-1] <= 8 / 50 * 1e9
    again = probe_rate(target, 100.0, SLO(ttft_ns=5e9), 8, grace_s=5.0)
    # Same seed: the same burst pattern at twice the rate is the same schedule at half the times.
    halved = [o.scheduled_ns - again.run.origin_ns for o in again.run.outcomes]
    assert halved == pytest.approx([t / 2 for t in offsets], abs=2)


def test_capacity_search_needs_an_slo(target: EngineTarget) -> None:
    with pytest.raises(ConfigError, match="needs an SLO"):
        search_capacity(target, SLO(), SamplingPolicy(), 0.1)


@pytest.mark.slow
@pytest.mark.parametrize("target", [Script(ttft_s=0.01, itl_s=0.005, max_running=2)], indirect=True)
def test_capacity_search_finds_a_rate_below_the_queues_limit(target: EngineTarget) -> None:
    # Two slots, each request 10 + 3 x 5 = 25 ms: the queue cannot sustain more than 80 requests/s.
    limit = 2 / (0.01 + (TOKENS - 1) * 0.005)
    unloaded = measure_unloaded(target)
    assert unloaded.failed == 0
    e2e_s = sorted(unloaded.e2e_ns())[len(unloaded.e2e_ns()) // 2] / 1e9
    policy = SamplingPolicy(max_time_s=8.0, min_count=20, max_count=400)
    search = search_capacity(target, SLO(ttft_ns=60e6), policy, e2e_s)
    assert search.capacity > 0
    assert search.capacity <= 1.5 * limit
    best = search.best()
    assert best is not None and best.result.run.meets(SLO(ttft_ns=60e6))
    if search.lowest_failing is not None:
        assert search.lowest_failing > search.capacity
        failing = [p for p in search.probes if p.rate == search.lowest_failing]
        assert failing and not failing[0].result.run.meets(SLO(ttft_ns=60e6))
