"""The local target: measure a suite in this process (or its child processes) into one run file.

The on-instance agent uses it too, so a cell on an AWS instance is measured by exactly the code
that measures it on a laptop; only where the run file goes afterwards differs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.pricing.catalog import Price
from harness.run.plan import Suite
from harness.run.runner import HangFn, ProgressFn
from harness.runfile.files import RunWriter
from harness.runfile.records import CellConfig, CellRecord, RunRecord, TargetFacts
from harness.targets.base import TargetInterrupted, TargetOutcome

__all__ = ["LocalRun", "LocalTarget", "run_suite"]


@dataclass
class LocalRun:
    """A finished (or interrupted) local run: its file, its data and the cell records."""

    path: Path
    run: RunRecord
    records: list[CellRecord] = field(default_factory=list)


def run_suite(
    suite: Suite,
    *,
    run_id: str | None = None,
    target: TargetFacts | None = None,
    progress: ProgressFn | None = None,
    on_start: Any = None,
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
    from harness.run.limits import CellLimits
    from harness.run.matrix import validate_matrix
    from harness.run.native import plan_for_silicon
    from harness.run.runner import exit_on_hang, run_cells

    presets, backends = validate_matrix(suite)
    policy = SamplingPolicy.for_budget(
        suite.max_time,
        min_count=suite.min_samples,
        target_rel_ci=suite.target_rel_ci,
        tail_percentile=suite.tail_percentile(),
    )
    # The silicon decides: dtypes it only emulates leave a default suite, and the roofline
    # ceilings (cached per machine and conditions) are measured once for the cells that stay.
    silicon = plan_for_silicon(
        suite.cells(presets),
        collect_environment(),
        explicit_dtypes=suite.dtypes_explicit(),
        requested_dtypes=suite.dtypes,
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
        if suite.isolate is None:
            return bool(backends[config.backend].isolate_by_default)
        return bool(suite.isolate)

    limits = CellLimits(prepare_s=suite.prepare_limit, sampling_grace_s=suite.sampling_grace)
    records = run_cells(
        cells,
        policy,
        writer,
        isolate,
        progress,
        limits,
        on_hang or exit_on_hang,
        processes=suite.processes,
        mark=silicon.mark,
    )
    return LocalRun(writer.path, writer.run, records)


class LocalTarget:
    """Runs the suite here, into one run file; one outcome pointing at it."""

    kind = "local"

    def __init__(
        self,
        progress: ProgressFn | None = None,
        announce: Callable[[Path, int], None] | None = None,
        pricing: Price | None = None,
        on_hang: HangFn | None = None,
    ) -> None:
        """``announce(path, cells)`` is told where the run file is before the first cell runs;
        ``on_hang`` is told when a cell in this process hangs (it must end the process)."""
        self._progress = progress
        self._announce = announce
        self._pricing = pricing
        self._on_hang = on_hang

    def run(self, suite: Suite) -> list[TargetOutcome]:
        started: list[RunWriter] = []

        def on_start(writer: RunWriter, cells: list[CellConfig]) -> None:
            started.append(writer)
            if self._announce is not None:
                self._announce(writer.path, len(cells))

        try:
            result = run_suite(
                suite, progress=self._progress, on_start=on_start, pricing=self._pricing, on_hang=self._on_hang
            )
        except KeyboardInterrupt as exc:
            if not started:
                raise
            writer = started[0]
            done = len(writer.cells)
            outcome = TargetOutcome("local", "interrupted", writer.path, cells_done=done, cells_total=done)
            raise TargetInterrupted([outcome], getattr(exc, "signum", 2)) from None
        done = len(result.records)
        return [TargetOutcome("local", "complete", result.path, cells_done=done, cells_total=done)]
