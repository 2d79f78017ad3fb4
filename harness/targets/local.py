"""The local target: a thin adapter from the target contract to ``harness.run.suite.run_suite``.

It adds only what a target owes its caller: where the run file is before the first cell, and a
stop signal turned into a ``TargetInterrupted`` that says how far the run got. The pipeline itself
(plan, environment, cells, run file) is ``run_suite``'s, which the AWS agent calls too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.run.plan import Suite
from harness.run.runner import HangFn, ProgressFn
from harness.run.suite import run_suite
from harness.runfile.files import RunWriter
from harness.runfile.price import Price
from harness.runfile.records import CellConfig
from harness.targets.base import TargetInterrupted, TargetOutcome

__all__ = ["LocalTarget"]


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
