"""Run a planned list of cells into one run file, reporting progress as it goes.

However a run ends, its file is valid, holds every cell that finished, and says why it ended:
``complete``; ``interrupted`` with the signal as its reason (``harness.run.signals``);
``aborted`` with the reason ``disk full: ...`` (the run stops rather than measure what it cannot
keep) or ``timed out: ...`` (a cell in this process went past its limit and, being hung, could
not be stopped, so the run ended).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence

from harness.errors import RunStoppedError
from harness.measure.sampler import SamplingPolicy
from harness.run.cell import failed_cell, run_cell
from harness.run.isolation import run_cell_isolated
from harness.run.limits import PREPARE_PHASES, CellLimits
from harness.run.signals import signals_held
from harness.run.watchdog import Watchdog
from harness.runfile.atomic import is_disk_full
from harness.runfile.files import RunWriter
from harness.runfile.records import CellConfig, CellRecord

__all__ = ["EXIT_HUNG", "HangFn", "ProgressFn", "exit_on_hang", "run_cells"]

ProgressFn = Callable[[int, int, CellConfig, CellRecord | None], None]
#: Told, from the watchdog thread, that a cell in this process is hung; it must end the process.
HangFn = Callable[[RunStoppedError], None]
#: The exit status of a process ended by a hung cell: a cell failed.
EXIT_HUNG = 1


def exit_on_hang(error: RunStoppedError) -> None:
    """End the process: its main thread is stuck in the hung cell and cannot be unwound.

    The one place library code ends the process; callers that can say so first (the CLI) pass
    their own ``on_hang`` that prints the reason and then ends it the same way.
    """
    os._exit(EXIT_HUNG)


def _stopped_for_disk(writer: RunWriter, done: int, total: int, exc: OSError) -> RunStoppedError:
    with signals_held():
        writer.finish("aborted", f"disk full: {exc.strerror} after {done} of {total} cells")
    return RunStoppedError(
        f"no space left on the disk holding {writer.path} ({exc.strerror}): stopped after {done} of {total} "
        f"cells; {writer.saved_cells} finished cells kept in {writer.path} (status aborted: disk full)",
        "disk_full",
        writer.path,
    )


class _InProcessLimits:
    """The limits of a cell measured in this process, kept by a watchdog thread."""

    def __init__(
        self, writer: RunWriter, policy: SamplingPolicy, limits: CellLimits, on_hang: HangFn, total: int
    ) -> None:
        self.writer, self.policy, self.limits, self.on_hang, self.total = writer, policy, limits, on_hang, total
        self.config: CellConfig | None = None
        self.phase = "setup"
        self.sampling = False
        self.started = ""
        self.watchdog = Watchdog(self._expire)

    def start(self, config: CellConfig, started: str) -> None:
        self.config, self.phase, self.sampling, self.started = config, "setup", False, started
        self.watchdog.arm(self.limits.prepare_s)

    def on_phase(self, phase: str) -> None:
        self.phase = phase
        if phase not in PREPARE_PHASES and not self.sampling and self.config is not None:
            self.sampling = True
            self.watchdog.arm(self.limits.sampling_s(self.policy, self.config.scenario, self.config.params.loadgen))

    def done(self) -> None:
        if not self.watchdog.disarm():  # the watchdog is ending the process; never race its write
            threading.Event().wait()

    def _expire(self) -> None:
        config = self.config
        assert config is not None
        why = self.limits.describe(self.phase, self.policy, config.scenario, config.params.loadgen)
        record = failed_cell(
            config,
            self.phase,
            f"the cell {why}; a cell in this process cannot be stopped, so the run ended (use --isolate)",
            self.started,
            kind="TimeoutError",
        )
        done = self.writer.saved_cells
        try:
            self.writer.add_cell(record)
        except OSError:
            pass  # finish() keeps what fits
        try:
            self.writer.finish("aborted", f"timed out: cell {config.cell_id} {why}")
        except OSError:
            pass  # the last good file stays
        self.on_hang(
            RunStoppedError(
                f"cell {config.cell_id} {why}; a hung cell cannot be stopped inside this process, so the run "
                f"ended: rerun with --isolate to have it killed and the run go on; {done} finished cells kept "
                f"in {self.writer.path} (status aborted: timed out)",
                "timed_out",
                self.writer.path,
            )
        )

    def close(self) -> None:
        self.watchdog.close()


def run_cells(
    cells: Sequence[CellConfig],
    policy: SamplingPolicy,
    writer: RunWriter,
    isolate: Callable[[CellConfig], bool],
    progress: ProgressFn | None = None,
    limits: CellLimits | None = None,
    on_hang: HangFn = exit_on_hang,
    processes: int = 1,
    mark: Callable[[CellRecord], CellRecord] | None = None,
) -> list[CellRecord]:
    """Measure every cell in order and append each to the run file as soon as it is done.

    With ``processes`` > 1, each cell is measured in that many fresh processes, interleaved
    across cells (see ``harness.run.repeats``), and written once all its processes are done.

    Every cell runs under ``limits`` (``harness.run.limits``): an isolated cell past its limit is
    killed and fails alone; a cell in this process past its limit ends the run through
    ``on_hang``. A stop signal marks the file ``interrupted`` and re-raises; a full disk marks it
    ``disk_full`` and raises ``RunStoppedError``. ``mark`` amends each record before it is
    written (``SiliconPlan.mark``: an emulated dtype).
    """
    from harness.measure.environment import utc_now

    limits = limits or CellLimits()
    if processes > 1:
        return _run_repeated(cells, policy, writer, progress, processes, limits, mark)
    done: list[CellRecord] = []
    in_process: _InProcessLimits | None = None
    # Engines live for the whole run (a concurrency sweep pays one cold start) and are always stopped.
    # Imported only for a run with engine cells: the engine client needs aiohttp, which an
    # in-process run (on an AWS instance, say) need not have.
    engines = None
    if any(config.params.engine is not None for config in cells):
        from harness.scenarios.engine_cell import EnginePool

        engines = EnginePool()
    try:
        for index, config in enumerate(cells, start=1):
            if progress:
                progress(index, len(cells), config, None)
            if config.params.engine is not None:
                record = run_cell(config, policy, engines=engines)
            elif isolate(config):
                record = run_cell_isolated(config, policy, limits)
            else:
                if in_process is None:
                    in_process = _InProcessLimits(writer, policy, limits, on_hang, len(cells))
                in_process.start(config, utc_now())
                try:
                    record = run_cell(config, policy, on_phase=in_process.on_phase)
                finally:
                    in_process.done()
            if mark is not None:
                record = mark(record)
            try:
                writer.add_cell(record)
            except OSError as exc:
                if not is_disk_full(exc):
                    raise
                raise _stopped_for_disk(writer, index, len(cells), exc) from None
            done.append(record)
            if progress:
                progress(index, len(cells), config, record)
        try:
            writer.finish("complete")
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            raise _stopped_for_disk(writer, len(cells), len(cells), exc) from None
    except KeyboardInterrupt as exc:
        import signal

        with signals_held():
            writer.finish("interrupted", signal.Signals(getattr(exc, "signum", signal.SIGINT)).name)
        raise
    finally:
        if in_process is not None:
            in_process.close()
        if engines is not None:
            engines.close()
    return done


def _run_repeated(
    cells: Sequence[CellConfig],
    policy: SamplingPolicy,
    writer: RunWriter,
    progress: ProgressFn | None,
    processes: int,
    limits: CellLimits,
    mark: Callable[[CellRecord], CellRecord] | None = None,
) -> list[CellRecord]:
    """ABAB over fresh child processes; an interrupt keeps every cell with at least one process."""
    from harness.run.repeats import merge_processes, schedule

    records: list[list[CellRecord]] = [[] for _ in cells]
    total = len(cells) * processes

    def write_merged() -> list[CellRecord]:
        merged = [merge_processes(found, processes) for found in records if found]
        if mark is not None:
            merged = [mark(record) for record in merged]
        for number, record in enumerate(merged, start=1):
            try:
                writer.add_cell(record)
            except OSError as exc:
                if not is_disk_full(exc):
                    raise
                raise _stopped_for_disk(writer, number, len(merged), exc) from None
        return merged

    try:
        for step, (_, index) in enumerate(schedule(len(cells), processes), start=1):
            config = cells[index]
            if progress:
                progress(step, total, config, None)
            record = run_cell_isolated(config, policy, limits)
            records[index].append(record)
            if progress:
                progress(step, total, config, record)
    except KeyboardInterrupt as exc:
        import signal

        with signals_held():
            write_merged()
            writer.finish("interrupted", signal.Signals(getattr(exc, "signum", signal.SIGINT)).name)
        raise
    done = write_merged()
    try:
        writer.finish("complete")
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        raise _stopped_for_disk(writer, len(done), len(done), exc) from None
    return done
