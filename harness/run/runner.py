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
) -> list[CellRecord]:
    """Measure every cell in order and append each to the run file as soon as it is done.

    A Ctrl-C marks the file ``interrupted`` (keeping every finished cell) and re-raises.
    """
    done: list[CellRecord] = []
    try:
        for index, config in enumerate(cells, start=1):
            if progress:
                progress(index, len(cells), config, None)
            if isolate(config):
                record = run_cell_isolated(config, policy, policy.max_time_s * 3 + ISOLATED_GRACE_S)
            else:
                record = run_cell(config, policy)
            writer.add_cell(record)
            done.append(record)
            if progress:
                progress(index, len(cells), config, record)
    except KeyboardInterrupt:
        writer.finish("interrupted")
        raise
    writer.finish("complete")
    return done
