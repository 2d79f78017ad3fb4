"""A scripted OpenAI-compatible server: tokens at known times, and faults on request.

It is the reference the client is calibrated against (``benchmarks/engine_client_overhead.py``) and
the fake server of the fault tests; it is never the check of a real engine. For each request it
sends ``max_tokens`` tokens, the first ``ttft_s`` after the request arrived and each next one
``itl_s`` after the previous *scheduled* time (absolute times, so a late token does not delay the
rest), then the usage chunk and ``data: [DONE]``. Each token's text is the server's own
``time.monotonic_ns()`` at the moment it wrote it, in angle brackets, so a reader of the client's
events can split an error into the server's lateness and the client's.

A request asks for a fault with a prompt (or last chat message) of the form ``fault:NAME`` or
``fault:NAME:N``: ``429`` and ``500`` (HTTP errors), ``slow_first_byte`` (no response headers for
``N`` seconds), ``drop`` (the connection cut after ``N`` tokens), ``stall`` (no event after ``N``
tokens), ``malformed`` (a non-JSON event after ``N`` tokens), ``error_event`` (an ``error`` object
after ``N`` tokens) and ``no_usage`` (a complete stream without a usage chunk).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

__all__ = ["Script", "ScriptedServer"]


@dataclass(frozen=True)
class Script:
    """When the server sends: first token ``ttft_s`` after arrival, then one every ``itl_s``."""

    ttft_s: float = 0.05
    itl_s: float = 0.01


class ScriptedServer:
    """The server, in the running event loop: ``async with ScriptedServer(script) as server``."""

    def __init__(self, script: Script | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.script = script or Script()
        self.host = host
        self.port = port
        self.requests = 0
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    async def __aenter__(self) -> ScriptedServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
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

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "scripted", "object": "model"}]})

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, chat=False)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, chat=True)

    async def _serve(self, request: web.Request, *, chat: bool) -> web.StreamResponse:
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
            delay = arrived + script.ttft_s + i * script.itl_s - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            last = i == n_tokens - 1
            choice = _choice(chat, f"<{time.monotonic_ns()}>", finish="length" if last else None)
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
