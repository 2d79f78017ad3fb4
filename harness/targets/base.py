"""The target contract: run a suite somewhere and hand back the run files it produced."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from harness.run.plan import Suite

__all__ = ["OUTCOME_STATUSES", "Target", "TargetInterrupted", "TargetOutcome"]

#: ``complete``: every cell ran (some may have failed alone); ``interrupted``: stopped early by the
#: user or a signal; ``failed``: the place itself failed (no capacity, bootstrap, lost instance).
OUTCOME_STATUSES = ("complete", "interrupted", "failed")


@dataclass(frozen=True)
class TargetOutcome:
    """What happened at one place a suite ran: its run file (if any was produced) and why it stopped."""

    label: str
    status: str
    run_file: Path | None = None
    error: str | None = None
    cells_done: int = 0
    cells_total: int = 0

    def __post_init__(self) -> None:
        if self.status not in OUTCOME_STATUSES:
            raise ValueError(f"unknown outcome status {self.status!r}; expected one of {OUTCOME_STATUSES}")


@runtime_checkable
class Target(Protocol):
    """Where a suite runs; ``run`` never raises for a failure of one place, only for bad input."""

    kind: str

    def run(self, suite: Suite) -> list[TargetOutcome]:
        """Run ``suite`` and return one outcome per place (a local run has one)."""
        ...


class TargetInterrupted(KeyboardInterrupt):
    """A signal ended the run after the target cleaned up; carries what each place produced.

    A ``KeyboardInterrupt``, so code that only knows Ctrl-C still stops; ``signum`` says which
    signal it was (the exit code is 128 + signum).
    """

    def __init__(self, outcomes: list[TargetOutcome], signum: int = 2) -> None:
        super().__init__("interrupted")
        self.outcomes = outcomes
        self.signum = signum
