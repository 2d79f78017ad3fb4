"""Uncertainty carried into cost, capacity and decisions across silicon.

Every figure here is a function of a measured one, so it inherits the measurement's uncertainty:

- **Cost per million with its interval.** Throughput is batch / median latency, a decreasing
  function of the median, so the median's confidence interval maps exactly onto a throughput
  interval, and cost = price / (3600 × throughput) × 10⁶ maps that onto a cost interval at the
  same confidence (a monotone map preserves coverage; no new approximation enters).
- **Capacity with its interval.** The server search reports the highest rate seen to pass; the
  truth lies between it and the lowest rate seen to fail (``lowest_failing``). At the reported
  rate, the confidence that the true p99 meets the SLO is the distribution-free one-sided bound of
  order statistics: with e of n latencies above the SLO, confidence = 1 − P(Binomial(n, 0.01) ≤ e)
  (Conover 1999, §3.2). It is 0.95 only from n = 299 with no sample above the SLO. Latencies
  under load are serially dependent (a queue builds and drains): n is then their effective n.
- **Serial dependence.** Samples in the order taken are worth fewer independent ones (issue 19):
  every posterior and bound here counts them as their effective n (``harness.measure.dependence``),
  so at the dependence real cells show (lag-1 ≈ 0.5) the verdict stays calibrated.
- **"A is cheaper than B with probability p".** A posterior probability from the Bayesian
  bootstrap (Rubin 1981, "The Bayesian bootstrap", Ann. Statist. 9:130): each run's latency
  distribution gets a flat Dirichlet posterior over its observed samples. We compute it *exactly*
  rather than by drawing weights: under Dirichlet(1, …, 1) weights on the sorted samples, the
  weight of the first k is Beta(k, n − k), so the posterior median is the k-th order statistic
  with probability P(Beta(k, n−k) ≥ ½) − P(Beta(k−1, n−k+1) ≥ ½), a binomial sum. p is then a
  sum over the two independent discrete posteriors — no Monte Carlo error, O(n log n) for any n.
  Why a posterior rather than a test: "with probability p" is the reading a buyer wants, and it
  is calibrated: over pairs from one distribution, p > 0.95 in about 5% of them (tested).
- **Break-even price.** The price per hour at which B would cost what A costs per million:
  price_A × throughput_B / throughput_A, with a credible interval from the same posteriors.

Why the median: the cost of serving back to back is set by the typical call, and the median has
the distribution-free intervals the rest of the tool uses. Samples within one process are not
independent (drift, thermal state): their effective n covers the dependence within the run, but
not the spread between processes; with ``--processes N`` the process-level spread is what an
honest comparison must use, so the verdict is only as good as the runs it is given.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from harness.errors import ConfigError
from harness.measure.dependence import quantile_effective_n
from harness.measure.stats import Interval, binomial_cdf
from harness.report.cost import usd_per_million

__all__ = [
    "CONFIDENCE",
    "CapacityEstimate",
    "Side",
    "break_even_price",
    "capacity_estimate",
    "cost_interval",
    "median_posterior",
    "probability_cheaper",
    "quantile_met_confidence",
    "sample_effective_n",
    "throughput_interval",
]

#: Level of every interval this module prints.
CONFIDENCE = 0.95

#: Draws from the exact posteriors for the break-even interval's ends: 20 000 keep the Monte
#: Carlo error of a 95% interval's ends near a tenth of a percent of its width.
DRAWS = 20_000

#: Draws for the probability when it cannot be summed exactly (process medians): 200 000 keep
#: its Monte Carlo standard error near 0.001.
MC_DRAWS = 200_000


def throughput_interval(per_s: float, median: Interval) -> Interval | None:
    """Interval of a throughput inversely proportional to a median, from the median's interval.

    ``per_s`` = k / median for some k (batch, or batch × tokens), so the ends are
    ``per_s × median / high`` and ``per_s × median / low``. None where the median's interval is
    not backed (or the figures are not positive): no cost interval is better than a false one.
    """
    low, high = median.low, median.high
    if not (median.backed and low is not None and high is not None and low > 0 and per_s > 0 and median.estimate > 0):
        return None
    scale = per_s * median.estimate
    return Interval(
        per_s, scale / high, scale / low, median.confidence, median.nominal, f"{median.method} of the median"
    )


def cost_interval(usd_per_hour: float, per_second: Interval | None) -> Interval | None:
    """USD per million units with its interval: the fast end of throughput gives the low cost."""
    if per_second is None or per_second.low is None or per_second.high is None or not per_second.low > 0:
        return None
    estimate, low, high = (
        usd_per_million(usd_per_hour, rate) for rate in (per_second.estimate, per_second.high, per_second.low)
    )
    if estimate is None or low is None or high is None:
        return None
    return Interval(
        estimate,
        low,
        high,
        per_second.confidence,
        per_second.nominal,
        per_second.method,
    )


def _binomial_cdf_all(n: int, p: float) -> np.ndarray:
    """P(Binomial(n, p) ≤ k) for k = 0..n, from the log pmf (stable for n in the millions)."""
    k = np.arange(n + 1, dtype=np.float64)
    log_choose = np.concatenate(([0.0], np.cumsum(np.log(n - k[1:] + 1) - np.log(k[1:]))))
    log_pmf = log_choose + k * math.log(p) + (n - k) * math.log1p(-p)
    pmf = np.exp(log_pmf - log_pmf.max())
    cdf = np.cumsum(pmf)
    result: np.ndarray = np.minimum(cdf / cdf[-1], 1.0)
    return result


def quantile_met_confidence(
    samples: Sequence[float] | np.ndarray, threshold: float, q: float = 0.99, *, independent: bool = False
) -> float:
    """Confidence that the true ``q`` quantile is at most ``threshold``: 1 − P(Binomial(n, 1−q) ≤ e).

    e is the number of samples above ``threshold``. This is the highest level at which the
    distribution-free one-sided upper bound of the quantile lies at or below ``threshold``; 0 when
    even an infinite level would not back it. Latencies under load are serially dependent (a queue
    builds and drains), so the samples, in the order taken, count as m = their effective n
    (``sample_effective_n`` at the threshold): 1 − P(Bin(m, 1−q) ≤ e·m/n), the cdf interpolated
    between its integers (exact at m = n; ``independent=True`` skips the estimate).
    """
    arr = np.asarray(samples, dtype=np.float64)
    n = arr.size
    if n == 0:
        return 0.0
    exceed = int(np.count_nonzero(arr > threshold))
    m = n if independent else max(1, min(n, math.floor(sample_effective_n(arr, threshold) + 1e-9)))
    if m == n:
        return max(0.0, 1.0 - binomial_cdf(exceed, n, 1.0 - q))
    scaled = exceed * m / n
    whole = math.floor(scaled)
    below, above = binomial_cdf(whole, m, 1.0 - q), binomial_cdf(whole + 1, m, 1.0 - q)
    return max(0.0, 1.0 - (below + (scaled - whole) * (above - below)))


@dataclass(frozen=True)
class CapacityEstimate:
    """The capacity search's answer with its bracket and how sure the SLO is met at it."""

    capacity_rps: float
    lowest_failing_rps: float | None
    met_confidence: float | None

    @property
    def bracket(self) -> tuple[float, float | None]:
        """The rates known to pass and to fail: the true capacity lies between them."""
        return self.capacity_rps, self.lowest_failing_rps


def capacity_estimate(
    capacity_rps: float,
    lowest_failing_rps: float | None,
    samples_at_capacity: Sequence[float] | np.ndarray | None,
    slo: float | None,
    q: float = 0.99,
) -> CapacityEstimate:
    """The capacity bracket, and the confidence that the ``q`` quantile meets ``slo`` at the capacity
    (same unit as the samples, in the order taken: their serial dependence lowers the confidence,
    ``quantile_met_confidence``)."""
    confidence = None
    if slo is not None and samples_at_capacity is not None and len(samples_at_capacity) > 0:
        confidence = quantile_met_confidence(samples_at_capacity, slo, q)
    return CapacityEstimate(capacity_rps, lowest_failing_rps, confidence)


def sample_effective_n(samples: Sequence[float] | np.ndarray, threshold: float | None = None) -> float:
    """What samples in the order taken are worth for the quantile at ``threshold`` (default: the
    median): ``harness.measure.dependence.quantile_effective_n``, at most n."""
    arr = np.asarray(samples, dtype=np.float64)
    if arr.size < 3:
        return float(arr.size)
    return quantile_effective_n(arr, float(np.median(arr)) if threshold is None else threshold)


def median_posterior(
    samples: Sequence[float] | np.ndarray, effective_n: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The exact Bayesian-bootstrap posterior of the median: (sorted values, their probabilities).

    The weighted median (smallest value whose cumulative weight reaches ½) is the k-th order
    statistic when W_{k-1} < ½ ≤ W_k, with W_k = Beta(k, n−k); P(W_k ≥ ½) = P(Bin(n−1, ½) ≤ k−1).
    Serially dependent samples are worth m = ``effective_n`` < n independent ones: the share of
    weight below the k-th then has the spread of m draws', so P(W_k ≥ ½) is read off Bin(m−1, ½)
    at (k−1)(m−1)/(n−1), the binomial's cdf interpolated between its integers (exact at m = n).
    """
    ordered = np.sort(np.asarray(samples, dtype=np.float64))
    n = ordered.size
    if n == 0:
        raise ValueError("median_posterior needs at least one sample")
    if n == 1:
        return ordered, np.ones(1)
    m = n if effective_n is None else max(2.0, min(float(n), effective_n))
    if m >= n:
        at_most = _binomial_cdf_all(n - 1, 0.5)[: n - 1]  # P(K ≤ k) = P(Bin(n−1, ½) ≤ k−1), k = 1..n
    else:
        whole = math.floor(m)
        grid = _binomial_cdf_all(whole - 1, 0.5)
        positions = np.arange(n - 1, dtype=np.float64) * (whole - 1) / (n - 1)
        at_most = np.interp(positions, np.arange(whole, dtype=np.float64), grid)
    cumulative = np.concatenate(([0.0], at_most, [1.0]))
    probs = np.diff(cumulative)
    return ordered, np.clip(probs, 0.0, None)


@dataclass(frozen=True)
class Side:
    """One candidate of a cost comparison: its latency samples, batch, price and throughput, and,
    when it was measured with ``--processes``, each process's median."""

    label: str
    samples_ns: Sequence[float] | np.ndarray
    per_s: float
    usd_per_hour: float
    process_medians_ns: Sequence[float] = ()

    @property
    def between_processes(self) -> bool:
        """True when the posterior rests on process medians (two or more)."""
        return len(self.process_medians_ns) >= 2

    @cached_property
    def effective_n(self) -> float:
        """What the samples, in the order taken, are worth for their median (``sample_effective_n``)."""
        return sample_effective_n(self.samples_ns)

    def reference_median(self) -> float:
        """The median the throughput is read against: the mean of the process medians, or the samples'."""
        if self.between_processes:
            return float(np.mean(np.asarray(self.process_medians_ns, dtype=np.float64)))
        return float(np.median(np.asarray(self.samples_ns, dtype=np.float64)))

    def __post_init__(self) -> None:
        if len(self.samples_ns) == 0:
            raise ConfigError(f"{self.label}: no samples to compare costs with")
        if not (self.per_s > 0 and self.usd_per_hour > 0):
            raise ConfigError(f"{self.label}: a cost comparison needs a positive throughput and price")

    @property
    def usd_per_million(self) -> float:
        """The point cost at the measured throughput (``harness.report.cost.usd_per_million``)."""
        cost = usd_per_million(self.usd_per_hour, self.per_s)
        assert cost is not None  # a positive throughput, checked above
        return cost

    def cost_per_median(self) -> float:
        """USD per million per nanosecond of median: cost = this × posterior median."""
        return self.usd_per_million / self.reference_median()

    def draws(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """Draws of the typical median from its posterior.

        With process medians: the mean's posterior under a flat prior on (mean, log sd), a scaled
        Student t with N − 1 degrees of freedom (so the credible interval is the t confidence
        interval ``harness.measure.between`` reports). Otherwise the exact Bayesian-bootstrap
        posterior of the samples' median.
        """
        if self.between_processes:
            medians = np.asarray(self.process_medians_ns, dtype=np.float64)
            scale = float(medians.std(ddof=1)) / np.sqrt(medians.size)
            drawn: np.ndarray = float(medians.mean()) + scale * rng.standard_t(medians.size - 1, size)
            positive: np.ndarray = np.maximum(drawn, np.finfo(np.float64).tiny)
            return positive
        return _draw(*median_posterior(self.samples_ns, self.effective_n), size, rng)


def probability_cheaper(a: Side, b: Side, seed: int = 0, draws: int = MC_DRAWS) -> float:
    """Posterior probability that A costs less per million than B.

    Exact (ties split evenly) when both rest on their samples' median; from seeded posterior
    draws (Monte Carlo error about 0.001) when either rests on process medians.
    """
    if a.between_processes or b.between_processes:
        rng = np.random.default_rng(seed)
        costs_a = a.draws(draws, rng) * a.cost_per_median()
        costs_b = b.draws(draws, rng) * b.cost_per_median()
        return float(np.mean(costs_a < costs_b) + 0.5 * np.mean(costs_a == costs_b))
    values_a, probs_a = median_posterior(a.samples_ns, a.effective_n)
    values_b, probs_b = median_posterior(b.samples_ns, b.effective_n)
    costs_a = values_a * a.cost_per_median()
    costs_b = values_b * b.cost_per_median()
    # P(cost_B > c) and P(cost_B = c) for every posterior value c of cost_A.
    cdf_b = np.concatenate(([0.0], np.cumsum(probs_b)))
    below_or_equal = cdf_b[np.searchsorted(costs_b, costs_a, side="right")]
    strictly_below = cdf_b[np.searchsorted(costs_b, costs_a, side="left")]
    greater = 1.0 - below_or_equal
    ties = below_or_equal - strictly_below
    return float(np.clip(np.sum(probs_a * (greater + 0.5 * ties)), 0.0, 1.0))


def _draw(values: np.ndarray, probs: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    cdf = np.cumsum(probs)
    idx = np.minimum(np.searchsorted(cdf, rng.random(size) * cdf[-1], side="right"), values.size - 1)
    drawn: np.ndarray = values[idx]
    return drawn


def break_even_price(a: Side, b: Side, confidence: float = CONFIDENCE, seed: int = 0) -> Interval:
    """The price per hour at which B would cost what A costs per million, with its credible interval.

    B matches A when price_B / throughput_B = price_A / throughput_A, i.e. at
    price_A × throughput_B / throughput_A; the interval takes both throughputs from their
    posteriors (seeded draws from the exact posteriors: reproducible).
    """
    estimate = a.usd_per_hour * b.per_s / a.per_s
    rng = np.random.default_rng(seed)
    median_a, median_b = a.reference_median(), b.reference_median()
    draws_a, draws_b = a.draws(DRAWS, rng), b.draws(DRAWS, rng)
    # throughput ∝ 1/median, so throughput_B/throughput_A scales by (m̂_B/m_B)·(m_A/m̂_A).
    ratios = estimate * (median_b / draws_b) * (draws_a / median_a)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(ratios, [alpha, 1.0 - alpha])
    return Interval(estimate, float(low), float(high), confidence, confidence, "Bayesian bootstrap")
