"""The ``generate`` and ``server`` scenarios on a serving engine, apart from any cell plumbing.

``generate`` on an engine is a closed loop of ``concurrency`` users (``measure_closed_loop``):
warm up, then send until the sampler's rule says stop (at least ``min_count`` requests, then until
the median end-to-end latency's interval is within the target, the time budget is spent, or
``max_count`` is reached). A sweep over concurrency (1, 2, 4, … users) is one cell per value.

``server`` on an engine is the open loop of the in-process server scenario: Poisson arrivals fixed
in advance, latencies from the scheduled times, and a capacity search (``search_capacity``) for
the highest rate whose p99 TTFT, TPOT and end-to-end latency meet the SLO with no request failed;
goodput is the rate of requests that met every target. Every probe replays the request set from
its start with the same arrival seed, so probes differ only in rate (common random numbers).

Each load runs on a fresh event loop with its own client (``engine_load.run_sync``), so a probe
cannot inherit a previous probe's connections or stragglers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from backends.engine.client import OpenAIClient
from backends.engine.protocol import ClientTimeouts, Endpoint
from backends.engine.records import RequestOutcome
from harness.errors import ConfigError
from harness.measure.sampler import SamplingPolicy
from harness.runfile.engine import EngineRequest
from harness.scenarios.arrivals import DEFAULT_SEED, poisson_schedule
from harness.scenarios.capacity import CapacitySearch, find_capacity
from harness.scenarios.engine_load import EngineLoadRun, run_closed_loop, run_open_loop, run_sync
from harness.scenarios.tokens import SLO
from workloads.request_sets import RequestSet
from workloads.reuse import PrefixReuse

__all__ = [
    "ClosedLoopResult",
    "EngineProbe",
    "EngineTarget",
    "measure_closed_loop",
    "measure_unloaded",
    "probe_rate",
    "replay_trace",
    "search_capacity",
]

T = TypeVar("T")

#: The capacity search's budget is split over about this many probes (as in-process ``server``).
PROBES_PER_SEARCH = 8
MAX_PROBES = 12
REL_TOL = 0.05
#: The search gives up below the first guess divided by this.
MIN_RATE_DIVISOR = 32
#: A probe's stragglers are cancelled this long (times the unloaded end-to-end) after its last arrival.
GRACE_FACTOR = 20
#: Requests sent one at a time to learn the unloaded latency the search starts from.
UNLOADED_REQUESTS = 3


@dataclass(frozen=True)
class EngineTarget:
    """What an engine cell drives: the server, the client's deadlines and the request set.

    ``reuse`` (for prompts sent as token ids) follows every request drawn for a load, in sending
    order, and stamps each with its designed reuse (``workloads.reuse``)."""

    endpoint: Endpoint
    requests: RequestSet
    timeouts: ClientTimeouts = field(default_factory=ClientTimeouts)
    reuse: PrefixReuse | None = None

    def designed(self, request: EngineRequest) -> EngineRequest:
        """``request`` as sent next: with the tokens of it earlier requests had sent."""
        from dataclasses import replace

        if self.reuse is None or not isinstance(request.prompt, tuple):
            return request
        return replace(request, designed_cached_tokens=self.reuse.send(request.prompt))

    def cycle(self, prefix: str) -> Callable[[], EngineRequest]:
        """The request set round and round (``RequestSet.cycle``), each request stamped as drawn."""
        draw = self.requests.cycle(prefix)
        if self.reuse is None:
            return draw
        return lambda: self.designed(draw())

    def until(self, moment: float) -> EngineTarget:
        """This target with every request ending by ``moment`` (``time.monotonic`` seconds): the
        cell's time limit, kept by the client whatever its per-request deadlines."""
        from dataclasses import replace

        return replace(self, timeouts=replace(self.timeouts, until=moment))

    def out_of_time(self) -> bool:
        """Whether the cell's time limit (``until``) has passed."""
        until = self.timeouts.until
        return until is not None and time.monotonic() >= until

    def load(
        self, body: Callable[[OpenAIClient], Awaitable[T]], *, connections: int = 0, limit_s: float | None = None
    ) -> T:
        """Run ``body`` with a fresh client on a fresh event loop; ``connections`` opened first.

        ``limit_s`` ends every request within that many seconds of the loop's start (``until``
        counted from there, not from before the collector's pause in ``run_sync``)."""
        from dataclasses import replace

        async def main() -> T:
            timeouts = self.timeouts
            if limit_s is not None:
                timeouts = replace(timeouts, until=time.monotonic() + limit_s)
            async with OpenAIClient(self.endpoint, timeouts) as client:
                if connections:
                    await client.open_connections(connections)
                return await body(client)

        return run_sync(main)


@dataclass(frozen=True)
class ClosedLoopResult:
    """A closed loop's warm-up and measured runs, and which rule stopped the measured one."""

    warmup: EngineLoadRun
    run: EngineLoadRun
    stop_reason: str
    rel_ci_half_width: float


#: A closed loop's stopping rule is evaluated again once the count has grown by this factor.
CHECK_GROWTH = 1.1


def _e2e(outcomes: Sequence[RequestOutcome]) -> list[float]:
    return [float(o.end_ns - o.scheduled_ns) for o in outcomes if o.ok]


def measure_closed_loop(target: EngineTarget, concurrency: int, policy: SamplingPolicy) -> ClosedLoopResult:
    """Warm up, then measure ``concurrency`` users under the sampler's stopping rule.

    The rule's interval is computed when the count has grown by ``CHECK_GROWTH`` since the last
    one, not after every request: it runs on the event loop, between a user's last response and
    its next request, and with its dependence estimate it took 5-16 ms at 50-300 requests on a
    busy 2-core machine. Run after every completion, that stalled every stream's reads (stamped
    late) and spread apart requests that would have been sent together, which changes the load
    itself (against ``vllm bench serve`` at 4 users, fewer requests arrived together, and their
    TTFT median fell between the two modes of arriving alone and together). At most a tenth more
    requests are taken than the rule needed; the time budget is still checked after every one.
    """
    from harness.measure.stats import relative_half_width

    warm_count = max(concurrency, policy.warmup_min_count)
    reason = ["time_budget"]
    rel = [math.inf]

    def warm_enough(started_ns: int) -> Callable[[Sequence[RequestOutcome]], bool]:
        return lambda done: len(done) >= warm_count and time.monotonic_ns() - started_ns >= policy.warmup_time_s * 1e9

    def measured_enough(started_ns: int) -> Callable[[Sequence[RequestOutcome]], bool]:
        deadline = started_ns + policy.max_time_s * 1e9

        next_check = [policy.min_count]

        def stop(done: Sequence[RequestOutcome]) -> bool:
            count = len(done)
            if count >= policy.max_count:
                reason[0] = "max_count"
                return True
            if count < policy.min_count:
                return False
            if count >= next_check[0]:
                next_check[0] = max(count + 1, math.ceil(count * CHECK_GROWTH))
                e2e = _e2e(done)
                if len(e2e) >= 2:
                    rel[0] = relative_half_width(e2e, policy.confidence)
                    if rel[0] <= policy.target_rel_ci:
                        reason[0] = "converged"
                        return True
            return time.monotonic_ns() >= deadline

        return stop

    async def both(client: OpenAIClient) -> tuple[EngineLoadRun, EngineLoadRun]:
        warm_next = target.cycle("w")
        warmup = await run_closed_loop(client, warm_next, concurrency, stop=warm_enough(time.monotonic_ns()))
        next_request = target.cycle("m")
        run = await run_closed_loop(client, next_request, concurrency, stop=measured_enough(time.monotonic_ns()))
        return warmup, run

    warmup, run = target.load(both, connections=concurrency)
    return ClosedLoopResult(warmup, run, reason[0], rel[0])


def measure_unloaded(target: EngineTarget, count: int = UNLOADED_REQUESTS) -> EngineLoadRun:
    """A few requests one at a time: the latency with no queue, where the capacity search starts."""

    async def alone(client: OpenAIClient) -> EngineLoadRun:
        return await run_closed_loop(client, target.cycle("u"), 1, count)

    return target.load(alone, connections=1)


@dataclass(frozen=True)
class EngineProbe:
    """One open-loop run at one offered rate, judged against the SLO."""

    rate: float
    run: EngineLoadRun
    slo: SLO

    @property
    def passed(self) -> bool:
        return self.run.meets(self.slo)


def probe_rate(
    target: EngineTarget, rate: float, slo: SLO, count: int, *, grace_s: float, seed: int = DEFAULT_SEED
) -> EngineProbe:
    """``count`` Poisson arrivals at ``rate``; requests still open ``grace_s`` after the last one fail."""
    schedule = poisson_schedule(rate, count, seed).tolist()
    deadline = float(schedule[-1]) + grace_s

    async def probe(client: OpenAIClient) -> EngineLoadRun:
        return await run_open_loop(
            client,
            target.cycle(f"q{rate:g}-"),
            schedule,
            deadline_s=deadline,
            rate_rps=rate,
            until=target.timeouts.until,
        )

    # Connections for the expected number in flight, at most 256: beyond, the pool grows as needed.
    return EngineProbe(rate, target.load(probe, connections=min(count, 256)), slo)


def replay_trace(target: EngineTarget, *, grace_s: float) -> EngineLoadRun:
    """The request set's trace in open loop: each request sent at its scheduled time, whatever is
    in flight; those still open ``grace_s`` after the last send are cancelled."""
    trace = target.requests.trace
    if trace is None:
        raise ConfigError("no trace to replay: give --trace FILE")
    requests = iter([target.designed(r) for r in trace.requests])  # stamped in sending order
    schedule = list(trace.schedule_s)
    span = schedule[-1] - schedule[0]
    rate = (len(schedule) - 1) / span if span > 0 else None

    async def replay(client: OpenAIClient) -> EngineLoadRun:
        return await run_open_loop(
            client, lambda: next(requests), schedule, deadline_s=schedule[-1] + grace_s, rate_rps=rate
        )

    return target.load(replay, connections=min(len(schedule), 256))


def search_capacity(
    target: EngineTarget,
    slo: SLO,
    policy: SamplingPolicy,
    unloaded_e2e_s: float,
    *,
    out_of_time: Callable[[], bool] | None = None,
    seed: int = DEFAULT_SEED,
) -> CapacitySearch[EngineProbe]:
    """The highest Poisson rate meeting ``slo``, from one request per unloaded end-to-end time.

    An engine batches, so its capacity is usually many times that first guess; the search doubles
    from it until a rate fails, then bisects (``capacity.find_capacity``).
    """
    if slo.empty:
        raise ConfigError("a capacity search needs an SLO: give --slo-ttft, --slo-tpot or --slo-p99")
    if not unloaded_e2e_s > 0:
        raise ConfigError(f"the unloaded end-to-end latency must be positive, got {unloaded_e2e_s!r}")
    start = 1.0 / unloaded_e2e_s
    probe_s = policy.max_time_s / PROBES_PER_SEARCH
    grace_s = GRACE_FACTOR * unloaded_e2e_s

    def measure(rate: float) -> EngineProbe:
        count = max(policy.min_count, min(policy.max_count, math.ceil(rate * probe_s)))
        return probe_rate(target, rate, slo, count, grace_s=grace_s, seed=seed)

    def no_time() -> bool:
        return target.out_of_time() or (out_of_time is not None and out_of_time())

    return find_capacity(
        measure,
        lambda probe: probe.passed,
        start,
        rel_tol=REL_TOL,
        max_probes=MAX_PROBES,
        min_rate=start / MIN_RATE_DIVISOR,
        out_of_time=no_time,
    )
