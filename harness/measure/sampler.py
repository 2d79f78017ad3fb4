"""The adaptive sampler: warm up, then time calls until the median is known well enough.

Why this shape:
- The timed region is ``clock(); call(); synchronize(); clock()``: the synchronize makes an
  asynchronous device finish inside the region, and everything else (argument binding, list growth
  checks, statistics) stays outside it. ``call`` takes no arguments because unpacking ``*args``
  inside the region costs more than the bare call.
- Calls are timed in blocks, and the stopping rule is checked only between blocks, at geometric
  intervals, so its cost does not grow with the sample count.
- It stops when the 95% interval of the median is narrower than the target (``converged``): the
  interval ``summarize`` will record, widened for the samples' serial dependence (a slow call
  follows a slow call, so a dependent sequence is worth fewer samples; ``harness.measure.dependence``), when
  the time budget runs out (``time_budget``) or at the count cap (``max_count``); the result says
  which.
- The budget is a promise: ``max_time_s`` covers warmup and sampling together, the deadline is
  checked after every call, and no call starts after it, so a cell ends within its budget plus
  one call. The warmup takes its share (``warmup_time_s``) and runs its minimum count only while
  ``min_count`` samples still fit after it. When the warmup's per-call time says ``min_count``
  cannot fit, the sampler takes what fits (at least one: a single call longer than the whole
  budget is kept as the one sample) and says why in ``too_few``; the cell is then recorded as
  having too few samples, its intervals withheld. With ``tail_percentile`` (a tail flag, or a p99
  SLO), ``converged`` also needs that percentile's order-statistic interval within
  ``tail_target_rel_ci``, which cannot happen before the interval exists (368 samples for p99 at
  95%), so tail sampling runs on until then or until a bound stops it.
- The stopping check converts only the samples new since the last check, sorts the int64 array
  once, and reads every interval from that one sort; checks come at geometric counts, so their
  total cost stays a few nanoseconds a sample.
- A synchronize that does nothing (the CPU's; a traced Neuron call's) is left out of the timed
  region: calling an empty Python function still costs ~20 ns there. Skipping a call with no
  effects changes nothing else.
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

import dis
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.errors import ConfigError
from harness.measure.dependence import quantile_effective_n
from harness.measure.stats import effective_ranks, min_samples

if TYPE_CHECKING:
    from backends.base import DeviceTimer

__all__ = ["HOST_CLOCK", "STOP_REASONS", "Convergence", "Sampling", "SamplingPolicy", "does_nothing", "sample"]

STOP_REASONS = ("converged", "time_budget", "max_count")
#: The ``timer`` of a sampling whose samples come from the host clock alone.
HOST_CLOCK = "host_clock"


def _no_sync() -> None:
    """Synchronize for hosts that have nothing to wait for."""


def does_nothing(fn: Callable[[], Any]) -> bool:
    """True when ``fn``'s body is empty (a docstring or ``pass``): its bytecode only returns None."""
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    if code is None:
        return False
    for ins in dis.get_instructions(code):
        if ins.opname in ("RESUME", "NOP", "CACHE", "RETURN_VALUE"):
            continue
        if ins.opname in ("LOAD_CONST", "RETURN_CONST") and ins.argval is None:
            continue
        return False
    return True


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
    #: A tail percentile (e.g. 99) whose interval must also be narrow before sampling converges.
    tail_percentile: float | None = None
    tail_target_rel_ci: float = 0.05

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
        if self.tail_percentile is not None and not 50 < self.tail_percentile < 100:
            raise ConfigError(f"tail percentile must be between 50 and 100, got {self.tail_percentile}")
        if not 0 < self.tail_target_rel_ci < 1:
            raise ConfigError(f"tail target relative CI half-width must be in (0, 1), got {self.tail_target_rel_ci}")

    @property
    def targets(self) -> dict[str, float]:
        """Each percentile the stopping rule watches ("p50", and the tail's) and its target."""
        out = {"p50": self.target_rel_ci}
        if self.tail_percentile is not None:
            out[f"p{self.tail_percentile:g}"] = self.tail_target_rel_ci
        return out

    @property
    def tail_min_count(self) -> int | None:
        """Samples the tail percentile's two-sided interval needs at this confidence (None: no tail)."""
        if self.tail_percentile is None:
            return None
        return min_samples(self.tail_percentile / 100, self.confidence)

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
    #: Relative half-width reached by each watched percentile ("p50", and the tail's when asked).
    reached: dict[str, float] | None = None
    #: Why fewer samples than ``min_count`` were taken (the budget fit no more), else None.
    too_few: str | None = None


class Convergence:
    """The stopping rule's view of the samples: relative half-widths of the watched percentiles.

    Keeps a sorted int64 copy of the samples, merged with the new ones at each check, and one in
    the order taken, whose serial dependence sets each interval's effective n (as ``summarize``
    does): a sequence where slow calls follow slow calls needs more of them before it converges.
    """

    def __init__(self, policy: SamplingPolicy) -> None:
        self._targets = [(float(name[1:]) / 100, target) for name, target in policy.targets.items()]
        self._names = list(policy.targets)
        self._confidence = policy.confidence
        self._values = np.empty(0, dtype=np.int64)
        self._sequence = np.empty(0, dtype=np.int64)

    def widths(self, samples: list[int]) -> dict[str, float]:
        """Relative half-width per watched percentile for ``samples`` (inf where none exists)."""
        seen = self._values.size
        if len(samples) > seen:
            fresh = np.fromiter(islice(samples, seen, None), dtype=np.int64, count=len(samples) - seen)
            self._sequence = np.concatenate((self._sequence, fresh))
            new = np.sort(fresh)
            # Two sorted runs: the stable sort (timsort) merges them in about a nanosecond a sample.
            self._values = np.concatenate((self._values, new))
            self._values.sort(kind="stable")
        ordered, n = self._values, self._values.size
        out = {}
        for name, (q, _) in zip(self._names, self._targets, strict=True):
            if n < 3:
                out[name] = math.inf
                continue
            h = (n - 1) * q
            k = math.floor(h)
            estimate = float(ordered[k]) + (h - k) * (float(ordered[min(k + 1, n - 1)]) - float(ordered[k]))
            effective = quantile_effective_n(self._sequence, estimate)
            ranks = effective_ranks(n, effective, q, self._confidence)
            if ranks is None or estimate <= 0:
                out[name] = math.inf
            else:
                out[name] = float(ordered[ranks[1] - 1] - ordered[ranks[0] - 1]) / 2.0 / estimate
        return out

    def met(self, widths: dict[str, float]) -> bool:
        return all(widths[name] <= target for name, (_, target) in zip(self._names, self._targets, strict=True))


def sample(
    call: Callable[[], Any],
    policy: SamplingPolicy,
    synchronize: Callable[[], None] = _no_sync,
    clock: Callable[[], int] = time.perf_counter_ns,
    device_timer: DeviceTimer | None = None,
    budget_start_ns: int | None = None,
) -> Sampling:
    """Warm ``call`` up, then time it under ``policy`` with ``clock`` (integer nanoseconds).

    With ``device_timer``, the samples are the device's intervals and the host's sit beside them.
    The budget runs from ``budget_start_ns`` (the scenario's own calls before sampling, on
    ``clock``) or from the first warmup call; no call starts after it, so warmup and sampling
    together end within ``policy.max_time_s`` plus one call.
    """
    warmup_start = clock()
    budget_start = warmup_start if budget_start_ns is None else min(budget_start_ns, warmup_start)
    deadline = budget_start + int(policy.max_time_s * 1e9)
    warmup_deadline = warmup_start + int(policy.warmup_time_s * 1e9)
    warmup_count = 0
    now = last_start = warmup_start
    while True:
        last_start = now
        call()
        synchronize()
        warmup_count += 1
        now = clock()
        per_call_ns = max(1, (now - warmup_start) // warmup_count)
        if now >= deadline:
            break  # the budget is spent: no call may start
        if now >= warmup_deadline and (
            warmup_count >= policy.warmup_min_count or now + per_call_ns * (1 + policy.min_count) > deadline
        ):
            break  # warm long enough; the warmup's minimum count only while the samples still fit
    warmup_ns = now - warmup_start
    per_call_ns = max(1, warmup_ns // warmup_count)

    samples: list[int] = []
    append = samples.append
    host_samples: list[int] | None = None if device_timer is None else []
    check = Convergence(policy)
    start = clock()
    fits = max(0, (deadline - start) // per_call_ns)
    overran = start >= deadline
    if overran:
        # One call overran the whole budget: it is the only sample there will be (the correctness
        # check before it already ran the model once, so it is not the first call of the process).
        warmup_count -= 1
        warmup_ns = last_start - warmup_start
        samples.append(now - last_start)
        if host_samples is not None:
            host_samples.append(now - last_start)
    # Blocks of about 2% of the budget keep the stopping check cheap; the deadline is checked
    # after every call (outside the timed region), so no call starts past it.
    block = max(1, min(policy.max_count, int(policy.max_time_s * 1e9 * 0.02) // per_call_ns))
    next_check = policy.min_count
    widths: dict[str, float] | None = None
    reason = "time_budget"
    synchronized = not does_nothing(synchronize)
    while not overran:
        todo = min(block, policy.max_count - len(samples))
        t1 = start
        if host_samples is None or device_timer is None:
            if synchronized:
                for _ in range(todo):
                    t0 = clock()
                    call()
                    synchronize()
                    t1 = clock()
                    append(t1 - t0)
                    if t1 >= deadline:
                        break
            else:
                for _ in range(todo):
                    t0 = clock()
                    call()
                    t1 = clock()
                    append(t1 - t0)
                    if t1 >= deadline:
                        break
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
                if t1 >= deadline:
                    break
        n = len(samples)
        if n >= policy.min_count and n >= next_check:
            widths = check.widths(samples)
            if check.met(widths):
                reason = "converged"
                break
            # Geometric checks (x1.2) keep the check's total cost a few ns a sample.
            next_check = max(n + 1, int(n * 1.2))
        if n >= policy.max_count:
            reason = "max_count"
            break
        if t1 >= deadline:
            reason = "time_budget"
            break
    elapsed = clock() - start
    if reason != "converged" or widths is None:
        widths = check.widths(samples)
        # The last block may end between two checks: if the samples taken meet every target, the
        # rule was met, whichever bound ended the loop (a warning would otherwise name nothing).
        if len(samples) >= policy.min_count and check.met(widths):
            reason = "converged"
    too_few = None
    if len(samples) < policy.min_count:
        too_few = (
            f"too few samples: {len(samples)} of the {policy.min_count} asked for (--min-samples) fit the "
            f"{policy.max_time_s:g} s budget at {per_call_ns / 1e9:.3g} s a call "
            f"(after {warmup_count} warmup call{'s' if warmup_count != 1 else ''}; {fits} fit after warmup)"
        )
    return Sampling(
        samples_ns=samples,
        warmup_count=warmup_count,
        warmup_ns=warmup_ns,
        elapsed_ns=elapsed,
        stop_reason=reason,
        rel_ci_half_width=widths["p50"],
        timer=HOST_CLOCK if device_timer is None else device_timer.name,
        host_samples_ns=host_samples,
        reached=widths,
        too_few=too_few,
    )
