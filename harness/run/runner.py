"""Run a planned list of cells into one run file, reporting progress as it goes."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from harness.measure.sampler import SamplingPolicy
from harness.run.cell import run_cell
from harness.run.isolation import run_cell_isolated
from harness.runfile.files import RunWriter
from harness.runfile.records import CellConfig, CellRecord

__all__ = ["ProgressFn", "run_cells"]

ProgressFn = Callable[[int, int, CellConfig, CellRecord | None], None]

#: A child-process cell may take this long beyond its sampling budget (build, compile, check).
ISOLATED_GRACE_S = 900.0


def run_cells(
    cells: Sequence[CellConfig],
    policy: SamplingPolicy,
    writer: RunWriter,
    isolate: Callable[[CellConfig], bool],
    progress: ProgressFn | None = None,
    processes: int = 1,
) -> list[CellRecord]:
    """Measure every cell in order and append each to the run file as soon as it is done.

    With ``processes`` > 1, each cell is measured in that many fresh processes, interleaved
    across cells (see ``harness.run.repeats``), and written once all its processes are done.
    A Ctrl-C marks the file ``interrupted`` (keeping every finished cell) and re-raises.
    """
    if processes > 1:
        return _run_repeated(cells, policy, writer, progress, processes)

    done: list[CellRecord] = []
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
                record = run_cell(config, policy, engines)
            elif isolate(config):
                record = run_cell_isolated(config, policy, policy.max_time_s * 3 + ISOLATED_GRACE_S)
            else:
                record = run_cell(config, policy)
            writer.add_cell(record)
            done.append(record)
            if progress:
                progress(index, len(cells), config, record)
    except KeyboardInterrupt:
        if engines is not None:
            engines.close()
        writer.finish("interrupted")
        raise
    finally:
        if engines is not None:
            engines.close()
    writer.finish("complete")
    return done


def _run_repeated(
    cells: Sequence[CellConfig],
    policy: SamplingPolicy,
    writer: RunWriter,
    progress: ProgressFn | None,
    processes: int,
) -> list[CellRecord]:
    """ABAB over fresh child processes; an interrupt keeps every cell with at least one process."""
    from harness.run.repeats import merge_processes, schedule

    records: list[list[CellRecord]] = [[] for _ in cells]
    total = len(cells) * processes
    timeout = policy.max_time_s * 3 + ISOLATED_GRACE_S

    def write_merged() -> list[CellRecord]:
        merged = [merge_processes(found, processes) for found in records if found]
        for record in merged:
            writer.add_cell(record)
        return merged

    try:
        for step, (_, index) in enumerate(schedule(len(cells), processes), start=1):
            config = cells[index]
            if progress:
                progress(step, total, config, None)
            record = run_cell_isolated(config, policy, timeout)
            records[index].append(record)
            if progress:
                progress(step, total, config, record)
    except KeyboardInterrupt:
        write_merged()
        writer.finish("interrupted")
        raise
    done = write_merged()
    writer.finish("complete")
    return done
