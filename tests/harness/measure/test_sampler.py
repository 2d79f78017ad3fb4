"""The sampler, driven by a scripted clock: no real sleeps, no timing assertions."""

from __future__ import annotations

import time

import pytest

from harness.errors import ConfigError
from harness.measure.sampler import SamplingPolicy, sample


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
    assert result.elapsed_ns >= 500_000_000
    # Blocks are ~2% of the budget, so the overshoot past the deadline stays small.
    assert result.elapsed_ns < 0.6e9


def test_the_minimum_count_wins_over_the_time_budget() -> None:
    clock = FakeClock()
    result = sample(
        lambda: clock.advance(2_000_000_000),  # 2 s a call against a 1 s budget
        SamplingPolicy(max_time_s=1.0, warmup_time_s=0.0, warmup_min_count=1, min_count=5),
        clock=clock,
    )
    assert len(result.samples_ns) == 5


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
    [{"max_time_s": 0}, {"min_count": 2}, {"min_count": 10, "max_count": 5}, {"target_rel_ci": 0}, {"confidence": 1.0}],
)
def test_invalid_policies_are_config_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        SamplingPolicy(**kwargs)  # type: ignore[arg-type]
