"""Variance between processes: what one process's interval cannot see.

A cell's interval describes noise within one process. A fresh process lands on other physical
pages, other cache colourings, another thread placement and another moment of the machine's
drift, and its median can differ from the last one's by more than either interval's width (±10%
and more was seen on this project's 2-core machine). pyperf's remedy, followed here: measure in
N fresh processes, take one value per process (its median) and let the spread of those values
carry the uncertainty. Their interval includes the within-process noise too, since each
process's median varies by it.

Why these statistics:

- **The estimate is the mean of the process medians, its interval Student's t on them** with
  N − 1 degrees of freedom. A process median of hundreds of samples is close to normal (sample
  quantiles are asymptotically normal), so the t interval is near exact from N = 2; the
  distribution-free order-statistic interval of a median would need N ≥ 6 processes for 95%,
  more than anyone runs. The t interval widens honestly as N shrinks (t₀.₉₇₅ = 12.7 at N = 2).
- **The spread** shown is (max − min) / mean of the process medians, and their standard
  deviation relative to the mean: what a reader compares with the ±x% of one process's interval.
- **Comparing two cells** uses the logs of the process medians: the ratio new/base is
  exp(mean log new − mean log base), with Welch's t interval (Welch–Satterthwaite degrees of
  freedom) because the two cells' between-process variances need not be equal. Logs make the
  interval of a ratio symmetric in "faster" and "slower".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

__all__ = ["ProcessSpread", "RatioInterval", "process_ratio", "spread_of", "t_quantile"]


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz; Numerical Recipes §6.4)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for numerator in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def _t_cdf(t: float, df: float) -> float:
    tail = 0.5 * _betainc(df / 2, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


@cache
def t_quantile(probability: float, df: float) -> float:
    """The ``probability`` quantile (½ or above) of Student's t with ``df`` degrees of freedom.

    By bisection on the CDF, 1 − ½·I_{df/(df+t²)}(df/2, ½) (no SciPy at run time; tested against it).
    """
    if not 0.5 <= probability < 1:
        raise ValueError(f"t_quantile takes a probability in [0.5, 1), got {probability}")
    if not df > 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    low, high = 0.0, 1.0
    while _t_cdf(high, df) < probability:
        high *= 2
    for _ in range(200):
        middle = (low + high) / 2
        if _t_cdf(middle, df) < probability:
            low = middle
        else:
            high = middle
        if high - low < 1e-12 * max(1.0, high):
            break
    return (low + high) / 2


@dataclass(frozen=True)
class ProcessSpread:
    """Each fresh process's median and what they say together (nanoseconds)."""

    medians_ns: tuple[float, ...]
    mean_ns: float
    std_ns: float
    low_ns: float | None
    high_ns: float | None
    confidence: float

    @property
    def count(self) -> int:
        return len(self.medians_ns)

    @property
    def rel_spread(self) -> float:
        """(max − min) / mean of the process medians."""
        return (max(self.medians_ns) - min(self.medians_ns)) / self.mean_ns if self.mean_ns > 0 else math.inf

    @property
    def rel_std(self) -> float:
        """Standard deviation between processes relative to their mean."""
        return self.std_ns / self.mean_ns if self.mean_ns > 0 else math.inf


def spread_of(samples_per_process: Sequence[Sequence[float] | np.ndarray], confidence: float = 0.95) -> ProcessSpread:
    """The spread of the process medians and the t interval of their mean (None for one process)."""
    medians = [float(np.median(np.asarray(s, dtype=np.float64))) for s in samples_per_process if len(s) > 0]
    if not medians:
        raise ValueError("spread_of needs at least one process with samples")
    values = np.asarray(medians)
    mean = float(values.mean())
    if values.size < 2:
        return ProcessSpread(tuple(medians), mean, 0.0, None, None, confidence)
    std = float(values.std(ddof=1))
    half = t_quantile(0.5 + confidence / 2, values.size - 1) * std / math.sqrt(values.size)
    return ProcessSpread(tuple(medians), mean, std, mean - half, mean + half, confidence)


@dataclass(frozen=True)
class RatioInterval:
    """new/base of the typical process median (geometric means), with Welch's interval."""

    estimate: float
    low: float
    high: float
    df: float


def process_ratio(
    base_medians: Sequence[float], new_medians: Sequence[float], confidence: float = 0.95
) -> RatioInterval | None:
    """Welch's interval of exp(mean log new − mean log base); None unless both have ≥ 2 processes."""
    base = np.log(np.asarray(base_medians, dtype=np.float64))
    new = np.log(np.asarray(new_medians, dtype=np.float64))
    if base.size < 2 or new.size < 2 or not (np.all(np.isfinite(base)) and np.all(np.isfinite(new))):
        return None
    diff = float(new.mean() - base.mean())
    var_b, var_n = float(base.var(ddof=1)) / base.size, float(new.var(ddof=1)) / new.size
    se = math.sqrt(var_b + var_n)
    if se == 0:
        return RatioInterval(math.exp(diff), math.exp(diff), math.exp(diff), math.inf)
    df = (var_b + var_n) ** 2 / (var_b**2 / (base.size - 1) + var_n**2 / (new.size - 1))
    half = t_quantile(0.5 + confidence / 2, df) * se
    return RatioInterval(math.exp(diff), math.exp(diff - half), math.exp(diff + half), df)
