"""Open-loop arrival schedules: when each request is due, decided before the run starts.

A Poisson process (exponential inter-arrival gaps) is the standard model of independent users
and what MLPerf's Server scenario and vLLM's ``--request-rate`` use. The schedule is fixed in
advance and never waits for the system, which is what makes an open loop honest: a slow response
cannot delay the next arrival, so queueing shows up in the latencies (no coordinated omission).

Two refinements, both because a probe is short:

- The ``count`` arrivals are placed as a Poisson process *conditioned* on ``count`` arrivals in
  ``count / rate`` seconds: exponential gaps E_1..E_{n+1}, arrival k at (E_1 + … + E_k) /
  (E_1 + … + E_{n+1}) × n / rate, which are distributed as sorted uniform points on that window
  (Ross, *Stochastic Processes*, 2nd ed., thm. 2.3.1). The gaps are still exponential in
  distribution, but the load offered over the probe is exactly ``rate``: a 50-request probe cannot
  test a much burstier or calmer load than it names just by the luck of its draws.
- The draws come from one seed at every rate ("common random numbers"): probes at different rates
  see the same burst pattern rescaled, so the capacity search's pass/fail is close to monotone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

from harness.errors import ConfigError

__all__ = ["DEFAULT_SEED", "poisson_schedule"]

DEFAULT_SEED = 20240501


def poisson_schedule(rate_per_s: float, count: int, seed: int = DEFAULT_SEED) -> np.ndarray:
    """Due times in seconds (ascending, within ``count / rate_per_s``) of ``count`` Poisson arrivals."""
    if not rate_per_s > 0:
        raise ConfigError(f"arrival rate must be positive, got {rate_per_s!r}")
    if count < 1:
        raise ConfigError(f"a schedule needs at least one request, got {count}")
    import numpy as np

    sums = np.cumsum(np.random.default_rng(seed).standard_exponential(count + 1))
    times: np.ndarray = sums[:-1] / sums[-1] * (count / rate_per_s)
    return times
