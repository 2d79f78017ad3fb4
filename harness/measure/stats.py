"""Statistics of latency samples, with the reasoning for each choice (long form: docs/methodology.md).

- Percentiles use linear interpolation between order statistics (Hyndman & Fan type 7, numpy's
  default), so figures agree with numpy, pandas and most dashboards.
- Every percentile's interval is the distribution-free order-statistic interval (Conover 1999,
  *Practical Nonparametric Statistics*, §3.2): [X₍ᵣ₎, X₍ₛ₎] with exact binomial ranks, equal
  tails. It holds for any continuous distribution at any n, and it cannot be tighter than the
  data allow: where no ranks reach the confidence (p99 at 95% needs 368 samples, two-sided), no
  interval is made, and the bound that does exist is given with its own, lower confidence
  ("p99 ≤ max, 80%") beside the count a two-sided interval needs. A percentile bootstrap cannot
  see past the largest sample, so at small n it claims a far tighter tail than the data back.
- The mean's interval is Student's t, printed only where it holds: no interval for a mean is
  valid over all distributions (Bahadur & Savage 1956), so it needs enough samples and a tail that
  is not heavy (Hill's 1975 tail index of the top tenth above ``MEAN_MIN_TAIL_INDEX``); otherwise
  it is withheld with the reason.
- The stopping rule uses the same order-statistic interval (of the median, and of the tail
  percentile when asked), cheap enough to recompute while sampling.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from statistics import NormalDist
from typing import Literal

import numpy as np

from harness.runfile.records import Interval, Summary

__all__ = [
    "MEAN_MIN_SAMPLES",
    "MEAN_MIN_TAIL_INDEX",
    "PERCENTILES",
    "Interval",
    "Summary",
    "binomial_cdf",
    "hill_tail_index",
    "mean_interval",
    "median_ci",
    "min_samples",
    "order_statistic_ranks",
    "percentile_intervals",
    "quantile_interval",
    "relative_half_width",
    "summarize",
]

#: Percentiles every summary reports.
PERCENTILES: tuple[int, ...] = (50, 90, 95, 99)

#: Fewest samples for the mean's t interval. Below ~60 its coverage falls under the nominal on the
#: bimodal and skewed shapes latency takes; below 200 the tail-index screen (top 10%, at least 10
#: samples) still lets about 1 in 1000 samples of an infinite-variance Pareto tail through
#: (docs/methodology.md has the measured figures).
MEAN_MIN_SAMPLES = 200
#: Hill tail index of the top tenth below which the tail counts as heavy and the mean's interval
#: is withheld: a Pareto tail of index α has finite variance only for α > 2, and the t interval
#: needs a good margin above that at the sample sizes a benchmark takes.
MEAN_MIN_TAIL_INDEX = 5.0

Side = Literal["two-sided", "upper", "lower"]


# -- exact binomial ranks ------------------------------------------------------------------------


@lru_cache(maxsize=512)
def _binomial_window(n: int, p: float) -> tuple[int, np.ndarray]:
    """(k0, cdf) with cdf[i] = P(Binomial(n, p) <= k0 + i) over the window that holds the mass.

    The window spans the mean ± 12 standard deviations (mass outside < 1e-30), so the cost is
    O(√n); the pmf is built in log space by the ratio recurrence, anchored with ``lgamma``.
    """
    sd = math.sqrt(n * p * (1.0 - p))
    lo = max(0, math.floor(n * p - 12.0 * sd) - 10)
    hi = min(n, math.ceil(n * p + 12.0 * sd) + 10)
    log_p, log_q = math.log(p), math.log1p(-p)
    anchor = math.lgamma(n + 1) - math.lgamma(lo + 1) - math.lgamma(n - lo + 1) + lo * log_p + (n - lo) * log_q
    ks = np.arange(lo, hi, dtype=np.float64)
    steps = np.log((n - ks) / (ks + 1.0)) + (log_p - log_q)
    log_pmf = anchor + np.concatenate(([0.0], np.cumsum(steps)))
    cdf = np.minimum(np.cumsum(np.exp(log_pmf)), 1.0)
    return lo, cdf


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(Binomial(n, p) <= k), exact to double precision (no normal approximation)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    lo, cdf = _binomial_window(n, p)
    if k < lo:
        return 0.0
    return float(cdf[min(k - lo, cdf.size - 1)])


def _first_rank_at_least(n: int, q: float, level: float) -> int | None:
    """Smallest 1-based s <= n with P(B <= s-1) >= level, B ~ Binomial(n, q); None if none."""
    lo, cdf = _binomial_window(n, q)
    idx = int(np.searchsorted(cdf, level - 1e-12, side="left"))  # first k - lo with cdf >= level
    s = lo + idx + 1
    if idx >= cdf.size or s > n:
        return None
    return s


def _last_rank_at_most(n: int, q: float, level: float) -> int | None:
    """Largest 1-based r >= 1 with P(B <= r-1) <= level, B ~ Binomial(n, q); None if none."""
    lo, cdf = _binomial_window(n, q)
    # P(B <= k) <= level for k < lo (mass below the window is < 1e-30).
    idx = int(np.searchsorted(cdf, level + 1e-12, side="right"))  # count of k-lo with cdf <= level
    r = lo + idx  # k = r - 1 = lo + idx - 1 is the last with cdf <= level
    if r < 1:
        return None
    return min(r, n)


@lru_cache(maxsize=4096)
def order_statistic_ranks(n: int, q: float, confidence: float, side: Side = "two-sided") -> tuple[int, int] | None:
    """1-based ranks (r, s) with P(X₍ᵣ₎ <= ξ_q <= X₍ₛ₎) >= ``confidence`` for any continuous F.

    ``B`` = #{Xᵢ <= ξ_q} is Binomial(n, q), so P(X₍ᵣ₎ > ξ_q) = P(B <= r−1) and P(X₍ₛ₎ < ξ_q) =
    P(B >= s) (Conover 1999, §3.2). Two-sided puts at most (1−c)/2 in each tail; "upper" gives
    (1, s) with P(ξ_q <= X₍ₛ₎) >= c; "lower" gives (r, n) with P(X₍ᵣ₎ <= ξ_q) >= c. None when
    n is too small for the ranks to exist.
    """
    if n < 1 or not 0.0 < q < 1.0 or not 0.0 < confidence < 1.0:
        raise ValueError(
            f"order_statistic_ranks needs n >= 1, 0 < q < 1, 0 < confidence < 1; got {n}, {q}, {confidence}"
        )
    alpha = 1.0 - confidence
    if side == "two-sided":
        r = _last_rank_at_most(n, q, alpha / 2)
        s = _first_rank_at_least(n, q, 1.0 - alpha / 2)
        return None if r is None or s is None else (r, s)
    if side == "upper":
        s = _first_rank_at_least(n, q, confidence)
        return None if s is None else (1, s)
    if side == "lower":
        r = _last_rank_at_most(n, q, alpha)
        return None if r is None else (r, n)
    raise ValueError(f"unknown side {side!r}; use one of: two-sided, upper, lower")


def rank_coverage(n: int, q: float, r: int, s: int) -> float:
    """Exact P(X₍ᵣ₎ <= ξ_q <= X₍ₛ₎) = P(r <= B <= s−1) for a continuous distribution.

    r = 1 with s = n + 1 stands for "no lower/upper end"; pass them for one-sided bounds.
    """
    upper = 1.0 if s > n else binomial_cdf(s - 1, n, q)
    lower = 0.0 if r <= 1 else binomial_cdf(r - 1, n, q)
    return max(0.0, upper - lower)


def min_samples(q: float, confidence: float, side: Side = "two-sided") -> int:
    """The fewest samples for which the order-statistic interval of ξ_q exists at ``confidence``.

    Two-sided: both q^n and (1−q)^n at most (1−c)/2 (368 for p99 at 95%); upper bound: q^n <= 1−c
    (299); lower bound: (1−q)^n <= 1−c.
    """
    alpha = 1.0 - confidence
    need = {"two-sided": (alpha / 2, True, True), "upper": (alpha, True, False), "lower": (alpha, False, True)}
    if side not in need:
        raise ValueError(f"unknown side {side!r}; use one of: two-sided, upper, lower")
    level, upper, lower = need[side]
    n = 1
    if upper:
        n = max(n, math.ceil(math.log(level) / math.log(q)))
    if lower:
        n = max(n, math.ceil(math.log(level) / math.log1p(-q)))
    # The closed form can land one off through rounding: settle it on the exact ranks.
    while n > 1 and order_statistic_ranks(n - 1, q, confidence, side) is not None:
        n -= 1
    while order_statistic_ranks(n, q, confidence, side) is None:
        n += 1
    return n


# -- intervals -----------------------------------------------------------------------------------


def _type7(ordered: np.ndarray, q: float) -> float:
    h = (ordered.size - 1) * q
    k = math.floor(h)
    if k + 1 >= ordered.size:
        return float(ordered[-1])
    return float(ordered[k] + (h - k) * (ordered[k + 1] - ordered[k]))


def _label(q: float) -> str:
    pct = q * 100
    return f"p{pct:g}"


def quantile_interval(
    samples: Sequence[float] | np.ndarray, q: float, confidence: float = 0.95, *, ordered: bool = False
) -> Interval:
    """The order-statistic interval of the ``q`` quantile (0 < q < 1), or the bound that exists.

    Pass ``ordered=True`` with an already sorted array to skip the sort.
    """
    arr = np.asarray(samples, dtype=np.float64)
    if not ordered:
        arr = np.sort(arr)
    n = arr.size
    if n == 0:
        raise ValueError("quantile_interval needs at least one sample")
    estimate = _type7(arr, q)
    ranks = order_statistic_ranks(n, q, confidence)
    if ranks is not None:
        r, s = ranks
        return Interval(
            estimate, float(arr[r - 1]), float(arr[s - 1]), rank_coverage(n, q, r, s), confidence, "order statistics"
        )
    needs = min_samples(q, confidence)
    upper = order_statistic_ranks(n, q, confidence, "upper")
    if upper is not None:
        s = upper[1]
        bound_conf = rank_coverage(n, q, 1, s)
        bound = "max" if s == n else f"X({s})"
        note = (
            f"{_label(q)} ≤ {bound} at {bound_conf:.0%}; {_label(q)} needs ≥ {needs} samples for a two-sided interval"
        )
        return Interval(estimate, None, float(arr[s - 1]), bound_conf, confidence, "order statistics", needs, note)
    bound_conf = 1.0 - q**n  # P(ξ_q <= max)
    note = f"{_label(q)} ≤ max at {bound_conf:.0%} only; {_label(q)} needs ≥ {needs} samples"
    return Interval(estimate, None, float(arr[-1]), bound_conf, confidence, "order statistics", needs, note)


def percentile_intervals(
    samples: Sequence[float] | np.ndarray, percentiles: Sequence[float] = PERCENTILES, confidence: float = 0.95
) -> dict[str, Interval]:
    """``quantile_interval`` for each percentile (0..100), keyed "p50", "p99", ... (one sort)."""
    ordered = np.sort(np.asarray(samples, dtype=np.float64))
    return {_label(p / 100): quantile_interval(ordered, p / 100, confidence, ordered=True) for p in percentiles}


def hill_tail_index(samples: Sequence[float] | np.ndarray, fraction: float = 0.1, minimum: int = 10) -> float:
    """Hill's (1975) estimate of the tail index α from the top ``fraction`` of the samples.

    A Pareto tail P(X > x) ∝ x^−α has moments only below α; light tails give large values. inf
    when the top samples are all equal (no tail at all); nan with too few samples.
    """
    ordered = np.sort(np.asarray(samples, dtype=np.float64))
    k = max(minimum, int(ordered.size * fraction))
    if ordered.size <= k or ordered[-k - 1] <= 0:
        return math.nan
    logs = np.log(ordered[-k:] / ordered[-k - 1])
    total = float(logs.sum())
    return math.inf if total <= 0 else k / total


def _t_quantile(p: float, dof: int) -> float:
    """Student t quantile: Cornish–Fisher expansion in the normal quantile (Abramowitz & Stegun
    26.7.5), accurate to ~1e-5 for dof >= 10 — the mean's interval needs far more samples."""
    z = NormalDist().inv_cdf(p)
    v = float(dof)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / v + g2 / v**2 + g3 / v**3 + g4 / v**4


def mean_interval(samples: Sequence[float] | np.ndarray, confidence: float = 0.95) -> Interval:
    """Student's t interval of the mean where it holds; otherwise the mean alone and why."""
    arr = np.asarray(samples, dtype=np.float64)
    n = arr.size
    if n == 0:
        raise ValueError("mean_interval needs at least one sample")
    mean = float(arr.mean())
    if n < MEAN_MIN_SAMPLES:
        note = f"mean interval needs ≥ {MEAN_MIN_SAMPLES} samples (below, skew and tails defeat it)"
        return Interval(mean, None, None, 0.0, confidence, "withheld", MEAN_MIN_SAMPLES, note)
    alpha = hill_tail_index(arr)
    if not alpha > MEAN_MIN_TAIL_INDEX:
        note = (
            f"heavy tail (Hill index {alpha:.2g} ≤ {MEAN_MIN_TAIL_INDEX:g}): no interval of the mean holds; "
            "use the median's"
        )
        return Interval(mean, None, None, 0.0, confidence, "withheld", None, note)
    half = _t_quantile(1.0 - (1.0 - confidence) / 2, n - 1) * float(arr.std(ddof=1)) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, confidence, confidence, "student t")


# -- summaries -----------------------------------------------------------------------------------


def summarize(samples: Sequence[float] | np.ndarray, confidence: float = 0.95) -> Summary:
    """Every statistic a report shows, each with the interval the sample backs (or why none)."""
    arr = np.asarray(samples, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("summarize needs at least one sample")
    ordered = np.sort(arr)
    p25, p75 = _type7(ordered, 0.25), _type7(ordered, 0.75)
    intervals = {"mean": mean_interval(arr, confidence)}
    intervals.update(percentile_intervals(ordered, PERCENTILES, confidence))
    ci = {
        k: (iv.low, iv.high) for k, iv in intervals.items() if iv.backed and iv.low is not None and iv.high is not None
    }
    return Summary(
        count=int(arr.size),
        min=float(ordered[0]),
        mean=float(arr.mean()),
        std=float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
        p50=intervals["p50"].estimate,
        p90=intervals["p90"].estimate,
        p95=intervals["p95"].estimate,
        p99=intervals["p99"].estimate,
        max=float(ordered[-1]),
        iqr=float(p75 - p25),
        confidence=confidence,
        ci=ci,
        intervals=intervals,
    )


def median_ci(samples: Sequence[float] | np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median from order statistics.

    With too few samples for the ranks (n < 6 at 95%), the sample's range (which then holds the
    median with less than ``confidence``).
    """
    ordered = np.sort(np.asarray(samples, dtype=np.float64))
    if ordered.size == 0:
        raise ValueError("median_ci needs at least one sample")
    ranks = order_statistic_ranks(ordered.size, 0.5, confidence)
    r, s = ranks if ranks is not None else (1, ordered.size)
    return float(ordered[r - 1]), float(ordered[s - 1])


def relative_half_width(samples: Sequence[float] | np.ndarray, confidence: float = 0.95, q: float = 0.5) -> float:
    """Half the ``q`` quantile's interval width relative to its estimate (inf if no interval)."""
    arr = np.asarray(samples, dtype=np.float64)
    if arr.size < 3:
        return math.inf
    return quantile_interval(arr, q, confidence).relative_half_width
