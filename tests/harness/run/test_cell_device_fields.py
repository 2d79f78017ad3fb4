"""The run-file fields of device-timed cells, measured through run_cell with a CPU backend that
offers a second clock and an energy counter (tests/backends/timed_backend.py)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from backends.registry import BUILTIN_BACKENDS
from harness.errors import RunFileError
from harness.measure.environment import collect_environment
from harness.measure.sampler import SamplingPolicy
from harness.run.cell import run_cell
from harness.run.plan import CellConfig
from harness.runfile.files import RunWriter, load_run, validate
from tests.backends.timed_backend import ENERGY_STEP_MJ

POLICY = SamplingPolicy(max_time_s=0.2, warmup_time_s=0.02, min_count=5)


@pytest.fixture(scope="module")
def timed_cell() -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(BUILTIN_BACKENDS, "cpu-timed", "tests.backends.timed_backend:TimedCpuBackend")
        return run_cell(CellConfig("mlp", "tiny", "cpu-timed", "fp32", "eager", 1, 4), POLICY)


def test_device_samples_are_primary_and_host_samples_sit_beside_them(timed_cell: dict[str, Any]) -> None:
    assert timed_cell["status"] == "ok", timed_cell.get("error")
    assert timed_cell["sampling"]["timer"] == "thread_cpu_time"
    count = timed_cell["latency_ns"]["count"]
    assert len(timed_cell["samples_ns"]) == len(timed_cell["host_samples_ns"]) == count
    assert timed_cell["host_latency_ns"]["count"] == count
    # Each summary is of its own samples.
    assert timed_cell["latency_ns"]["min"] == min(timed_cell["samples_ns"])
    assert timed_cell["latency_ns"]["max"] == max(timed_cell["samples_ns"])
    assert timed_cell["host_latency_ns"]["min"] == min(timed_cell["host_samples_ns"])
    assert timed_cell["host_latency_ns"]["max"] == max(timed_cell["host_samples_ns"])


def test_energy_covers_every_call_of_the_window(timed_cell: dict[str, Any]) -> None:
    energy = timed_cell["energy"]
    calls = timed_cell["sampling"]["warmup_count"] + timed_cell["latency_ns"]["count"]
    assert energy["calls"] == calls
    assert energy["joules"] == pytest.approx(ENERGY_STEP_MJ / 1000)  # one step between two readings
    assert energy["joules_per_inference"] == pytest.approx(energy["joules"] / (calls * 4))
    assert energy["reason"] is None


def test_the_cell_validates_in_a_run_file(timed_cell: dict[str, Any], tmp_path: Path) -> None:
    writer = RunWriter(tmp_path, collect_environment([]))
    writer.add_cell(timed_cell)
    writer.finish()
    saved = load_run(writer.path)
    assert saved["cells"][0]["energy"] == timed_cell["energy"]
    gpus = saved["environment"]["gpus"]
    assert isinstance(gpus["available"], bool) and isinstance(gpus["devices"], list)


def test_the_schema_checks_the_new_fields(timed_cell: dict[str, Any], tmp_path: Path) -> None:
    writer = RunWriter(tmp_path, collect_environment([]))
    writer.add_cell(timed_cell)
    for path, value in ((("energy", "joules"), -1.0), (("host_samples_ns",), [1, -5]), (("sampling", "timer"), 3)):
        data = copy.deepcopy(writer.data)
        target = data["cells"][0]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        with pytest.raises(RunFileError):
            validate(data)


def test_cells_without_the_new_fields_still_validate(timed_cell: dict[str, Any], tmp_path: Path) -> None:
    writer = RunWriter(tmp_path, {k: v for k, v in collect_environment([]).items() if k != "gpus"})
    old = {k: v for k, v in timed_cell.items() if k not in ("energy", "host_samples_ns", "host_latency_ns")}
    old["sampling"] = {k: v for k, v in old["sampling"].items() if k != "timer"}
    writer.add_cell(old)
    validate(writer.data)
