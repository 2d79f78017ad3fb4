"""Run files on disk: created up front, rewritten atomically after every cell, read back typed.

The writer rewrites the whole file atomically (temporary file, fsync, rename) after every cell,
so a run killed at any moment leaves a valid file holding every cell finished before the kill.
A disk that fills cannot take the last write away: before each version is written the writer
grows a reserve to what that version's final write needs (``harness.runfile.atomic.Reserve``), and
the final write goes into that reserve, so the file can always say why the run ended and keeps
every cell that reached the disk. A write that fails never removes the file already there.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from harness.errors import OutputError, RunFileError
from harness.runfile.atomic import Reserve, atomic_write_text, final_bytes, is_disk_full, reserve_bytes
from harness.runfile.codec import encode_run, parse_run
from harness.runfile.price import Price
from harness.runfile.records import CellRecord, Environment, RunRecord, RunStatus, TargetFacts, utc_now

__all__ = ["RunWriter", "atomic_write_text", "load_run", "new_run_id", "save_run"]


def new_run_id(now: datetime | None = None) -> str:
    """Sortable and unique: UTC timestamp plus a short random suffix."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:6]}"


def save_run(path: Path, run: RunRecord) -> None:
    """Write ``run`` to ``path`` atomically."""
    atomic_write_text(path, encode_run(run))


class RunWriter:
    """Owns one run file: creates it up front and rewrites it after every cell."""

    def __init__(
        self,
        output_dir: Path,
        environment: Environment,
        target: TargetFacts | None = None,
        suite: dict[str, object] | None = None,
        run_id: str | None = None,
        pricing: Price | None = None,
    ) -> None:
        self.run_id = run_id or new_run_id()
        try:
            output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"cannot create output folder {str(output_dir)!r}: {exc.strerror}; choose another with --output"
            ) from None
        self.path = output_dir / f"run-{self.run_id}.json"
        self._reserve = Reserve(self.path)
        #: How many cells the file on disk holds (a write that failed holds fewer than ``cells``).
        self.saved_cells = 0
        self.run = RunRecord(
            run_id=self.run_id,
            status="running",
            started_utc=utc_now(),
            finished_utc=None,
            target=target or TargetFacts(),
            environment=environment,
            suite=dict(suite or {}),
            pricing=pricing,
        )
        try:
            self._flush()
        except OSError as exc:
            # Nothing to remove: a failed write leaves no file (the run id is new) and no reserve.
            self._reserve.release()
            raise OutputError(
                f"cannot write to output folder {str(output_dir)!r}: {exc.strerror}; choose another with --output"
            ) from None

    @property
    def cells(self) -> tuple[CellRecord, ...]:
        return self.run.cells

    def _flush(self) -> None:
        """Grow the reserve to what this version's final write needs (a cell's worth more where the
        disk allows), then write it; a full disk raises OSError, and the file on disk, with
        ``saved_cells`` cells, can still be finished from the reserve."""
        text = encode_run(self.run)
        size = len(text.encode())
        self._reserve.ensure(reserve_bytes(size), need=final_bytes(size))
        atomic_write_text(self.path, text)
        self.saved_cells = len(self.run.cells)

    def add_cell(self, cell: CellRecord) -> None:
        """Append a cell and save; an OSError (``is_disk_full``) leaves the cell in ``cells`` only."""
        self.run = replace(self.run, cells=(*self.run.cells, cell))
        self._flush()

    def finish(self, status: RunStatus = "complete", reason: str | None = None) -> Path:
        """The final write, into the reserved room itself; cells that never reached the disk are
        dropped only if even that room is too small for them."""
        self.run = replace(self.run, status=status, finished_utc=utc_now(), status_reason=reason)
        kept = replace(self.run, cells=self.run.cells[: self.saved_cells])
        versions = [self.run] if kept.cells == self.run.cells else [self.run, kept]
        for version in versions:
            if self._reserve.write_into(self.path, encode_run(version)):
                self.run = version
                break
        else:  # no reserve to write into (a file system without O_TMPFILE): give it back, then write
            self._reserve.release()
            try:
                save_run(self.path, self.run)
            except OSError as exc:
                if not is_disk_full(exc) or len(versions) == 1:
                    raise
                self.run = kept
                save_run(self.path, self.run)
        self.saved_cells = len(self.run.cells)
        return self.path


def load_run(path: str | Path) -> RunRecord:
    """Read and validate a run file, with a one-line error for anything unreadable."""
    path = Path(path)
    source = repr(str(path))
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RunFileError(f"run file {source} does not exist") from None
    except IsADirectoryError:
        raise RunFileError(f"{source} is a folder, not a run file") from None
    except OSError as exc:
        raise RunFileError(f"cannot read run file {source}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RunFileError(
            f"{source} is not a run file: not UTF-8 text (byte {exc.start}); run files are JSON written by siliconbench"
        ) from None
    return parse_run(text, source)
