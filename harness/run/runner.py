"""Run a planned list of cells into one run file, reporting progress as it goes.

Three small pieces, each of one job:

- a **strategy** measures one cell (``harness.run.strategies``: in this process, isolated, on an
  engine, or ``ByConfig``: whichever the cell's configuration asks for);
- an **order** says which cell is measured when and when its record is final: ``OneByOne`` (each
  cell once, final at once) or ``RepeatedProcesses``
  (``--processes N``: ABAB over fresh processes, final once merged, ``harness.run.repeats``);
- the **sink** (``harness.run.sink``) writes each final record or stops the run, and ends it:
  ``complete``, ``interrupted`` with the signal, ``aborted`` on a full disk or a hung cell.

However a run ends, its file is valid, holds every cell that finished, and says why it ended.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence

from harness.errors import RunStoppedError
from harness.measure.sampler import SamplingPolicy
from harness.run.limits import CellLimits
from harness.run.sink import RunSink
from harness.run.strategies import ByConfig, HangFn, Isolated, Strategy
from harness.runfile.files import RunWriter
from harness.runfile.records import CellConfig, CellRecord

__all__ = ["EXIT_HUNG", "HangFn", "OneByOne", "ProgressFn", "RepeatedProcesses", "exit_on_hang", "run_cells"]

ProgressFn = Callable[[int, int, CellConfig, CellRecord | None], None]
#: The exit status of a process ended by a hung cell: a cell failed.
EXIT_HUNG = 1


def exit_on_hang(error: RunStoppedError) -> None:
    """End the process: its main thread is stuck in the hung cell and cannot be unwound.

    The one place library code ends the process; callers that can say so first (the CLI) pass
    their own ``on_hang`` that prints the reason and then ends it the same way.
    """
    os._exit(EXIT_HUNG)


class OneByOne:
    """Each cell once, in order; its record final as soon as measured."""

    def __init__(self, cells: Sequence[CellConfig], strategy: Strategy, progress: ProgressFn | None) -> None:
        self.cells, self.strategy, self.progress = cells, strategy, progress

    def records(self) -> Iterator[CellRecord]:
        """Each cell's record; progress hears of it once the sink has written it."""
        total = len(self.cells)
        for index, config in enumerate(self.cells, start=1):
            if self.progress:
                self.progress(index, total, config, None)
            record = self.strategy.measure(config)
            yield record
            if self.progress:
                self.progress(index, total, config, record)

    def leftovers(self) -> list[CellRecord]:
        return []  # every record was final, and written, as soon as it was measured


class RepeatedProcesses:
    """ABAB over fresh child processes; a cell's record is final once all its processes are merged.

    An interrupt keeps every cell with at least one process measured (``leftovers``).
    """

    def __init__(
        self, cells: Sequence[CellConfig], strategy: Strategy, processes: int, progress: ProgressFn | None
    ) -> None:
        self.cells, self.strategy, self.processes, self.progress = cells, strategy, processes, progress
        self._found: list[list[CellRecord]] = [[] for _ in cells]
        self._merged: list[CellRecord] | None = None
        self._handed = 0

    def records(self) -> Iterator[CellRecord]:
        from harness.run.repeats import schedule

        total = len(self.cells) * self.processes
        for step, (_, index) in enumerate(schedule(len(self.cells), self.processes), start=1):
            config = self.cells[index]
            if self.progress:
                self.progress(step, total, config, None)
            record = self.strategy.measure(config)
            self._found[index].append(record)
            if self.progress:
                self.progress(step, total, config, record)
        for record in self._merge():
            self._handed += 1
            yield record

    def leftovers(self) -> list[CellRecord]:
        return self._merge()[self._handed :]

    def _merge(self) -> list[CellRecord]:
        from harness.run.repeats import merge_processes

        if self._merged is None:
            self._merged = [merge_processes(found, self.processes) for found in self._found if found]
        return self._merged


def run_cells(
    cells: Sequence[CellConfig],
    policy: SamplingPolicy,
    writer: RunWriter,
    isolate: Callable[[CellConfig], bool],
    progress: ProgressFn | None = None,
    limits: CellLimits | None = None,
    on_hang: HangFn = exit_on_hang,
    processes: int = 1,
) -> list[CellRecord]:
    """Measure every cell in order and append each to the run file as soon as it is final.

    With ``processes`` > 1, each cell is measured in that many fresh processes, interleaved
    across cells (see ``harness.run.repeats``), and written once all its processes are done.

    Every cell runs under ``limits`` (``harness.run.limits``): an isolated cell past its limit is
    killed and fails alone; a cell in this process past its limit ends the run through
    ``on_hang``. A stop signal marks the file ``interrupted`` and re-raises; a full disk marks it
    ``aborted`` (disk full) and raises ``RunStoppedError``.
    """
    limits = limits or CellLimits()
    sink = RunSink(writer, len(cells))
    order: OneByOne | RepeatedProcesses
    strategy: Strategy
    if processes > 1:
        strategy = Isolated(policy, limits)
        order = RepeatedProcesses(cells, strategy, processes, progress)
    else:
        strategy = ByConfig(policy, limits, sink, on_hang, isolate)
        order = OneByOne(cells, strategy, progress)
    try:
        return sink.drain(order.records(), order.leftovers)
    finally:
        strategy.close()
