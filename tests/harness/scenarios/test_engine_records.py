"""A load as the run file keeps it: what the server achieved against what the request set asked."""

from __future__ import annotations

from backends.engine import RequestFailure, TokenEvent, Usage, build_outcome
from backends.engine.records import FailureKind, RequestOutcome
from harness.runfile.engine import EngineRequest
from harness.scenarios.engine_records import length_report


def _outcome(max_tokens: int, usage: Usage | None, expected_in: int | None, failed: bool = False) -> RequestOutcome:
    request = EngineRequest("r", max_tokens=max_tokens, prompt="x", input_tokens=expected_in)
    failure = RequestFailure(FailureKind.HTTP_STATUS, "HTTP 500") if failed else None
    events = [TokenEvent(0, 1, "a")]
    return build_outcome(
        request, scheduled_ns=0, sent_ns=0, end_ns=2, events=events, usage=usage, finish_reason=None, failure=failure
    )


def test_length_report_uses_the_servers_counts() -> None:
    report = length_report(
        [
            _outcome(8, Usage(5, 8), 5),
            _outcome(8, Usage(6, 3), 5),  # stopped early, and the prompt counted differently
            _outcome(8, None, 5, failed=True),  # failures are not judged
        ]
    )
    assert (report.requests, report.output_short, report.input_mismatched) == (2, 1, 1)
    assert (report.asked_output_tokens, report.achieved_output_tokens) == (16, 11)
    assert report.warning is not None and "1 of 2 requests stopped before max_tokens" in report.warning
