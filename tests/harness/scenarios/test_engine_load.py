"""Open- and closed-loop load on an engine, against the scripted server (no timing asserted tightly)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from itertools import count
from typing import Any

import pytest

from backends.engine import ClientTimeouts, Endpoint, EngineRequest, FailureKind
from backends.engine.client import OpenAIClient
from backends.engine.scripted import Script, ScriptedServer
from harness.scenarios.engine_load import EngineLoadRun, run_closed_loop, run_open_loop, run_sync
from harness.scenarios.tokens import SLO

SCRIPT = Script(ttft_s=0.02, itl_s=0.004)


def _requests(prompt: str = "a b c", max_tokens: int = 5) -> Callable[[], EngineRequest]:
    numbers = count()
    return lambda: EngineRequest(f"r{next(numbers)}", max_tokens=max_tokens, prompt=prompt)


def _drive(load: Callable[[OpenAIClient], Coroutine[Any, Any, EngineLoadRun]], **timeouts: float) -> EngineLoadRun:
    async def main() -> EngineLoadRun:
        async with ScriptedServer(SCRIPT) as server:
            async with OpenAIClient(Endpoint(server.base_url, "scripted"), ClientTimeouts(**timeouts)) as client:
                return await load(client)

    return run_sync(main)


def test_open_loop_sends_on_schedule_and_counts_from_it() -> None:
    schedule = [0.0, 0.01, 0.05, 0.06, 0.2]
    run = _drive(lambda client: run_open_loop(client, _requests(), schedule, rate_rps=25.0))
    assert run.shape.kind == "open_loop" and run.shape.rate_rps == 25.0
    assert [o.request_id for o in run.outcomes] == ["r0", "r1", "r2", "r3", "r4"]
    assert [o.scheduled_ns - run.origin_ns for o in run.outcomes] == [round(s * 1e9) for s in schedule]
    assert all(o.sent_ns >= o.scheduled_ns for o in run.outcomes)
    assert run.failed == 0 and len(run.ok) == 5
    # Token counts and rates are the server's usage over the run's window.
    assert run.output_tokens == 25 and run.input_tokens == 15
    assert run.output_tokens_per_s == pytest.approx(25 / (run.duration_ns / 1e9))
    assert len(run.itl_ns()) == 5 * 4 and len(run.ttft_ns()) == 5
    assert all(t >= SCRIPT.ttft_s * 1e9 for t in run.ttft_ns())
    assert run.meets(SLO(ttft_ns=10e9, tpot_ns=10e9, e2e_ns=10e9))
    assert not run.meets(SLO(ttft_ns=1e6))  # 1 ms: below the script's 20 ms first token
    assert run.goodput_rps(SLO(ttft_ns=1e6)) == 0
    assert run.goodput_rps(SLO(ttft_ns=10e9)) == pytest.approx(run.completed_rps)


def test_a_failed_request_fails_the_slo_and_the_run_goes_on() -> None:
    prompts = iter(["fine", "fault:500", "fine", "fault:drop:2", "fine"])
    numbers = count()

    def next_request() -> EngineRequest:
        return EngineRequest(f"r{next(numbers)}", max_tokens=4, prompt=next(prompts))

    run = _drive(lambda client: run_open_loop(client, next_request, [0.0, 0.0, 0.01, 0.01, 0.02]))
    assert run.failed == 2 and len(run.ok) == 3
    assert run.failures() == {"http_status": 1, "dropped_stream": 1}
    assert not run.meets(SLO(ttft_ns=10e9))
    assert run.goodput_rps(SLO(ttft_ns=10e9)) == pytest.approx(3 / (run.duration_ns / 1e9))
    assert len(run.outcomes[3].events) == 2  # what the dropped stream had sent is kept


def test_open_loop_deadline_cancels_what_is_still_open() -> None:
    prompts = iter(["fine", "fault:stall:1"])
    numbers = count()

    def next_request() -> EngineRequest:
        return EngineRequest(f"r{next(numbers)}", max_tokens=3, prompt=next(prompts))

    run = _drive(lambda client: run_open_loop(client, next_request, [0.0, 0.0], deadline_s=0.5))
    assert run.outcomes[0].ok
    failure = run.outcomes[1].failure
    assert failure is not None and failure.kind is FailureKind.CANCELLED
    assert len(run.outcomes[1].events) == 1


@pytest.mark.parametrize("users", [1, 3])
def test_closed_loop_keeps_at_most_its_users_in_flight(users: int) -> None:
    run = _drive(lambda client: run_closed_loop(client, _requests(), users, 7))
    assert run.shape.concurrency == users and len(run.outcomes) == 7 and run.failed == 0
    assert [o.request_id for o in run.outcomes] == [f"r{i}" for i in range(7)]
    marks = sorted([(o.sent_ns, 1) for o in run.outcomes] + [(o.end_ns, -1) for o in run.outcomes])
    level = peak = 0
    for _, step in marks:
        level += step
        peak = max(peak, level)
    assert peak == users
    # Closed loop: each request is due when its user sends it.
    assert all(0 <= o.client_delay_s < 1.0 for o in run.outcomes)


def test_closed_loop_needs_a_user() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        _drive(lambda client: run_closed_loop(client, _requests(), 0, 1))


def test_the_record_recomputes_from_its_own_request_times() -> None:
    from harness.measure.stats import summarize
    from harness.scenarios.engine_records import load_record

    prompts = iter(["fine a", "fine b c", "fault:429", "fine", "fine d"])
    numbers = count()

    def next_request() -> EngineRequest:
        return EngineRequest(f"r{next(numbers)}", max_tokens=6, prompt=next(prompts), input_tokens=2)

    run = _drive(lambda client: run_open_loop(client, next_request, [0.0, 0.01, 0.02, 0.03, 0.04], rate_rps=100.0))
    record = load_record(run, SLO(ttft_ns=10e9))
    assert (record.requests, record.ok, record.failed, record.failures) == (5, 4, 1, {"http_status": 1})
    assert record.slo_met is False  # a failed request fails the SLO
    ok = [r for r in record.request_records if r.failure is None]
    assert [r.scheduled_ns for r in record.request_records] == [0, 10_000_000, 20_000_000, 30_000_000, 40_000_000]
    assert record.request_records[2].http_status == 429 and record.request_records[2].token_ns == ()
    # Every figure follows from the request times and the server's counts in the record.
    ttft = [float(r.token_ns[0]) for r in ok]
    tpot = [r.tpot_ns for r in ok]
    itl = [float(b - a) for r in ok for a, b in zip(r.token_ns, r.token_ns[1:], strict=False)]
    e2e = [float(r.end_ns) for r in ok]
    assert record.ttft_ns == summarize(ttft)
    assert record.tpot_ns == summarize([t for t in tpot if t is not None])
    assert record.itl_ns == summarize(itl)
    assert record.e2e_ns == summarize(e2e)
    assert record.output_tokens == sum(r.output_tokens or 0 for r in ok) == 24
    assert record.input_mismatched == 2  # the server counts words: "fine b c" is 3 and "fine" 1, not 2
    assert record.output_short == 0
