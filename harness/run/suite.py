"""The core pipeline: a suite in, one run file out, measured in this process or its children.

``run_suite`` is what every target ends in: ``LocalTarget`` calls it here, and the on-instance
agent calls it on an AWS instance, so a cell there is measured by exactly the code that measures
it on a laptop; only where the run file goes afterwards differs. The steps: check the matrix
against what is installed, plan the cells, probe the silicon and plan the dtypes it runs natively,
measure the roofline ceilings (``harness.run.native``), open the run file, and hand the cells to
``harness.run.runner.run_cells``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.run.plan import Suite
from harness.run.runner import HangFn, ProgressFn
from harness.runfile.files import RunWriter
from harness.runfile.price import Price
from harness.runfile.records import CellConfig, CellRecord, RunRecord, TargetFacts

__all__ = ["LocalRun", "StartFn", "run_suite"]

#: Told once the run file exists and before the first cell: the writer and the planned cells.
StartFn = Callable[[RunWriter, list[CellConfig]], None]


@dataclass
class LocalRun:
    """A finished run: its file, its data and the cell records."""

    path: Path
    run: RunRecord
    records: list[CellRecord] = field(default_factory=list)


def run_suite(
    suite: Suite,
    *,
    run_id: str | None = None,
    target: TargetFacts | None = None,
    progress: ProgressFn | None = None,
    on_start: StartFn | None = None,
    pricing: Price | None = None,
    on_hang: HangFn | None = None,
) -> LocalRun:
    """Validate ``suite`` against what is installed here and measure every cell into a run file.

    ``on_start(writer, cells)`` is called once the run file exists and before the first cell, so a
    caller can publish the empty file. A stop signal marks the file ``interrupted`` and re-raises;
    ``on_hang`` is told when a cell in this process hangs past its limit (``harness.run.runner``).
    """
    from harness.measure.environment import collect_environment
    from harness.measure.sampler import SamplingPolicy
    from harness.run import runner
    from harness.run.limits import CellLimits
    from harness.run.matrix import validate_matrix
    from harness.run.native import plan_for_silicon

    presets, backends = validate_matrix(suite)
    policy = SamplingPolicy.for_budget(
        suite.stopping.max_time,
        min_count=suite.stopping.min_samples,
        max_count=suite.stopping.max_samples or SamplingPolicy.max_count,
        target_rel_ci=suite.stopping.target_rel_ci,
        tail_percentile=suite.tail_percentile(),
    )
    # The silicon decides: dtypes it only emulates leave a default suite, and the roofline
    # ceilings (cached per machine and conditions) are measured once for the cells that stay.
    silicon = plan_for_silicon(
        suite.cells(presets),
        collect_environment(),
        explicit_dtypes=suite.dtypes_explicit(),
        requested_dtypes=suite.matrix.dtypes,
    )
    cells, environment = silicon.cells, silicon.environment
    writer = RunWriter(
        Path(suite.output), environment, target=target, suite=suite.to_dict(), run_id=run_id, pricing=pricing
    )
    if on_start is not None:
        on_start(writer, cells)

    def isolate(config: CellConfig) -> bool:
        if config.params.engine is not None:
            return False  # the engine is a process of its own already
        if suite.execution.isolate is None:
            return bool(backends[config.backend].isolate_by_default)
        return bool(suite.execution.isolate)

    limits = CellLimits(prepare_s=suite.execution.prepare_limit, sampling_grace_s=suite.execution.sampling_grace)
    records = runner.run_cells(
        cells,
        policy,
        writer,
        isolate,
        progress,
        limits,
        on_hang or runner.exit_on_hang,
        processes=suite.execution.processes,
        mark=silicon.mark,
    )
    return LocalRun(writer.path, writer.run, records)
