"""Caveats a reader must see next to a forward-pass cell's numbers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.scenarios.validity import MIN_SAMPLES_FOR_P99

if TYPE_CHECKING:
    from harness.measure.sampler import Sampling, SamplingPolicy
    from harness.measure.stats import Summary

__all__ = ["DRIFT", "HIGH_DISPERSION", "warnings_for"]

#: IQR over median above which a distribution is called highly dispersed.
HIGH_DISPERSION = 0.2
#: Relative drift of the median between the first and last third that counts as no steady state.
DRIFT = 0.05


def warnings_for(sampling: Sampling, summary: Summary, policy: SamplingPolicy) -> list[str]:
    """Caveats a reader must see next to the numbers."""
    import numpy as np

    found: list[str] = []
    if sampling.stop_reason != "converged":
        reached = sampling.rel_ci_half_width
        found.append(
            f"stopped by {sampling.stop_reason.replace('_', ' ')} before the median's CI reached "
            f"±{policy.target_rel_ci:.1%} (reached ±{reached:.1%})"
        )
    if summary.count < MIN_SAMPLES_FOR_P99:
        found.append(f"only {summary.count} samples: p99 needs at least {MIN_SAMPLES_FOR_P99}")
    if summary.p50 > 0 and summary.iqr / summary.p50 > HIGH_DISPERSION:
        found.append(f"high dispersion: IQR is {summary.iqr / summary.p50:.0%} of the median")
    samples = np.asarray(sampling.samples_ns, dtype=np.float64)
    if samples.size >= 30:
        third = samples.size // 3
        first, last = float(np.median(samples[:third])), float(np.median(samples[-third:]))
        if first > 0 and abs(last - first) / first > DRIFT:
            found.append(f"no steady state: the median moved {last / first - 1:+.0%} from the first to the last third")
    return found
