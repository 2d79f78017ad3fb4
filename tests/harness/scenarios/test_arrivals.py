"""The Poisson schedule: exponential gaps (tested statistically), exact offered rate, seeded."""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import ConfigError
from harness.scenarios.arrivals import poisson_schedule

RATE = 250.0
COUNT = 20_000


def test_gaps_follow_the_exponential_distribution_ks() -> None:
    stats = pytest.importorskip("scipy.stats", reason="scipy is in the test extra; the KS test needs it")
    gaps = np.diff(poisson_schedule(RATE, COUNT, seed=11), prepend=0.0)
    result = stats.kstest(gaps, "expon", args=(0, 1 / RATE))
    assert result.pvalue > 0.01, result
    # The test has power: the same gaps do not pass as uniform, nor as exponential at another rate.
    assert stats.kstest(gaps, "uniform", args=(0, 2 / RATE)).pvalue < 1e-6
    assert stats.kstest(gaps, "expon", args=(0, 1 / (1.1 * RATE))).pvalue < 1e-6


def test_gap_moments_and_counts_are_poisson() -> None:
    times = poisson_schedule(RATE, COUNT, seed=12)
    gaps = np.diff(times, prepend=0.0)
    # Exponential: the coefficient of variation is 1 (it would be 0 for evenly spaced arrivals).
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.03)
    # Counts in fixed windows are Poisson: variance equals mean (index of dispersion 1).
    counts = np.histogram(times, bins=np.arange(0.0, times[-1], 0.1))[0]
    assert counts.mean() == pytest.approx(RATE * 0.1, rel=0.02)
    assert counts.var() / counts.mean() == pytest.approx(1.0, abs=0.1)


def test_offered_rate_is_exact_over_the_window() -> None:
    for count in (1, 10, 1000):
        times = poisson_schedule(40.0, count, seed=3)
        assert len(times) == count
        assert np.all(np.diff(times) >= 0) and times[0] > 0
        assert times[-1] < count / 40.0
    # The mean gap over the window is exactly 1/rate: count arrivals in count/rate seconds.
    assert poisson_schedule(40.0, 1000, seed=3)[-1] == pytest.approx(1000 / 40.0, rel=0.01)


def test_seeded_and_common_across_rates() -> None:
    assert np.array_equal(poisson_schedule(10.0, 50, seed=1), poisson_schedule(10.0, 50, seed=1))
    assert not np.array_equal(poisson_schedule(10.0, 50, seed=1), poisson_schedule(10.0, 50, seed=2))
    # Common random numbers: the same draws rescaled, so the burst pattern is the same at any rate.
    np.testing.assert_allclose(poisson_schedule(10.0, 50, seed=1), 2 * poisson_schedule(20.0, 50, seed=1))


@pytest.mark.parametrize(("rate", "count"), [(0.0, 10), (-1.0, 10), (float("nan"), 10), (1.0, 0)])
def test_bad_arguments_are_config_errors(rate: float, count: int) -> None:
    with pytest.raises(ConfigError):
        poisson_schedule(rate, count)
