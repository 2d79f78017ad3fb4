"""Statistics of latency samples, with the reasoning for each choice (long form: docs/methodology.md).

- Percentiles use linear interpolation between order statistics (Hyndman & Fan type 7, numpy's
  default), so figures agree with numpy, pandas and most dashboards.
- Every percentile's interval is the distribution-free order-statistic interval (Conover 1999,
  *Practical Nonparametric Statistics*, §3.2): [X₍ᵣ₎, X₍ₛ₎] with exact binomial ranks, equal
  tails. It holds for any continuous distribution at any n, and it cannot be tighter than the
  data allow: where no ranks reach the confidence (p99 at 95% needs 368 samples, two-sided), no
  interval is made, and the one-sided bound that holds at the confidence is given instead: the
  upper one where it exists (299 samples for p99), else the highest order statistic that is a
  lower bound ("p99 ≥ X(156)"), beside the counts the missing bounds need. An upper bound at a
  lower confidence ("p99 ≤ max, 45%") is never given: a reader takes it for "p99 ≤ max".
- Samples are serially dependent (a slow call follows a slow call): the binomial ranks rest on
  the effective n of the sequence in the order taken (``harness.measure.dependence``). A percentile bootstrap cannot
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

from harness.measure.dependence import MIN_EFFECTIVE_N, lag1_autocorrelation, median_time, quantile_effective_n
from harness.measure.dependence import effective_n as series_effective_n
from harness.runfile.records import Interval, Summary

__all__ = [
    "MEAN_MIN_SAMPLES",
    "MEAN_MIN_TAIL_INDEX",
    "PERCENTILES",
    "Interval",
    "Summary",
    "binomial_cdf",
    "effective_ranks",
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


def _scaled_low(r_m: int, n: int, m: int) -> int:
    """The rank in n samples whose count below holds at least as surely as rank r_m in m effective
    ones: P(B ≤ r−1) ≈ P(B_m/m ≤ (r−1)/n) ≤ P(B_m ≤ r_m−1) when (r−1)/n ≤ (r_m−1)/m."""
    return min(n, math.floor((r_m - 1) * n / m) + 1)


def _scaled_high(s_m: int, n: int, m: int) -> int:
    """The upper rank's counterpart of ``_scaled_low``: s/n ≥ s_m/m."""
    return max(1, min(n, math.ceil(s_m * n / m)))


def effective_ranks(n: int, effective_n: float, q: float, confidence: float) -> tuple[int, int] | None:
    """The two-sided order-statistic ranks among n samples worth ``effective_n`` independent ones:
    the binomial ranks at m = ⌊effective_n⌋ scaled to n (exact when m = n); None where no interval
    holds (too few samples, or dependent ones worth fewer than ``MIN_EFFECTIVE_N``)."""
    m = max(1, min(n, math.floor(effective_n + 1e-9)))
    if m < n and effective_n < MIN_EFFECTIVE_N:
        return None
    ranks = order_statistic_ranks(m, q, confidence)
    if ranks is None:
        return None
    return _scaled_low(ranks[0], n, m), _scaled_high(ranks[1], n, m)


def _dependence_text(n: int, effective: float) -> str:
    return f"effective n {effective:.0f} of {n} serially dependent samples"


def quantile_interval(
    samples: Sequence[float] | np.ndarray,
    q: float,
    confidence: float = 0.95,
    *,
    ordered: bool = False,
    effective_n: float | None = None,
) -> Interval:
    """The order-statistic interval of the ``q`` quantile (0 < q < 1), or the bound that exists.

    The samples are taken in the order they were drawn: the effective n of the quantile's indicator
    series (``harness.measure.dependence``) sets the binomial ranks, which are then scaled to the n
    samples held, so a dependent sequence gets the wider interval it backs. ``effective_n`` passes
    it in; ``ordered=True`` (an already sorted array) has lost the order, and is read as independent
    unless ``effective_n`` says otherwise. Where no two-sided interval exists, the highest order
    statistic that is a lower bound at ``confidence`` is given ("p99 ≥ x"): the data back no useful
    upper bound, and one at low confidence reads as a claim it is not.
    """
    arr = np.asarray(samples, dtype=np.float64)
    n = arr.size
    if n == 0:
        raise ValueError("quantile_interval needs at least one sample")
    ordered_arr = arr if ordered else np.sort(arr)
    estimate = _type7(ordered_arr, q)
    recorded_unknown = ordered and effective_n is None
    if effective_n is None:
        effective_n = float(n) if ordered else quantile_effective_n(arr, estimate)
    effective = min(float(n), effective_n)
    m = max(1, min(n, math.floor(effective + 1e-9)))
    label = _label(q)
    dependent = m < n
    recorded = None if recorded_unknown else round(effective, 1)
    needs = math.ceil(min_samples(q, confidence) * n / m)
    if dependent and effective < MIN_EFFECTIVE_N:
        note = (
            f"{label}: {_dependence_text(n, effective)}, fewer than the {MIN_EFFECTIVE_N} an interval needs; "
            "no interval holds (take more samples, or space the calls apart)"
        )
        return Interval(estimate, None, None, 0.0, confidence, "withheld", needs, note, recorded)
    method = "order statistics" + (", dependence-adjusted" if dependent else "")
    ranks = order_statistic_ranks(m, q, confidence)
    if ranks is not None:
        r_m, s_m = ranks
        r, s = _scaled_low(r_m, n, m), _scaled_high(s_m, n, m)
        coverage = rank_coverage(m, q, r_m, s_m)
        return Interval(
            estimate,
            float(ordered_arr[r - 1]),
            float(ordered_arr[s - 1]),
            coverage,
            confidence,
            method,
            None,
            None,
            recorded,
        )
    upper_needs = math.ceil(min_samples(q, confidence, "upper") * n / m)
    why = f" ({_dependence_text(n, effective)})" if dependent else ""
    upper = order_statistic_ranks(m, q, confidence, "upper")
    if upper is not None:
        s_m = upper[1]
        s = _scaled_high(s_m, n, m)
        coverage = rank_coverage(m, q, 1, s_m)
        bound = "max" if s == n else f"X({s})"
        note = f"{label} ≤ {bound} at {coverage:.0%}; {label} needs ≥ {needs} samples for a two-sided interval{why}"
        return Interval(estimate, None, float(ordered_arr[s - 1]), coverage, confidence, method, needs, note, recorded)
    lower = order_statistic_ranks(m, q, confidence, "lower")
    if lower is not None:
        r_m = lower[0]
        r = _scaled_low(r_m, n, m)
        coverage = rank_coverage(m, q, r_m, m + 1)
        bound = "min" if r == 1 else f"X({r})"
        note = (
            f"{label} ≥ {bound} at {coverage:.0%}: an upper bound on the {label} needs ≥ {upper_needs} samples, "
            f"a two-sided interval ≥ {needs}{why}"
        )
        return Interval(estimate, float(ordered_arr[r - 1]), None, coverage, confidence, method, needs, note, recorded)
    note = f"{label}: no bound holds at {confidence:.0%}; a two-sided interval needs ≥ {needs} samples{why}"
    return Interval(estimate, None, None, 0.0, confidence, "withheld", needs, note, recorded)


def percentile_intervals(
    samples: Sequence[float] | np.ndarray,
    percentiles: Sequence[float] = PERCENTILES,
    confidence: float = 0.95,
    *,
    independent: bool = False,
) -> dict[str, Interval]:
    """``quantile_interval`` for each percentile (0..100), keyed "p50", "p99", ... (one sort).

    The samples in the order taken; ``independent=True`` skips the dependence estimate (samples
    known to be independent, such as the medians of separate processes).
    """
    arr = np.asarray(samples, dtype=np.float64)
    ordered = np.sort(arr)
    out = {}
    median_tau = None if independent else median_time(arr)
    for p in percentiles:
        q = p / 100
        effective = None if independent else quantile_effective_n(arr, _type7(ordered, q), median_tau)
        out[_label(q)] = quantile_interval(ordered, q, confidence, ordered=True, effective_n=effective)
    return out


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
    # Dependent samples: the mean's variance is s²·τ/n (τ of the values themselves, Geyer's estimator).
    effective = series_effective_n(arr)
    if effective < n and effective < MIN_EFFECTIVE_N:
        note = f"mean: {_dependence_text(n, effective)}, fewer than the {MIN_EFFECTIVE_N} an interval needs"
        return Interval(mean, None, None, 0.0, confidence, "withheld", None, note, effective)
    dof = max(1, math.floor(effective) - 1)
    half = _t_quantile(1.0 - (1.0 - confidence) / 2, dof) * float(arr.std(ddof=1)) / math.sqrt(effective)
    method = "student t" + (", dependence-adjusted" if effective < n else "")
    return Interval(mean, mean - half, mean + half, confidence, confidence, method, None, None, effective)


# -- summaries -----------------------------------------------------------------------------------


def summarize(samples: Sequence[float] | np.ndarray, confidence: float = 0.95) -> Summary:
    """Every statistic a report shows, each with the interval the sample backs (or why none)."""
    arr = np.asarray(samples, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("summarize needs at least one sample")
    ordered = np.sort(arr)
    p25, p75 = _type7(ordered, 0.25), _type7(ordered, 0.75)
    intervals = {"mean": mean_interval(arr, confidence)}
    intervals.update(percentile_intervals(arr, PERCENTILES, confidence))
    lag1 = lag1_autocorrelation(arr)
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
        lag1_autocorrelation=None if math.isnan(lag1) else round(lag1, 4),
        effective_n=intervals["p50"].effective_n,
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
    """Half the ``q`` quantile's interval width relative to its estimate (inf if no interval), with
    the samples in the order taken (their dependence widens it)."""
    arr = np.asarray(samples, dtype=np.float64)
    if arr.size < 3:
        return math.inf
    return quantile_interval(arr, q, confidence).relative_half_width
