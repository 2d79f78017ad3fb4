"""Write the cell or stop: the one way a measured cell reaches the run file, and the one way a run ends.

Every runner strategy (in this process, isolated, on an engine, repeated processes) hands its
records here, so however a run ends its file is valid, holds every cell that finished, and says
why it ended:

- ``complete`` once the last cell is written;
- ``interrupted`` with the signal's name when a stop signal arrives (``interrupted``); the
  records a strategy measured but had not handed over yet (``--processes``: the cells with at
  least one process) are written first, with further signals held;
- ``aborted`` with ``disk full: ...`` when a write finds no space: the run stops rather than
  measure what it cannot keep, and ``RunStoppedError`` says how many cells were kept;
- ``aborted`` with ``timed out: ...`` when a cell in this process hangs (``hung``), told from the
  watchdog thread; a write that fails there keeps the last good file.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterable, Sequence

from harness.errors import RunStoppedError
from harness.run.signals import signals_held
from harness.runfile.atomic import is_disk_full
from harness.runfile.files import RunWriter
from harness.runfile.records import CellRecord

__all__ = ["RunSink"]


class RunSink:
    """The run file as the runner sees it: ``write`` each record, then ``complete`` or a stop."""

    def __init__(self, writer: RunWriter, total: int) -> None:
        """``total`` is how many cell records the run means to write (for the disk-full line)."""
        self.writer = writer
        self.total = total
        self.written: list[CellRecord] = []

    def write(self, record: CellRecord) -> None:
        """Append ``record`` to the file, or end the run ``aborted`` if the disk is full."""
        try:
            self.writer.add_cell(record)
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            raise self._stopped_for_disk(len(self.written) + 1, self.total, exc) from None
        self.written.append(record)

    def complete(self) -> list[CellRecord]:
        """Mark the run ``complete``; the records written."""
        try:
            self.writer.finish("complete")
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            done = len(self.written)
            raise self._stopped_for_disk(done, done, exc) from None
        return self.written

    def interrupted(self, exc: KeyboardInterrupt, leftovers: Sequence[CellRecord] = ()) -> None:
        """Write ``leftovers`` and mark the run ``interrupted`` by the signal ``exc`` carries."""
        with signals_held():
            self.total = len(self.written) + len(leftovers)
            for record in leftovers:
                self.write(record)
            self.writer.finish("interrupted", signal.Signals(getattr(exc, "signum", signal.SIGINT)).name)

    def hung(self, record: CellRecord, why: str) -> int:
        """Keep the hung cell's ``record`` and mark the run ``aborted`` (timed out) as far as the disk allows.

        Called from the watchdog thread while the main thread is stuck in the cell; returns how many
        finished cells the file held before it.
        """
        done = self.writer.saved_cells
        try:
            self.writer.add_cell(record)
        except OSError:
            pass  # finish() keeps what fits
        try:
            self.writer.finish("aborted", f"timed out: cell {record.id} {why}")
        except OSError:
            pass  # the last good file stays
        return done

    def drain(self, records: Iterable[CellRecord], leftovers: Callable[[], Sequence[CellRecord]]) -> list[CellRecord]:
        """Write every record ``records`` yields, then complete the run; on a stop signal, write
        ``leftovers()`` and mark it interrupted before re-raising."""
        try:
            for record in records:
                self.write(record)
            return self.complete()
        except KeyboardInterrupt as exc:
            self.interrupted(exc, leftovers())
            raise

    def _stopped_for_disk(self, done: int, total: int, exc: OSError) -> RunStoppedError:
        writer = self.writer
        with signals_held():
            writer.finish("aborted", f"disk full: {exc.strerror} after {done} of {total} cells")
        return RunStoppedError(
            f"no space left on the disk holding {writer.path} ({exc.strerror}): stopped after {done} of {total} "
            f"cells; {writer.saved_cells} finished cells kept in {writer.path} (status aborted: disk full)",
            "disk_full",
            writer.path,
        )
