"""The end of every ``run``: the report of what was measured, one line per place, the exit code.

Local and AWS runs both end here, so a run on an instance reports exactly like one on a laptop.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence

from harness.cli.exits import EXIT_CELL_FAILED, EXIT_ENVIRONMENT, EXIT_OK, exit_for_signal
from harness.runfile.records import RunRecord
from harness.targets.base import TargetOutcome

__all__ = ["finish_run"]


def _load(outcomes: Sequence[TargetOutcome]) -> list[RunRecord]:
    from harness.errors import RunFileError
    from harness.runfile.files import load_run

    runs = []
    for outcome in outcomes:
        if outcome.run_file is not None:
            try:
                runs.append(load_run(outcome.run_file))
            except RunFileError as exc:
                print(f"siliconbench: warning: {exc}", file=sys.stderr)
    return runs


def finish_run(
    outcomes: Sequence[TargetOutcome],
    fmt: str,
    *,
    interrupted_by: int | None = None,
    problems: Sequence[str] = (),
    per_place_lines: bool = False,
) -> int:
    """Print the table of every run file the outcomes name, then each place's line; the exit code.

    ``interrupted_by`` is the signal that ended the run, if one did. ``per_place_lines`` adds one
    line per place (a remote target's instances); a local run ends with its run file's path.
    """
    from harness.report.formats import render

    runs = _load(outcomes)
    if runs and any(run.cells for run in runs):
        print(render(runs, fmt))
        print()
    if per_place_lines:
        for outcome in outcomes:
            where = f" -> {outcome.run_file}" if outcome.run_file else " (no run file)"
            cells = f", {outcome.cells_done}/{outcome.cells_total} cells"
            error = f": {outcome.error}" if outcome.error else ""
            print(f"{outcome.label}: {outcome.status}{cells}{where}{error}")
    else:
        for outcome in outcomes:
            if outcome.run_file is not None:
                print(f"run file: {outcome.run_file}")
    for problem in problems:
        print(f"siliconbench: teardown: {problem}", file=sys.stderr)
    if interrupted_by is not None:
        kept = sum(len(run.cells) for run in runs)
        name = signal.Signals(interrupted_by).name
        print(f"siliconbench: interrupted by {name}; {kept} finished cells kept", file=sys.stderr)
        return exit_for_signal(interrupted_by)
    if any(o.status == "failed" for o in outcomes):
        return EXIT_ENVIRONMENT
    if any(cell.status != "ok" for run in runs for cell in run.cells):
        return EXIT_CELL_FAILED
    return EXIT_OK
