"""Statistics against known answers: exact binomial ranks, the bounds that exist, the mean's gate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from harness.measure.stats import (
    binomial_cdf,
    hill_tail_index,
    mean_interval,
    median_ci,
    min_samples,
    order_statistic_ranks,
    quantile_interval,
    rank_coverage,
    relative_half_width,
    summarize,
)


def test_percentiles_of_a_fixed_array_match_hand_computed_values() -> None:
    # 1..101: type-7 percentiles fall exactly on the data (p-th percentile = 1 + p).
    summary = summarize(np.arange(1, 102))
    assert summary.count == 101
    assert (summary.min, summary.max) == (1.0, 101.0)
    assert summary.p50 == 51.0
    assert summary.p90 == 91.0
    assert summary.p95 == 96.0
    assert summary.p99 == 100.0
    assert summary.iqr == 50.0
    assert summary.mean == 51.0
    assert summary.std == pytest.approx(np.sqrt(101 * 102 / 12), rel=1e-12)


def test_percentiles_interpolate_linearly_between_order_statistics() -> None:
    summary = summarize([10.0, 20.0, 30.0, 40.0])
    assert summary.p50 == 25.0  # halfway between 20 and 30
    assert summary.p90 == pytest.approx(37.0)  # rank 0.9 * 3 = 2.7 -> 30 + 0.7 * 10


@pytest.mark.parametrize(
    ("k", "n", "p"), [(97, 100, 0.99), (480, 1000, 0.5), (98_900, 100_000, 0.99), (5, 20, 0.3), (0, 50, 0.01)]
)
def test_binomial_cdf_is_exact_against_scipy(k: int, n: int, p: float) -> None:
    assert binomial_cdf(k, n, p) == pytest.approx(float(scipy_stats.binom.cdf(k, n, p)), rel=1e-9, abs=1e-15)


def test_median_ci_uses_the_exact_binomial_ranks_for_small_samples() -> None:
    # n = 11: P(B <= 1) = 12/2048 keeps coverage >= 95% (98.8%), P(B <= 2) = 67/2048 would not.
    assert median_ci(np.arange(1, 12)) == (2.0, 10.0)
    assert rank_coverage(11, 0.5, 2, 10) == pytest.approx(1 - 2 * 12 / 2048)


@pytest.mark.parametrize("n", [20, 60, 100, 368, 1000, 5000])
@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99])
def test_ranks_are_the_tightest_that_reach_the_confidence(n: int, q: float) -> None:
    """Each end is exact: one rank inward would put more than 2.5% in that tail."""
    ranks = order_statistic_ranks(n, q, 0.95)
    if ranks is None:
        assert n < min_samples(q, 0.95)
        return
    r, s = ranks
    tail_low = scipy_stats.binom.cdf(r - 1, n, q)  # P(X(r) > ξ)
    tail_high = scipy_stats.binom.sf(s - 1, n, q)  # P(X(s) < ξ)
    assert tail_low <= 0.025 + 1e-12 and tail_high <= 0.025 + 1e-12
    assert scipy_stats.binom.cdf(r, n, q) > 0.025  # r + 1 would be too far in
    assert s == 1 or scipy_stats.binom.sf(s - 2, n, q) > 0.025  # s - 1 would be too far in


def test_sample_counts_the_tail_needs() -> None:
    # p99 at 95%: 0.99^n <= 0.025 from n = 368 two-sided; 0.99^n <= 0.05 from 299 for the upper bound.
    assert min_samples(0.99, 0.95) == 368
    assert min_samples(0.99, 0.95, "upper") == 299
    assert min_samples(0.9, 0.95) == 36
    assert min_samples(0.95, 0.95) == 72
    assert min_samples(0.5, 0.95) == 6
    assert order_statistic_ranks(367, 0.99, 0.95) is None
    ranks = order_statistic_ranks(368, 0.99, 0.95)
    assert ranks is not None and ranks[1] == 368  # the upper end is the maximum


def test_too_few_samples_for_p99_give_the_highest_lower_bound_at_full_confidence() -> None:
    samples = np.random.default_rng(0).lognormal(0.0, 0.25, 160)
    p99 = quantile_interval(samples, 0.99)
    # The max holds the p99 from above only with 1 − 0.99^160 = 80%: no upper bound is offered.
    assert not p99.backed and p99.high is None and p99.at_least
    # B = #{x ≤ ξ_0.99} ~ Bin(160, 0.99); X(r) ≤ ξ iff B ≥ r: the highest r with P(B ≥ r) ≥ 0.95.
    r = max(k for k in range(1, 161) if scipy_stats.binom.sf(k - 1, 160, 0.99) >= 0.95)
    assert p99.low == np.sort(samples)[r - 1]
    assert p99.confidence == pytest.approx(scipy_stats.binom.sf(r - 1, 160, 0.99))
    assert p99.confidence >= 0.95
    assert p99.needs == 368
    assert p99.note == f"p99 ≥ X({r}) at 98%: an upper bound on the p99 needs ≥ 299 samples, a two-sided interval ≥ 368"
    assert p99.relative_half_width == math.inf


def test_between_the_one_sided_and_two_sided_counts_the_upper_bound_is_at_full_confidence() -> None:
    samples = np.random.default_rng(1).lognormal(0.0, 0.25, 330)
    p99 = quantile_interval(samples, 0.99)
    assert not p99.backed and p99.high is not None
    assert p99.confidence >= 0.95
    assert p99.note is not None and "p99 needs ≥ 368 samples for a two-sided interval" in p99.note


def test_summary_keeps_only_backed_intervals_in_ci_and_says_why_for_the_rest() -> None:
    summary = summarize(np.random.default_rng(2).lognormal(0.0, 0.25, 60))
    assert set(summary.ci) == {"p50", "p90"}  # p95 needs 72, p99 368, the mean 200
    assert any("p99 needs ≥ 299 samples, a two-sided interval ≥ 368" in note for note in summary.notes)
    assert any("p95 needs ≥ 72 samples for a two-sided interval" in note for note in summary.notes)
    assert any("mean interval needs ≥ 200" in note for note in summary.notes)
    for name, (lo, hi) in summary.ci.items():
        assert lo <= getattr(summary, name) <= hi


def test_mean_interval_matches_student_t_on_a_light_tail() -> None:
    samples = np.random.default_rng(3).normal(100.0, 5.0, 400)
    interval = mean_interval(samples)
    low, high = scipy_stats.t.interval(0.95, 399, loc=samples.mean(), scale=scipy_stats.sem(samples))
    assert interval.method == "student t"
    assert (interval.low, interval.high) == (pytest.approx(low, rel=1e-7), pytest.approx(high, rel=1e-7))


def test_mean_interval_is_withheld_on_a_heavy_tail() -> None:
    pareto = (1.0 - np.random.default_rng(4).random(1000)) ** (-1 / 1.5)  # tail index 1.5: infinite variance
    assert hill_tail_index(pareto) == pytest.approx(1.5, rel=0.35)
    interval = mean_interval(pareto)
    assert not interval.backed and interval.method == "withheld"
    assert interval.note is not None and "heavy tail" in interval.note


def test_relative_half_width_shrinks_with_more_samples() -> None:
    rng = np.random.default_rng(0)
    small = relative_half_width(rng.normal(100, 5, 50))
    large = relative_half_width(rng.normal(100, 5, 5000))
    assert large < small
    assert relative_half_width([1.0, 2.0]) == float("inf")
    assert relative_half_width(rng.normal(100, 5, 100), q=0.99) == float("inf")


def test_summary_round_trips_through_a_run_file() -> None:
    from tests.harness.runfactory import make_cell, make_run

    samples = [1_000, 2_000, 3_000, 4_000, 5_000] * 4
    run = make_run([make_cell(samples)])
    measured = run.cells[0].measurement
    assert measured is not None
    assert measured.latency_ns == summarize(samples)
    assert measured.latency_ns.intervals["p99"].note == (
        "p99 ≥ X(19) at 98%: an upper bound on the p99 needs ≥ 299 samples, a two-sided interval ≥ 368"
    )


def test_empty_samples_are_rejected() -> None:
    with pytest.raises(ValueError):
        summarize([])
