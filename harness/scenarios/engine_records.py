"""A load on a serving engine as the run file keeps it: every request, and the load's figures.

A request is kept whole (its schedule, every output event's time, the server's token counts, its
failure), so each figure of the cell can be recomputed from the file: TTFT is the first event's
time, TPOT (last event - first event) / (output tokens - 1) with the server's count, every ITL a
difference of consecutive event times. Times are integer nanoseconds: a request's ``scheduled_ns``
from the run's time zero, and its other times from its own scheduled time (so they are latencies).
The record types live in ``harness.runfile.records``; this module fills them from a load.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from backends.engine.records import RequestOutcome
from harness.measure.stats import Summary, summarize
from harness.runfile.records import EngineLoadRecord, EngineRequestRecord
from harness.scenarios.engine_load import EngineLoadRun
from harness.scenarios.tokens import SLO

__all__ = ["LengthReport", "length_report", "load_record", "request_record"]


@dataclass(frozen=True)
class LengthReport:
    """Asked against achieved lengths over a run's successful requests (server's counts)."""

    requests: int
    output_short: int
    input_mismatched: int
    asked_output_tokens: int
    achieved_output_tokens: int

    @property
    def warning(self) -> str | None:
        parts = []
        if self.output_short:
            parts.append(f"{self.output_short} of {self.requests} requests stopped before max_tokens")
        if self.input_mismatched:
            parts.append(
                f"{self.input_mismatched} of {self.requests} requests had a prompt count (the server's) "
                "unlike the request set's"
            )
        return "; ".join(parts) or None


def length_report(outcomes: Iterable[RequestOutcome]) -> LengthReport:
    """How many requests got fewer output tokens than asked, or another input count than built."""
    requests = short = mismatched = asked = achieved = 0
    for outcome in outcomes:
        if not outcome.ok or outcome.output_tokens is None:
            continue
        requests += 1
        achieved += outcome.output_tokens
        if outcome.max_tokens is not None:
            asked += outcome.max_tokens
            short += outcome.output_tokens < outcome.max_tokens
        expected = outcome.expected_input_tokens
        mismatched += expected is not None and outcome.input_tokens != expected
    return LengthReport(requests, short, mismatched, asked, achieved)


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
        designed_cached_tokens=outcome.designed_cached_tokens,
        conversation=outcome.conversation,
        turn=outcome.turn,
        history_messages=outcome.history_messages,
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
