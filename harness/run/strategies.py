"""How one cell is measured: in this process, in a child process, or on the run's serving engines.

Each strategy does one job, ``measure(config) -> CellRecord``, never raises for a failed cell, and
is closed when the run ends. None of them writes the run file: the runner hands every record to
``harness.run.sink.RunSink``, the one path that writes a cell or stops the run.

- ``InProcess``: the cell runs here, with a watchdog thread keeping its limits
  (``harness.run.limits``); a cell past its limit cannot be stopped from inside, so the watchdog
  keeps what it can through the sink and ends the process through ``on_hang``.
- ``Isolated``: the cell runs in a fresh ``spawn``ed child (``harness.run.isolation``), killed
  and failed alone when it passes its limit.
- ``OnEngine``: the cell's load goes to a serving engine from the run's
  ``backends.engine.pool.EnginePool`` (one cold start per engine for the whole run), stopped
  when the strategy closes; the cell keeps its limits itself, as deadlines on every request
  (``harness.scenarios.engine_cell``), so a silent server fails requests, not the run.
- ``ByConfig``: the one a run of single processes uses: an engine cell on the engines, a cell
  ``isolate`` says so in a child, the rest here; each made on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from harness.errors import RunStoppedError
from harness.measure.sampler import SamplingPolicy
from harness.run.cell import failed_cell, run_cell
from harness.run.isolation import run_cell_isolated
from harness.run.limits import PREPARE_PHASES, CellLimits
from harness.run.sink import RunSink
from harness.run.watchdog import Watchdog
from harness.runfile.records import CellConfig, CellRecord
from harness.scenarios.registry import cell_id

if TYPE_CHECKING:
    from backends.engine.pool import EnginePool

__all__ = ["ByConfig", "HangFn", "InProcess", "Isolated", "OnEngine", "Strategy"]

#: Told, from the watchdog thread, that a cell in this process is hung; it must end the process.
HangFn = Callable[[RunStoppedError], None]


class Strategy(Protocol):
    """Measures one cell into a record (a failed cell is a record, never an exception)."""

    def measure(self, config: CellConfig) -> CellRecord: ...

    def close(self) -> None: ...


class Isolated:
    """Each cell in a fresh child process, killed and failed alone past its limit."""

    def __init__(self, policy: SamplingPolicy, limits: CellLimits) -> None:
        self.policy, self.limits = policy, limits

    def measure(self, config: CellConfig) -> CellRecord:
        return run_cell_isolated(config, self.policy, self.limits)

    def close(self) -> None:
        pass


class OnEngine:
    """Engine cells, on engines that live for the whole run and are always stopped at its end.

    The pool is imported on the first engine cell only: the engine client needs aiohttp, which an
    in-process run (on an AWS instance, say) need not have.
    """

    def __init__(self, policy: SamplingPolicy, limits: CellLimits | None = None) -> None:
        self.policy = policy
        self.limits = limits or CellLimits()
        self._pool: EnginePool | None = None

    def measure(self, config: CellConfig) -> CellRecord:
        if self._pool is None:
            from backends.engine.pool import EnginePool

            self._pool = EnginePool()
        return run_cell(config, self.policy, engines=self._pool, limits=self.limits)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()


class InProcess:
    """Each cell in this process, its limits kept by a watchdog thread."""

    def __init__(self, policy: SamplingPolicy, limits: CellLimits, sink: RunSink, on_hang: HangFn) -> None:
        self.policy, self.limits, self.sink, self.on_hang = policy, limits, sink, on_hang
        self.cell_limits = limits
        self.config: CellConfig | None = None
        self.phase = "setup"
        self.sampling = False
        self.started = ""
        self.watchdog = Watchdog(self._expire)

    def measure(self, config: CellConfig) -> CellRecord:
        from harness.runfile.records import utc_now

        self.config, self.phase, self.sampling, self.started = config, "setup", False, utc_now()
        self.cell_limits = self.limits.for_cell(config.backend, config.mode)
        self.watchdog.arm(self.cell_limits.prepare_limit_s)
        try:
            return run_cell(config, self.policy, on_phase=self._on_phase)
        finally:
            if not self.watchdog.disarm():  # the watchdog is ending the process; never race its write
                threading.Event().wait()

    def _on_phase(self, phase: str) -> None:
        self.phase = phase
        if phase not in PREPARE_PHASES and not self.sampling and self.config is not None:
            self.sampling = True
            self.watchdog.arm(
                self.cell_limits.sampling_s(self.policy, self.config.scenario, self.config.params.loadgen)
            )

    def _expire(self) -> None:
        config = self.config
        assert config is not None
        why = self.cell_limits.describe(self.phase, self.policy, config.scenario, config.params.loadgen)
        record = failed_cell(
            config,
            self.phase,
            f"the cell {why}; a cell in this process cannot be stopped, so the run ended (use --isolate)",
            self.started,
            kind="TimeoutError",
        )
        done = self.sink.hung(record, why)
        path = self.sink.writer.path
        self.on_hang(
            RunStoppedError(
                f"cell {cell_id(config)} {why}; a hung cell cannot be stopped inside this process, so the run "
                f"ended: rerun with --isolate to have it killed and the run go on; {done} finished cells kept "
                f"in {path} (status aborted: timed out)",
                "timed_out",
                path,
            )
        )

    def close(self) -> None:
        self.watchdog.close()


class ByConfig:
    """Each cell by the strategy its configuration asks for; every strategy made on first use."""

    def __init__(
        self,
        policy: SamplingPolicy,
        limits: CellLimits,
        sink: RunSink,
        on_hang: HangFn,
        isolate: Callable[[CellConfig], bool],
    ) -> None:
        self.policy, self.limits, self.sink, self.on_hang, self.isolate = policy, limits, sink, on_hang, isolate
        self._made: dict[str, Strategy] = {}

    def measure(self, config: CellConfig) -> CellRecord:
        return self._for(config).measure(config)

    def _for(self, config: CellConfig) -> Strategy:
        if config.params.engine is not None:
            return self._made.setdefault("engine", OnEngine(self.policy, self.limits))
        if self.isolate(config):
            return self._made.setdefault("isolated", Isolated(self.policy, self.limits))
        if "in-process" not in self._made:  # its watchdog thread starts with it: make it only when needed
            self._made["in-process"] = InProcess(self.policy, self.limits, self.sink, self.on_hang)
        return self._made["in-process"]

    def close(self) -> None:
        """Close the in-process watchdog, then the engines (the order a run ends in)."""
        for name in ("in-process", "isolated", "engine"):
            if name in self._made:
                self._made[name].close()
