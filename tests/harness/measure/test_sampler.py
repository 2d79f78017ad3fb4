"""The sampler, driven by a scripted clock: no real sleeps, no timing assertions."""

from __future__ import annotations

import time

import pytest

from harness.errors import ConfigError
from harness.measure.sampler import Convergence, SamplingPolicy, does_nothing, sample
from harness.measure.stats import quantile_interval


class FakeClock:
    """A nanosecond clock that only moves when the measured call 'runs'."""

    def __init__(self) -> None:
        self.now = 0
        self.calls = 0

    def __call__(self) -> int:
        return self.now

    def advance(self, ns: int) -> None:
        self.now += ns


def test_a_callable_of_known_constant_cost_is_measured_exactly() -> None:
    clock = FakeClock()

    def call() -> None:
        clock.calls += 1
        clock.advance(250_000)

    result = sample(call, SamplingPolicy(max_time_s=1.0, warmup_time_s=0.01), clock=clock)
    assert set(result.samples_ns) == {250_000}
    assert result.stop_reason == "converged"
    assert result.rel_ci_half_width == 0.0
    assert len(result.samples_ns) >= 10
    assert result.warmup_count == 40  # 10 ms of warmup at 0.25 ms a call
    assert clock.calls == result.warmup_count + len(result.samples_ns)


def test_synchronize_is_inside_the_timed_region() -> None:
    clock = FakeClock()
    result = sample(
        lambda: clock.advance(1_000),
        SamplingPolicy(max_time_s=0.1, warmup_time_s=0.0),
        synchronize=lambda: clock.advance(9_000),  # an asynchronous device finishing its work
        clock=clock,
    )
    assert set(result.samples_ns) == {10_000}


def test_noisy_calls_stop_on_the_time_budget_and_say_so() -> None:
    clock = FakeClock()
    costs = iter([1_000_000, 3_000_000] * 1_000_000)  # bimodal: the median never settles to 1%

    result = sample(
        lambda: clock.advance(next(costs)),
        SamplingPolicy(max_time_s=0.5, warmup_time_s=0.0, warmup_min_count=1, target_rel_ci=0.01),
        clock=clock,
    )
    assert result.stop_reason == "time_budget"
    assert result.rel_ci_half_width > 0.01
    # Warmup and sampling share the budget, and end within it plus one call.
    assert 500_000_000 <= clock.now <= 500_000_000 + 3_000_000
    assert result.warmup_ns + result.elapsed_ns == clock.now
    assert result.too_few is None


def test_the_budget_wins_over_the_minimum_count() -> None:
    """2 s a call against a 1 s budget: the one call that ran is the one sample, recorded as too few."""
    clock = FakeClock()
    result = sample(
        lambda: clock.advance(2_000_000_000),
        SamplingPolicy(max_time_s=1.0, warmup_time_s=0.0, warmup_min_count=1, min_count=5),
        clock=clock,
    )
    assert result.samples_ns == [2_000_000_000]
    assert result.warmup_count == 0
    assert clock.now == 2_000_000_000  # one call: never past the budget by more than one call
    assert result.stop_reason == "time_budget"
    assert result.too_few is not None and "1 of the 5" in result.too_few


def test_a_three_second_call_under_a_one_second_budget_ends_within_budget_plus_one_call() -> None:
    """The issue's check with a fake clock: --max-time 1 and the default suite's 36 samples."""
    clock = FakeClock()
    calls = []

    def call() -> None:
        calls.append(clock.now)
        clock.advance(3_000_000_000)

    result = sample(call, SamplingPolicy.for_budget(1.0, min_count=36), clock=clock)
    assert clock.now <= 1_000_000_000 + 3_000_000_000
    assert len(result.samples_ns) >= 1
    assert result.too_few is not None and "36" in result.too_few
    assert len(calls) == result.warmup_count + len(result.samples_ns)


def test_what_fits_is_sampled_when_the_minimum_cannot_fit() -> None:
    """0.3 s calls, 1 s budget: one warmup call (the minimum of three would leave no room), then
    the calls that start before the deadline."""
    clock = FakeClock()
    result = sample(
        lambda: clock.advance(300_000_000),
        SamplingPolicy(max_time_s=1.0, warmup_time_s=0.1, warmup_min_count=3, min_count=10),
        clock=clock,
    )
    assert result.warmup_count == 1
    assert len(result.samples_ns) == 3  # started at 0.3, 0.6 and 0.9 s
    assert clock.now == 1_200_000_000
    assert result.too_few is not None and "3 of the 10" in result.too_few


@pytest.mark.parametrize("seed", range(5))
def test_no_call_starts_after_the_deadline_whatever_the_costs(seed: int) -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    costs = iter(int(x) for x in rng.lognormal(17, 1.5, 100_000))  # ~24 ms median, heavy tail
    clock, starts, longest = FakeClock(), [], [0]

    def call() -> None:
        starts.append(clock.now)
        cost = next(costs)
        longest[0] = max(longest[0], cost)
        clock.advance(cost)

    policy = SamplingPolicy(max_time_s=2.0, warmup_time_s=0.2, min_count=36)
    result = sample(call, policy, clock=clock)
    assert len(result.samples_ns) >= 1
    assert max(starts) < 2_000_000_000 or len(starts) == 1
    assert clock.now < 2_000_000_000 + longest[0] + 1


def test_the_count_cap_stops_sampling() -> None:
    clock = FakeClock()
    costs = iter([1_000, 5_000] * 100_000)
    result = sample(
        lambda: clock.advance(next(costs)),
        SamplingPolicy(max_time_s=100.0, warmup_time_s=0.0, min_count=10, max_count=50, target_rel_ci=0.001),
        clock=clock,
    )
    assert result.stop_reason == "max_count"
    assert len(result.samples_ns) == 50


def test_a_real_callable_is_timed_with_the_real_clock() -> None:
    """Sanity on the real clock: a busy-wait of ~200 µs is never measured as shorter."""

    def busy() -> None:
        end = time.perf_counter_ns() + 200_000
        while time.perf_counter_ns() < end:
            pass

    result = sample(busy, SamplingPolicy(max_time_s=0.2, warmup_time_s=0.01, min_count=10))
    assert min(result.samples_ns) >= 200_000


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_time_s": 0},
        {"min_count": 2},
        {"min_count": 10, "max_count": 5},
        {"target_rel_ci": 0},
        {"confidence": 1.0},
        {"tail_percentile": 100},
        {"tail_percentile": 40},
        {"tail_target_rel_ci": 0},
    ],
)
def test_invalid_policies_are_config_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        SamplingPolicy(**kwargs)  # type: ignore[arg-type]


def _lognormal_costs(seed: int) -> list[int]:
    import numpy as np

    return [int(x) for x in np.random.default_rng(seed).lognormal(13.8, 0.05, 200_000)]  # ~1 ms, σ = 0.05


def test_without_a_tail_target_sampling_stops_once_the_median_is_known() -> None:
    clock, costs = FakeClock(), iter(_lognormal_costs(0))
    result = sample(
        lambda: clock.advance(next(costs)),
        SamplingPolicy(max_time_s=5.0, warmup_time_s=0.0, warmup_min_count=1, target_rel_ci=0.01),
        clock=clock,
    )
    assert result.stop_reason == "converged"
    assert len(result.samples_ns) < 368  # too few for a p99 interval: the report withholds it
    assert result.reached is not None and set(result.reached) == {"p50"}
    assert quantile_interval(result.samples_ns, 0.99).note is not None


def test_a_tail_target_keeps_sampling_until_the_p99_interval_is_narrow() -> None:
    clock, costs = FakeClock(), iter(_lognormal_costs(0))
    policy = SamplingPolicy(
        max_time_s=60.0, warmup_time_s=0.0, warmup_min_count=1, tail_percentile=99, tail_target_rel_ci=0.03
    )
    result = sample(lambda: clock.advance(next(costs)), policy, clock=clock)
    assert result.stop_reason == "converged"
    assert result.reached is not None and result.reached["p99"] <= 0.03 and result.reached["p50"] <= 0.01
    assert len(result.samples_ns) >= policy.tail_min_count == 368
    interval = quantile_interval(result.samples_ns, 0.99)
    assert interval.backed and interval.relative_half_width == pytest.approx(result.reached["p99"])


def test_a_tail_target_is_bounded_by_the_time_budget_and_says_so() -> None:
    clock, costs = FakeClock(), iter(_lognormal_costs(1))
    policy = SamplingPolicy(max_time_s=0.2, warmup_time_s=0.0, warmup_min_count=1, tail_percentile=99)
    result = sample(lambda: clock.advance(next(costs)), policy, clock=clock)
    assert result.stop_reason == "time_budget"  # ~200 calls fit: the p99 interval cannot exist yet
    assert result.reached is not None and result.reached["p99"] == float("inf")
    assert result.reached["p50"] < 0.02


def test_the_stopping_check_agrees_with_the_summary_intervals_as_samples_grow() -> None:
    import numpy as np

    values = [int(x) for x in np.random.default_rng(2).lognormal(10.0, 0.3, 3000)]
    check = Convergence(SamplingPolicy(tail_percentile=95))
    for n in (10, 80, 500, 3000):
        widths = check.widths(values[:n])
        for name, q in (("p50", 0.5), ("p95", 0.95)):
            assert widths[name] == pytest.approx(quantile_interval(values[:n], q).relative_half_width)


def test_dependent_calls_need_more_samples_to_converge() -> None:
    import numpy as np

    from benchmarks.dependent_series import ar1_series

    # Calls whose log latency is AR(1) at ρ = 0.6: the stopping width is the dependence-aware one,
    # wider than the same samples read as independent, so the rule waits for more of them.
    values = [int(1e6 * x) for x in ar1_series("lognormal", 0.6).draw(np.random.default_rng(9), 1, 4000)[0]]
    check = Convergence(SamplingPolicy(tail_percentile=95))
    for n in (300, 4000):
        widths = check.widths(values[:n])
        for name, q in (("p50", 0.5), ("p95", 0.95)):
            assert widths[name] == pytest.approx(quantile_interval(values[:n], q).relative_half_width)
            independent = quantile_interval(values[:n], q, effective_n=float(n)).relative_half_width
            assert widths[name] > 1.3 * independent


class _Backend:
    def synchronize(self) -> None:
        """Nothing to wait for."""

    def busy(self) -> None:
        self.flag = True


def test_an_empty_synchronize_is_recognised_and_one_with_effects_is_not() -> None:
    from backends.cpu import CpuBackend

    assert does_nothing(CpuBackend().synchronize)
    assert does_nothing(_Backend().synchronize)
    assert does_nothing(lambda: None)
    assert not does_nothing(_Backend().busy)
    assert not does_nothing(time.perf_counter_ns)  # a builtin: no bytecode to inspect
    assert not does_nothing(lambda: time.sleep(0))
