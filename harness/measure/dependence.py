"""Serial dependence of a sample sequence, and the effective sample size it leaves.

Timed calls are not independent: a slow call tends to follow a slow call (a frequency step, a
neighbour's burst, an evicted cache), and requests under load share a queue. Every interval of a
percentile rests on how many samples fall below it, so what matters is the dependence of the
*indicator series* 1{xᵢ ≤ ξ_q}, in the order the samples were taken: its mean has variance
q(1 − q)·τ/n, with τ = 1 + 2 Σₖ ρ_k the integrated autocorrelation time, so the sample carries
the information of n/τ independent ones (the effective sample size).

τ comes from Geyer's initial monotone sequence estimator (Geyer 1992, "Practical Markov chain
Monte Carlo", Statist. Sci. 7:473, §3.3): the sums of adjacent autocovariances Γₘ = γ₂ₘ + γ₂ₘ₊₁
are positive and decreasing for a reversible chain, so the sum is cut at the first Γₘ ≤ 0 and
each Γₘ is capped by the one before. It needs no block length or bandwidth to be chosen, and it
is consistent and conservative (it tends to overestimate τ) for the stationary, mixing series
timings are; a noise gate (``GATE``) keeps independent samples from paying for noise. The
effective n is capped at n: negative correlation at lag one is noise, not a gift of extra
information (docs/methodology.md has the method's limits and the measured coverage).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.runfile.records import HIGH_DEPENDENCE_RATIO

__all__ = [
    "HIGH_DEPENDENCE_RATIO",
    "MIN_EFFECTIVE_N",
    "MIN_SERIES",
    "MIN_TAIL_EVENTS",
    "Dependence",
    "autocorrelation",
    "dependence",
    "effective_n",
    "integrated_time",
    "lag1_autocorrelation",
    "median_time",
    "quantile_effective_n",
]

#: Fewest effective samples for which any interval is made: below it the autocorrelations the
#: estimator rests on are too noisy to trust (its coverage falls below 0.9 on AR(1) series).
MIN_EFFECTIVE_N = 20


#: Fewest samples whose order is read for dependence: below it the lag-1 autocorrelation's noise
#: (sd 1/√n ≥ 0.18) hides all but extreme dependence and its false alarms would cost the
#: intervals of small independent samples; such samples are read as independent (they are
#: flagged as too few for their tails already).
MIN_SERIES = 30
#: Fewest samples on the rarer side of a tail quantile for its own indicator's dependence to count.
MIN_TAIL_EVENTS = 25
#: Autocorrelations stand for dependence only above white noise's spread: lag 1 must exceed
#: ``GATE``/√n and each later pair sum ``GATE``·√(2/n), or the sum stops. Without it, Geyer's sum
#: of noise alone widens independent samples' intervals by 7% on average, and 26% for a p90 at
#: n = 60; with it, by at most 7%, and coverage stays above 0.9 down to ρ = 0.3 at n = 60.
GATE = 1.5


#: Up to this many lags, direct dot products beat the FFT (which costs ~10 ms at 100 000 samples).
_DIRECT_LAGS = 64


@dataclass(frozen=True)
class Dependence:
    """What the order of a sample sequence says about its information: lag-1 autocorrelation of
    its ranks and its effective size for a quantile's interval."""

    n: int
    lag1: float
    effective_n: float

    @property
    def high(self) -> bool:
        """True when the sequence carries less than half the information of independent samples."""
        return self.effective_n < HIGH_DEPENDENCE_RATIO * self.n


def autocorrelation(series: np.ndarray, max_lag: int) -> np.ndarray:
    """Sample autocorrelations ρ₀ … ρ_max_lag (biased estimator, divided by n): direct sums for the
    few lags most series need (O(n·lags)), the FFT beyond (O(n log n)).

    A constant series has no dependence to estimate: its ρₖ are 0 beyond lag 0.
    """
    x = np.asarray(series, dtype=np.float64)
    n = x.size
    out = np.zeros(max_lag + 1)
    if n == 0:
        return out
    out[0] = 1.0
    centred = x - x.mean()
    var = float(np.einsum("i,i->", centred, centred))
    if n < 2 or var <= 0:
        return out
    if max_lag <= _DIRECT_LAGS:
        for k in range(1, min(max_lag, n - 1) + 1):
            # einsum, not ``@``: a BLAS dot starts its threads per call, 600× slower on a busy host.
            out[k] = float(np.einsum("i,i->", centred[:-k], centred[k:])) / var
        return out
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(centred, size)
    acov = np.fft.irfft(spectrum * np.conj(spectrum), size)[: max_lag + 1]
    out[: acov.size] = acov / var
    return out


def integrated_time(series: np.ndarray, gate: float = GATE) -> float:
    """τ = 1 + 2 Σ ρₖ by Geyer's initial monotone sequence estimator; at least 1.

    Γₘ = ρ₂ₘ + ρ₂ₘ₊₁ is summed while positive (and, past Γ₀, above ``gate`` noise spreads), each
    capped by the smallest before it; τ = 2 ΣΓₘ − 1. A lag-1 autocorrelation within ``gate``/√n of
    zero reads as independence (τ = 1).
    """
    x = np.asarray(series, dtype=np.float64)
    n = x.size
    if n < MIN_SERIES:
        return 1.0
    max_lag = n - 1
    # Most series cut off in a few lags: grow the window until the pair sums turn non-positive.
    window = min(max_lag, 64)
    while True:
        rho = autocorrelation(x, window)
        pairs = rho[: (window + 1) // 2 * 2].reshape(-1, 2).sum(axis=1)
        nonpositive = np.flatnonzero(pairs <= 0)
        if nonpositive.size or window >= max_lag:
            break
        window = min(max_lag, window * 4)
    kept = pairs[: nonpositive[0]] if nonpositive.size else pairs
    if gate > 0 and rho[1] <= gate / math.sqrt(n):
        return 1.0
    if gate > 0 and kept.size > 1:
        # Past the first pair, keep a pair only while it stands above white noise's spread.
        small = np.flatnonzero(kept[1:] <= gate * math.sqrt(2.0 / n))
        if small.size:
            kept = kept[: small[0] + 1]
    if kept.size == 0:
        return 1.0
    monotone = np.minimum.accumulate(kept)
    return max(1.0, 2.0 * float(monotone.sum()) - 1.0)


def effective_n(series: Sequence[float] | np.ndarray) -> float:
    """n / τ for the series in the order taken, at most n."""
    x = np.asarray(series, dtype=np.float64)
    return x.size / integrated_time(x) if x.size else 0.0


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.arange(x.size, dtype=np.float64)
    return ranks


def lag1_autocorrelation(samples: Sequence[float] | np.ndarray) -> float:
    """Lag-1 autocorrelation of the samples' ranks (Spearman's, serially): unmoved by outliers,
    and the same whichever monotone scale (ns, log) the samples are read on. nan below 3 samples."""
    x = np.asarray(samples, dtype=np.float64)
    if x.size < 3:
        return math.nan
    return float(autocorrelation(_ranks(x), 1)[1])


def median_time(samples: Sequence[float] | np.ndarray) -> float:
    """τ of the median's indicator series 1{xᵢ ≤ median}."""
    x = np.asarray(samples, dtype=np.float64)
    return integrated_time((x <= float(np.median(x))).astype(np.float64)) if x.size else 1.0


def quantile_effective_n(
    samples: Sequence[float] | np.ndarray, threshold: float, median_tau: float | None = None
) -> float:
    """What an order-statistic interval of the quantile at ``threshold`` may count on: n / τ, τ the
    larger of the indicator series' 1{xᵢ ≤ threshold} and 1{xᵢ ≤ median}.

    A tail's indicator is mostly ones, so its autocorrelations are noisy and the dependence is
    easily missed; the median's indicator carries the most signal, and under the dependence
    timings show (a Gaussian copula: slow follows slow) it is the most correlated of all, so the
    larger τ keeps the tails' intervals honest (p90 coverage at ρ = 0.5, n = 60: 0.91 with it,
    0.86 without). A tail with fewer than ``MIN_TAIL_EVENTS`` samples on its rarer side has no
    autocorrelation worth reading (its noise alone would withhold 1% of independent p90s at
    n = 60): the median's τ stands for it.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        return 0.0
    tau = median_time(x) if median_tau is None else median_tau
    below = x <= threshold
    events = int(np.count_nonzero(below))
    if min(events, x.size - events) >= MIN_TAIL_EVENTS:
        tau = max(tau, integrated_time(below.astype(np.float64)))
    return x.size / tau


def dependence(samples: Sequence[float] | np.ndarray) -> Dependence:
    """The sequence's lag-1 autocorrelation and the effective n of its median's interval."""
    x = np.asarray(samples, dtype=np.float64)
    if x.size < 3:
        return Dependence(int(x.size), math.nan, float(x.size))
    return Dependence(int(x.size), lag1_autocorrelation(x), quantile_effective_n(x, float(np.median(x))))
