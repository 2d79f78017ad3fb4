"""Whether a cell's percentiles can be trusted, and if not, why: every cell carries this verdict.

Two rules, both about the highest percentile a cell reports (the p99):

- **Enough samples.** A p99 is backed when its distribution-free two-sided 95% interval exists:
  both 0.99ⁿ and 0.01ⁿ at most 2.5%, so n >= 368 (Conover 1999, §3.2; ``stats.min_samples``).
  Below that the p99 is little more than the maximum, and no interval can say how far the true
  p99 lies beyond it. (MLPerf's early-stopping rule asks for 662 queries to bound its p99 at 99%
  confidence; LoadGen cells carry LoadGen's own verdict as well.)
- **A minimum duration.** A measurement shorter than a second samples too few periods of the
  host's background activity (timer ticks, frequency changes, other processes) to say anything
  about the tail, and an open-loop run shorter than that has not let its queue reach a steady state.

Counts are per metric (TTFT and end-to-end have one sample per request, ITL one per token gap),
so a generation cell can be valid for its ITL and not for its TTFT; the verdict names which.
"""

from __future__ import annotations

from collections.abc import Mapping

from harness.runfile.records import Validity
from harness.scenarios.specs import MIN_SAMPLES_FOR_P99

__all__ = ["MIN_DURATION_S", "MIN_SAMPLES_FOR_P99", "validity"]

#: Shortest measurement, in seconds, whose tail percentiles we call valid.
MIN_DURATION_S = 1.0


def validity(
    samples: Mapping[str, int],
    duration_s: float,
    *,
    min_samples: int = MIN_SAMPLES_FOR_P99,
    min_duration_s: float = MIN_DURATION_S,
    extra_reasons: list[str] | None = None,
) -> Validity:
    """The verdict for a cell whose p99s rest on ``samples`` (metric -> count) over ``duration_s``."""
    reasons = []
    for metric, count in samples.items():
        if count < min_samples:
            reasons.append(f"{metric}: {count} samples; a p99 interval needs at least {min_samples}")
    if duration_s < min_duration_s:
        reasons.append(f"measured for {duration_s:.3g} s; tail percentiles need at least {min_duration_s:g} s")
    reasons.extend(extra_reasons or [])
    return Validity(
        valid=not reasons,
        percentile=99,
        min_samples=min_samples,
        min_duration_s=min_duration_s,
        samples=dict(samples),
        duration_s=duration_s,
        reasons=tuple(reasons),
    )
