"""Caveats a reader must see next to a forward-pass cell's numbers.

A withheld p99 is not among them: the summary's interval says so itself (``Interval.note``), and a
report gathers those into one line rather than a note per cell.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.measure.sampler import Sampling, SamplingPolicy
    from harness.measure.stats import Summary

__all__ = ["DRIFT", "HIGH_DISPERSION", "stop_warning", "warnings_for"]

#: IQR over median above which a distribution is called highly dispersed.
HIGH_DISPERSION = 0.2
#: Relative drift of the median between the first and last third that counts as no steady state.
DRIFT = 0.05


def stop_warning(
    stop_reason: str, reached: Mapping[str, float] | None, policy: SamplingPolicy, what: str = ""
) -> str | None:
    """Which bound stopped sampling before which target: "stopped by time budget before the
    median's CI reached ±1.0% (reached ±1.4%) and p99's CI reached ±5.0% (no interval yet)"."""
    if stop_reason == "converged":
        return None
    reached = reached or {}
    short = []
    for name, target in policy.targets.items():
        width = reached.get(name, math.inf)
        if width > target:
            got = "no interval yet" if width == math.inf else f"reached ±{width:.1%}"
            subject = "the median" if name == "p50" else name
            short.append(f"{subject}{' ' + what if what else ''}'s CI reached ±{target:.1%} ({got})")
    if not short:
        return None
    return f"stopped by {stop_reason.replace('_', ' ')} before {' and '.join(short)}"


def warnings_for(sampling: Sampling, summary: Summary, policy: SamplingPolicy) -> list[str]:
    """Caveats a reader must see next to the numbers."""
    import numpy as np

    found: list[str] = []
    stopped = stop_warning(sampling.stop_reason, sampling.reached or {"p50": sampling.rel_ci_half_width}, policy)
    if stopped:
        found.append(stopped)
    if summary.p50 > 0 and summary.iqr / summary.p50 > HIGH_DISPERSION:
        found.append(f"high dispersion: IQR is {summary.iqr / summary.p50:.0%} of the median")
    samples = np.asarray(sampling.samples_ns, dtype=np.float64)
    if samples.size >= 30:
        third = samples.size // 3
        first, last = float(np.median(samples[:third])), float(np.median(samples[-third:]))
        if first > 0 and abs(last - first) / first > DRIFT:
            found.append(f"no steady state: the median moved {last / first - 1:+.0%} from the first to the last third")
    return found
