"""What comes back from a serving engine, as frozen records.

An ``EngineRequest`` (in ``harness.runfile.engine``: the request set builds it, the client sends
it) is one prompt (plain text, token ids, or chat messages) with its output length and decoding
settings. The client turns the server's stream into ``TokenEvent``s stamped on the
host's monotonic clock as each event is read, and folds them, with the usage the server reports, into
one ``RequestOutcome``. Token counts in an outcome are only ever the server's own
(``stream_options.include_usage``); the client never counts or guesses tokens, so an outcome without
usage says so instead of making a figure up.

Times are integer nanoseconds of ``time.monotonic_ns()`` (``CLOCK_MONOTONIC``): comparable within a
process, immune to wall-clock steps, and cheap enough to read once per event.
"""

from __future__ import annotations

import enum
import itertools
import statistics
from dataclasses import dataclass, field

from harness.runfile.engine import Api, EngineRequest

__all__ = [
    "FailureKind",
    "RequestFailure",
    "RequestOutcome",
    "TokenEvent",
    "Usage",
    "build_outcome",
]


@dataclass(frozen=True)
class TokenEvent:
    """One streamed chunk that carried output, as the client read it.

    ``t_ns`` is taken when the chunk's bytes were parsed, before any other work on it. Engines send
    one token per chunk as a rule but may coalesce several; ``token_ids`` is set only where the server
    sent the ids, so the gaps between events are gaps between chunks, and token counts come from
    usage, never from counting events.
    """

    index: int
    t_ns: int
    text: str
    token_ids: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Usage:
    """Token counts exactly as the server reported them in its usage chunk."""

    prompt_tokens: int
    completion_tokens: int


class FailureKind(enum.StrEnum):
    """Why a request did not complete; each is a distinct, countable cause in the run file."""

    CONNECT = "connect"  # no connection (refused, reset before the response)
    HTTP_STATUS = "http_status"  # the server answered with a non-2xx status (429, 500, ...)
    TIMEOUT_FIRST_TOKEN = "timeout_first_token"  # no first token within the first-token deadline
    TIMEOUT_IDLE = "timeout_idle"  # a gap between events longer than the idle deadline
    TIMEOUT_TOTAL = "timeout_total"  # the whole request outlived its deadline
    DROPPED_STREAM = "dropped_stream"  # the stream ended (or broke) before ``data: [DONE]``
    MALFORMED_EVENT = "malformed_event"  # an event that is not the JSON the API promises
    SERVER_ERROR_EVENT = "server_error_event"  # an ``error`` object inside the stream
    NO_USAGE = "no_usage"  # the stream finished but the server never reported usage
    CANCELLED = "cancelled"  # the run stopped the request (end of the measurement window)
    CELL_LIMIT = "cell_limit"  # the cell's time limit (budget + grace) passed with the request open
    EXCESS_TOKENS = "excess_tokens"  # the server reported more output tokens than max_tokens asked


@dataclass(frozen=True)
class RequestFailure:
    """The reason a request failed: a kind to count by and the one-line detail to read."""

    kind: FailureKind
    detail: str
    http_status: int | None = None


@dataclass(frozen=True)
class RequestOutcome:
    """Everything measured for one request, successful or not.

    ``scheduled_ns`` is when the load generator meant to send the request (its arrival time) and
    ``sent_ns`` when the client actually started it; TTFT and end-to-end count from the scheduled
    time so that a late client (or a queue in front of it) shows up in the latency instead of hiding
    (coordinated omission). ``itl_s`` holds every gap between consecutive output events. TPOT is
    (end-to-end - TTFT) / (output tokens - 1) with the server's output count, the convention of
    vLLM's and others' serving benchmarks. A failed request keeps what it measured before failing.
    The request's designed reuse and its place in a conversation are carried over from it.
    """

    request_id: str
    api: Api
    scheduled_ns: int
    sent_ns: int
    end_ns: int
    events: tuple[TokenEvent, ...]
    usage: Usage | None
    finish_reason: str | None
    failure: RequestFailure | None = None
    expected_input_tokens: int | None = None
    max_tokens: int | None = None
    text: str = field(default="", repr=False)
    designed_cached_tokens: int | None = None
    conversation: int | None = None
    turn: int | None = None
    history_messages: int | None = None

    @property
    def ok(self) -> bool:
        """True when the request completed with the server's usage and no failure."""
        return self.failure is None

    @property
    def input_tokens(self) -> int | None:
        """Prompt tokens as the server counted them; None when it never said."""
        return None if self.usage is None else self.usage.prompt_tokens

    @property
    def output_tokens(self) -> int | None:
        """Output tokens as the server counted them; None when it never said."""
        return None if self.usage is None else self.usage.completion_tokens

    @property
    def first_token_ns(self) -> int | None:
        return self.events[0].t_ns if self.events else None

    @property
    def ttft_s(self) -> float | None:
        """Time to first token, from the scheduled time; None when no output arrived."""
        first = self.first_token_ns
        return None if first is None else (first - self.scheduled_ns) / 1e9

    @property
    def client_delay_s(self) -> float:
        """How late the client started the request after its scheduled time."""
        return (self.sent_ns - self.scheduled_ns) / 1e9

    @property
    def e2e_s(self) -> float:
        """End-to-end latency, from the scheduled time to the end of the stream (or the failure)."""
        return (self.end_ns - self.scheduled_ns) / 1e9

    @property
    def itl_ns(self) -> tuple[int, ...]:
        """Every gap between consecutive output events, in nanoseconds."""
        stamps = [event.t_ns for event in self.events]
        return tuple(b - a for a, b in itertools.pairwise(stamps))

    @property
    def itl_s(self) -> tuple[float, ...]:
        """Every gap between consecutive output events, in seconds."""
        return tuple(gap / 1e9 for gap in self.itl_ns)

    @property
    def tpot_ns(self) -> float | None:
        """Mean time per output token after the first; None without usage, output, or a second token."""
        n_out = self.output_tokens
        if n_out is None or n_out < 2 or not self.events:
            return None
        return (self.events[-1].t_ns - self.events[0].t_ns) / (n_out - 1)

    @property
    def tpot_s(self) -> float | None:
        tpot = self.tpot_ns
        return None if tpot is None else tpot / 1e9

    @property
    def median_itl_s(self) -> float | None:
        gaps = self.itl_s
        return statistics.median(gaps) if gaps else None


def build_outcome(
    request: EngineRequest,
    *,
    scheduled_ns: int,
    sent_ns: int,
    end_ns: int,
    events: list[TokenEvent] | tuple[TokenEvent, ...],
    usage: Usage | None,
    finish_reason: str | None,
    failure: RequestFailure | None,
) -> RequestOutcome:
    """The outcome of ``request``; a stream that ended without usage fails as ``NO_USAGE``, one whose
    usage counts more output tokens than asked as ``EXCESS_TOKENS``."""
    if failure is None and usage is None:
        failure = RequestFailure(FailureKind.NO_USAGE, "stream ended without a usage chunk (include_usage)")
    if failure is None and usage is not None and usage.completion_tokens > request.max_tokens:
        # A server that ignores max_tokens measures another workload than the one asked for.
        failure = RequestFailure(
            FailureKind.EXCESS_TOKENS,
            f"the server reported {usage.completion_tokens} output tokens for max_tokens {request.max_tokens}",
        )
    return RequestOutcome(
        request_id=request.request_id,
        api=request.api,
        scheduled_ns=scheduled_ns,
        sent_ns=sent_ns,
        end_ns=end_ns,
        events=tuple(events),
        usage=usage,
        finish_reason=finish_reason,
        failure=failure,
        expected_input_tokens=request.input_tokens,
        max_tokens=request.max_tokens,
        text="".join(event.text for event in events),
        designed_cached_tokens=request.designed_cached_tokens,
        conversation=request.conversation,
        turn=request.turn,
        history_messages=request.history_messages,
    )
