"""A scripted OpenAI-compatible server: tokens at known times, and faults on request.

It is the reference the client is calibrated against (``benchmarks/engine_client_overhead.py``) and
the fake server of the fault tests; it is never the check of a real engine. For each request it
sends ``max_tokens`` tokens, the first ``ttft_s`` after the request arrived and each next one
``itl_s`` after the previous *scheduled* time (absolute times, so a late token does not delay the
rest), then the usage chunk and ``data: [DONE]``. Each token's text is ``<DUE/WRITTEN>``: the
scripted time of the token and the time the server wrote it, both in ``time.monotonic_ns()``, so
a reader of the client's events can split an error into the server's lateness and the client's
(``token_times`` parses it).

A request asks for a fault with a prompt (or last chat message) of the form ``fault:NAME`` or
``fault:NAME:N``: ``429`` and ``500`` (HTTP errors), ``slow_first_byte`` (no response headers for
``N`` seconds), ``drop`` (the connection cut after ``N`` tokens), ``stall`` (no event after ``N``
tokens), ``malformed`` (a non-JSON event after ``N`` tokens), ``error_event`` (an ``error`` object
after ``N`` tokens) and ``no_usage`` (a complete stream without a usage chunk).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import selectors
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

__all__ = ["Script", "ScriptedServer", "punctual_event_loop", "token_times"]


@dataclass(frozen=True)
class Script:
    """When the server sends: first token ``ttft_s`` after a request starts, then one every ``itl_s``.

    ``max_running`` (None: no limit) makes it queue like an engine with that many sequence slots: a
    request starts when a slot frees, so its TTFT grows with the load and its capacity is finite
    (about ``max_running / (ttft_s + (tokens - 1) * itl_s)`` requests/s).
    """

    ttft_s: float = 0.05
    itl_s: float = 0.01
    max_running: int | None = None


class ScriptedServer:
    """The server, in the running event loop: ``async with ScriptedServer(script) as server``."""

    def __init__(self, script: Script | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.script = script or Script()
        self.host = host
        self.port = port
        self.requests = 0
        self._runner: web.AppRunner | None = None
        self._slots: asyncio.Semaphore | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    async def __aenter__(self) -> ScriptedServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self.script.max_running is not None:
            self._slots = asyncio.Semaphore(self.script.max_running)
        app = web.Application()
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=4096, reuse_address=True)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @classmethod
    @contextlib.contextmanager
    def in_thread(cls, script: Script | None = None) -> Iterator[ScriptedServer]:
        """The server on an event loop of its own thread, for callers that run their own loops."""
        server = cls(script)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="scripted-server", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout=30)
            yield server
        finally:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            loop.close()

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "scripted", "object": "model"}]})

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, chat=False)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, chat=True)

    async def _serve(self, request: web.Request, *, chat: bool) -> web.StreamResponse:
        if self._slots is None:
            return await self._respond(request, chat=chat)
        async with self._slots:
            return await self._respond(request, chat=chat)

    async def _respond(self, request: web.Request, *, chat: bool) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        arrived = loop.time()
        self.requests += 1
        body = await request.json()
        if chat:
            prompt = str(body["messages"][-1]["content"])
            prompt_tokens = sum(len(str(m["content"]).split()) for m in body["messages"])
        else:
            raw = body["prompt"]
            prompt = raw if isinstance(raw, str) else ""
            prompt_tokens = len(raw.split()) if isinstance(raw, str) else len(raw)
        fault, count = _fault(prompt)
        if fault in ("429", "500"):
            status = int(fault)
            message = "rate limited" if status == 429 else "internal error"
            return web.json_response({"error": {"message": message, "code": status}}, status=status)
        if fault == "slow_first_byte":
            await asyncio.sleep(count)
        n_tokens = int(body["max_tokens"])
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        ident = f"cmpl-{self.requests}"
        kind = "chat.completion.chunk" if chat else "text_completion"
        if chat:
            await response.write(_event({"id": ident, "object": kind, "choices": [_choice(True, "", role=True)]}))
        script = self.script
        for i in range(n_tokens):
            if fault in ("drop", "stall", "malformed", "error_event") and i == count:
                return await self._misbehave(request, response, fault)
            due = arrived + script.ttft_s + i * script.itl_s
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            last = i == n_tokens - 1
            choice = _choice(chat, f"<{round(due * 1e9)}/{time.monotonic_ns()}>", finish="length" if last else None)
            await response.write(_event({"id": ident, "object": kind, "choices": [choice]}))
        if fault != "no_usage":
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": n_tokens}
            usage["total_tokens"] = prompt_tokens + n_tokens
            await response.write(_event({"id": ident, "object": kind, "choices": [], "usage": usage}))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _misbehave(self, request: web.Request, response: web.StreamResponse, fault: str) -> web.StreamResponse:
        if fault == "drop":
            if request.transport is not None:
                request.transport.abort()
            return response
        if fault == "stall":
            await asyncio.sleep(3600)
        if fault == "malformed":
            await response.write(b"data: {not json\n\n")
        if fault == "error_event":
            await response.write(_event({"error": {"message": "engine fault", "type": "InternalServerError"}}))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


class _PunctualSelector(selectors.EpollSelector):
    """epoll, waiting whole milliseconds *down* and polling for the rest.

    ``epoll_wait`` counts in milliseconds and Python rounds a wait up, so every timer of a stock
    asyncio loop fires up to 1 ms late; the reference would then be the noisiest part of the
    measurement. Rounding down and polling the last fraction puts a token on the wire within
    microseconds of its scripted time, for the price of a busy loop in that fraction.
    """

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout > 0:
            timeout = math.floor(timeout * 1e3) * 1e-3
        return super().select(timeout)


def punctual_event_loop() -> asyncio.AbstractEventLoop:
    """An event loop whose timers fire on time (see ``_PunctualSelector``), for the server process."""
    return asyncio.SelectorEventLoop(_PunctualSelector())


def token_times(text: str) -> tuple[int, int]:
    """(due, written) monotonic ns of one scripted token, from its text ``<DUE/WRITTEN>``."""
    due, _, written = text.strip("<>").partition("/")
    return int(due), int(written)


def _fault(prompt: str) -> tuple[str | None, float]:
    if not prompt.startswith("fault:"):
        return None, 0
    _, name, *rest = prompt.split(":")
    return name, float(rest[0]) if rest else 0


def _choice(chat: bool, text: str, *, finish: str | None = None, role: bool = False) -> dict[str, Any]:
    if chat:
        delta: dict[str, str] = {"role": "assistant", "content": ""} if role else {"content": text}
        return {"index": 0, "delta": delta, "finish_reason": finish}
    return {"index": 0, "text": text, "finish_reason": finish}


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"
