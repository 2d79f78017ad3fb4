"""The engines of one run: each started (or attached to) on first use, all stopped when the run ends.

A run keeps one engine per ``EngineSpec`` for all its cells, so a concurrency sweep pays the
engine's cold start once instead of once per cell. An engine that failed to start is remembered,
so the next cells that need it fail at once with the same line instead of waiting out the ready
timeout again; so is one that died during a cell (its exit status says so). Closing the pool
stops every engine it started, in reverse order, however the run ended; attached servers are
only let go.
"""

from __future__ import annotations

import contextlib

from backends.engine.serving import ServingEngine, open_engine
from harness.errors import CellFailedError
from harness.runfile.engine import EngineSpec

__all__ = ["EnginePool"]


class EnginePool:
    """The engines of one run, opened on first use and stopped when the pool closes."""

    def __init__(self, log_dir: str | None = None) -> None:
        self._stack = contextlib.ExitStack()
        self._open: dict[EngineSpec, ServingEngine] = {}
        self._failed: dict[EngineSpec, BaseException] = {}
        self._log_dir = log_dir

    def get(self, spec: EngineSpec) -> ServingEngine:
        """The engine of ``spec``, started (or attached to) now if it is not yet."""
        if spec in self._failed:
            raise self._failed[spec]
        opened = self._open.get(spec)
        if isinstance(opened, ServingEngine) and (code := opened.exit_code()) is not None:
            # Died during an earlier cell: the cells after it fail at once, saying so.
            log = opened.process.log_path if opened.process is not None else None
            self._failed[spec] = CellFailedError(
                f"engine {opened.engine.engine} exited with code {code} during the run (log {log}); "
                "the cells after it were not measured"
            )
            raise self._failed[spec]
        if spec not in self._open:
            try:
                self._open[spec] = self._stack.enter_context(open_engine(spec, self._log_dir))
            except Exception as exc:
                self._failed[spec] = exc
                raise
        return self._open[spec]

    def close(self) -> None:
        self._stack.close()
        self._open.clear()

    def __enter__(self) -> EnginePool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
