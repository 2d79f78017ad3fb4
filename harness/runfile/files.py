"""Run files: the JSON contract between measuring and reporting.

Change log of the schema (``schema_version``):

- 1 — first version: environment, target, and per cell its configuration, status, statistics
  (nanoseconds), raw samples, FLOPs, params, compile time, peak memory and correctness.
  Optional additions readable by every version-1 reader: ``environment.gpus`` (NVML inventory),
  per cell ``sampling.timer``, ``host_latency_ns`` and ``host_samples_ns`` (host clock beside
  device-event samples) and ``energy``.

The writer rewrites the whole file atomically (temporary file, fsync, rename) after every cell,
so a run killed at any moment leaves a valid file holding every cell finished before the kill.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from harness.errors import OutputError, RunFileError
from harness.measure.environment import utc_now
from harness.runfile.atomic import Reserve, atomic_write_text, is_disk_full, reserve_bytes
from harness.runfile.checks import dumps_json, read_json_document

__all__ = ["SCHEMA_NAME", "SCHEMA_VERSION", "RunWriter", "load_run", "new_run_id", "schema", "validate"]

SCHEMA_NAME = "siliconbench/run"
SCHEMA_VERSION = 1
_SCHEMA_PATH = Path(__file__).parent / "schema" / f"run-v{SCHEMA_VERSION}.schema.json"


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema of the current run-file version."""
    return json.loads(_SCHEMA_PATH.read_text())  # type: ignore[no-any-return]


def validate(data: dict[str, Any], source: str = "run file") -> None:
    """Raise RunFileError naming the first schema violation."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "top level"
        raise RunFileError(f"{source} does not match the run-file schema at {where}: {error.message}")


def new_run_id(now: datetime | None = None) -> str:
    """Sortable and unique: UTC timestamp plus a short random suffix."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:6]}"


def atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` so that readers see the old file or the new one, never a torn one."""
    atomic_write_text(path, dumps_json(data, indent=1))


class RunWriter:
    """Owns one run file: creates it up front and rewrites it after every cell."""

    def __init__(
        self,
        output_dir: Path,
        environment: dict[str, Any],
        target: dict[str, Any] | None = None,
        suite: dict[str, Any] | None = None,
        run_id: str | None = None,
        pricing: dict[str, Any] | None = None,
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
        #: How many cells the file on disk holds (a write that failed holds fewer than ``data``).
        self.saved_cells = 0
        self.data: dict[str, Any] = {
            "schema": SCHEMA_NAME,
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "status": "running",
            "started_utc": utc_now(),
            "finished_utc": None,
            "target": target or {"kind": "local"},
            "environment": environment,
            "suite": suite or {},
            "cells": [],
        }
        if pricing:
            # The machine's price (harness.pricing.Price.to_dict()): reports cost cells with it.
            self.data["pricing"] = pricing
        try:
            self._flush()
        except OSError as exc:
            self._reserve.release()
            self.path.unlink(missing_ok=True)
            raise OutputError(
                f"cannot write to output folder {str(output_dir)!r}: {exc.strerror}; choose another with --output"
            ) from None

    def _flush(self) -> None:
        """Write the file, then grow the reserve for its final write; a full disk raises OSError."""
        text = dumps_json(self.data, indent=1)
        atomic_write_text(self.path, text)
        self.saved_cells = len(self.data["cells"])
        self._reserve.ensure(reserve_bytes(len(text.encode())))

    def add_cell(self, cell: dict[str, Any]) -> None:
        """Append a cell and save; an OSError (``is_disk_full``) leaves the cell in ``data`` only."""
        self.data["cells"].append(cell)
        self._flush()

    def finish(self, status: str = "complete") -> Path:
        """The final write, into the reserved room; cells that never reached the disk are dropped
        only if even that room is too small."""
        self.data["status"] = status
        self.data["finished_utc"] = utc_now()
        self._reserve.release()
        try:
            atomic_write_json(self.path, self.data)
        except OSError as exc:
            if not is_disk_full(exc) or self.saved_cells == len(self.data["cells"]):
                raise
            del self.data["cells"][self.saved_cells :]
            atomic_write_json(self.path, self.data)
        self.saved_cells = len(self.data["cells"])
        return self.path


def load_run(path: str | Path) -> dict[str, Any]:
    """Read and validate a run file, with a one-line error for anything unreadable."""
    path = Path(path)
    data = read_json_document(path, "run file")
    if not isinstance(data, dict) or data.get("schema") != SCHEMA_NAME:
        raise RunFileError(f"{str(path)!r} is not a siliconbench run file (no 'schema': {SCHEMA_NAME!r})")
    found = data.get("schema_version")
    if found != SCHEMA_VERSION:
        raise RunFileError(
            f"{str(path)!r} has run-file schema version {found!r}; this siliconbench reads version "
            f"{SCHEMA_VERSION}: use the siliconbench release that wrote it"
        )
    validate(data, repr(str(path)))
    return data
