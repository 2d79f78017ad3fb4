"""The engines of one run: each started (or attached to) on first use, one at a time, all stopped
when the run ends.

A run keeps one engine per ``EngineSpec`` for the cells that follow one another on it, so a
concurrency sweep pays the engine's cold start once instead of once per cell. A cell that needs
another spec (the next configuration of an ``--engine-arg`` sweep) stops the running engine
first: two engines on one machine would share its cores and memory and measure each other.
The plan orders cells configuration-major, so each configuration starts once. An engine that
failed to start is remembered, so the next cells that need it fail at once with the same line
instead of waiting out the ready timeout again; so is one that died during a cell (its exit status
says so). Closing the pool stops what is running, however the run ended; attached servers are
only let go.
"""

from __future__ import annotations

import contextlib

from backends.engine.serving import ServingEngine, open_engine
from harness.errors import CellFailedError
from harness.runfile.engine import EngineSpec

__all__ = ["EnginePool"]


class EnginePool:
    """The engines of one run, opened on first use, one at a time, and stopped when the pool closes."""

    def __init__(self, log_dir: str | None = None) -> None:
        self._stack = contextlib.ExitStack()
        self._spec: EngineSpec | None = None
        self._engine: ServingEngine | None = None
        self._failed: dict[EngineSpec, BaseException] = {}
        self._log_dir = log_dir

    def get(self, spec: EngineSpec) -> ServingEngine:
        """The engine of ``spec``, started (or attached to) now if it is not the running one."""
        if spec in self._failed:
            raise self._failed[spec]
        opened = self._engine if spec == self._spec else None
        if isinstance(opened, ServingEngine) and (code := opened.exit_code()) is not None:
            # Died during an earlier cell: the cells after it fail at once, saying so.
            log = opened.process.log_path if opened.process is not None else None
            self._failed[spec] = CellFailedError(
                f"engine {opened.engine.engine} exited with code {code} during the run (log {log}); "
                "the cells after it were not measured"
            )
            raise self._failed[spec]
        if spec != self._spec or self._engine is None:
            self.close()
            try:
                self._engine = self._stack.enter_context(open_engine(spec, self._log_dir))
            except Exception as exc:
                self._failed[spec] = exc
                raise
            self._spec = spec
        return self._engine

    def close(self) -> None:
        """Stop the running engine (let an attached one go)."""
        self._spec, self._engine = None, None
        self._stack.close()
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> EnginePool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
