"""Load on a serving engine: open-loop Poisson arrivals and closed-loop users, request by request.

An engine batches continuously, so load is applied the way clients would: as separate requests in
flight at once, each a stream. Two shapes, both on one asyncio event loop through an
``EngineBackend`` (``backends.engine``):

- **open loop** (``run_open_loop``): each request is submitted at its scheduled time from a fixed
  schedule (``arrivals.poisson_schedule``), whatever is still in flight; TTFT and end-to-end count
  from the scheduled time, so a late client or a queue in the engine shows (no coordinated
  omission). Requests still open at the deadline are cancelled and fail as ``cancelled``.
- **closed loop** (``run_closed_loop``): ``concurrency`` users, each sending its next request as
  soon as the last one ends, for a fixed number of requests. This is how engine results are most
  often quoted ("at 1, 2, 4, … concurrent users").

Token counts are the server's (``usage``); a run's output tokens/s is the sum of the server's
output counts over the run's wall time. A failed request is kept with its reason, counted, and fails
any SLO it was part of, as a dropped request does in the in-process server scenario.
"""

from __future__ import annotations

import asyncio
import gc
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from backends.engine.protocol import EngineBackend
from backends.engine.records import FailureKind, RequestOutcome
from harness.runfile.engine import EngineRequest
from harness.scenarios.tokens import SLO

__all__ = [
    "EngineLoadRun",
    "LoadShape",
    "outcome_meets",
    "run_closed_loop",
    "run_open_loop",
    "run_sync",
]

T = TypeVar("T")

#: A user's wait after a failed request, doubling while failures last (seconds).
BACKOFF_FIRST_S = 0.01
BACKOFF_MAX_S = 1.0


@dataclass(frozen=True)
class LoadShape:
    """How a run was driven: an offered rate (open loop) or a number of users (closed loop)."""

    kind: str
    rate_rps: float | None = None
    concurrency: int | None = None


@dataclass(frozen=True)
class EngineLoadRun:
    """Every request of one run, in submission order, and the run's wall-clock window."""

    shape: LoadShape
    outcomes: tuple[RequestOutcome, ...]
    origin_ns: int
    end_ns: int

    @property
    def duration_ns(self) -> int:
        """From the run's time zero to the last request's end."""
        return max(1, self.end_ns - self.origin_ns)

    @property
    def ok(self) -> tuple[RequestOutcome, ...]:
        return tuple(o for o in self.outcomes if o.ok)

    @property
    def failed(self) -> int:
        return sum(1 for o in self.outcomes if not o.ok)

    def failures(self) -> dict[str, int]:
        """Failed requests counted by reason (``FailureKind`` values)."""
        return dict(Counter(o.failure.kind.value for o in self.outcomes if o.failure is not None))

    @property
    def completed_rps(self) -> float:
        return len(self.ok) / (self.duration_ns / 1e9)

    @property
    def output_tokens(self) -> int:
        """Output tokens the server reported, over the successful requests."""
        return sum(o.output_tokens or 0 for o in self.ok)

    @property
    def input_tokens(self) -> int:
        return sum(o.input_tokens or 0 for o in self.ok)

    @property
    def output_tokens_per_s(self) -> float:
        return self.output_tokens / (self.duration_ns / 1e9)

    @property
    def total_tokens_per_s(self) -> float:
        return (self.input_tokens + self.output_tokens) / (self.duration_ns / 1e9)

    def ttft_ns(self) -> list[float]:
        return [float(first - o.scheduled_ns) for o in self.ok if (first := o.first_token_ns) is not None]

    def tpot_ns(self) -> list[float]:
        return [tpot for o in self.ok if (tpot := o.tpot_ns) is not None]

    def itl_ns(self) -> list[float]:
        """Every gap between consecutive output events of every successful request, pooled."""
        return [float(gap) for o in self.ok for gap in o.itl_ns]

    def e2e_ns(self) -> list[float]:
        return [float(o.end_ns - o.scheduled_ns) for o in self.ok]

    def meets(self, slo: SLO, percentile: float = 99) -> bool:
        """Whether every request succeeded and each targeted metric's p99 is within target."""
        if self.failed or not self.outcomes:
            return False
        checks = ((slo.ttft_ns, self.ttft_ns), (slo.tpot_ns, self.tpot_ns), (slo.e2e_ns, self.e2e_ns))
        return all(
            target is None or not values() or _percentile(values(), percentile) <= target for target, values in checks
        )

    def goodput_rps(self, slo: SLO) -> float:
        """Requests per second that succeeded and met every target."""
        return sum(1 for o in self.outcomes if outcome_meets(o, slo)) / (self.duration_ns / 1e9)


def outcome_meets(outcome: RequestOutcome, slo: SLO) -> bool:
    """Whether one request succeeded and met every target (TPOT by the server's token count)."""
    if not outcome.ok:
        return False
    first, tpot = outcome.first_token_ns, outcome.tpot_ns
    if slo.ttft_ns is not None and (first is None or first - outcome.scheduled_ns > slo.ttft_ns):
        return False
    if slo.tpot_ns is not None and tpot is not None and tpot > slo.tpot_ns:
        return False
    return not (slo.e2e_ns is not None and outcome.end_ns - outcome.scheduled_ns > slo.e2e_ns)


def _percentile(values: Sequence[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


async def run_open_loop(
    engine: EngineBackend,
    next_request: Callable[[], EngineRequest],
    schedule_s: Sequence[float],
    *,
    deadline_s: float | None = None,
    rate_rps: float | None = None,
    until: float | None = None,
) -> EngineLoadRun:
    """Submit one request at each time of ``schedule_s`` (seconds from now); wait for them all.

    Requests are built before time zero, so building them costs nothing inside the run. Those
    still open ``deadline_s`` after time zero are cancelled (they fail as ``cancelled``). No
    arrival is waited for past ``until`` (``time.monotonic`` seconds, the cell's limit): the rest
    of the schedule is dropped, and the client fails what is still open then.
    """
    requests = [next_request() for _ in schedule_s]
    loop = asyncio.get_running_loop()
    origin_ns = time.monotonic_ns() + 1_000_000
    due = [origin_ns + round(s * 1e9) for s in schedule_s]
    streams = []
    for request, at_ns in zip(requests, due, strict=True):
        if until is not None and at_ns / 1e9 >= until:
            break
        wait = (at_ns - time.monotonic_ns()) / 1e9
        if wait > 0:
            await asyncio.sleep(wait)
        streams.append(engine.submit(request, scheduled_ns=at_ns))
    pending = [loop.create_task(_outcome(stream)) for stream in streams]
    if deadline_s is not None:
        left = (origin_ns + deadline_s * 1e9 - time.monotonic_ns()) / 1e9
        _done, late = await asyncio.wait(pending, timeout=max(0.0, left))
        if late:
            await engine.aclose()
    outcomes = tuple([await task for task in pending])
    end_ns = max((o.end_ns for o in outcomes), default=time.monotonic_ns())
    return EngineLoadRun(LoadShape("open_loop", rate_rps=rate_rps), outcomes, origin_ns, end_ns)


async def run_closed_loop(
    engine: EngineBackend,
    next_request: Callable[[], EngineRequest],
    concurrency: int,
    requests: int | None = None,
    *,
    stop: Callable[[Sequence[RequestOutcome]], bool] | None = None,
    backoff: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> EngineLoadRun:
    """``concurrency`` users, each sending its next request as soon as its last one ends.

    The run sends ``requests`` requests in all, or, with ``stop``, goes on until ``stop(outcomes so
    far, in completion order)`` is true; requests in flight then finish and are kept.

    Faults end or slow the loop, never spin it: a request refused a connection (the server is
    gone: twice in a row for one user, so one dropped keep-alive connection is not taken for a
    dead server) or failed by the cell's time limit stops every user; a user whose
    request failed otherwise (429, 500, a broken stream) waits before its next one, doubling from
    ``BACKOFF_FIRST_S`` to ``BACKOFF_MAX_S`` while failures last, as a client that is throttled
    would, so a server answering errors in microseconds does not fill the run with them.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be 1 or more, got {concurrency}")
    if requests is None and stop is None:
        raise ValueError("a closed loop needs a number of requests or a stopping rule")
    finished: list[tuple[int, RequestOutcome]] = []
    done: list[RequestOutcome] = []
    issued = 0
    stopped = False
    origin_ns = time.monotonic_ns()

    async def user() -> None:
        nonlocal issued, stopped
        pause = 0.0
        last: FailureKind | None = None
        while not stopped and (requests is None or issued < requests):
            index = issued
            issued += 1
            outcome = await engine.submit(next_request()).outcome()
            finished.append((index, outcome))
            done.append(outcome)
            failure = outcome.failure
            kind = None if failure is None else failure.kind
            if kind is FailureKind.CELL_LIMIT or (kind is FailureKind.CONNECT and last is FailureKind.CONNECT):
                stopped = True
            last = kind
            if stop is not None and not stopped and stop(done):
                stopped = True
            if failure is None:
                pause = 0.0
            elif not stopped:
                pause = min(BACKOFF_MAX_S, max(BACKOFF_FIRST_S, 2 * pause))
                await backoff(pause)

    users = concurrency if requests is None else min(concurrency, requests)
    await asyncio.gather(*(user() for _ in range(users)))
    ordered = tuple(outcome for _, outcome in sorted(finished, key=lambda pair: pair[0]))
    end_ns = max((o.end_ns for o in ordered), default=time.monotonic_ns())
    return EngineLoadRun(LoadShape("closed_loop", concurrency=concurrency), ordered, origin_ns, end_ns)


async def _outcome(stream: Any) -> RequestOutcome:
    result: RequestOutcome = await stream.outcome()
    return result


def run_sync(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run one load on a fresh event loop, with the cyclic garbage collector paused.

    A collection of the older generations stops the loop for milliseconds with thousands of
    streams' objects alive, and every stream read in that pause is stamped late; ``timeit``
    pauses the collector for the same reason. Reference counting still frees almost everything,
    and a full collection runs right after.
    """
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        return asyncio.run(main())
    finally:
        if was_enabled:
            gc.enable()
        gc.collect()


def probe_requests(rate_rps: float, probe_s: float, min_requests: int, max_requests: int) -> int:
    """How many requests a probe at ``rate_rps`` sends: about ``probe_s`` worth, within bounds."""
    return max(min_requests, min(max_requests, math.ceil(rate_rps * probe_s)))
