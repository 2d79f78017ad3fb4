"""The request-level contract of a serving engine: submit a request, read its token events.

In-process backends hand the sampler a zero-argument callable; an engine serves many requests at
once and answers each with a stream, so its contract is per request instead. ``EngineBackend.submit``
starts one request and returns a ``RequestStream``: iterate it for the ``TokenEvent``s as they
arrive, then ``await stream.outcome()`` for the ``RequestOutcome`` (which also drains a stream
nobody iterated). A failed request is an outcome with a ``failure``, never an exception, so one bad
request never stops a run.

``Endpoint`` is what a launcher hands the client: where the server listens and which model name it
serves. A launcher that starts the engine and ``--endpoint URL`` both end in one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from backends.engine.records import RequestOutcome, TokenEvent
from harness.runfile.engine import EngineRequest

__all__ = ["ClientTimeouts", "Endpoint", "EngineBackend", "RequestStream"]


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible server: ``base_url`` up to and including ``/v1``, and its model name."""

    base_url: str
    model: str
    api_key: str | None = None

    def url(self, api_path: str) -> str:
        """``base_url`` joined with an API path such as ``completions``."""
        return self.base_url.rstrip("/") + "/" + api_path.lstrip("/")


@dataclass(frozen=True)
class ClientTimeouts:
    """Deadlines, in seconds, after which a request fails with a timeout of the matching kind.

    ``first_token`` bounds the wait for the first output event (queueing plus prefill), ``idle``
    any later gap between events, ``total`` the whole request, ``connect`` the TCP connection.
    None means no deadline of that kind. ``until`` is a moment, not a length (``time.monotonic``
    seconds): the cell's time limit, past which every request still open fails as ``cell_limit``
    and none is sent, whatever the other deadlines say.
    """

    connect: float | None = 10.0
    first_token: float | None = 300.0
    idle: float | None = 60.0
    total: float | None = 1800.0
    until: float | None = None


@runtime_checkable
class RequestStream(Protocol):
    """One request in flight: its token events as they arrive, then its outcome."""

    def __aiter__(self) -> AsyncIterator[TokenEvent]:
        """Each output event once, in order, stamped when it was read."""
        ...

    async def outcome(self) -> RequestOutcome:
        """The request's outcome; reads the rest of the stream first if it has not been read."""
        ...


@runtime_checkable
class EngineBackend(Protocol):
    """A serving engine reached over its API; ``generate`` and ``server`` drive it per request."""

    #: Recorded in the cell so a reader knows which client measured it.
    name: str
    endpoint: Endpoint

    def submit(self, request: EngineRequest, *, scheduled_ns: int | None = None) -> RequestStream:
        """Start ``request`` now; TTFT counts from ``scheduled_ns`` (default: now).

        Must be called inside the event loop that will read the stream.
        """
        ...

    async def aclose(self) -> None:
        """Close connections; streams still open fail as ``CANCELLED``."""
        ...
