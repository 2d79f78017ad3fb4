"""Helpers for scenario tests: a short sampling policy, cells of tiny workloads, schema checks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.measure.environment import collect_environment
from harness.measure.sampler import SamplingPolicy
from harness.runfile.files import RunWriter, load_run
from harness.runfile.records import CellConfig, CellRecord, Environment, ScenarioParams

#: Enough to exercise every code path in well under a second per cell on a tiny model.
SHORT = SamplingPolicy(max_time_s=0.3, warmup_time_s=0.01, warmup_min_count=1, min_count=3)


def _tiny_cell(workload: str, scenario: str, batch_size: int = 1, mode: str = "eager", **params: Any) -> CellConfig:
    return CellConfig(
        workload=workload,
        preset="tiny",
        backend="cpu",
        dtype="fp32",
        mode=mode,
        threads=1,
        batch_size=batch_size,
        scenario=scenario,
        params=ScenarioParams(**params),
    )


TinyCell = Callable[..., CellConfig]


@pytest.fixture
def tiny_cell() -> TinyCell:
    """``tiny_cell(workload, scenario, batch_size=1, mode="eager", **scenario_params)``: a fp32 CPU
    cell of the workload's tiny preset on one thread."""
    return _tiny_cell


@pytest.fixture
def short() -> SamplingPolicy:
    return SHORT


@pytest.fixture(scope="session")
def environment() -> Environment:
    return collect_environment()


@pytest.fixture
def through_run_file(tmp_path: Path, environment: Environment) -> Callable[[CellRecord], CellRecord]:
    """Write a cell record into a run file and read it back through the validating reader."""

    def roundtrip(record: CellRecord) -> CellRecord:
        writer = RunWriter(tmp_path, environment)
        writer.add_cell(record)
        cell = load_run(writer.finish()).cells[0]
        assert cell == record
        return cell

    return roundtrip
