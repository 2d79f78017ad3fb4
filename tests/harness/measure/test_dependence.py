"""The dependence estimates against values known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.dependent_series import ar1_normal
from harness.measure.dependence import (
    MIN_EFFECTIVE_N,
    autocorrelation,
    dependence,
    effective_n,
    integrated_time,
    lag1_autocorrelation,
    quantile_effective_n,
)
from harness.measure.stats import effective_ranks, order_statistic_ranks, quantile_interval, summarize


def test_autocorrelation_matches_the_direct_sum() -> None:
    x = np.random.default_rng(0).standard_normal(257)
    c = x - x.mean()
    direct = [float(c[: c.size - k] @ c[k:] / (c @ c)) for k in range(6)]
    assert autocorrelation(x, 5) == pytest.approx(direct, abs=1e-12)


def test_a_constant_series_has_no_dependence() -> None:
    assert integrated_time(np.ones(100)) == 1.0
    assert effective_n(np.ones(100)) == 100


def test_independent_samples_keep_their_count() -> None:
    rng = np.random.default_rng(1)
    kept = [effective_n(rng.standard_normal(300)) for _ in range(200)]
    # The noise gate reads lag-1 autocorrelations within 1.5/√n of zero as independence.
    assert np.mean(np.equal(kept, 300)) > 0.9
    assert min(kept) > 200


@pytest.mark.parametrize("rho", [0.3, 0.5, 0.8])
def test_the_effective_n_of_an_ar1_is_n_over_its_integrated_time(rho: float) -> None:
    # AR(1): ρ_k = ρ^k, so τ = (1 + ρ)/(1 − ρ).
    x = ar1_normal(np.random.default_rng(2), 1, 40_000, rho)[0]
    assert integrated_time(x) == pytest.approx((1 + rho) / (1 - rho), rel=0.12)


@pytest.mark.parametrize("rho", [0.3, 0.5, 0.8])
def test_the_median_indicator_has_the_arcsine_autocorrelations(rho: float) -> None:
    # For a Gaussian pair with correlation r, P(both ≤ median) = ¼ + arcsin(r)/(2π), so the median's
    # indicator has ρ_k = (2/π)·arcsin(ρ^k) (Sheppard's formula).
    x = ar1_normal(np.random.default_rng(3), 1, 40_000, rho)[0]
    tau = 1 + 2 * sum(2 / math.pi * math.asin(rho**k) for k in range(1, 200))
    assert x.size / quantile_effective_n(x, float(np.median(x))) == pytest.approx(tau, rel=0.12)


def test_lag1_of_the_ranks_is_spearmans_for_a_gaussian_pair() -> None:
    rho = 0.5
    x = np.exp(ar1_normal(np.random.default_rng(4), 1, 40_000, rho)[0])  # any monotone scale
    assert lag1_autocorrelation(x) == pytest.approx(6 / math.pi * math.asin(rho / 2), abs=0.02)
    assert math.isnan(lag1_autocorrelation([1.0, 2.0]))


def test_dependence_summarises_a_sequence() -> None:
    x = ar1_normal(np.random.default_rng(5), 1, 3000, 0.6)[0]
    found = dependence(x)
    assert found.n == 3000 and found.high
    assert 0.4 < found.lag1 < 0.7 and found.effective_n < 1500


def test_independent_ranks_are_the_binomial_ones_exactly() -> None:
    for n in (10, 60, 301, 1000):
        assert effective_ranks(n, n, 0.5, 0.95) == order_statistic_ranks(n, 0.5, 0.95)


def test_dependent_ranks_are_scaled_out_to_the_n_held() -> None:
    m_ranks = order_statistic_ranks(100, 0.5, 0.95)
    assert m_ranks is not None
    ranks = effective_ranks(300, 100.0, 0.5, 0.95)
    assert ranks is not None
    # (r−1)/300 ≤ (r_m−1)/100 and s/300 ≥ s_m/100: the count below each end is as unlikely as at m.
    assert (ranks[0] - 1) / 300 <= (m_ranks[0] - 1) / 100 and ranks[1] / 300 >= m_ranks[1] / 100
    assert effective_ranks(300, MIN_EFFECTIVE_N - 1, 0.5, 0.95) is None


def test_strongly_dependent_samples_withhold_the_interval_and_say_why() -> None:
    x = np.exp(0.25 * ar1_normal(np.random.default_rng(6), 1, 60, 0.97)[0])
    iv = quantile_interval(x, 0.5)
    assert iv.method == "withheld" and iv.low is None and iv.high is None
    assert iv.effective_n is not None and iv.effective_n < MIN_EFFECTIVE_N
    assert iv.note is not None and "serially dependent" in iv.note


def test_a_summary_records_the_dependence_and_warns_when_it_is_high() -> None:
    x = np.exp(0.25 * ar1_normal(np.random.default_rng(7), 1, 600, 0.6)[0])
    summary = summarize(x)
    assert summary.lag1_autocorrelation is not None and 0.4 < summary.lag1_autocorrelation < 0.7
    assert summary.effective_n is not None and summary.effective_n < 300
    assert summary.dependence_warning is not None and "effective n" in summary.dependence_warning
    # A dependent median's interval is wider than the independent reading of the same samples.
    wide, narrow = summary.intervals["p50"], quantile_interval(x, 0.5, effective_n=600)
    assert wide.low is not None and wide.high is not None and narrow.low is not None and narrow.high is not None
    assert wide.high - wide.low > 1.3 * (narrow.high - narrow.low)
    quiet = summarize(np.random.default_rng(8).lognormal(0.0, 0.25, 600))
    assert quiet.dependence_warning is None
