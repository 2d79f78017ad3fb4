"""The open-loop driver, on a fake clock: latency runs from the scheduled arrival, so queueing
behind a slow request is counted (no coordinated omission), and the driver agrees exactly with
the same queue simulated as discrete events."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from harness.scenarios.arrivals import poisson_schedule
from harness.scenarios.load import LoadRun, run_open_loop, simulate_fifo

MS = 1_000_000


class FakeClock:
    """Nanoseconds that move only when a request 'runs' or the driver 'sleeps'."""

    def __init__(self, start: int = 1_000 * MS) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> int:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += round(seconds * 1e9)


def server(clock: FakeClock, service_ms: Sequence[float], tokens: int = 1) -> Callable[[Callable[[], int]], list[int]]:
    """A handler taking the next service time per request, emitting ``tokens`` evenly spaced."""
    costs = iter(service_ms)

    def handle(now: Callable[[], int]) -> list[int]:
        cost = round(next(costs) * MS)
        times = []
        for index in range(tokens):
            clock.now += cost // tokens if index < tokens - 1 else cost - (cost // tokens) * (tokens - 1)
            times.append(now())
        return times

    return handle


def latencies_ms(run: LoadRun) -> list[float]:
    return [t.e2e_ns / MS for t in run.timelines]


def test_latency_includes_the_queue_behind_a_slow_request() -> None:
    # Due at 0, 1, 2, 3 ms; the first request takes 10 ms, the others 1 ms each. Measured from the
    # scheduled arrival, every request waits for the slow one: 10, 10, 10, 10 ms. A driver that
    # timed from when it got round to sending would report 10, 1, 1, 1 and hide the queue.
    clock = FakeClock()
    run = run_open_loop([0.0, 0.001, 0.002, 0.003], [server(clock, [10, 1, 1, 1])], clock=clock, sleep=clock.sleep)
    assert latencies_ms(run) == pytest.approx([10, 10, 10, 10])
    assert run.dropped == 0
    assert run.duration_ns == 13 * MS


def test_an_idle_server_waits_for_each_due_time() -> None:
    clock = FakeClock()
    run = run_open_loop([0.005, 0.020], [server(clock, [2, 3])], clock=clock, sleep=clock.sleep)
    assert clock.sleeps == pytest.approx([0.005, 0.013])
    assert latencies_ms(run) == pytest.approx([2, 3])
    assert [t.due_ns - run.origin_ns for t in run.timelines] == [5 * MS, 20 * MS]


def test_driver_matches_the_discrete_event_simulation() -> None:
    schedule = poisson_schedule(80.0, 400, seed=4).tolist()
    services = [5.0 + (i * 7919 % 13) for i in range(400)]  # 5..17 ms, mean ~11 ms: utilization ~0.9
    clock = FakeClock()
    driven = run_open_loop(schedule, [server(clock, services)], clock=clock, sleep=clock.sleep)
    simulated = simulate_fifo(schedule, [s / 1000 for s in services])
    assert latencies_ms(driven) == pytest.approx(latencies_ms(simulated), abs=1e-5)
    assert max(latencies_ms(driven)) > 3 * max(services)  # the queue really formed


def test_token_times_give_ttft_from_the_due_time() -> None:
    clock = FakeClock()
    run = run_open_loop([0.0, 0.001], [server(clock, [8, 8], tokens=4)], clock=clock, sleep=clock.sleep)
    first, second = run.timelines
    assert first.ttft_ns == 2 * MS and first.tpot_ns == pytest.approx(2 * MS)
    assert second.ttft_ns == (8 - 1 + 2) * MS  # waited 7 ms in the queue, then 2 ms to its first token
    assert second.tpot_ns == pytest.approx(2 * MS)  # the queue does not change TPOT


def test_requests_past_the_deadline_are_dropped() -> None:
    clock = FakeClock()
    run = run_open_loop(
        [0.0, 0.001, 0.002, 0.003], [server(clock, [50, 1, 1, 1])], clock=clock, sleep=clock.sleep, deadline_s=0.02
    )
    assert len(run.timelines) == 1 and run.dropped == 3


def test_handler_errors_reach_the_caller() -> None:
    def broken(_: Callable[[], int]) -> list[int]:
        raise RuntimeError("device fault")

    with pytest.raises(RuntimeError, match="device fault"):
        run_open_loop([0.0], [broken])
    with pytest.raises(RuntimeError, match="device fault"):
        run_open_loop([0.0, 0.0], [broken, broken])


def test_concurrent_slots_serve_every_request_once() -> None:
    seen: list[int] = []

    def handler(clock: Callable[[], int]) -> list[int]:
        seen.append(1)
        return [clock()]

    run = run_open_loop([0.0] * 50, [handler] * 3)
    assert len(seen) == 50 and len(run.timelines) == 50 and run.dropped == 0
    assert all(t.e2e_ns >= 0 for t in run.timelines)


def test_simulated_fifo_with_two_servers_by_hand() -> None:
    # Arrivals 0, 0, 0, 1 ms; service 4 ms; two servers: starts 0, 0, 4, 4 -> ends 4, 4, 8, 8.
    run = simulate_fifo([0.0, 0.0, 0.0, 0.001], 0.004, servers=2)
    assert latencies_ms(run) == pytest.approx([4, 4, 8, 7])
    with pytest.raises(ValueError, match="servers"):
        simulate_fifo([0.0], 0.001, servers=0)
    with pytest.raises(ValueError, match="service times"):
        simulate_fifo([0.0, 1.0], [0.001])
