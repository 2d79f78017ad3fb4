"""The capacity search, against systems whose capacity is known: a step function, and a
simulated single-server queue with a fixed service time (M/D/1), whose latency distribution has a
closed form, so the highest rate meeting a p99 target can be computed on paper."""

from __future__ import annotations

import math

import pytest

from harness.errors import ConfigError
from harness.scenarios.capacity import find_capacity
from harness.scenarios.load import simulate_fifo
from harness.scenarios.server import search_capacity
from harness.scenarios.tokens import SLO

SERVICE_S = 0.010  # D: 10 ms per request, so the stability limit is 1/D = 100 requests/s


def md1_wait_cdf(t: float, rate: float, service: float) -> float:
    """P(wait <= t) in an M/D/1 queue (Erlang 1909; Franx 2001, eq. 1):
    (1 - rho) * sum_{k=0}^{floor(t/D)} (lambda (kD - t))^k / k! * exp(-lambda (kD - t))."""
    rho = rate * service
    terms = range(math.floor(t / service) + 1)
    return (1 - rho) * sum(
        (rate * (k * service - t)) ** k / math.factorial(k) * math.exp(-rate * (k * service - t)) for k in terms
    )


def md1_capacity(slo_s: float, service: float, quantile: float = 0.99) -> float:
    """The highest rate whose sojourn (wait + D) quantile is within ``slo_s``, by bisection."""
    low, high = 1e-9, (1 - 1e-9) / service
    for _ in range(100):
        middle = (low + high) / 2
        if md1_wait_cdf(slo_s - service, middle, service) >= quantile:
            low = middle
        else:
            high = middle
    return low


def test_the_analytic_formula_agrees_with_the_simulation() -> None:
    """Guard the reference itself: at utilization 0.6 the simulated waits follow the formula."""
    from harness.scenarios.arrivals import poisson_schedule

    run = simulate_fifo(poisson_schedule(60.0, 100_000, seed=9).tolist(), SERVICE_S)
    waits = [t.e2e_ns / 1e9 - SERVICE_S for t in run.timelines]
    for t in (0.0, 0.005, 0.02, 0.04):
        observed = sum(w <= t + 1e-9 for w in waits) / len(waits)
        assert observed == pytest.approx(md1_wait_cdf(t, 60.0, SERVICE_S), abs=0.01)


def test_search_finds_the_md1_capacity_under_a_p99_slo() -> None:
    slo_s = 5 * SERVICE_S
    expected = md1_capacity(slo_s, SERVICE_S)
    assert 50 < expected < 60  # about 56 requests/s: far below 1/D, because of the p99 target
    search = search_capacity(
        lambda schedule: simulate_fifo(schedule, SERVICE_S),
        SLO(e2e_ns=slo_s * 1e9),
        start_rate=0.8 / SERVICE_S,
        probe_s=500.0,
        min_requests=100,
        max_requests=10**7,
        rel_tol=0.02,
    )
    assert search.converged and search.stop_reason == "converged"
    assert search.capacity == pytest.approx(expected, rel=0.05)
    assert search.lowest_failing is not None and search.lowest_failing <= search.capacity * 1.02 + 1e-9
    best = search.best()
    assert best is not None and best.passed and best.result.rate == search.capacity


def test_with_a_generous_slo_the_capacity_approaches_one_over_the_service_time() -> None:
    search = search_capacity(
        lambda schedule: simulate_fifo(schedule, SERVICE_S),
        SLO(e2e_ns=100 * SERVICE_S * 1e9),
        start_rate=0.5 / SERVICE_S,
        probe_s=500.0,
        min_requests=100,
        max_requests=10**7,
        rel_tol=0.02,
    )
    assert 0.9 / SERVICE_S <= search.capacity < 1 / SERVICE_S


def test_two_servers_double_the_capacity() -> None:
    search = search_capacity(
        lambda schedule: simulate_fifo(schedule, SERVICE_S, servers=2),
        SLO(e2e_ns=100 * SERVICE_S * 1e9),
        start_rate=1 / SERVICE_S,
        probe_s=250.0,
        min_requests=100,
        max_requests=10**7,
        rel_tol=0.02,
    )
    assert 1.8 / SERVICE_S <= search.capacity < 2 / SERVICE_S


def test_bracketing_and_bisection_on_a_step() -> None:
    true_capacity = 37.3
    seen: list[float] = []

    def measure(rate: float) -> float:
        seen.append(rate)
        return rate

    for start in (1.0, 37.3, 500.0):
        seen.clear()
        search = find_capacity(measure, lambda rate: rate <= true_capacity, start, rel_tol=0.01, max_probes=40)
        assert search.converged
        assert true_capacity / 1.01 <= search.capacity <= true_capacity
        assert search.lowest_failing is not None and search.lowest_failing > true_capacity
        assert [p.rate for p in search.probes] == seen
        assert search.best() is not None


def test_nothing_passes() -> None:
    search = find_capacity(lambda rate: rate, lambda rate: False, 100.0, min_rate=10.0)
    assert search.capacity == 0.0 and search.stop_reason == "nothing_passed" and not search.converged
    assert [p.rate for p in search.probes] == [100.0, 50.0, 25.0, 12.5]
    assert search.best() is None


def test_probe_budget_is_respected() -> None:
    search = find_capacity(lambda rate: rate, lambda rate: True, 1.0, max_probes=5)
    assert len(search.probes) == 5 and search.capacity == 16.0 and search.stop_reason == "max_probes"


def test_bad_search_arguments() -> None:
    with pytest.raises(ConfigError):
        find_capacity(lambda rate: rate, lambda rate: True, 0.0)
    with pytest.raises(ConfigError):
        find_capacity(lambda rate: rate, lambda rate: True, 1.0, rel_tol=1.5)
    with pytest.raises(ConfigError, match="SLO"):
        search_capacity(lambda s: simulate_fifo(s, 0.01), SLO(), 1.0, 1.0, 10, 100)


def test_the_search_stops_when_out_of_time() -> None:
    budget = iter([False, False, True])
    search = find_capacity(lambda rate: rate, lambda rate: rate < 10, 1.0, out_of_time=lambda: next(budget))
    assert [p.rate for p in search.probes] == [1.0, 2.0, 4.0]
    assert search.stop_reason == "time_budget" and search.capacity == 4.0 and not search.converged
