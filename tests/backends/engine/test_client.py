"""The streaming client against the scripted server: what it measures, and how requests fail.

The server runs in the test's event loop on 127.0.0.1. Timings are never asserted tightly here
(the machine is shared); the overhead bounds live in ``benchmarks/engine_client_overhead.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from backends.engine import ChatMessage, ClientTimeouts, Endpoint, EngineBackend, EngineRequest, FailureKind
from backends.engine.client import OpenAIClient, request_body
from backends.engine.records import RequestOutcome
from backends.engine.scripted import Script, ScriptedServer, token_times

T = TypeVar("T")
SCRIPT = Script(ttft_s=0.03, itl_s=0.005)


def _with_server(body: Callable[[OpenAIClient, ScriptedServer], Awaitable[T]], **timeouts: float) -> T:
    async def main() -> T:
        async with ScriptedServer(SCRIPT) as server:
            endpoint = Endpoint(server.base_url, model="scripted")
            async with OpenAIClient(endpoint, ClientTimeouts(**timeouts)) as client:
                return await body(client, server)

    return asyncio.run(main())


def _sent_ns(outcome: RequestOutcome) -> list[int]:
    return [token_times(event.text)[1] for event in outcome.events]


def test_the_client_is_an_engine_backend() -> None:
    assert isinstance(OpenAIClient(Endpoint("http://127.0.0.1:1/v1", "m")), EngineBackend)


def test_request_body_asks_for_usage_and_forced_length() -> None:
    body = request_body(EngineRequest("r", max_tokens=7, prompt=(1, 2, 3), seed=3, return_token_ids=True), "m")
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["prompt"] == [1, 2, 3]
    assert (body["max_tokens"], body["ignore_eos"], body["temperature"], body["seed"]) == (7, True, 0.0, 3)
    assert body["return_token_ids"] is True
    chat = request_body(EngineRequest("c", max_tokens=1, messages=(ChatMessage("user", "hi"),), ignore_eos=False), "m")
    assert chat["messages"] == [{"role": "user", "content": "hi"}]
    assert "ignore_eos" not in chat and "prompt" not in chat
    json.dumps(body)


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_a_streamed_request_is_measured_from_its_events(api: str) -> None:
    if api == "chat":
        request = EngineRequest("r", max_tokens=6, messages=(ChatMessage("user", "one two three"),))
    else:
        request = EngineRequest("r", max_tokens=6, prompt="one two three")

    async def body(client: OpenAIClient, server: ScriptedServer) -> RequestOutcome:
        return await client.measure(request)

    outcome = _with_server(body)
    assert outcome.ok, outcome.failure
    assert outcome.api == api
    # Counts are the server's usage, and every event the server wrote arrived once, in order.
    assert (outcome.input_tokens, outcome.output_tokens, outcome.finish_reason) == (3, 6, "length")
    assert len(outcome.events) == 6
    sent = _sent_ns(outcome)
    assert sent == sorted(sent)
    due = [token_times(event.text)[0] for event in outcome.events]
    # The script: each token due one ITL after the previous one, and never written before it is due.
    assert [b - a for a, b in itertools.pairwise(due)] == pytest.approx([SCRIPT.itl_s * 1e9] * 5, abs=2)
    assert all(w >= d for d, w in zip(due, sent, strict=True))
    # An event cannot be read before the server wrote it; TTFT honours the script's delay.
    assert all(event.t_ns >= written for event, written in zip(outcome.events, sent, strict=True))
    assert outcome.ttft_s is not None and outcome.ttft_s >= SCRIPT.ttft_s
    assert len(outcome.itl_s) == 5
    assert outcome.tpot_s == pytest.approx(sum(outcome.itl_s) / 5)
    assert outcome.e2e_s >= outcome.ttft_s


def test_iterating_a_stream_yields_each_event_as_it_comes() -> None:
    async def body(client: OpenAIClient, server: ScriptedServer) -> tuple[list[int], RequestOutcome]:
        stream = client.submit(EngineRequest("r", max_tokens=4, prompt="x"))
        seen = [event.index async for event in stream]
        return seen, await stream.outcome()

    seen, outcome = _with_server(body)
    assert seen == [0, 1, 2, 3]
    assert outcome.ok and len(outcome.events) == 4


def test_ttft_counts_from_the_scheduled_time() -> None:
    async def body(client: OpenAIClient, server: ScriptedServer) -> RequestOutcome:
        a_second_ago = time.monotonic_ns() - 10**9
        return await client.measure(EngineRequest("r", max_tokens=2, prompt="x"), scheduled_ns=a_second_ago)

    outcome = _with_server(body)
    assert outcome.client_delay_s >= 1.0
    assert outcome.ttft_s is not None and outcome.ttft_s >= 1.0 + SCRIPT.ttft_s


FAULTS = [
    ("fault:429", FailureKind.HTTP_STATUS, 0),
    ("fault:500", FailureKind.HTTP_STATUS, 0),
    ("fault:slow_first_byte:30", FailureKind.TIMEOUT_FIRST_TOKEN, 0),
    ("fault:stall:2", FailureKind.TIMEOUT_IDLE, 2),
    ("fault:drop:3", FailureKind.DROPPED_STREAM, 3),
    ("fault:malformed:2", FailureKind.MALFORMED_EVENT, 2),
    ("fault:error_event:1", FailureKind.SERVER_ERROR_EVENT, 1),
    ("fault:no_usage", FailureKind.NO_USAGE, 5),
]


def test_each_fault_fails_its_request_with_a_reason_and_the_run_goes_on() -> None:
    async def body(client: OpenAIClient, server: ScriptedServer) -> list[RequestOutcome]:
        requests = [EngineRequest(f"f{i}", max_tokens=5, prompt=p) for i, (p, _, _) in enumerate(FAULTS)]
        requests += [EngineRequest(f"ok{i}", max_tokens=5, prompt="fine") for i in range(3)]
        return list(await asyncio.gather(*(client.measure(r) for r in requests)))

    outcomes = _with_server(body, first_token=1.0, idle=0.5, total=20.0)
    for outcome, (prompt, kind, n_events) in zip(outcomes, FAULTS, strict=False):
        assert outcome.failure is not None, prompt
        assert outcome.failure.kind is kind, (prompt, outcome.failure)
        assert "\n" not in outcome.failure.detail and outcome.failure.detail
        # Nothing measured before the fault is lost.
        assert len(outcome.events) == n_events, (prompt, outcome.events)
    assert outcomes[0].failure is not None and outcomes[0].failure.http_status == 429
    assert "rate limited" in outcomes[0].failure.detail
    assert outcomes[1].failure is not None and outcomes[1].failure.http_status == 500
    assert all(o.ok and o.output_tokens == 5 for o in outcomes[len(FAULTS) :])


def test_total_deadline_and_refused_connection() -> None:
    async def body(client: OpenAIClient, server: ScriptedServer) -> RequestOutcome:
        return await client.measure(EngineRequest("r", max_tokens=1000, prompt="x"))

    slow = _with_server(body, total=0.2)
    assert slow.failure is not None and slow.failure.kind is FailureKind.TIMEOUT_TOTAL
    assert slow.events  # what arrived before the deadline is kept

    async def refused() -> RequestOutcome:
        async with OpenAIClient(Endpoint("http://127.0.0.1:9/v1", "m")) as client:
            return await client.measure(EngineRequest("r", max_tokens=1, prompt="x"))

    outcome = asyncio.run(refused())
    assert outcome.failure is not None and outcome.failure.kind is FailureKind.CONNECT


def test_closing_the_client_cancels_open_streams() -> None:
    async def body(client: OpenAIClient, server: ScriptedServer) -> RequestOutcome:
        stream = client.submit(EngineRequest("r", max_tokens=1000, prompt="x"))
        await asyncio.sleep(0.1)
        await client.aclose()
        return await stream.outcome()

    outcome = _with_server(body)
    assert outcome.failure is not None and outcome.failure.kind is FailureKind.CANCELLED


def test_which_chunks_are_output_events() -> None:
    from backends.engine.client import _ReadState

    class Sink:
        _events: list[object]

        def __init__(self) -> None:
            self._events = []

        def _push(self, event: object) -> None:
            self._events.append(event)

    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},  # chat preamble
        {"choices": [{"index": 0, "delta": {"content": "a"}}]},
        {"choices": [{"index": 0, "delta": {"content": ""}}]},  # a token without complete text yet
        {"choices": [{"index": 0, "text": "", "token_ids": [7]}]},
        {"choices": [{"index": 0, "text": "b", "finish_reason": "length"}]},
        {"choices": [{"index": 0, "text": "", "finish_reason": "length"}]},  # closing marker
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},  # OpenAI's closing chunk
        {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}},
    ]
    state, sink = _ReadState(), Sink()
    for t, chunk in enumerate(chunks):
        assert state.take(json.dumps(chunk).encode(), t, sink) is None  # type: ignore[arg-type]
    assert [(e.t_ns, e.text, e.token_ids) for e in sink._events] == [  # type: ignore[attr-defined]
        (1, "a", None),
        (2, "", None),
        (3, "", (7,)),
        (4, "b", None),
    ]
    assert state.usage is not None and state.usage.completion_tokens == 4
    assert state.finish_reason == "stop"


def test_models_lists_what_the_server_serves_or_says_why_not() -> None:
    from backends.engine.client import EngineUnreachable

    async def body(client: OpenAIClient, server: ScriptedServer) -> list[str]:
        return await client.models()

    assert _with_server(body) == ["scripted"]

    async def nowhere() -> list[str]:
        async with OpenAIClient(Endpoint("http://127.0.0.1:9/v1", "m")) as client:
            return await client.models()

    with pytest.raises(EngineUnreachable, match=r"cannot list the models of http://127\.0\.0\.1:9/v1"):
        asyncio.run(nowhere())
