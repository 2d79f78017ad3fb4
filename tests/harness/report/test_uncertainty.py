"""Cost, capacity and verdict arithmetic on hand-computed cases, and the verdict's calibration."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.errors import ConfigError
from harness.measure.stats import Interval
from harness.report.uncertainty import (
    Side,
    break_even_price,
    capacity_estimate,
    cost_interval,
    median_posterior,
    probability_cheaper,
    quantile_met_confidence,
    throughput_interval,
)
from harness.report.verdict import compare_costs


def side(label: str, samples: np.ndarray | list[float], usd_per_hour: float = 1.0, batch: int = 1) -> Side:
    arr = np.asarray(samples, dtype=np.float64)
    return Side(label, arr, batch * 1e9 / float(np.median(arr)), usd_per_hour)


def test_throughput_interval_inverts_the_median_interval() -> None:
    # 10 ms median, CI [8, 12.5] ms, batch 1: 100/s in [80, 125].
    median = Interval(10.0, 8.0, 12.5, 0.96, 0.95, "order statistics")
    got = throughput_interval(100.0, median)
    assert got is not None
    assert (got.estimate, got.low, got.high) == (100.0, pytest.approx(80.0), pytest.approx(125.0))
    assert (got.confidence, got.backed) == (0.96, True)
    # A median without a backed interval gives no throughput interval (never a made-up one).
    withheld = Interval(10.0, None, 12.5, 0.8, 0.95, "order statistics", 20, "p50 needs ≥ 20 samples")
    assert throughput_interval(100.0, withheld) is None


def test_cost_interval_by_hand() -> None:
    # $3.60/h at 100/s = $10 per million; 125/s gives $8, 80/s gives $12.50.
    got = cost_interval(3.6, Interval(100.0, 80.0, 125.0, 0.95, 0.95, "order statistics"))
    assert got is not None
    assert (got.estimate, got.low, got.high) == (pytest.approx(10.0), pytest.approx(8.0), pytest.approx(12.5))
    assert cost_interval(3.6, None) is None


@pytest.mark.parametrize(
    ("n", "above", "expected"),
    [
        (299, 0, 1 - 0.99**299),  # 0.9505: the smallest n backing p99 at 95%
        (298, 0, 1 - 0.99**298),  # 0.9500 - just under
        (100, 0, 1 - 0.99**100),  # 0.634
        (500, 1, 1 - (0.99**500 + 500 * 0.01 * 0.99**499)),  # 0.960
        (100, 5, 1 - sum(math.comb(100, k) * 0.01**k * 0.99 ** (100 - k) for k in range(6))),
    ],
)
def test_confidence_that_p99_is_met(n: int, above: int, expected: float) -> None:
    samples = np.concatenate([np.full(n - above, 1.0), np.full(above, 10.0)])
    assert quantile_met_confidence(samples, 5.0, independent=True) == pytest.approx(expected, rel=1e-9)


def test_dependent_latencies_back_the_slo_less() -> None:
    # A queue that builds and drains: slow requests come in runs. AR(1) at ρ = 0.8 on the log scale.
    from benchmarks.dependent_series import ar1_series

    x = ar1_series("lognormal", 0.8).draw(np.random.default_rng(11), 1, 2000)[0]
    slo = float(np.quantile(x, 0.995))
    independent = quantile_met_confidence(x, slo, independent=True)
    assert independent > 0.95
    assert quantile_met_confidence(x, slo) < independent - 0.1
    # The same latencies in a random order carry the independent reading's information.
    shuffled = np.random.default_rng(12).permutation(x)
    assert quantile_met_confidence(shuffled, slo) == pytest.approx(independent, abs=0.02)


def test_capacity_estimate_brackets_and_judges_the_reported_rate() -> None:
    samples = np.full(300, 4.0)
    est = capacity_estimate(40.0, 44.0, samples, 5.0)
    assert est.bracket == (40.0, 44.0)
    assert est.met_confidence == pytest.approx(1 - 0.99**300)
    assert capacity_estimate(40.0, None, None, 5.0).met_confidence is None


def test_median_posterior_of_three_samples() -> None:
    # Dirichlet(1,1,1): the first sample is the weighted median when its weight >= 1/2, P = 1/4.
    values, probs = median_posterior([3.0, 1.0, 2.0])
    assert list(values) == [1.0, 2.0, 3.0]
    assert probs == pytest.approx([0.25, 0.5, 0.25])


def test_median_posterior_matches_drawn_dirichlet_weights() -> None:
    rng = np.random.default_rng(5)
    samples = np.sort(rng.lognormal(0, 0.3, size=40))
    weights = rng.dirichlet(np.ones(samples.size), size=40_000)
    drawn = samples[np.argmax(np.cumsum(weights, axis=1) >= 0.5, axis=1)]
    values, probs = median_posterior(samples)
    for quantile in (0.1, 0.5, 0.9):
        cut = float(np.quantile(samples, quantile))
        assert float(np.mean(drawn <= cut)) == pytest.approx(float(probs[values <= cut].sum()), abs=0.01)


def test_probability_cheaper_by_hand() -> None:
    # A's posterior median is 1, 2, 3 with 1/4, 1/2, 1/4; B's is 2 for sure: P(A < B) = 1/4 + 1/2 x 1/2 (tie).
    assert probability_cheaper(side("a", [1, 2, 3]), side("b", [2, 2, 2])) == pytest.approx(0.5)
    assert probability_cheaper(side("a", [1, 2, 3]), side("b", [4, 5, 6])) == 1.0
    # Price enters the cost: B twice as fast but three times the price stays dearer.
    assert probability_cheaper(side("a", [10, 10, 10], 1.0), side("b", [5, 5, 5], 3.0)) == 1.0


def test_probability_cheaper_matches_a_drawn_bayesian_bootstrap() -> None:
    rng = np.random.default_rng(11)
    a = rng.lognormal(0.0, 0.25, size=60)
    b = rng.lognormal(0.04, 0.25, size=50)
    draws = 20_000
    med = []
    for samples in (a, b):
        ordered = np.sort(samples)
        weights = rng.dirichlet(np.ones(ordered.size), size=draws)
        med.append(ordered[np.argmax(np.cumsum(weights, axis=1) >= 0.5, axis=1)])
    cost_a = med[0] / np.median(a)
    cost_b = med[1] / np.median(b)
    side_a, side_b = side("a", a), side("b", b)
    drawn = float(
        np.mean(cost_a * side_a.cost_per_median() * np.median(a) < cost_b * side_b.cost_per_median() * np.median(b))
    )
    assert probability_cheaper(side_a, side_b) == pytest.approx(drawn, abs=0.015)


def test_break_even_price_by_hand() -> None:
    # A: $1/h at 100/s; B: 50/s. B matches A's cost per million at $0.50/h.
    rng = np.random.default_rng(3)
    a = side("a", rng.normal(10e6, 1e5, size=500), usd_per_hour=1.0)
    b = side("b", rng.normal(20e6, 2e5, size=500), usd_per_hour=0.8)
    got = break_even_price(a, b)
    assert got.estimate == pytest.approx(1.0 * b.per_s / a.per_s)
    assert got.estimate == pytest.approx(0.5, rel=0.01)
    assert got.low < got.estimate < got.high
    assert got.high - got.low < 0.02


def test_compare_costs_names_the_cheaper_first_and_says_so() -> None:
    rng = np.random.default_rng(4)
    slow_cheap = side("c7i cpu", rng.lognormal(math.log(20e6), 0.1, 400), usd_per_hour=0.2)
    fast_dear = side("g5 cuda", rng.lognormal(math.log(2e6), 0.1, 400), usd_per_hour=4.0)
    verdict = compare_costs("bert-base:default", fast_dear, slow_cheap)
    # 0.2 $/h at 50/s = $1.11/M; 4 $/h at 500/s = $2.22/M.
    assert verdict.cheaper == "c7i cpu"
    assert verdict.cheaper_usd_per_million == pytest.approx(0.2 / (3600 * slow_cheap.per_s) * 1e6)
    assert verdict.probability > 0.999
    assert verdict.break_even_usd_per_hour.estimate == pytest.approx(0.2 * fast_dear.per_s / slow_cheap.per_s)
    text = verdict.sentence()
    assert text.startswith("c7i cpu is cheaper than g5 cuda with probability > 0.999")
    assert "g5 cuda would match it at $2" in text


def test_side_rejects_what_cannot_be_priced() -> None:
    with pytest.raises(ConfigError, match="no samples"):
        Side("x", [], 1.0, 1.0)
    with pytest.raises(ConfigError, match="positive"):
        Side("x", [1.0], 1.0, 0.0)


def _null_rate(rng: np.random.Generator, pairs: int, n: int, draw: str) -> float:
    hits = 0
    for _ in range(pairs):
        if draw == "lognormal":
            a, b = rng.lognormal(0, 0.25, n), rng.lognormal(0, 0.25, n)
        else:  # bimodal: a fast path and a slow path, 80/20
            a = np.where(rng.random(n) < 0.8, rng.normal(1.0, 0.03, n), rng.normal(1.6, 0.05, n))
            b = np.where(rng.random(n) < 0.8, rng.normal(1.0, 0.03, n), rng.normal(1.6, 0.05, n))
        hits += probability_cheaper(side("a", a), side("b", b)) > 0.95
    return hits / pairs


def test_verdict_is_calibrated_on_equal_distributions() -> None:
    # Equal truth: p > 0.95 in about 5% of pairs (300 pairs: Monte Carlo sd 1.3 points).
    rate = _null_rate(np.random.default_rng(20261129), 300, 100, "lognormal")
    assert rate <= 0.08


def test_verdict_sees_a_five_percent_shift() -> None:
    rng = np.random.default_rng(7)
    confident = 0
    for _ in range(20):
        base = rng.lognormal(0, 0.25, 3000)
        slower = rng.lognormal(math.log(1.05), 0.25, 3000)
        confident += probability_cheaper(side("fast", base), side("slow", slower)) > 0.99
    assert confident >= 19


@pytest.mark.slow
@pytest.mark.parametrize(("n", "draw"), [(30, "lognormal"), (300, "lognormal"), (1000, "lognormal"), (300, "bimodal")])
def test_verdict_calibration_large(n: int, draw: str) -> None:
    rate = _null_rate(np.random.default_rng(n), 1000, n, draw)
    # Nominal 5%; Monte Carlo sd 0.7 points over 1000 pairs. Not far below either: a posterior that
    # never commits would pass the upper bound and be useless.
    assert 0.02 <= rate <= 0.07


@pytest.mark.slow
def test_verdict_shift_power_large() -> None:
    rng = np.random.default_rng(8)
    results = [
        probability_cheaper(
            side("fast", rng.lognormal(0, 0.25, 5000)), side("slow", rng.lognormal(math.log(1.05), 0.25, 5000))
        )
        for _ in range(200)
    ]
    assert np.mean(np.asarray(results) > 0.99) >= 0.98


def _process_side(label: str, rng: np.random.Generator, shift: float = 1.0, processes: int = 5) -> Side:
    """A side measured in fresh processes: each process's median off by a process effect (sd 5%)."""
    per_process = [rng.lognormal(math.log(shift * (1 + rng.normal(0, 0.05))), 0.1, 200) for _ in range(processes)]
    pooled = np.concatenate(per_process)
    medians = [float(np.median(p)) for p in per_process]
    return Side(label, pooled, 1e9 / float(np.mean(medians)), 1.0, medians)


def test_verdict_between_processes_is_calibrated_and_says_its_basis() -> None:
    # Equal truth with a process effect the pooled samples cannot see: p > 0.95 in about 5% of pairs.
    rng = np.random.default_rng(99)
    hits = sum(
        probability_cheaper(_process_side("a", rng), _process_side("b", rng), draws=4000) > 0.95 for _ in range(300)
    )
    assert hits / 300 <= 0.09
    # Without the process medians, the same pairs look decisive far more often.
    rng = np.random.default_rng(99)
    pooled_hits = 0
    for _ in range(300):
        a, b = _process_side("a", rng), _process_side("b", rng)
        pooled_hits += (
            probability_cheaper(side("a", np.asarray(a.samples_ns)), side("b", np.asarray(b.samples_ns))) > 0.95
        )
    # (0.18: the samples' effective n sees part of each process's level step, not its spread.)
    assert pooled_hits / 300 > 0.15
    verdict = compare_costs("w", _process_side("a", rng), _process_side("b", rng, shift=1.3))
    assert verdict.basis == "between processes" and "blind to run-to-run spread" not in verdict.sentence()
    within = compare_costs("w", side("a", [1.0, 2.0, 3.0]), side("b", [4.0, 5.0, 6.0]))
    assert within.basis == "within one process" and "measure with --processes N" in within.sentence()


def test_break_even_between_processes_is_the_t_interval_of_the_ratio() -> None:
    rng = np.random.default_rng(5)
    a, b = _process_side("a", rng), _process_side("b", rng, shift=2.0)
    got = break_even_price(a, b)
    assert got.estimate == pytest.approx(1.0 * b.per_s / a.per_s)
    assert got.low is not None and got.high is not None and got.low < got.estimate < got.high
    # About ±(t(0.975, 4) x 5% / sqrt(5)) on each side's mean, combined: far wider than one process's.
    assert 0.03 < (got.high - got.low) / 2 / got.estimate < 0.2


def _dependent_null_rates(seed: int, pairs: int, n: int = 300, rho: float = 0.5) -> tuple[float, float]:
    """Equal-cost pairs of AR(1) sequences (log scale, ρ): the shares with P(A cheaper) > 0.95 and
    with P(B cheaper) > 0.95."""
    from benchmarks.dependent_series import ar1_series

    series = ar1_series("lognormal", rho)
    rng = np.random.default_rng(seed)
    draws = series.draw(rng, 2 * pairs, n)
    pairs_ab = zip(draws[::2], draws[1::2], strict=True)
    probabilities = np.array([probability_cheaper(side("a", a), side("b", b)) for a, b in pairs_ab])
    return float(np.mean(probabilities > 0.95)), float(np.mean(probabilities < 0.05))


def test_verdict_is_calibrated_on_dependent_samples() -> None:
    # Before issue 19 the posterior read the samples as independent: 12% / 11% at ρ = 0.5, n = 300.
    a_rate, b_rate = _dependent_null_rates(19, 300)
    assert a_rate <= 0.08 and b_rate <= 0.08  # 6% nominal-plus over 300 pairs: Monte Carlo sd 1.3 points


@pytest.mark.slow
def test_verdict_calibration_on_dependent_samples_large() -> None:
    a_rate, b_rate = _dependent_null_rates(1919, 1000)
    assert a_rate <= 0.06 and b_rate <= 0.06


def test_a_dependent_sides_posterior_is_wider() -> None:
    from benchmarks.dependent_series import ar1_series

    x = ar1_series("lognormal", 0.6).draw(np.random.default_rng(3), 1, 400)[0]
    values, independent = median_posterior(x)
    _, dependent = median_posterior(x, side("x", x).effective_n)
    assert side("x", x).effective_n < 200

    def spread(probs: np.ndarray) -> float:
        mean = float(np.sum(values * probs))
        return float(np.sqrt(np.sum(probs * (values - mean) ** 2)))

    assert spread(dependent) > 1.3 * spread(independent)
    assert np.sum(dependent) == pytest.approx(1.0)
    # At m = n the interpolated posterior is the exact one.
    assert np.allclose(median_posterior(x, 400.0)[1], independent)
