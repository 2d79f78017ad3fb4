"""The adaptive sampler: warm up, then time calls until the median is known well enough.

Why this shape:
- The timed region is ``clock(); call(); synchronize(); clock()``: the synchronize makes an
  asynchronous device finish inside the region, and everything else (argument binding, list growth
  checks, statistics) stays outside it. ``call`` takes no arguments because unpacking ``*args``
  inside the region costs more than the bare call.
- Calls are timed in blocks, and the stopping rule is checked only between blocks, at geometric
  intervals, so its cost does not grow with the sample count.
- It stops when the 95% interval of the median is narrower than the target (``converged``), when
  the time budget runs out (``time_budget``) or at the count cap (``max_count``), never before
  ``min_count`` samples; the result says which.
- The clock and the synchronize are injected so tests drive the logic with a scripted clock.

Device timers (CUDA events): with a ``device_timer`` the region becomes
``timer.start(); clock(); call(); timer.stop(); synchronize(); clock()`` and the device's interval
is the primary sample, the host interval is kept beside it (``host_samples_ns``). Each call is
still synchronized on its own, and its events are read right after that synchronize; the reads are
not batched over a block of queued calls. Batching would let call n+1 be launched while call n
still runs, so each event interval would measure pipelined device occupancy (a throughput figure)
and hide the launch overhead that one request at a time must pay; the latency scenario asks for
the latter. The price is one synchronize per sample, which sits outside the device interval. The
start mark is taken before the host clock is read, so its own cost stays out of the host sample.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError
from harness.measure.stats import relative_half_width

if TYPE_CHECKING:
    from backends.base import DeviceTimer

__all__ = ["HOST_CLOCK", "STOP_REASONS", "Sampling", "SamplingPolicy", "sample"]

STOP_REASONS = ("converged", "time_budget", "max_count")
#: The ``timer`` of a sampling whose samples come from the host clock alone.
HOST_CLOCK = "host_clock"


def _no_sync() -> None:
    """Synchronize for hosts that have nothing to wait for."""


@dataclass(frozen=True)
class SamplingPolicy:
    """How long to warm up and when to stop sampling."""

    max_time_s: float = 10.0
    warmup_time_s: float = 1.0
    warmup_min_count: int = 3
    min_count: int = 10
    max_count: int = 100_000
    target_rel_ci: float = 0.01
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if self.max_time_s <= 0:
            raise ConfigError(f"--max-time must be positive, got {self.max_time_s}")
        if self.min_count < 3 or self.max_count < self.min_count:
            raise ConfigError(
                f"sample counts need 3 <= min_count <= max_count, got {self.min_count} and {self.max_count}"
            )
        if not 0 < self.target_rel_ci < 1:
            raise ConfigError(f"target relative CI half-width must be in (0, 1), got {self.target_rel_ci}")
        if not 0.5 < self.confidence < 1:
            raise ConfigError(f"confidence must be in (0.5, 1), got {self.confidence}")

    @classmethod
    def for_budget(cls, max_time_s: float, **overrides: Any) -> SamplingPolicy:
        """A policy whose warmup is a tenth of the budget, capped at one second."""
        return cls(max_time_s=max_time_s, warmup_time_s=min(1.0, max_time_s / 10), **overrides)


@dataclass(frozen=True)
class Sampling:
    """What the sampler saw: raw samples (ns) and why it stopped.

    ``samples_ns`` are on the clock named by ``timer``; with a device timer, ``host_samples_ns``
    holds the host-clock interval of the same calls, in the same order.
    """

    samples_ns: list[int]
    warmup_count: int
    warmup_ns: int
    elapsed_ns: int
    stop_reason: str
    rel_ci_half_width: float
    timer: str = HOST_CLOCK
    host_samples_ns: list[int] | None = None


def sample(
    call: Callable[[], Any],
    policy: SamplingPolicy,
    synchronize: Callable[[], None] = _no_sync,
    clock: Callable[[], int] = time.perf_counter_ns,
    device_timer: DeviceTimer | None = None,
) -> Sampling:
    """Warm ``call`` up, then time it under ``policy`` with ``clock`` (integer nanoseconds).

    With ``device_timer``, the samples are the device's intervals and the host's sit beside them.
    """
    warmup_start = clock()
    warmup_deadline = warmup_start + int(policy.warmup_time_s * 1e9)
    warmup_count = 0
    now = warmup_start
    while warmup_count < policy.warmup_min_count or now < warmup_deadline:
        call()
        synchronize()
        warmup_count += 1
        now = clock()
    warmup_ns = now - warmup_start
    per_call_ns = max(1, warmup_ns // warmup_count)

    samples: list[int] = []
    append = samples.append
    host_samples: list[int] | None = None if device_timer is None else []
    start = clock()
    deadline = start + int(policy.max_time_s * 1e9)
    # Blocks of about 2% of the budget keep the deadline check cheap and the overshoot small.
    block = max(1, min(policy.max_count, int(policy.max_time_s * 1e9 * 0.02) // per_call_ns))
    next_check = policy.min_count
    rel = float("inf")
    reason = "max_count"
    while True:
        todo = min(block, policy.max_count - len(samples))
        if host_samples is None or device_timer is None:
            for _ in range(todo):
                t0 = clock()
                call()
                synchronize()
                append(clock() - t0)
        else:
            host_append, mark_start, mark_stop, read = (
                host_samples.append,
                device_timer.start,
                device_timer.stop,
                device_timer.elapsed_ns,
            )
            for _ in range(todo):
                mark_start()
                t0 = clock()
                call()
                mark_stop()
                synchronize()
                t1 = clock()
                host_append(t1 - t0)
                append(read())
        n = len(samples)
        now = clock()
        if n >= policy.min_count and n >= next_check:
            rel = relative_half_width(samples, policy.confidence)
            if rel <= policy.target_rel_ci:
                reason = "converged"
                break
            next_check = max(n + 1, int(n * 1.1))
        if n >= policy.max_count:
            reason = "max_count"
            break
        if now >= deadline and n >= policy.min_count:
            reason = "time_budget"
            break
    if reason != "converged":
        rel = relative_half_width(samples, policy.confidence)
    return Sampling(
        samples_ns=samples,
        warmup_count=warmup_count,
        warmup_ns=warmup_ns,
        elapsed_ns=clock() - start,
        stop_reason=reason,
        rel_ci_half_width=rel,
        timer=HOST_CLOCK if device_timer is None else device_timer.name,
        host_samples_ns=host_samples,
    )
