"""Statistics of latency samples, with the reasoning for each choice.

- Percentiles use linear interpolation between order statistics (Hyndman & Fan type 7, numpy's
  default), so figures agree with numpy, pandas and most dashboards.
- Each percentile gets a percentile-bootstrap confidence interval (Efron & Tibshirani 1993, ch. 13):
  latency distributions are skewed and multi-modal, so no normal approximation is assumed.
- The stopping rule uses the distribution-free order-statistic interval of the median
  (Conover 1999, §3.2): exact coverage for any continuous distribution and cheap enough to
  recompute while sampling, where a bootstrap would cost more than the calls it measures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

from harness.runfile.records import Summary

__all__ = [
    "PERCENTILES",
    "Summary",
    "bootstrap_ci",
    "median_ci",
    "relative_half_width",
    "summarize",
]

#: Percentiles every summary reports.
PERCENTILES: tuple[int, ...] = (50, 90, 95, 99)

#: Resamples for bootstrap intervals: 2000 keeps the Monte Carlo error of a 95% interval's ends
#: well under the interval's own width (Efron & Tibshirani recommend ≥ 1000 for intervals).
BOOTSTRAP_RESAMPLES = 2000


def _binomial_cdf(k: int, n: int, p: float) -> float:
    """P(Binomial(n, p) <= k), summed in log space so large n does not overflow."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    total = 0.0
    for i in range(k + 1):
        log_term = math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
        total += math.exp(log_term + i * log_p + (n - i) * log_q)
    return min(total, 1.0)


def _median_rank_bounds(n: int, confidence: float) -> tuple[int, int]:
    """0-based ranks (lo, hi) of order statistics bracketing the median with >= ``confidence``."""
    alpha = 1.0 - confidence
    if n > 200:
        # Normal approximation to the binomial; accurate to a rank at these sizes.
        z = NormalDist().inv_cdf(1.0 - alpha / 2)
        half = z * math.sqrt(n) / 2.0
        lo = max(0, math.floor(n / 2 - half) - 1)
        hi = min(n - 1, math.ceil(n / 2 + half))
        return lo, hi
    # Largest k with P(B <= k-1) <= alpha/2, where B ~ Binomial(n, 1/2).
    k = 0
    while k + 1 <= n // 2 and _binomial_cdf(k, n, 0.5) <= alpha / 2:
        k += 1
    return max(0, k - 1), min(n - 1, n - k)


def median_ci(samples: Sequence[float] | np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median from order statistics."""
    ordered = np.sort(np.asarray(samples, dtype=np.float64))
    n = ordered.size
    if n == 0:
        raise ValueError("median_ci needs at least one sample")
    lo, hi = _median_rank_bounds(n, confidence)
    return float(ordered[lo]), float(ordered[hi])


def relative_half_width(samples: Sequence[float] | np.ndarray, confidence: float = 0.95) -> float:
    """Half the median's confidence interval width, relative to the median (inf if undefined)."""
    arr = np.asarray(samples, dtype=np.float64)
    if arr.size < 3:
        return math.inf
    lo, hi = median_ci(arr, confidence)
    median = float(np.median(arr))
    return math.inf if median <= 0 else (hi - lo) / 2.0 / median


def bootstrap_ci(
    samples: Sequence[float] | np.ndarray,
    percentiles: Sequence[float],
    confidence: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> dict[float, tuple[float, float]]:
    """Percentile-bootstrap interval for each requested percentile (seeded: reproducible)."""
    arr = np.asarray(samples, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("bootstrap_ci needs at least one sample")
    rng = np.random.default_rng(seed)
    # Chunk the resamples so memory stays ~16 MB even for 100k samples.
    chunk = max(1, min(resamples, 2_000_000 // max(arr.size, 1)))
    estimates: list[np.ndarray] = []
    done = 0
    while done < resamples:
        size = min(chunk, resamples - done)
        idx = rng.integers(0, arr.size, size=(size, arr.size))
        estimates.append(np.percentile(arr[idx], list(percentiles), axis=1).T)
        done += size
    table = np.concatenate(estimates, axis=0)
    alpha = (1.0 - confidence) / 2.0
    lows = np.quantile(table, alpha, axis=0)
    highs = np.quantile(table, 1.0 - alpha, axis=0)
    return {float(q): (float(lo), float(hi)) for q, lo, hi in zip(percentiles, lows, highs, strict=False)}


def summarize(
    samples: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> Summary:
    """Every statistic a report shows, with bootstrap intervals for mean and percentiles."""
    arr = np.asarray(samples, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("summarize needs at least one sample")
    p25, p50, p75, p90, p95, p99 = np.percentile(arr, [25, 50, 75, 90, 95, 99])
    intervals = bootstrap_ci(arr, PERCENTILES, confidence, resamples, seed)
    ci = {f"p{int(q)}": interval for q, interval in intervals.items()}
    return Summary(
        count=int(arr.size),
        min=float(arr.min()),
        mean=float(arr.mean()),
        std=float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
        p50=float(p50),
        p90=float(p90),
        p95=float(p95),
        p99=float(p99),
        max=float(arr.max()),
        iqr=float(p75 - p25),
        confidence=confidence,
        ci=ci,
    )
