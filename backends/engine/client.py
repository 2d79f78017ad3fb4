"""The streaming client of OpenAI-compatible servers (vLLM and others), built on aiohttp.

Why aiohttp: one event loop holds thousands of open streams as cheap coroutines, and its HTTP parser
is compiled, so reading a chunk costs microseconds. The client stays off the measured path as much as
it can: each read is stamped with ``time.monotonic_ns()`` before anything else is done with it, one
deadline object per request is moved (not re-created) as events arrive, and an event is handed to a
reader only when someone is waiting for it. Its own overhead is measured against a scripted server
in ``benchmarks/engine_client_overhead.py``.

Every request sends ``stream: true`` with ``stream_options.include_usage``, so the token counts of an
outcome are the server's. Nothing a request does raises out of it: refused connections, HTTP errors
(429, 500), timeouts, dropped streams and malformed events all end as an outcome whose ``failure``
says which, keeping the events read before it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from backends.engine.protocol import ClientTimeouts, Endpoint
from backends.engine.records import FailureKind, RequestFailure, RequestOutcome, TokenEvent, Usage, build_outcome
from backends.engine.sse import SseParser
from harness.errors import ConfigError
from harness.runfile.engine import EngineRequest

__all__ = ["EngineUnreachable", "OpenAIClient", "request_body"]

_DONE = b"[DONE]"
#: How long an idle pooled connection is kept: less than vLLM's own 5 s (uvicorn's keep-alive,
#: ``VLLM_HTTP_TIMEOUT_KEEP_ALIVE``), so the client closes an idle connection before the server does.
#: Kept longer, a request sent as the server closes its connection fails with "connection reset"
#: (seen in a trace replay: the one request that took a connection pre-opened 5.2 s before). A
#: connection opened again costs well under a millisecond on the same host.
_KEEPALIVE_S = 4.0
#: The most bytes of an HTTP error body kept in a failure's detail.
_ERROR_BODY_CHARS = 200


def request_body(request: EngineRequest, model: str) -> dict[str, Any]:
    """The JSON body of ``request`` for the completions or chat completions API.

    ``ignore_eos`` and ``return_token_ids`` are vLLM's extensions; they are sent only when set, so
    a server without them still takes the default request.
    """
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if request.messages is not None:
        body["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
    else:
        body["prompt"] = list(request.prompt) if isinstance(request.prompt, tuple) else request.prompt
    if request.ignore_eos:
        body["ignore_eos"] = True
    if request.seed is not None:
        body["seed"] = request.seed
    if request.return_token_ids:
        body["return_token_ids"] = True
    return body


class EngineUnreachable(ConfigError):
    """The server cannot be reached or does not speak the OpenAI API (a precondition, exit 2)."""


class _Stream:
    """One request in flight: a task that reads the response, and events for whoever iterates."""

    def __init__(self, client: OpenAIClient, request: EngineRequest, scheduled_ns: int) -> None:
        self._events: list[TokenEvent] = []
        self._waiter: asyncio.Future[None] | None = None
        self._task = asyncio.get_running_loop().create_task(client._run(request, scheduled_ns, self))
        self._task.add_done_callback(lambda _task: self._wake())

    def _push(self, event: TokenEvent) -> None:
        self._events.append(event)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def __aiter__(self) -> AsyncIterator[TokenEvent]:
        index = 0
        while True:
            while index < len(self._events):
                yield self._events[index]
                index += 1
            if self._task.done():
                return
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
            self._waiter = None

    async def outcome(self) -> RequestOutcome:
        # Shielded: a caller that stops waiting must not turn the request's own ending into a
        # swallowed cancellation; ``OpenAIClient.aclose`` cancels what is still open.
        return await asyncio.shield(self._task)


class OpenAIClient:
    """An ``EngineBackend`` for any server that speaks the OpenAI streaming API.

    Open it inside the event loop that will use it (``async with OpenAIClient(...)``); the
    connection pool has no limit, so the load generator, not the client, decides concurrency.
    """

    name = "openai-http"

    def __init__(self, endpoint: Endpoint, timeouts: ClientTimeouts | None = None) -> None:
        self.endpoint = endpoint
        self.timeouts = timeouts or ClientTimeouts()
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[RequestOutcome]] = set()
        self._headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if endpoint.api_key:
            self._headers["Authorization"] = f"Bearer {endpoint.api_key}"
        self._urls = {"completions": endpoint.url("completions"), "chat": endpoint.url("chat/completions")}

    async def __aenter__(self) -> OpenAIClient:
        self._open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=_KEEPALIVE_S)
            timeout = aiohttp.ClientTimeout(
                total=None, connect=self.timeouts.connect, sock_connect=self.timeouts.connect
            )
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False)
        return self._session

    def submit(self, request: EngineRequest, *, scheduled_ns: int | None = None) -> _Stream:
        """Start ``request`` now; TTFT and end-to-end count from ``scheduled_ns`` (default: now)."""
        stream = _Stream(self, request, time.monotonic_ns() if scheduled_ns is None else scheduled_ns)
        self._tasks.add(stream._task)
        stream._task.add_done_callback(self._tasks.discard)
        return stream

    async def measure(self, request: EngineRequest, *, scheduled_ns: int | None = None) -> RequestOutcome:
        """Send ``request`` and wait for its outcome."""
        return await self.submit(request, scheduled_ns=scheduled_ns).outcome()

    async def models(self) -> list[str]:
        """The model names the server serves (``GET models``); raises ``EngineUnreachable``."""
        session = self._open()
        try:
            async with session.get(self.endpoint.url("models"), headers=self._headers) as response:
                if response.status >= 300:
                    raise EngineUnreachable(f"{self.endpoint.url('models')} answered HTTP {response.status}")
                payload = await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            raise EngineUnreachable(f"cannot list the models of {self.endpoint.base_url}: {_one_line(exc)}") from None
        try:
            return [str(entry["id"]) for entry in payload["data"]]
        except (KeyError, TypeError) as exc:
            raise EngineUnreachable(f"{self.endpoint.url('models')} is not an OpenAI model list: {exc!r}") from None

    async def open_connections(self, count: int) -> int:
        """Open ``count`` keep-alive connections before a measured window; how many are pooled.

        A load that starts many streams at once would otherwise pay a TCP handshake (and the
        server's accept) inside each early request's TTFT. Each connection is opened by a
        ``GET models`` (every OpenAI-compatible server has it) and left idle in the pool.
        """
        session = self._open()
        url = self.endpoint.url("models")

        async def one() -> None:
            async with session.get(url, headers=self._headers) as response:
                await response.read()

        results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
        return sum(1 for result in results if not isinstance(result, BaseException))

    async def aclose(self) -> None:
        """Cancel the requests in flight (each ends as ``CANCELLED``) and close the connections."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self, request: EngineRequest, scheduled_ns: int, stream: _Stream) -> RequestOutcome:
        """Send one request and read its stream; every ending becomes an outcome."""
        session = self._open()
        sent_ns = time.monotonic_ns()
        state = _ReadState()
        failure: RequestFailure | None = None
        until = self.timeouts.until
        if until is not None and time.monotonic() >= until:
            # Decided before the watchdog exists: it would cancel this very task, and a task cancelled
            # as it returns ends cancelled instead of with its outcome.
            failure = RequestFailure(FailureKind.CELL_LIMIT, "not sent: the cell's time limit had passed")
            return build_outcome(
                request,
                scheduled_ns=scheduled_ns,
                sent_ns=sent_ns,
                end_ns=time.monotonic_ns(),
                events=(),
                usage=None,
                finish_reason=None,
                failure=failure,
            )
        watchdog = _Watchdog(self.timeouts, scheduled_ns, stream)
        try:
            body = json.dumps(request_body(request, self.endpoint.model)).encode()
            async with session.post(self._urls[request.api], data=body, headers=self._headers) as response:
                if response.status >= 300:
                    text = (await response.text(errors="replace"))[:_ERROR_BODY_CHARS]
                    failure = RequestFailure(
                        FailureKind.HTTP_STATUS,
                        f"HTTP {response.status} {response.reason}: {' '.join(text.split())}",
                        http_status=response.status,
                    )
                else:
                    parser = SseParser()
                    content = response.content
                    while not state.done:
                        chunk = await content.readany()
                        t_ns = time.monotonic_ns()
                        if not chunk:
                            break
                        for data in parser.feed(chunk):
                            failure = state.take(data, t_ns, stream)
                            if failure is not None or state.done:
                                break
                        if failure is not None:
                            break
                    if failure is None and not state.done:
                        cut = " mid-event" if parser.pending() else ""
                        failure = RequestFailure(
                            FailureKind.DROPPED_STREAM,
                            f"stream ended{cut} after {len(stream._events)} events without data: [DONE]",
                        )
        except asyncio.CancelledError:
            failure = watchdog.failure or RequestFailure(
                FailureKind.CANCELLED, f"cancelled after {len(stream._events)} events"
            )
        except aiohttp.ClientPayloadError as exc:
            failure = RequestFailure(FailureKind.DROPPED_STREAM, f"stream broke: {_one_line(exc)}")
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            kind = FailureKind.DROPPED_STREAM if stream._events else FailureKind.CONNECT
            failure = RequestFailure(kind, f"{type(exc).__name__}: {_one_line(exc)}")
        except (aiohttp.ClientError, OSError) as exc:
            failure = RequestFailure(FailureKind.CONNECT, f"{type(exc).__name__}: {_one_line(exc)}")
        finally:
            watchdog.stop()
        end_ns = time.monotonic_ns()
        if failure is None and state.error is not None:
            failure = state.error
        return build_outcome(
            request,
            scheduled_ns=scheduled_ns,
            sent_ns=sent_ns,
            end_ns=end_ns,
            events=stream._events,
            usage=state.usage,
            finish_reason=state.finish_reason,
            failure=failure,
        )


class _Watchdog:
    """The deadlines of one request, on a timer that is moved lazily.

    Re-arming a timer on every event would cost a heap operation per token; instead the timer is
    set for the earliest possible deadline and, when it fires, looks at the last event's time: if
    the deadline has moved on, it re-arms itself there, otherwise it cancels the request and says
    which deadline passed. Deadlines count from the scheduled time (first token, total) or from the
    last event read (idle), on ``time.monotonic`` like the event loop.
    """

    def __init__(self, timeouts: ClientTimeouts, scheduled_ns: int, stream: _Stream) -> None:
        self._timeouts = timeouts
        self._start = scheduled_ns / 1e9
        self._stream = stream
        self._task = asyncio.current_task()
        self._loop = asyncio.get_running_loop()
        self.failure: RequestFailure | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._arm()

    def _due(self) -> tuple[float, FailureKind, float] | None:
        timeouts, events = self._timeouts, self._stream._events
        candidates: list[tuple[float, FailureKind, float]] = []
        if timeouts.total is not None:
            candidates.append((self._start + timeouts.total, FailureKind.TIMEOUT_TOTAL, timeouts.total))
        if not events and timeouts.first_token is not None:
            first = timeouts.first_token
            candidates.append((self._start + first, FailureKind.TIMEOUT_FIRST_TOKEN, first))
        elif events and timeouts.idle is not None:
            candidates.append((events[-1].t_ns / 1e9 + timeouts.idle, FailureKind.TIMEOUT_IDLE, timeouts.idle))
        if timeouts.until is not None:
            candidates.append((timeouts.until, FailureKind.CELL_LIMIT, timeouts.until - self._start))
        return min(candidates, key=lambda c: c[0]) if candidates else None

    def _arm(self) -> None:
        due = self._due()
        if due is not None:
            self._handle = self._loop.call_at(due[0], self._fire)

    def _fire(self) -> None:
        due = self._due()
        if due is None or self._task is None:
            return
        at, kind, limit = due
        if time.monotonic() < at:
            self._handle = self._loop.call_at(at, self._fire)
            return
        read = f"{len(self._stream._events)} events read"
        if kind is FailureKind.CELL_LIMIT:
            self.failure = RequestFailure(kind, f"the cell's time limit passed {max(0.0, limit):.3g} s in ({read})")
        else:
            what = {
                FailureKind.TIMEOUT_TOTAL: "request not done",
                FailureKind.TIMEOUT_FIRST_TOKEN: "no first token",
                FailureKind.TIMEOUT_IDLE: "no event",
            }[kind]
            self.failure = RequestFailure(kind, f"{what} within {limit} s ({read})")
        self._task.cancel()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()


class _ReadState:
    """What one stream has said so far: usage, finish reason, whether ``[DONE]`` came.

    Which chunks are output events: every choice that carries text or token ids, and one with
    empty text too (an engine sends it for a token whose text is not yet complete, such as part of
    a multi-byte character), except the two empty chunks that are not tokens: a chat stream's
    opening ``role`` delta and a closing chunk that only carries the finish reason. A choice with
    neither ``text`` nor ``delta.content`` (OpenAI's closing ``delta: {}``) is no event either.
    """

    __slots__ = ("done", "error", "finish_reason", "usage")

    def __init__(self) -> None:
        self.done = False
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.error: RequestFailure | None = None

    def take(self, data: bytes, t_ns: int, stream: _Stream) -> RequestFailure | None:
        """Fold one event's data in; a failure ends the stream."""
        if data == _DONE:
            self.done = True
            return None
        try:
            payload = json.loads(data)
        except ValueError:
            return RequestFailure(FailureKind.MALFORMED_EVENT, f"not JSON: {_clip(data)}")
        if not isinstance(payload, dict):
            return RequestFailure(FailureKind.MALFORMED_EVENT, f"not a JSON object: {_clip(data)}")
        if "error" in payload:
            error = payload["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            return RequestFailure(FailureKind.SERVER_ERROR_EVENT, f"error event: {_one_line(message)}")
        try:
            usage = payload.get("usage")
            if usage:
                self.usage = Usage(int(usage["prompt_tokens"]), int(usage["completion_tokens"]))
            for choice in payload.get("choices") or ():
                finish = choice.get("finish_reason")
                if finish:
                    self.finish_reason = str(finish)
                delta = choice.get("delta")
                text = delta.get("content") if delta is not None else choice.get("text")
                ids = choice.get("token_ids")
                if ids or text or (text == "" and not finish and not (delta is not None and "role" in delta)):
                    token_ids = tuple(int(i) for i in ids) if ids else None
                    stream._push(TokenEvent(len(stream._events), t_ns, str(text or ""), token_ids))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            return RequestFailure(FailureKind.MALFORMED_EVENT, f"{type(exc).__name__} in {_clip(data)}")
        return None


def _clip(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace")
    return _one_line(text[:120] + ("..." if len(text) > 120 else ""))


def _one_line(value: object) -> str:
    return " ".join(str(value).split())
