"""Run one cell: resolve, build, then hand over to its scenario — and never raise.

Whatever goes wrong inside a cell becomes a ``failed`` cell naming the phase it failed in, so
one broken configuration never costs the measurements of the others. The common part (backend,
options, threads, workload, model) lives here; what is measured and how lives in
``harness.scenarios``, one module per scenario.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING

from backends.base import BackendOptions
from harness.measure.busy import busy_machine_warning
from harness.measure.contention import watch_contention
from harness.measure.sampler import SamplingPolicy
from harness.run.failures import describe_failure
from harness.runfile.records import CellConfig, CellError, CellRecord, utc_now
from harness.scenarios.registry import cell_id

if TYPE_CHECKING:
    from backends.engine.pool import EnginePool
    from harness.run.limits import CellLimits


__all__ = ["failed_cell", "run_cell"]


def failed_cell(
    config: CellConfig,
    phase: str,
    exc: BaseException | str,
    started: str,
    trace: str | None = None,
    kind: str = "ChildProcessError",
) -> CellRecord:
    """A cell record for a failure, with a one-line message (``kind`` names a failure given as text)."""
    if isinstance(exc, BaseException):
        kind, message = describe_failure(exc, config.batch_size)
    else:
        message = exc
    return CellRecord(
        id=cell_id(config),
        config=config,
        status="failed",
        error=CellError(type=kind, message=message[:500], phase=phase, traceback=trace),
        started_utc=started,
        finished_utc=utc_now(),
    )


def run_cell(
    config: CellConfig,
    policy: SamplingPolicy,
    on_phase: Callable[[str], None] | None = None,
    engines: EnginePool | None = None,
    limits: CellLimits | None = None,
) -> CellRecord:
    """Measure one cell in this process; failures come back as a failed cell record.

    ``on_phase(name)`` is told each phase as it starts (``harness.run.limits`` times them). An
    engine cell takes its engine from ``engines`` (the run's pool; one of its own, closed with the
    cell, when None) and keeps ``limits`` itself: every request it sends ends within them.
    """
    if config.params.engine is not None:
        return _run_engine_cell(config, policy, engines, limits)
    started = utc_now()
    phase = "setup"
    ctx = None
    if on_phase is not None:
        on_phase(phase)
    try:
        import torch

        from backends.registry import require_backend
        from harness.scenarios.base import CellContext
        from harness.scenarios.registry import get_scenario
        from workloads.registry import resolve

        scenario = get_scenario(config.scenario, loadgen=config.params.loadgen)
        backend = require_backend(config.backend)
        options = BackendOptions(dtype=config.dtype, mode=config.mode, threads=config.threads, device=config.device)
        backend.validate(options)
        if config.threads is not None:
            torch.set_num_threads(config.threads)

        phase = "build"
        if on_phase is not None:
            on_phase(phase)
        workload = resolve(config.workload, config.preset)
        torch.manual_seed(0)
        model = workload.build_model().eval()
        params = sum(p.numel() for p in model.parameters())

        ctx = CellContext(config, policy, backend, options, workload, model, params, on_phase=on_phase)
        with watch_contention() as window:
            measurement = scenario.run(ctx)
        record = CellRecord(
            id=cell_id(config),
            config=config,
            status="ok",
            measurement=measurement,
            started_utc=started,
            finished_utc=utc_now(),
        )
        busy = busy_machine_warning(config.threads or torch.get_num_threads(), window)
        return record.with_warning(busy) if busy else record
    except Exception as exc:  # a cell must fail alone, whatever it raised
        phase = ctx.phase if ctx is not None else phase
        return failed_cell(config, phase, exc, started, traceback.format_exc(limit=8))


def _run_engine_cell(
    config: CellConfig, policy: SamplingPolicy, engines: EnginePool | None, limits: CellLimits | None
) -> CellRecord:
    """An engine cell: no model here, the engine serves it (``harness.scenarios.engine_cell``)."""
    from backends.engine.pool import EnginePool
    from harness.scenarios.engine_cell import EngineCell

    started = utc_now()
    cell = None
    own = None
    if engines is None:
        engines = own = EnginePool()
    try:
        from harness.run.limits import CellLimits

        limits = limits or CellLimits()
        cell = EngineCell(
            config,
            policy,
            engines,
            check_limit_s=limits.sampling_s(policy, config.scenario),
            load_limit_s=limits.sampling_s(policy, config.scenario),
        )
        record = CellRecord(
            id=cell_id(config),
            config=config,
            status="ok",
            measurement=cell.run(),
            started_utc=started,
            finished_utc=utc_now(),
        )
        # No contention window: the engine is a process of its own, so its work would count as
        # someone else's; the load-average rule is the witness here.
        busy = busy_machine_warning(1)
        return record.with_warning(busy) if busy else record
    except Exception as exc:  # a cell must fail alone, whatever it raised
        phase = cell.phase if cell is not None else "setup"
        return failed_cell(config, phase, exc, started, traceback.format_exc(limit=8))
    finally:
        if own is not None:
            own.close()
