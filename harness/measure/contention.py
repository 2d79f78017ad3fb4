"""Whether other work took our cores *while* something was measured, from the kernel's own counters.

The load average (``harness.measure.busy``) is a lagging witness: it is a one-minute exponential
mean, so a job that starts a second before a ten-second ceiling measurement barely moves it, and
the measuring threads themselves add to it. A ceiling is an upper bound that is cached for every
later run, so one taken while another process held a core poisons every roofline after it (seen
here: a memory roof measured beside other test runs was cached and a cell later showed 138% of it).

This module reads what actually happened in the window instead. On Linux, ``/proc/stat`` counts,
per CPU, the time spent busy and the time the hypervisor stole; ``os.times`` counts the time this
process (all its threads, and its reaped children) used. Busy time on our CPUs that is not ours,
plus stolen time, is other work competing with the measurement. Elsewhere there is no such counter
and the window says so (``foreign_cores`` is None), leaving the load-average rule to decide.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["FOREIGN_CORES_BUSY", "Contention", "watch_contention"]

#: Other work averaging more than this many cores during a measurement makes the machine busy.
#: Background daemons on an idle machine use a few hundredths of a core; one competing process
#: uses a whole one.
FOREIGN_CORES_BUSY = 0.25

_PROC_STAT = Path("/proc/stat")
# /proc/stat's cpu line (proc(5)): user nice system idle iowait irq softirq steal guest guest_nice.
# guest and guest_nice are already counted in user and nice, so they are not added again.
_BUSY_FIELDS = (0, 1, 2, 5, 6)
_STEAL_FIELD = 7


@dataclass
class Contention:
    """What the window saw: its length, our CPU time, and the CPU time others used on our CPUs."""

    wall_s: float = 0.0
    own_cpu_s: float = 0.0
    #: Busy and stolen CPU time on our CPUs that was not ours (None: no kernel counter here).
    foreign_cpu_s: float | None = None
    cpus: tuple[int, ...] = field(default_factory=tuple)

    @property
    def foreign_cores(self) -> float | None:
        """Other work's mean number of cores during the window."""
        if self.foreign_cpu_s is None or self.wall_s <= 0:
            return None
        return max(0.0, self.foreign_cpu_s) / self.wall_s

    @property
    def busy(self) -> bool:
        """Whether other work competed with the measurement (False where that cannot be seen)."""
        cores = self.foreign_cores
        return cores is not None and cores > FOREIGN_CORES_BUSY

    def describe(self) -> str:
        cores = self.foreign_cores
        if cores is None:
            return "other work during the measurement: not visible on this system"
        return f"other work used {cores:.2f} of {len(self.cpus)} core(s) during the measurement"


def _our_cpus() -> tuple[int, ...]:
    try:
        return tuple(sorted(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return ()


def _cpu_seconds(cpus: tuple[int, ...]) -> float | None:
    """Busy plus stolen seconds summed over ``cpus``, from /proc/stat (None where unreadable)."""
    try:
        lines = _PROC_STAT.read_text().splitlines()
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None
    wanted = {f"cpu{n}" for n in cpus}
    total = 0
    seen = 0
    for line in lines:
        name, _, rest = line.partition(" ")
        if name not in wanted:
            continue
        values = [int(v) for v in rest.split()]
        if len(values) <= _STEAL_FIELD:
            return None
        total += sum(values[i] for i in _BUSY_FIELDS) + values[_STEAL_FIELD]
        seen += 1
    if seen != len(wanted) or not ticks:
        return None
    return total / ticks


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@contextmanager
def watch_contention() -> Iterator[Contention]:
    """Yield a record filled, when the block ends, with what competed with it for our CPUs."""
    window = Contention(cpus=_our_cpus())
    start_cpu = _cpu_seconds(window.cpus) if window.cpus else None
    start_own = _own_seconds()
    start = time.perf_counter()
    try:
        yield window
    finally:
        window.wall_s = time.perf_counter() - start
        window.own_cpu_s = _own_seconds() - start_own
        end_cpu = _cpu_seconds(window.cpus) if start_cpu is not None else None
        if start_cpu is not None and end_cpu is not None:
            window.foreign_cpu_s = (end_cpu - start_cpu) - window.own_cpu_s
