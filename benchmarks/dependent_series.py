"""Serially dependent latency series with known quantiles, for the coverage benchmark and tests.

A timed call's latency depends on the calls before it (a frequency step, a neighbour's burst, an
evicted cache), so these draw whole sequences, many trials at once (rows):

- AR(1) on the normal scale, mapped through a Gaussian copula onto a lognormal or a Weibull
  marginal: ρ is the lag-1 autocorrelation of the normal (for the lognormal, of the log latency),
  and the quantiles are the marginal's own.
- A regime switch: a two-state Markov chain (a fast and a slow state, each lasting about 50
  calls) choosing between two lognormals; the quantiles are the stationary mixture's.
- A slow drift: independent lognormal noise on a level that drifts through one sine period per
  sequence at a random phase; the quantiles are the mixture's over the phase.

Trials are seeded; truths without a closed form are read once from a pool of 2 million draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from statistics import NormalDist

import numpy as np
from scipy.special import ndtr

__all__ = ["SERIES", "Series", "ar1_normal", "ar1_series"]

_z = NormalDist().inv_cdf
#: Spread of the log latency of a quiet CPU cell (issue 10's figure).
SIGMA = 0.25
#: Weibull shape for a right-skewed latency with a lighter-than-lognormal tail.
WEIBULL_SHAPE = 1.5


def ar1_normal(rng: np.random.Generator, trials: int, n: int, rho: float) -> np.ndarray:
    """``trials`` stationary AR(1) sequences of length n with N(0, 1) marginals and lag-1 ρ."""
    e = rng.standard_normal((trials, n))
    x = np.empty((trials, n))
    x[:, 0] = e[:, 0]
    scale = math.sqrt(1.0 - rho * rho)
    for i in range(1, n):
        x[:, i] = rho * x[:, i - 1] + scale * e[:, i]
    return x


Draw = Callable[[np.random.Generator, int, int], np.ndarray]


@dataclass(frozen=True)
class Series:
    """A family of sequences: how to draw ``trials`` of length n, and the true q quantile."""

    name: str
    draw: Draw
    quantile: Callable[[float], float]


def _lognormal(z: np.ndarray) -> np.ndarray:
    result: np.ndarray = np.exp(SIGMA * z)
    return result


def _weibull(z: np.ndarray) -> np.ndarray:
    survival = np.clip(ndtr(-z), 1e-300, 1.0)  # 1 − Φ(z), without cancelling in the tail
    result: np.ndarray = (-np.log(survival)) ** (1.0 / WEIBULL_SHAPE)
    return result


def ar1_series(marginal: str, rho: float) -> Series:
    """AR(1) at ρ through a Gaussian copula onto the "lognormal" or "weibull" marginal."""
    if marginal == "lognormal":
        return Series(
            f"AR(1) ρ={rho:g} lognormal",
            lambda rng, trials, n: _lognormal(ar1_normal(rng, trials, n, rho)),
            lambda q: math.exp(SIGMA * _z(q)),
        )
    if marginal == "weibull":
        return Series(
            f"AR(1) ρ={rho:g} Weibull k={WEIBULL_SHAPE:g}",
            lambda rng, trials, n: _weibull(ar1_normal(rng, trials, n, rho)),
            lambda q: (-math.log1p(-q)) ** (1.0 / WEIBULL_SHAPE),
        )
    raise ValueError(f"unknown marginal {marginal!r}; use lognormal or weibull")


#: Regime switch: P(stay) per call, and the slow regime's level (log scale).
STAY, SLOW_LEVEL = 0.98, 0.4


def _regime(rng: np.random.Generator, trials: int, n: int) -> np.ndarray:
    state = np.empty((trials, n), dtype=bool)
    state[:, 0] = rng.random(trials) < 0.5  # the stationary share of each regime is ½
    flips = rng.random((trials, n)) > STAY
    for i in range(1, n):
        state[:, i] = state[:, i - 1] ^ flips[:, i]
    result: np.ndarray = np.exp(SIGMA * rng.standard_normal((trials, n)) + SLOW_LEVEL * state)
    return result


#: Drift: amplitude of the level's sine on the log scale, one period per sequence.
DRIFT = 0.3


def _drift(rng: np.random.Generator, trials: int, n: int) -> np.ndarray:
    phase = rng.random((trials, 1)) * 2 * math.pi
    level = DRIFT * np.sin(phase + 2 * math.pi * np.arange(n) / n)
    result: np.ndarray = np.exp(level + SIGMA * rng.standard_normal((trials, n)))
    return result


@cache
def _pool(name: str) -> np.ndarray:
    """The marginal of a series without a closed form, from 2 million draws (seeded)."""
    rng = np.random.default_rng(12345)
    draw = _regime if name == "regime" else _drift
    return np.sort(draw(rng, 2000, 1000).ravel())


def _pooled(name: str) -> Callable[[float], float]:
    return lambda q: float(np.quantile(_pool(name), q))


SERIES: tuple[Series, ...] = (
    *(ar1_series(m, rho) for m in ("lognormal", "weibull") for rho in (0.0, 0.3, 0.5, 0.8, 0.9)),
    Series("regime switch (mean stay 50)", _regime, _pooled("regime")),
    Series("slow drift (one period)", _drift, _pooled("drift")),
)
