"""A moto server that sends a real signal to a real process at a chosen AWS call.

``CueingMoto`` is moto's own ``ThreadedMotoServer`` on 127.0.0.1 with one WSGI layer in front of
moto's app. The layer names each request's operation (the ``Action`` of a Query-protocol call,
IAM and EC2; for S3, ``CreateBucket`` is a PUT of ``/bucket`` with no query, as botocore sends it
path-style to an IP endpoint) and, when it is the cued one, sends the signal to the process
under test:

- ``before``: as the request arrives, before moto runs it; moto then runs it anyway, as AWS runs a
  request it has received whether or not the caller is still waiting for the answer;
- ``after``: once moto's answer has been written back to the caller.

So a launcher that is interrupted is interrupted at exactly that step of its set-up, by the kernel,
with nothing in the launcher's code knowing it is under test.
"""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

__all__ = ["Cue", "CueingMoto", "operation_of"]

StartResponse = Callable[..., Any]
App = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def operation_of(environ: dict[str, Any], body: bytes) -> str:
    """The AWS operation a request asks for, as far as these tests need to tell them apart."""
    if environ.get("REQUEST_METHOD") == "POST":
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:
            return action[0]
    path = [part for part in str(environ.get("PATH_INFO", "")).split("/") if part]
    query = str(environ.get("QUERY_STRING", ""))
    if environ.get("REQUEST_METHOD") == "PUT" and len(path) == 1:
        return "CreateBucket" if not query else f"PutBucket:{query.split('=')[0]}"
    if environ.get("REQUEST_METHOD") == "PUT" and len(path) > 1 and not query:
        return "PutObject"
    return f"{environ.get('REQUEST_METHOD')} {'/'.join(path[:1])}?{query}"


@dataclass
class Cue:
    """Signal ``pid`` with ``signum`` the first time ``operation`` is seen, ``when`` before or after."""

    operation: str
    when: str
    pid: int = 0
    signum: int = signal.SIGINT
    fired: threading.Event = field(default_factory=threading.Event)
    seen: list[str] = field(default_factory=list)

    def fire(self) -> None:
        if self.pid and not self.fired.is_set():
            self.fired.set()
            os.kill(self.pid, self.signum)


class _SignalOnClose:
    """A response body that fires its cue once the server has written it (WSGI calls ``close``)."""

    def __init__(self, body: Iterable[bytes], cue: Cue) -> None:
        self.body, self.cue = body, cue

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.body)

    def close(self) -> None:
        close = getattr(self.body, "close", None)
        if close is not None:
            close()
        self.cue.fire()


class _Cueing:
    def __init__(self, app: App, server: CueingMoto) -> None:
        self.app, self.server = app, server

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        cue = self.server.cue
        if cue is None:
            return self.app(environ, start_response)
        operation = operation_of(environ, body)
        cue.seen.append(operation)
        if operation != cue.operation or cue.fired.is_set():
            return self.app(environ, start_response)
        if cue.when == "before":
            cue.fire()
            time.sleep(0.2)  # the signal lands while the caller waits for this answer
            return self.app(environ, start_response)
        return _SignalOnClose(self.app(environ, start_response), cue)


class CueingMoto:
    """moto's ``ThreadedMotoServer`` with the cueing layer; set ``cue`` before the process under
    test calls. moto is imported here, not at module level: pytest imports this module to collect
    the tests that use it, also where moto is not installed (the GPU image)."""

    def __init__(self) -> None:
        from moto.server import DomainDispatcherApplication, ThreadedMotoServer, create_backend_app
        from werkzeug.serving import make_server

        self.cue: Cue | None = None
        outer = self

        class _Server(ThreadedMotoServer):  # type: ignore[misc]
            def _server_entry(self) -> None:
                app = _Cueing(DomainDispatcherApplication(create_backend_app), outer)
                self._server = make_server(self._ip_address, self._port, app, True)
                self._server_ready_event.set()
                self._server.serve_forever()

        self.server = _Server(ip_address="127.0.0.1", port=0, verbose=False)

    def __getattr__(self, name: str) -> Any:
        """``start``, ``stop``, ``get_host_and_port``: the server's own."""
        return getattr(self.server, name)
