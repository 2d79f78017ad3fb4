"""A trace replayed against the scripted server: requests leave at their trace times, in open loop,
each stamped in sending order with the reuse it was designed with."""

from __future__ import annotations

import numpy as np

from backends.engine import Endpoint, EngineRequest
from backends.engine.scripted import Script, ScriptedServer
from harness.scenarios.engine import EngineTarget, replay_trace
from workloads.request_sets import RequestSet
from workloads.reuse import PrefixReuse
from workloads.traces import Trace, TraceEntry, TraceRequests


def _replay_set(schedule: list[float], prompts: list[tuple[int, ...]]) -> RequestSet:
    entries = tuple(TraceEntry(t, len(p), 3) for t, p in zip(schedule, prompts, strict=True))
    requests = tuple(EngineRequest(f"t{i}", max_tokens=3, prompt=p) for i, p in enumerate(prompts))
    trace = TraceRequests(Trace("t.jsonl", "mooncake", entries, len(entries), 4), requests, tuple(schedule), 0, 1.0)
    return RequestSet(requests, "trace", "trace", "3", 0, trace=trace)


def test_requests_leave_at_their_times_whatever_is_in_flight() -> None:
    schedule = [0.0, 0.05, 0.06, 0.2, 0.21, 0.3]
    shared = tuple(range(1, 9))
    prompts = [(*shared, 100 + i, 200 + i) for i in range(len(schedule))]
    # Each request takes ~0.13 s, so several are in flight when the next is due: an open loop.
    with ScriptedServer.in_thread(Script(ttft_s=0.1, itl_s=0.01)) as server:
        target = EngineTarget(
            Endpoint(server.base_url, "scripted"), _replay_set(schedule, prompts), reuse=PrefixReuse(4)
        )
        run = replay_trace(target, grace_s=5.0)
    assert [o.request_id for o in run.outcomes] == [f"t{i}" for i in range(6)] and run.failed == 0
    due = np.array([o.scheduled_ns - run.origin_ns for o in run.outcomes]) / 1e9
    assert np.allclose(due, schedule, atol=1e-6)  # scheduled exactly at the trace's times
    late_ms = np.array([o.sent_ns - o.scheduled_ns for o in run.outcomes]) / 1e6
    assert (late_ms >= 0).all()  # never before its time (how late, on a shared machine, is not asserted)
    overlapping = sum(1 for o in run.outcomes if o.sent_ns < run.outcomes[0].end_ns)
    assert overlapping >= 3  # sent while the first was still streaming: nothing waits for a reply
    # The first request finds nothing; every later one its 8 shared tokens (2 blocks of 4).
    assert [o.designed_cached_tokens for o in run.outcomes] == [0, 8, 8, 8, 8, 8]
    assert target.reuse is not None and (target.reuse.designed, target.reuse.prompt_tokens) == (40, 60)


def test_a_set_without_a_tracker_is_drawn_unstamped() -> None:
    requests = RequestSet((EngineRequest("a", max_tokens=2, prompt=(1, 2, 3)),), "s", "3", "2", 0)
    target = EngineTarget(Endpoint("http://127.0.0.1:9/v1", "m"), requests)
    assert target.cycle("x")().designed_cached_tokens is None
    tracked = EngineTarget(Endpoint("http://127.0.0.1:9/v1", "m"), requests, reuse=PrefixReuse(1))
    draw = tracked.cycle("x")
    assert [draw().designed_cached_tokens for _ in range(3)] == [0, 2, 2]  # a repeat reuses all but the last
