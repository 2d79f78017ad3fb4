"""Coverage of every interval a summary prints, on synthetic data whose truth is known.

For each distribution and sample size, many seeded samples are summarized exactly as a run's
samples are, and each statistic is scored: an interval (two-sided, or a one-sided bound) must
contain the truth at the confidence it states, within Monte Carlo error; a withheld interval
must say why. Order-statistic intervals state their exact coverage, so they are held to it both
ways (too narrow *and* too wide fail); the mean's t interval is held to at least its nominal.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pytest

from harness.measure.stats import PERCENTILES, summarize

#: Tolerance in Monte Carlo standard errors; over the ~75 seeded checks a true rate sits inside
#: ±3.5 SE with probability ~0.97 jointly, so a failure means a real miscalibration.
Z = 3.5


@dataclass(frozen=True)
class Truth:
    name: str
    draw: Callable[[np.random.Generator, int], np.ndarray]
    quantile: Callable[[float], float]
    mean: float


def _lognormal() -> Truth:
    sigma = 0.25  # the figure: latency of a quiet CPU cell
    return Truth(
        "lognormal",
        lambda rng, n: rng.lognormal(0.0, sigma, n),
        lambda q: math.exp(sigma * NormalDist().inv_cdf(q)),
        math.exp(sigma**2 / 2),
    )


_MODES = ((0.8, 1.0, 0.03), (0.2, 1.5, 0.05))  # a fast path and a slow path (cache miss, GC)


def _bimodal_quantile(q: float) -> float:
    def cdf(x: float) -> float:
        return sum(w * NormalDist(mu, sd).cdf(x) for w, mu, sd in _MODES)

    lo, hi = 0.0, 3.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < q else (lo, mid)
    return (lo + hi) / 2


def _bimodal_draw(rng: np.random.Generator, n: int) -> np.ndarray:
    slow = rng.random(n) < _MODES[1][0]
    return np.where(slow, rng.normal(_MODES[1][1], _MODES[1][2], n), rng.normal(_MODES[0][1], _MODES[0][2], n))


def _pareto() -> Truth:
    alpha = 1.5  # infinite variance: no interval of the mean can hold
    return Truth(
        "pareto",
        lambda rng, n: (1.0 - rng.random(n)) ** (-1.0 / alpha),
        lambda q: (1.0 - q) ** (-1.0 / alpha),
        alpha / (alpha - 1.0),
    )


TRUTHS = {t.name: t for t in (_lognormal(), Truth("bimodal", _bimodal_draw, _bimodal_quantile, 1.1), _pareto())}


def _check(truth: Truth, n: int, trials: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    targets = {f"p{p}": truth.quantile(p / 100) for p in PERCENTILES} | {"mean": truth.mean}
    hits: dict[str, int] = dict.fromkeys(targets, 0)
    shown: dict[str, int] = dict.fromkeys(targets, 0)
    stated: dict[str, list[float]] = {k: [] for k in targets}
    for _ in range(trials):
        summary = summarize(truth.draw(rng, n))
        for name, value in targets.items():
            interval = summary.intervals[name]
            if interval.low is None and interval.high is None:
                assert interval.note, f"{name} withheld without a reason"
                continue
            assert interval.backed or interval.note, f"{name}: a bound below the nominal must say so"
            shown[name] += 1
            stated[name].append(interval.confidence)
            low = -math.inf if interval.low is None else interval.low
            high = math.inf if interval.high is None else interval.high
            hits[name] += low <= value <= high
    failures = []
    for name in targets:
        if not shown[name]:
            continue
        rate = hits[name] / shown[name]
        expected = float(np.mean(stated[name]))
        se = math.sqrt(max(expected * (1 - expected), 0.01 * 0.99) / shown[name])
        too_low = rate < expected - Z * se
        # Order statistics state their exact coverage: too wide is a bug too.
        too_high = name != "mean" and rate > expected + Z * se
        if too_low or too_high:
            failures.append(f"{name}: covered {rate:.3f} of {shown[name]} vs stated {expected:.3f} (±{Z * se:.3f})")
    assert not failures, f"{truth.name} n={n}: " + "; ".join(failures)


@pytest.mark.parametrize("n", [20, 60, 100])
@pytest.mark.parametrize("name", sorted(TRUTHS))
def test_every_printed_interval_covers_at_its_stated_rate(name: str, n: int) -> None:
    _check(TRUTHS[name], n, trials=600, seed=n)


@pytest.mark.slow
@pytest.mark.parametrize("n", [300, 1000])
@pytest.mark.parametrize("name", sorted(TRUTHS))
def test_every_printed_interval_covers_at_its_stated_rate_at_large_n(name: str, n: int) -> None:
    _check(TRUTHS[name], n, trials=2000, seed=n)


@pytest.mark.parametrize("n", [20, 60, 100, 300, 1000])
def test_the_mean_of_an_infinite_variance_tail_is_never_given_an_interval(n: int) -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        interval = summarize(TRUTHS["pareto"].draw(rng, n)).intervals["mean"]
        assert interval.low is None and interval.high is None and interval.note


def test_the_old_bootstrap_p99_would_have_failed_this_check() -> None:
    """The check has teeth: a percentile bootstrap's p99 at n = 60 covers far below 95%."""
    rng = np.random.default_rng(11)
    truth = TRUTHS["lognormal"].quantile(0.99)
    hits, trials = 0, 200
    for _ in range(trials):
        samples = TRUTHS["lognormal"].draw(rng, 60)
        reps = np.percentile(samples[rng.integers(0, 60, (400, 60))], 99, axis=1)
        lo, hi = np.quantile(reps, [0.025, 0.975])
        hits += lo <= truth <= hi
    assert hits / trials < 0.95 - Z * math.sqrt(0.95 * 0.05 / trials)
