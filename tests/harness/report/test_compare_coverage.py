"""Coverage of compare's quantile-ratio intervals where it gives them, and withholding where not.

Truths are known: a scale shift (ratio = the shift at every quantile), a wider spread and a lighter
Pareto tail (ratio = the two true quantiles' ratio). Order: seeded, so every figure is fixed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

import numpy as np
import pytest

from harness.report.compare import bootstrap_quantile, compare_runs, ratio_ci, render_comparison
from tests.harness.runfactory import lognormal_samples, make_cell, make_run

Z = 3.5  # Monte Carlo standard errors allowed
Draw = Callable[[np.random.Generator, int], np.ndarray]
_z = NormalDist().inv_cdf

CASES: dict[str, tuple[Draw, Draw, Callable[[float], float]]] = {
    "scale shift": (
        lambda rng, n: rng.lognormal(0.0, 0.25, n),
        lambda rng, n: 1.1 * rng.lognormal(0.0, 0.25, n),
        lambda q: 1.1,
    ),
    "wider spread": (
        lambda rng, n: rng.lognormal(0.0, 0.25, n),
        lambda rng, n: rng.lognormal(0.0, 0.35, n),
        lambda q: math.exp(0.1 * _z(q)),
    ),
    "pareto tails": (
        lambda rng, n: (1.0 - rng.random(n)) ** (-1 / 1.5),
        lambda rng, n: (1.0 - rng.random(n)) ** (-1 / 2.5),
        lambda q: (1 - q) ** (-1 / 2.5) / (1 - q) ** (-1 / 1.5),
    ),
}


def _coverage(case: str, q: float, n: int, trials: int) -> float:
    base, new, truth = CASES[case]
    rng = np.random.default_rng(round(q * 1000) + n)
    hits = 0
    for seed in range(trials):
        ci = ratio_ci(base(rng, n), new(rng, n), q, resamples=2000, seed=seed)
        assert ci.low is not None and ci.high is not None
        hits += ci.low <= truth(q) <= ci.high
    return hits / trials


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize(("q", "n"), [(0.5, 6), (0.5, 20), (0.9, 36), (0.9, 100)])
def test_a_ratio_interval_given_covers_at_its_nominal_rate(case: str, q: float, n: int) -> None:
    trials = 300
    rate = _coverage(case, q, n, trials)
    assert rate >= 0.95 - Z * math.sqrt(0.95 * 0.05 / trials), rate


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize(("q", "n"), [(0.95, 72), (0.99, 368), (0.99, 1000)])
def test_a_tail_ratio_interval_given_covers_at_its_nominal_rate(case: str, q: float, n: int) -> None:
    trials = 400
    rate = _coverage(case, q, n, trials)
    assert rate >= 0.95 - Z * math.sqrt(0.95 * 0.05 / trials), rate


@pytest.mark.parametrize(("q", "n", "needs"), [(0.99, 367, 368), (0.99, 100, 368), (0.95, 71, 72), (0.5, 5, 6)])
def test_below_the_order_statistic_count_the_ratio_is_withheld(q: float, n: int, needs: int) -> None:
    x = np.random.default_rng(0).lognormal(0.0, 0.25, n)
    ci = ratio_ci(x, x * 1.1, q)
    assert ci.low is None and ci.high is None
    assert ci.estimate == pytest.approx(1.1)
    assert ci.note == f"p{q * 100:g} ratio needs ≥ {needs} samples in each run"


def test_the_ungated_bootstrap_would_fail_this_check() -> None:
    """The check has teeth: the same Beta replicates at 20 samples a run cover far below 95%."""
    base, new, truth = CASES["scale shift"]
    rng = np.random.default_rng(3)
    trials, hits = 400, 0
    for _ in range(trials):
        ratios = bootstrap_quantile(new(rng, 20), 0.99, 2000, rng) / bootstrap_quantile(base(rng, 20), 0.99, 2000, rng)
        lo, hi = np.quantile(ratios, [0.025, 0.975])
        hits += lo <= truth(0.99) <= hi
    assert hits / trials < 0.95 - Z * math.sqrt(0.95 * 0.05 / trials)


def test_the_comparison_says_why_the_p99_ratio_is_withheld() -> None:
    base = make_run([make_cell(lognormal_samples(1e6, 200, 1))])
    new = make_run([make_cell(lognormal_samples(1.1e6, 200, 2))])
    comparison = compare_runs(base, new)
    (cell,) = comparison.cells
    assert cell.p99 is not None and cell.p99.low is None
    assert cell.p50 is not None and cell.p50.low is not None
    text = render_comparison(comparison)
    assert "[withheld]" in text
    assert "p99 ratio needs ≥ 368 samples in each run" in text
