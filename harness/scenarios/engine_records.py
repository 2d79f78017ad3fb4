"""What a run file keeps of a load on a serving engine: every request, and the run's figures.

A request is kept whole (its schedule, every output event's time, the server's token counts, its
failure), so each figure of the cell can be recomputed from the file: TTFT is the first event's
time, TPOT (last event - first event) / (output tokens - 1) with the server's count, every ITL a
difference of consecutive event times. Times are integer nanoseconds: a request's ``scheduled_ns``
from the run's time zero, and its other times from its own scheduled time (so they are latencies).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from backends.engine.records import RequestOutcome
from harness.measure.stats import Summary, summarize
from harness.scenarios.engine_load import EngineLoadRun
from harness.scenarios.tokens import SLO
from workloads.request_sets import length_report

__all__ = ["EngineLoadRecord", "EngineRequestRecord", "load_record", "request_record"]


@dataclass(frozen=True)
class EngineRequestRecord:
    """One request: when it was due and sent, when each output event was read, what the server said."""

    id: str
    api: Literal["completions", "chat"]
    scheduled_ns: int
    sent_ns: int
    token_ns: tuple[int, ...]
    end_ns: int
    input_tokens: int | None
    output_tokens: int | None
    expected_input_tokens: int | None
    max_tokens: int | None
    finish_reason: str | None
    failure: str | None = None
    failure_detail: str | None = None
    http_status: int | None = None

    @property
    def ttft_ns(self) -> int | None:
        return self.token_ns[0] if self.token_ns else None

    @property
    def tpot_ns(self) -> float | None:
        """(last event - first event) / (server's output tokens - 1); None below two tokens."""
        if self.output_tokens is None or self.output_tokens < 2 or not self.token_ns:
            return None
        return (self.token_ns[-1] - self.token_ns[0]) / (self.output_tokens - 1)


@dataclass(frozen=True)
class EngineLoadRecord:
    """One load run on an engine (a closed loop, or one open-loop probe) and its figures.

    ``failures`` counts failed requests by reason. Latency summaries are over successful requests
    and None when none had the metric. ``output_short`` counts requests whose server-reported
    output was shorter than ``max_tokens``; ``input_mismatched`` those whose server prompt count
    differs from the request set's.
    """

    kind: Literal["open_loop", "closed_loop"]
    rate_rps: float | None
    concurrency: int | None
    requests: int
    ok: int
    failed: int
    failures: dict[str, int]
    duration_s: float
    completed_rps: float
    input_tokens: int
    output_tokens: int
    output_tokens_per_s: float
    total_tokens_per_s: float
    goodput_rps: float | None
    slo_met: bool | None
    ttft_ns: Summary | None
    tpot_ns: Summary | None
    itl_ns: Summary | None
    e2e_ns: Summary | None
    output_short: int
    input_mismatched: int
    request_records: tuple[EngineRequestRecord, ...] = ()


def request_record(outcome: RequestOutcome, origin_ns: int) -> EngineRequestRecord:
    """``outcome`` with its times made relative: the schedule to ``origin_ns``, the rest to the schedule."""
    due = outcome.scheduled_ns
    failure = outcome.failure
    return EngineRequestRecord(
        id=outcome.request_id,
        api=outcome.api,
        scheduled_ns=due - origin_ns,
        sent_ns=outcome.sent_ns - due,
        token_ns=tuple(event.t_ns - due for event in outcome.events),
        end_ns=outcome.end_ns - due,
        input_tokens=outcome.input_tokens,
        output_tokens=outcome.output_tokens,
        expected_input_tokens=outcome.expected_input_tokens,
        max_tokens=outcome.max_tokens,
        finish_reason=outcome.finish_reason,
        failure=None if failure is None else failure.kind.value,
        failure_detail=None if failure is None else failure.detail,
        http_status=None if failure is None else failure.http_status,
    )


def _summary(values: list[float], confidence: float) -> Summary | None:
    return summarize(values, confidence) if values else None


def load_record(
    run: EngineLoadRun, slo: SLO | None, confidence: float = 0.95, *, keep_requests: bool = True
) -> EngineLoadRecord:
    """The record of ``run``; with an SLO, whether it was met and the goodput."""
    lengths = length_report(run.outcomes)
    judged = slo is not None and not slo.empty
    return EngineLoadRecord(
        kind="open_loop" if run.shape.kind == "open_loop" else "closed_loop",
        rate_rps=run.shape.rate_rps,
        concurrency=run.shape.concurrency,
        requests=len(run.outcomes),
        ok=len(run.ok),
        failed=run.failed,
        failures=run.failures(),
        duration_s=run.duration_ns / 1e9,
        completed_rps=run.completed_rps,
        input_tokens=run.input_tokens,
        output_tokens=run.output_tokens,
        output_tokens_per_s=run.output_tokens_per_s,
        total_tokens_per_s=run.total_tokens_per_s,
        goodput_rps=run.goodput_rps(slo) if judged and slo is not None else None,
        slo_met=run.meets(slo) if judged and slo is not None else None,
        ttft_ns=_summary(run.ttft_ns(), confidence),
        tpot_ns=_summary(run.tpot_ns(), confidence),
        itl_ns=_summary(run.itl_ns(), confidence),
        e2e_ns=_summary(run.e2e_ns(), confidence),
        output_short=lengths.output_short,
        input_mismatched=lengths.input_mismatched,
        request_records=tuple(request_record(o, run.origin_ns) for o in run.outcomes) if keep_requests else (),
    )
