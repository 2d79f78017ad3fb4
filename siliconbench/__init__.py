"""siliconbench from Python: run a suite, read a run file, and work with its typed records.

The command line is one client of these names; a notebook or a script is another. Everything
here is a stable, typed entry point; the modules under ``harness`` are internals that may move.

    import siliconbench

    result = siliconbench.run_suite("suite.toml")  # or a siliconbench.Suite
    run = siliconbench.load_run(result.path)
    for cell in run.cells:
        if cell.measurement is not None:
            print(cell.config.workload, cell.measurement.latency_ns.p50)

A run file is a tree of frozen dataclasses (``RunRecord`` → ``CellRecord`` → ``Measurement`` …),
read with attributes, never as dicts; its schema's change log is in ``harness.runfile.codec``.
Importing this package is cheap: nothing that measures (torch included) is imported until
``run_suite`` is called.

Where a name lives inside ``harness`` is no promise; these names and their signatures are, and
``tests/test_public_api.py`` pins them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness import __version__
from harness.run.plan import Suite
from harness.run.plan import load_suite_file as load_suite
from harness.run.suite import LocalRun
from harness.run.suite import run_suite as _run_suite
from harness.runfile.engine import ColdStart, EngineMetrics, EngineParams, EngineRecord, EngineSpec, MetricsSample
from harness.runfile.files import load_run
from harness.runfile.price import Price
from harness.runfile.records import (
    SCHEMA_NAME,
    SCHEMA_VERSION,
    BlockInfo,
    CapacitySearchRecord,
    CellConfig,
    CellError,
    CellRecord,
    CellStatus,
    Correctness,
    CpuFacts,
    DeviceFacts,
    Energy,
    EngineAgreement,
    EngineLoadRecord,
    EnginePart,
    EngineRequestRecord,
    Environment,
    GenerationPart,
    GpuInventory,
    HostTiming,
    Interval,
    LoadgenPart,
    Measurement,
    OfflinePart,
    Peak,
    ProcessesPart,
    RequestSetFacts,
    ReuseRecord,
    RunRecord,
    RunStatus,
    SamplingRecord,
    ScenarioParams,
    ServerPart,
    ServerProbeRecord,
    SloTargets,
    Summary,
    TargetFacts,
    TokenMetrics,
    TorchFacts,
    TraceRecord,
    TurnRecord,
    Validity,
    WorkloadFacts,
)
from harness.runfile.silicon import Bandwidth, BandwidthPoint, Capability, ComputeCeiling, DtypeLeftOut, DtypeSupport

if TYPE_CHECKING:
    from harness.run.runner import ProgressFn

__all__ = [
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "Bandwidth",
    "BandwidthPoint",
    "BlockInfo",
    "Capability",
    "CapacitySearchRecord",
    "CellConfig",
    "CellError",
    "CellRecord",
    "CellStatus",
    "ColdStart",
    "ComputeCeiling",
    "Correctness",
    "CpuFacts",
    "DeviceFacts",
    "DtypeLeftOut",
    "DtypeSupport",
    "Energy",
    "EngineAgreement",
    "EngineLoadRecord",
    "EngineMetrics",
    "EngineParams",
    "EnginePart",
    "EngineRecord",
    "EngineRequestRecord",
    "EngineSpec",
    "Environment",
    "GenerationPart",
    "GpuInventory",
    "HostTiming",
    "Interval",
    "LoadgenPart",
    "LocalRun",
    "Measurement",
    "MetricsSample",
    "OfflinePart",
    "Peak",
    "Price",
    "ProcessesPart",
    "RequestSetFacts",
    "ReuseRecord",
    "RunRecord",
    "RunStatus",
    "SamplingRecord",
    "ScenarioParams",
    "ServerPart",
    "ServerProbeRecord",
    "SloTargets",
    "Suite",
    "Summary",
    "TargetFacts",
    "TokenMetrics",
    "TorchFacts",
    "TraceRecord",
    "TurnRecord",
    "Validity",
    "WorkloadFacts",
    "__version__",
    "load_run",
    "load_suite",
    "run_suite",
]


def run_suite(
    suite: Suite | str | Path,
    *,
    run_id: str | None = None,
    progress: ProgressFn | None = None,
    pricing: Price | None = None,
) -> LocalRun:
    """Measure every cell of ``suite`` here, into one run file, with the pipeline of ``siliconbench run``.

    ``suite`` is a ``Suite`` or the path of a TOML suite file (``load_suite``).
    ``progress(n, total, config, cell)`` is called as cell n (from 1) starts, with ``cell`` None,
    and once it is written. Bad input (an unknown workload, a backend not available here) raises a
    ``harness.errors.SiliconbenchError`` before anything runs.
    """
    if not isinstance(suite, Suite):
        suite = load_suite(suite)
    return _run_suite(suite, run_id=run_id, progress=progress, pricing=pricing)
