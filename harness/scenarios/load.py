"""Drive a system with an open-loop schedule, and the same queue simulated as discrete events.

``run_open_loop`` is the real driver: worker slots (the concurrency limit) take requests in
schedule order, each waits for its request's due time if it is early, runs it, and records the
token completion times. Latency is measured from the *due* time, not from when a worker got to
the request, so a backlog counts against the system (no coordinated omission, Tene 2013). With
one worker it runs in the caller's thread, so a test drives it entirely with a fake clock.

``simulate_fifo`` is the same first-come-first-served multi-server queue computed on paper: each
request starts when it is due or when the earliest server frees up, whichever is later. With a
fixed service time it is the M/D/c queue whose answers are known analytically, which is how the
capacity search is tested.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.scenarios.tokens import RequestTimeline

__all__ = ["Handler", "LoadRun", "run_open_loop", "simulate_fifo"]

#: Runs one request; given the clock, returns the completion time of each output token (clock ns).
Handler = Callable[[Callable[[], int]], Sequence[int]]


@dataclass(frozen=True)
class LoadRun:
    """What an open-loop run saw: completed requests in schedule order, and any it had to drop."""

    timelines: list[RequestTimeline]
    dropped: int
    origin_ns: int
    end_ns: int

    @property
    def duration_ns(self) -> int:
        """From the schedule's time zero to the last completion."""
        return max(1, self.end_ns - self.origin_ns)


def run_open_loop(
    schedule_s: Sequence[float],
    handlers: Sequence[Handler],
    *,
    clock: Callable[[], int] = time.perf_counter_ns,
    sleep: Callable[[float], None] = time.sleep,
    deadline_s: float | None = None,
) -> LoadRun:
    """Run the requests due at ``schedule_s`` (seconds from now) on ``len(handlers)`` slots.

    A request not yet started ``deadline_s`` after time zero is dropped, so an overloaded run
    ends instead of draining an ever-growing queue; dropped requests fail any SLO.
    """
    if not handlers:
        raise ValueError("an open-loop run needs at least one handler (concurrency >= 1)")
    origin = clock()
    due = [origin + round(s * 1e9) for s in schedule_s]
    limit = None if deadline_s is None else origin + int(deadline_s * 1e9)
    results: list[RequestTimeline | None] = [None] * len(due)
    lock = threading.Lock()
    cursor = [0]
    failures: list[BaseException] = []

    def take() -> int | None:
        with lock:
            if cursor[0] >= len(due) or failures:
                return None
            index = cursor[0]
            cursor[0] += 1
            return index

    def serve(handler: Handler) -> None:
        try:
            while (index := take()) is not None:
                now = clock()
                if limit is not None and now > limit:
                    with lock:
                        cursor[0] = len(due)  # drop this and every request after it
                    return
                if now < due[index]:
                    sleep((due[index] - now) / 1e9)
                tokens = tuple(handler(clock))
                results[index] = RequestTimeline(due[index], tokens)
        except BaseException as exc:
            with lock:
                failures.append(exc)

    if len(handlers) == 1:
        serve(handlers[0])
    else:
        threads = [threading.Thread(target=serve, args=(h,), daemon=True) for h in handlers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if failures:
        raise failures[0]
    done = [r for r in results if r is not None]
    end = max((t.token_ns[-1] for t in done), default=clock())
    return LoadRun(timelines=done, dropped=len(due) - len(done), origin_ns=origin, end_ns=end)


def simulate_fifo(schedule_s: Sequence[float], service_s: float | Sequence[float], servers: int = 1) -> LoadRun:
    """The queue of ``run_open_loop`` computed exactly: FIFO, ``servers`` slots, given service times."""
    if servers < 1:
        raise ValueError(f"servers must be 1 or more, got {servers}")
    count = len(schedule_s)
    services = [float(service_s)] * count if isinstance(service_s, int | float) else [float(s) for s in service_s]
    if len(services) != count:
        raise ValueError(f"{len(services)} service times for {count} requests")
    free = [0.0] * servers
    timelines = []
    for arrival, service in zip(schedule_s, services, strict=True):
        start = max(float(arrival), heapq.heappop(free))
        finish = start + service
        heapq.heappush(free, finish)
        timelines.append(RequestTimeline(round(arrival * 1e9), (round(finish * 1e9),)))
    end = max((t.token_ns[-1] for t in timelines), default=0)
    return LoadRun(timelines=timelines, dropped=0, origin_ns=0, end_ns=end)
