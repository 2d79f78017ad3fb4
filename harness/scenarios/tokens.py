"""Per-request metrics of generation and serving, from token timelines, with the field's definitions.

A request's timeline is the time it was due (its scheduled send time in an open-loop run, its
start in a closed loop) and the completion time of each output token. From it, as vLLM's
``benchmark_serving``, NVIDIA GenAI-Perf/AIPerf and MLPerf's LLM rules define them:

- TTFT, time to first token: first token − due time (so it includes queueing and the prefill);
- E2E, end-to-end latency: last token − due time;
- TPOT, time per output token: (E2E − TTFT) / (output tokens − 1); undefined for one token;
- ITL, inter-token latency: each gap between consecutive tokens (output tokens − 1 per request);
- goodput: requests per second that met every given target (TTFT, TPOT, E2E).

A non-generative request is the one-token case: TTFT = E2E, no TPOT and no ITL.
Everything is in integer nanoseconds, as the sampler's clock gives them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from harness.runfile.records import TokenMetrics

__all__ = [
    "SLO",
    "RequestTimeline",
    "by_send_time",
    "goodput",
    "inter_token_latencies",
    "meets_slo",
    "timeline_summaries",
]


@dataclass(frozen=True)
class RequestTimeline:
    """When a request was due and when each of its output tokens was complete (clock ns)."""

    due_ns: int
    token_ns: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.token_ns:
            raise ValueError("a request timeline needs at least one token time")
        if any(later < earlier for earlier, later in pairwise(self.token_ns)):
            raise ValueError("token times must not decrease")

    @property
    def output_tokens(self) -> int:
        return len(self.token_ns)

    @property
    def ttft_ns(self) -> int:
        return self.token_ns[0] - self.due_ns

    @property
    def e2e_ns(self) -> int:
        return self.token_ns[-1] - self.due_ns

    @property
    def tpot_ns(self) -> float | None:
        """Mean time per output token after the first; None when only one token was produced."""
        if self.output_tokens < 2:
            return None
        return (self.e2e_ns - self.ttft_ns) / (self.output_tokens - 1)

    @property
    def itl_ns(self) -> list[int]:
        return [later - earlier for earlier, later in pairwise(self.token_ns)]

    def offsets_ns(self) -> list[int]:
        """Token times relative to the due time: what a run file stores."""
        return [t - self.due_ns for t in self.token_ns]


@dataclass(frozen=True)
class SLO:
    """Service-level targets in nanoseconds; None means no target on that metric.

    ``e2e_ns`` bounds the end-to-end latency (``--slo-p99``), ``ttft_ns`` and ``tpot_ns`` bound the
    generation metrics (``--slo-ttft``, ``--slo-tpot``). A run meets the SLO when the 99th
    percentile of each targeted metric is within its target; a request counts toward goodput when
    its own values are all within their targets.
    """

    e2e_ns: float | None = None
    ttft_ns: float | None = None
    tpot_ns: float | None = None

    @property
    def empty(self) -> bool:
        return self.e2e_ns is None and self.ttft_ns is None and self.tpot_ns is None

    def request_ok(self, timeline: RequestTimeline) -> bool:
        """Whether one request met every target (a one-token request has no TPOT to miss)."""
        if self.e2e_ns is not None and timeline.e2e_ns > self.e2e_ns:
            return False
        if self.ttft_ns is not None and timeline.ttft_ns > self.ttft_ns:
            return False
        tpot = timeline.tpot_ns
        return not (self.tpot_ns is not None and tpot is not None and tpot > self.tpot_ns)

    def to_dict(self) -> dict[str, float | None]:
        return {"e2e_p99_ns": self.e2e_ns, "ttft_p99_ns": self.ttft_ns, "tpot_p99_ns": self.tpot_ns}


def inter_token_latencies(timelines: Iterable[RequestTimeline]) -> list[int]:
    """Every inter-token gap of every request, pooled (the ITL distribution)."""
    gaps: list[int] = []
    for timeline in timelines:
        gaps.extend(timeline.itl_ns)
    return gaps


def _percentile(values: Sequence[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def meets_slo(timelines: Sequence[RequestTimeline], slo: SLO, dropped: int = 0, percentile: float = 99) -> bool:
    """Whether the p99 (or ``percentile``) of each targeted metric is within target.

    Any dropped request fails it.
    """
    if dropped or not timelines:
        return False
    if slo.e2e_ns is not None and _percentile([t.e2e_ns for t in timelines], percentile) > slo.e2e_ns:
        return False
    if slo.ttft_ns is not None and _percentile([t.ttft_ns for t in timelines], percentile) > slo.ttft_ns:
        return False
    tpots = [t.tpot_ns for t in timelines if t.tpot_ns is not None]
    return not (slo.tpot_ns is not None and tpots and _percentile(tpots, percentile) > slo.tpot_ns)


def goodput(timelines: Sequence[RequestTimeline], slo: SLO, duration_ns: int) -> float:
    """Requests per second that met every target, over ``duration_ns`` of wall time."""
    if duration_ns <= 0:
        raise ValueError(f"duration must be positive, got {duration_ns} ns")
    good = sum(1 for timeline in timelines if slo.request_ok(timeline))
    return good / (duration_ns / 1e9)


def by_send_time(timelines: Iterable[RequestTimeline]) -> list[RequestTimeline]:
    """The timelines in the order their requests were due: the order in which their latencies are
    serially dependent (a queue builds and drains), which their intervals' effective n reads."""
    return sorted(timelines, key=lambda t: t.due_ns)


def timeline_summaries(
    timelines: Sequence[RequestTimeline], confidence: float = 0.95, keep_timelines: bool = True
) -> TokenMetrics:
    """Summaries (ns) of TTFT, TPOT, ITL and end-to-end over ``timelines``, and the timelines.

    TPOT and ITL are None when no request produced two tokens.
    """
    from harness.measure.stats import summarize

    timelines = by_send_time(timelines)
    tpots = [t.tpot_ns for t in timelines if t.tpot_ns is not None]
    itls = inter_token_latencies(timelines)
    return TokenMetrics(
        ttft_ns=summarize([t.ttft_ns for t in timelines], confidence) if timelines else None,
        tpot_ns=summarize(tpots, confidence) if tpots else None,
        itl_ns=summarize(itls, confidence) if itls else None,
        e2e_ns=summarize([t.e2e_ns for t in timelines], confidence) if timelines else None,
        timelines_ns=tuple(tuple(t.offsets_ns()) for t in timelines) if keep_timelines else (),
    )
