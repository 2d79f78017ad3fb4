"""An OpenAI-compatible server on 127.0.0.1 that misbehaves on cue, over real sockets.

Unlike ``backends.engine.scripted.ScriptedServer`` (aiohttp, faults asked for by the prompt), this
one is written on bare asyncio streams, so it can do what a well-behaved HTTP stack never would:
hold an accepted connection without a byte, cut a stream in the middle of an event, stop
listening so the next connection is refused. Faults are cued by the server's own count of
completions requests, so a test places one where it wants it (after the correctness check's
four requests, after the warm-up) without any cooperation from the client.

Each response closes its connection (``Connection: close``); a streamed body ends at the close,
as HTTP/1.1 allows, so a cut stream is exactly a closed socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Fault", "MisbehavingServer"]

#: What the server can do wrong to a completions request.
KINDS = (
    "silent",  # accept, read the request, never answer
    "status",  # answer ``status`` (500, 429, ...) with an OpenAI error body
    "malformed",  # one token, then an event that is not JSON
    "truncated",  # one token, then half an event, then the connection closed
    "extra_tokens",  # three tokens more than max_tokens asked, and usage that says so
    "no_usage",  # a complete stream without the usage chunk
    "die",  # stop listening and drop every connection: later connections are refused
)


@dataclass(frozen=True)
class Fault:
    """``kind`` for completions requests numbered ``first`` to ``first + count - 1`` (1-based,
    ``count`` None: all from ``first`` on); every other request is served well."""

    kind: str
    first: int = 1
    count: int | None = None
    status: int = 500

    def applies(self, number: int) -> bool:
        return number >= self.first and (self.count is None or number < self.first + self.count)


class MisbehavingServer:
    """The server on an event loop of its own thread: ``with MisbehavingServer.running(...) as s``."""

    def __init__(self, fault: Fault | None = None, token_delay_s: float = 0.005) -> None:
        self.fault = fault
        self.token_delay_s = token_delay_s
        self.completions = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    @contextlib.contextmanager
    def running(cls, fault: Fault | None = None, token_delay_s: float = 0.005) -> Iterator[MisbehavingServer]:
        server = cls(fault, token_delay_s)
        loop = asyncio.new_event_loop()
        server._loop = loop
        thread = threading.Thread(target=loop.run_forever, name="misbehaving-server", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(server._start(), loop).result(timeout=10)
            yield server
        finally:
            asyncio.run_coroutine_threadsafe(server._stop(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        await self._die()
        tasks = [task for task in self._tasks if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _die(self) -> None:
        """Stop listening and reset every open connection (a process that was killed)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if method == "GET" and path.rstrip("/") == "/v1/models":
                await self._json(writer, 200, {"object": "list", "data": [{"id": "misbehaving", "object": "model"}]})
            elif method == "POST" and path == "/v1/completions":
                self.completions += 1
                await self._completion(writer, json.loads(body), self.completions)
            else:
                await self._json(writer, 404, {"error": {"message": f"no route {path}"}})
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            with contextlib.suppress(ConnectionError, RuntimeError):
                writer.close()

    async def _json(self, writer: asyncio.StreamWriter, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + data
        )
        await writer.drain()

    async def _completion(self, writer: asyncio.StreamWriter, body: dict[str, object], number: int) -> None:
        fault = self.fault
        kind = fault.kind if fault is not None and fault.applies(number) else None
        if kind == "die":
            await self._die()
            return
        if kind == "silent":
            await asyncio.sleep(3600)
            return
        if kind == "status":
            assert fault is not None
            await self._json(writer, fault.status, {"error": {"message": "misbehaving", "code": fault.status}})
            return
        asked = int(str(body["max_tokens"]))
        tokens = asked + 3 if kind == "extra_tokens" else asked
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
        for i in range(tokens):
            await asyncio.sleep(self.token_delay_s)
            finish = "length" if i == tokens - 1 else None
            writer.write(_event({"choices": [{"index": 0, "text": f" t{i}", "finish_reason": finish}]}))
            await writer.drain()
            if i == 0 and kind == "malformed":
                writer.write(b"data: {not json\n\n")
                await writer.drain()
                return
            if i == 0 and kind == "truncated":
                writer.write(b'data: {"choices": [{"ind')
                await writer.drain()
                writer.transport.abort()
                return
        if kind != "no_usage":
            prompt = body.get("prompt")
            n_in = len(prompt) if isinstance(prompt, list) else len(str(prompt).split())
            usage = {"prompt_tokens": n_in, "completion_tokens": tokens, "total_tokens": n_in + tokens}
            writer.write(_event({"choices": [], "usage": usage}))
        writer.write(b"data: [DONE]\n\n")
        await writer.drain()


def _event(payload: object) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"
