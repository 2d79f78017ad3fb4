"""Between-process statistics: hand-computed cases, Student t against SciPy, and coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from harness.measure.between import process_ratio, spread_of, t_quantile


@pytest.mark.parametrize("df", [1, 2, 3, 4, 7, 29, 2.5, 1000])
@pytest.mark.parametrize("probability", [0.5, 0.9, 0.975, 0.995])
def test_t_quantile_matches_scipy(df: float, probability: float) -> None:
    assert t_quantile(probability, df) == pytest.approx(float(stats.t.ppf(probability, df)), rel=1e-8, abs=1e-10)


def test_t_quantile_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="probability"):
        t_quantile(0.2, 3)
    with pytest.raises(ValueError, match="degrees"):
        t_quantile(0.9, 0)


def test_spread_by_hand() -> None:
    # Process medians 10, 11, 12: mean 11, sd 1, t(0.975, 2) = 4.3027, half width 4.3027/sqrt(3).
    spread = spread_of([[9, 10, 11], [10, 11, 12, 13, 1], [12, 12, 12]])
    assert spread.medians_ns == (10.0, 11.0, 12.0)
    assert spread.count == 3
    assert (spread.mean_ns, spread.std_ns) == (11.0, pytest.approx(1.0))
    half = 4.302652729911275 / math.sqrt(3)
    assert (spread.low_ns, spread.high_ns) == (pytest.approx(11 - half), pytest.approx(11 + half))
    assert spread.rel_spread == pytest.approx(2 / 11)
    assert spread.rel_std == pytest.approx(1 / 11)


def test_one_process_has_no_between_process_interval() -> None:
    spread = spread_of([[1.0, 2.0, 3.0]])
    assert (spread.low_ns, spread.high_ns, spread.std_ns) == (None, None, 0.0)


def _processes(rng: np.random.Generator, n: int, truth: float, between: float) -> list[np.ndarray]:
    """n processes: each has its own offset (between-process sd ``between``) and lognormal noise."""
    return [truth * (1 + rng.normal(0, between)) * rng.lognormal(0, 0.2, 300) for _ in range(n)]


@pytest.mark.parametrize("n", [3, 5])
def test_the_interval_covers_the_typical_process_median(n: int) -> None:
    # Truth: the mean over processes of each process's true median (the lognormal's median is 1).
    rng = np.random.default_rng(n)
    trials, covered, within_covered = 400, 0, 0
    for _ in range(trials):
        processes = _processes(rng, n, 100.0, 0.05)
        spread = spread_of(processes)
        assert spread.low_ns is not None and spread.high_ns is not None
        covered += spread.low_ns <= 100.0 <= spread.high_ns
        # One process's own order-statistic interval is far too narrow for this truth.
        ordered = np.sort(processes[0])
        within_covered += ordered[131] <= 100.0 <= ordered[167]
    assert abs(covered / trials - 0.95) < 0.04
    assert within_covered / trials < 0.6


def test_process_ratio_by_hand() -> None:
    base = [100.0, 100.0 * math.e**0.02, 100.0 * math.e**-0.02]
    new = [110.0, 110.0 * math.e**0.02, 110.0 * math.e**-0.02]
    got = process_ratio(base, new)
    assert got is not None
    assert got.estimate == pytest.approx(1.1)
    # Equal variances and sizes: Welch's df is 2(n-1) = 4; se = sqrt(2 * 0.02**2 / 3).
    assert got.df == pytest.approx(4.0)
    half = float(stats.t.ppf(0.975, 4)) * math.sqrt(2 * 0.02**2 / 3)
    assert (got.low, got.high) == (pytest.approx(1.1 * math.exp(-half)), pytest.approx(1.1 * math.exp(half)))
    assert process_ratio([1.0], [1.0, 2.0]) is None


def test_process_ratio_is_calibrated_when_nothing_changed() -> None:
    rng = np.random.default_rng(42)
    trials, excluded_one = 400, 0
    for _ in range(trials):
        base = [float(np.median(p)) for p in _processes(rng, 5, 100.0, 0.05)]
        new = [float(np.median(p)) for p in _processes(rng, 5, 100.0, 0.05)]
        got = process_ratio(base, new)
        assert got is not None
        excluded_one += not (got.low <= 1.0 <= got.high)
    assert excluded_one / trials < 0.08
