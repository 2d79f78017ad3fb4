"""Statistics against known answers."""

from __future__ import annotations

import numpy as np
import pytest

from harness.measure.stats import bootstrap_ci, median_ci, relative_half_width, summarize


def test_percentiles_of_a_fixed_array_match_hand_computed_values() -> None:
    # 1..101: type-7 percentiles fall exactly on the data (p-th percentile = 1 + p).
    summary = summarize(np.arange(1, 102), resamples=200)
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
    summary = summarize([10.0, 20.0, 30.0, 40.0], resamples=100)
    assert summary.p50 == 25.0  # halfway between 20 and 30
    assert summary.p90 == pytest.approx(37.0)  # rank 0.9 * 3 = 2.7 -> 30 + 0.7 * 10


def test_median_ci_uses_the_exact_binomial_ranks_for_small_samples() -> None:
    # n = 11: P(B <= 1) = 12/2048 keeps coverage >= 95% (98.8%), P(B <= 2) = 67/2048 would not.
    assert median_ci(np.arange(1, 12)) == (2.0, 10.0)


def test_confidence_intervals_contain_their_estimate() -> None:
    samples = np.random.default_rng(3).lognormal(0.0, 0.4, 500)
    summary = summarize(samples)
    for name in ("p50", "p90", "p95", "p99"):
        lo, hi = summary.ci[name]
        assert lo <= getattr(summary, name) <= hi


@pytest.mark.parametrize("interval", ["order_statistic", "bootstrap"])
def test_median_interval_coverage_is_close_to_95_percent(interval: str) -> None:
    """Draw many samples from a skewed distribution with a known median and count the hits."""
    rng = np.random.default_rng(42)
    true_median = 1.0  # lognormal(0, s) has median exp(0) = 1
    trials, hits = 300, 0
    for seed in range(trials):
        samples = rng.lognormal(0.0, 0.5, 60)
        if interval == "order_statistic":
            lo, hi = median_ci(samples)
        else:
            lo, hi = bootstrap_ci(samples, [50], resamples=400, seed=seed)[50.0]
        hits += lo <= true_median <= hi
    coverage = hits / trials
    # Binomial noise over 300 trials is about ±2.5%; the bootstrap runs a little narrow at n=60.
    assert 0.88 <= coverage <= 0.995, coverage


def test_relative_half_width_shrinks_with_more_samples() -> None:
    rng = np.random.default_rng(0)
    small = relative_half_width(rng.normal(100, 5, 50))
    large = relative_half_width(rng.normal(100, 5, 5000))
    assert large < small
    assert relative_half_width([1.0, 2.0]) == float("inf")


def test_bootstrap_is_reproducible_for_a_seed() -> None:
    samples = np.random.default_rng(1).exponential(1.0, 200)
    assert bootstrap_ci(samples, [50, 99], seed=7) == bootstrap_ci(samples, [50, 99], seed=7)


def test_summary_round_trips_through_a_run_file() -> None:
    from tests.harness.runfactory import make_cell, make_run

    samples = [1_000, 2_000, 3_000, 4_000, 5_000] * 4
    run = make_run([make_cell(samples)])
    measured = run.cells[0].measurement
    assert measured is not None
    assert measured.latency_ns == summarize(samples, resamples=200)


def test_empty_samples_are_rejected() -> None:
    with pytest.raises(ValueError):
        summarize([])
