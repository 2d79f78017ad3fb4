"""Coverage of the quantile intervals on serially dependent samples (issue 19's check).

AR(1) sequences on the log scale (a Gaussian copula onto lognormal and Weibull marginals) at
ρ = 0.3, 0.5, 0.8 and n = 60, 300, for the median and the p90. Each condition "holds" at ≥ 0.90
of its 95% intervals: a trial counts when its interval covers the truth or is withheld with its
reason, except at ρ ≤ 0.5 with n = 300, where the samples back an interval and a withheld one
counts as a miss. Independent samples keep ≥ 0.93 coverage, an interval in ≥ 99% of trials and a
mean width at most 1.1× the independent reading's (the method before issue 19: the same ranks).
The quick tests run the conditions real cells show (ρ ≈ 0.5); the whole grid is ``slow``.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.dependent_series import Series, ar1_series
from harness.measure.stats import quantile_interval


def _score(series: Series, n: int, q: float, trials: int, seed: int, independent: bool = False) -> tuple[float, ...]:
    """(shown, covered among shown, held, mean width ratio to the independent reading)."""
    truth = series.quantile(q)
    shown = covered = 0
    widths = []
    for x in series.draw(np.random.default_rng(seed), trials, n):
        iv = quantile_interval(x, q, effective_n=float(n) if independent else None)
        if iv.backed and iv.low is not None and iv.high is not None:
            shown += 1
            covered += iv.low <= truth <= iv.high
            base = quantile_interval(x, q, effective_n=float(n))
            assert base.low is not None and base.high is not None
            if base.high > base.low:
                widths.append((iv.high - iv.low) / (base.high - base.low))
        else:
            assert iv.note, "a withheld interval says why"
    return (
        shown / trials,
        covered / shown if shown else 1.0,
        (covered + trials - shown) / trials,
        float(np.mean(widths)) if widths else 1.0,
    )


def _holds(rho: float, n: int, shown: float, covered: float, held: float) -> bool:
    if rho <= 0.5 and n >= 300:
        return shown * covered >= 0.90  # withheld counts as a miss
    return held >= 0.90


QUICK = [("lognormal", 0.5, 300, 0.5), ("weibull", 0.5, 300, 0.9)]
GRID = [
    (marginal, rho, n, q)
    for marginal in ("lognormal", "weibull")
    for rho in (0.3, 0.5, 0.8)
    for n in (60, 300)
    for q in (0.5, 0.9)
]


def _check(marginal: str, rho: float, n: int, q: float, trials: int) -> None:
    shown, covered, held, _ = _score(ar1_series(marginal, rho), n, q, trials, seed=int(rho * 100) + n)
    assert _holds(rho, n, shown, covered, held), (shown, covered, held)


@pytest.mark.parametrize(("marginal", "rho", "n", "q"), QUICK)
def test_dependent_intervals_hold_where_real_cells_sit(marginal: str, rho: float, n: int, q: float) -> None:
    _check(marginal, rho, n, q, trials=300)


def test_the_independent_reading_fails_that_same_check() -> None:
    # What the intervals claimed before issue 19: the check above would catch it.
    shown, covered, _, _ = _score(ar1_series("lognormal", 0.5), 300, 0.5, 300, seed=350, independent=True)
    assert shown == 1.0 and covered < 0.88


@pytest.mark.slow
@pytest.mark.parametrize(("marginal", "rho", "n", "q"), GRID)
def test_dependent_intervals_hold_over_the_grid(marginal: str, rho: float, n: int, q: float) -> None:
    _check(marginal, rho, n, q, trials=1000)


@pytest.mark.parametrize("marginal", ["lognormal", "weibull"])
@pytest.mark.parametrize("q", [0.5, 0.9])
def test_independent_samples_lose_little(marginal: str, q: float) -> None:
    shown, covered, _, width = _score(ar1_series(marginal, 0.0), 300, q, trials=200, seed=7)
    assert shown >= 0.99 and covered >= 0.93 and width <= 1.1


@pytest.mark.slow
@pytest.mark.parametrize("marginal", ["lognormal", "weibull"])
@pytest.mark.parametrize("n", [60, 300, 1000])
@pytest.mark.parametrize("q", [0.5, 0.9])
def test_independent_samples_lose_little_at_every_size(marginal: str, n: int, q: float) -> None:
    shown, covered, _, width = _score(ar1_series(marginal, 0.0), n, q, trials=1000, seed=n + 1)
    assert shown >= 0.99 and covered >= 0.93 and width <= 1.1
