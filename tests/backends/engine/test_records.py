"""Outcome metrics from event timestamps: TTFT from the scheduled time, every gap, TPOT by usage."""

from __future__ import annotations

import pytest

from backends.engine import (
    ChatMessage,
    EngineRequest,
    FailureKind,
    RequestFailure,
    TokenEvent,
    Usage,
    build_outcome,
)

MS = 1_000_000


def _events(*stamps_ms: int) -> list[TokenEvent]:
    return [TokenEvent(i, t * MS, f"t{i}") for i, t in enumerate(stamps_ms)]


def test_metrics_follow_the_timestamps() -> None:
    request = EngineRequest("r", max_tokens=4, prompt="hi", input_tokens=1)
    outcome = build_outcome(
        request,
        scheduled_ns=0,
        sent_ns=2 * MS,
        end_ns=80 * MS,
        events=_events(50, 60, 75, 79),
        usage=Usage(prompt_tokens=1, completion_tokens=4),
        finish_reason="length",
        failure=None,
    )
    assert outcome.ok
    assert outcome.api == "completions"
    assert outcome.ttft_s == pytest.approx(0.050)
    assert outcome.client_delay_s == pytest.approx(0.002)
    assert outcome.itl_s == pytest.approx((0.010, 0.015, 0.004))
    assert outcome.tpot_s == pytest.approx(0.029 / 3)
    assert outcome.e2e_s == pytest.approx(0.080)
    assert (outcome.input_tokens, outcome.output_tokens) == (1, 4)
    assert outcome.text == "t0t1t2t3"


def test_tpot_divides_by_the_servers_count_not_the_event_count() -> None:
    # Two chunks carrying five tokens between them: the server's count decides.
    outcome = build_outcome(
        EngineRequest("r", max_tokens=5, prompt="hi"),
        scheduled_ns=0,
        sent_ns=0,
        end_ns=100 * MS,
        events=_events(20, 100),
        usage=Usage(prompt_tokens=1, completion_tokens=5),
        finish_reason="length",
        failure=None,
    )
    assert outcome.tpot_s == pytest.approx(0.080 / 4)


def test_no_usage_is_a_failure_and_counts_stay_unknown() -> None:
    outcome = build_outcome(
        EngineRequest("r", max_tokens=2, messages=(ChatMessage("user", "hi"),)),
        scheduled_ns=0,
        sent_ns=0,
        end_ns=10 * MS,
        events=_events(5, 9),
        usage=None,
        finish_reason="length",
        failure=None,
    )
    assert outcome.api == "chat"
    assert not outcome.ok
    assert outcome.failure is not None and outcome.failure.kind is FailureKind.NO_USAGE
    assert outcome.output_tokens is None and outcome.tpot_s is None
    assert outcome.itl_s == pytest.approx((0.004,))


def test_a_failed_request_keeps_what_it_measured() -> None:
    failure = RequestFailure(FailureKind.DROPPED_STREAM, "cut")
    outcome = build_outcome(
        EngineRequest("r", max_tokens=9, prompt="hi"),
        scheduled_ns=0,
        sent_ns=0,
        end_ns=30 * MS,
        events=_events(10, 20),
        usage=None,
        finish_reason=None,
        failure=failure,
    )
    assert outcome.failure == failure
    assert outcome.ttft_s == pytest.approx(0.010)
    assert len(outcome.events) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({}, "exactly one"), ({"prompt": "a", "messages": ()}, "exactly one"), ({"prompt": "a", "max_tokens": 0}, ">= 1")],
)
def test_request_checks_itself(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"max_tokens": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        EngineRequest("r", **arguments)  # type: ignore[arg-type]
