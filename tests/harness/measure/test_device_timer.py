"""The sampler with a device timer, driven by a scripted host clock and a scripted device clock."""

from __future__ import annotations

from backends.base import DeviceTimer
from harness.measure.sampler import HOST_CLOCK, SamplingPolicy, sample


class Scripted:
    """A host clock in ns plus a device whose queue runs a call in a scripted device time.

    It also logs the order of operations, so the tests can check where the marks and the
    synchronize sit relative to the call.
    """

    name = "scripted_events"

    def __init__(self, host_cost: int, device_costs: list[int]) -> None:
        self.now = 0
        self.host_cost = host_cost
        self.device_costs = iter(device_costs)
        self.log: list[str] = []
        self.pending = 0
        self.started = False
        self.stopped = False
        self.synced = False
        self.last = 0

    def clock(self) -> int:
        return self.now

    def call(self) -> None:
        self.log.append("call")
        self.now += self.host_cost
        self.pending = next(self.device_costs)

    def start(self) -> None:
        self.log.append("start")
        self.started, self.stopped, self.synced = True, False, False

    def stop(self) -> None:
        self.log.append("stop")
        self.stopped = True

    def synchronize(self) -> None:
        self.log.append("sync")
        self.synced = True
        self.last = self.pending

    def elapsed_ns(self) -> int:
        # CUDA raises if an event has not completed; reading before the synchronize is a bug.
        assert self.started and self.stopped and self.synced, "elapsed read before start/stop/synchronize"
        self.log.append("read")
        return self.last


def test_the_device_timer_satisfies_the_protocol_used_by_backends() -> None:
    timer: DeviceTimer = Scripted(1, [1])
    assert timer.name == "scripted_events"


def test_device_samples_are_primary_and_host_samples_sit_beside_them() -> None:
    device_costs = [7_000, 9_000] * 10_000
    dev = Scripted(host_cost=20_000, device_costs=device_costs)
    result = sample(
        dev.call,
        SamplingPolicy(max_time_s=0.05, warmup_time_s=0.0, warmup_min_count=2, min_count=10),
        synchronize=dev.synchronize,
        clock=dev.clock,
        device_timer=dev,
    )
    assert result.timer == "scripted_events"
    assert result.host_samples_ns is not None
    assert len(result.host_samples_ns) == len(result.samples_ns) >= 10
    assert set(result.host_samples_ns) == {20_000}
    # Warmup used two device costs (7 and 9 µs), so the timed calls start again at 7 µs.
    assert result.samples_ns[:4] == [7_000, 9_000, 7_000, 9_000]
    assert set(result.samples_ns) == {7_000, 9_000}


def test_marks_wrap_the_call_and_the_read_comes_after_the_synchronize() -> None:
    dev = Scripted(host_cost=1_000, device_costs=[500] * 10_000)
    sample(
        dev.call,
        SamplingPolicy(max_time_s=0.01, warmup_time_s=0.0, warmup_min_count=1, min_count=3),
        synchronize=dev.synchronize,
        clock=dev.clock,
        device_timer=dev,
    )
    # Warmup: call and synchronize only, no marks.
    assert dev.log[:2] == ["call", "sync"]
    timed = dev.log[2:]
    assert len(timed) % 5 == 0
    for i in range(0, len(timed), 5):
        assert timed[i : i + 5] == ["start", "call", "stop", "sync", "read"]


def test_the_start_mark_stays_outside_the_host_interval() -> None:
    """Marks cost host time; only the stop mark (needed before the synchronize) is inside."""
    dev = Scripted(host_cost=1_000, device_costs=[500] * 10_000)
    original_start, original_stop = dev.start, dev.stop

    def costly_start() -> None:
        original_start()
        dev.now += 300

    def costly_stop() -> None:
        original_stop()
        dev.now += 40

    dev.start, dev.stop = costly_start, costly_stop  # type: ignore[method-assign]
    result = sample(
        dev.call,
        SamplingPolicy(max_time_s=0.01, warmup_time_s=0.0, warmup_min_count=1, min_count=3),
        synchronize=dev.synchronize,
        clock=dev.clock,
        device_timer=dev,
    )
    assert set(result.host_samples_ns or []) == {1_040}


def test_the_stopping_rule_follows_the_device_samples() -> None:
    """Steady device times converge even when the host's are noisy."""
    host_costs = iter([10_000, 90_000] * 100_000)
    dev = Scripted(host_cost=0, device_costs=[5_000] * 200_000)
    original_call = dev.call

    def noisy_call() -> None:
        original_call()
        dev.now += next(host_costs)

    result = sample(
        noisy_call,
        SamplingPolicy(max_time_s=1.0, warmup_time_s=0.0, warmup_min_count=1, target_rel_ci=0.01),
        synchronize=dev.synchronize,
        clock=dev.clock,
        device_timer=dev,
    )
    assert result.stop_reason == "converged"
    assert set(result.samples_ns) == {5_000}
    assert set(result.host_samples_ns or []) == {10_000, 90_000}


def test_without_a_device_timer_nothing_changes() -> None:
    dev = Scripted(host_cost=3_000, device_costs=[1] * 10_000)
    result = sample(
        dev.call, SamplingPolicy(max_time_s=0.01, warmup_time_s=0.0), synchronize=dev.synchronize, clock=dev.clock
    )
    assert result.timer == HOST_CLOCK
    assert result.host_samples_ns is None
    assert set(result.samples_ns) == {3_000}
    assert "start" not in dev.log and "read" not in dev.log
