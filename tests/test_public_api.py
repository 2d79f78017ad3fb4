"""The public names of each package are what we mean to export, and all of them exist."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, cli_env

#: The run-file records: every name of ``harness.runfile.records`` is public through ``siliconbench``.
RECORDS = {
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "Bandwidth",
    "BandwidthPoint",
    "Capability",
    "ComputeCeiling",
    "DtypeLeftOut",
    "DtypeSupport",
    "BlockInfo",
    "CapacitySearchRecord",
    "CellConfig",
    "CellError",
    "CellRecord",
    "CellStatus",
    "Correctness",
    "CpuFacts",
    "DeviceFacts",
    "Energy",
    "EngineAgreement",
    "EngineLoadRecord",
    "EnginePart",
    "EngineRequestRecord",
    "Environment",
    "GenerationPart",
    "GpuInventory",
    "HostTiming",
    "Interval",
    "LoadgenPart",
    "Measurement",
    "OfflinePart",
    "Peak",
    "ProcessesPart",
    "RequestSetFacts",
    "RunRecord",
    "RunStatus",
    "SamplingRecord",
    "ScenarioParams",
    "ServerPart",
    "ServerProbeRecord",
    "SloTargets",
    "Summary",
    "TargetFacts",
    "TokenMetrics",
    "TorchFacts",
    "Validity",
    "WorkloadFacts",
    # The engine's parts of a cell and the run's price (harness/runfile/engine.py, price.py).
    "EngineMetrics",
    "EngineParams",
    "EngineRecord",
    "EngineSpec",
    "MetricsSample",
    "Price",
    # An engine's cold start on an instance, split (issue 20).
    "ColdStart",
    # Load as served (issue 21): a trace's replay, designed prefix reuse, results per turn.
    "ReuseRecord",
    "TraceRecord",
    "TurnRecord",
}

EXPECTED = {
    "siliconbench": {"__version__", "run_suite", "load_run", "load_suite", "Suite", "LocalRun", *RECORDS},
    "workloads": {"Workload", "WorkloadFactory", "WorkloadFamily"},
    "backends": {"Availability", "Backend", "BackendOptions", "DeviceTimer", "EnergyMeter", "PreparedModel"},
    "backends.engine": {
        "ChatMessage",
        "ClientTimeouts",
        "Endpoint",
        "EngineBackend",
        "EngineRequest",
        "FailureKind",
        "RequestFailure",
        "RequestOutcome",
        "RequestStream",
        "TokenEvent",
        "Usage",
        "build_outcome",
    },
    "harness.errors": {
        "BackendUnavailableError",
        "CellFailedError",
        "CloudError",
        "ConfigError",
        "OutputError",
        "PreflightError",
        "PricingError",
        "RunFileError",
        "RunStoppedError",
        "SiliconbenchError",
        "UnknownNameError",
    },
}


@pytest.mark.parametrize("module_name", sorted(EXPECTED))
def test_exports(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert set(module.__all__) == EXPECTED[module_name]
    for name in module.__all__:
        assert hasattr(module, name), name


def test_every_error_is_a_siliconbench_error() -> None:
    from harness import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.SiliconbenchError)


def _held_by(root: type) -> set[type]:
    """Every dataclass a ``root`` holds, through its fields' types (unions, tuples, dicts, Literals)."""
    import dataclasses
    import typing

    found: set[type] = set()
    todo: list[object] = [root]
    while todo:
        kind = todo.pop()
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            if kind in found:
                continue
            found.add(kind)
            todo.extend(typing.get_type_hints(kind, include_extras=False).values())
        else:
            todo.extend(typing.get_args(kind))
    return found


def test_every_record_a_run_file_holds_is_public() -> None:
    """A record added to the run file joins the public API (or this test says it did not)."""
    import siliconbench

    held = _held_by(siliconbench.RunRecord)
    assert len(held) > 20, "the walk found too few records: has RunRecord stopped being a dataclass tree?"
    missing = sorted(f"{k.__module__}.{k.__name__}" for k in held if getattr(siliconbench, k.__name__, None) is not k)
    assert not missing, f"held by RunRecord, not exported by siliconbench: {missing}"


def test_run_suite_and_load_run_keep_their_signatures() -> None:
    import siliconbench

    assert list(inspect.signature(siliconbench.run_suite).parameters) == ["suite", "run_id", "progress", "pricing"]
    assert list(inspect.signature(siliconbench.load_run).parameters) == ["path"]
    assert siliconbench.run_suite.__doc__ and siliconbench.load_run.__doc__ and siliconbench.__doc__


def test_importing_siliconbench_imports_nothing_that_measures() -> None:
    code = "import sys, siliconbench; print(sorted({'torch', 'transformers', 'boto3'} & set(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, env=cli_env(), timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_run_suite_reads_a_suite_file_and_load_run_reads_what_it_wrote(tmp_path: Path) -> None:
    import siliconbench

    suite = tmp_path / "suite.toml"
    output = tmp_path / "results"
    suite.write_text(
        f'workloads = ["mlp"]\npreset = "tiny"\ndtypes = ["fp32"]\nmax_time = 0.2\nmin_samples = 5\n'
        f"output = {str(output)!r}\n"
    )
    seen: list[tuple[int, int, bool]] = []
    result = siliconbench.run_suite(suite, progress=lambda i, n, config, cell: seen.append((i, n, cell is None)))
    assert result.path.parent == output
    run = siliconbench.load_run(result.path)
    assert isinstance(run, siliconbench.RunRecord) and run.status == "complete"
    (cell,) = run.cells
    assert isinstance(cell, siliconbench.CellRecord) and cell.config.workload == "mlp"
    assert cell.measurement is not None and cell.measurement.correctness.passed
    assert seen == [(1, 1, True), (1, 1, False)]  # the cell counts from 1


def test_the_version_is_written_once() -> None:
    """pyproject.toml reads it from ``harness.__version__``; the installed metadata agrees."""
    import harness
    import siliconbench

    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "harness.__version__"}
    assert siliconbench.__version__ == harness.__version__ == version("siliconbench")


def test_the_package_is_installed_and_typed() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert "siliconbench*" in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    assert "py.typed" in pyproject["tool"]["setuptools"]["package-data"]["siliconbench"]
    assert (REPO_ROOT / "siliconbench" / "py.typed").exists()
