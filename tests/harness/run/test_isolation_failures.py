"""Child-process failures on the CPU: a cell that crashes or runs out of memory fails alone, with a
clear one-line message, and the run goes on. The failing workloads are in fault_workloads.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.measure.environment import collect_environment
from harness.measure.sampler import SamplingPolicy
from harness.run.cell import run_cell
from harness.run.runner import run_cells
from harness.runfile.files import RunWriter, load_run
from harness.runfile.records import CellConfig

FAULTS = "tests.harness.fault_workloads"
POLICY = SamplingPolicy(max_time_s=0.2, warmup_time_s=0.02, min_count=5)


def cell(workload: str, preset: str = "default", batch_size: int = 2) -> CellConfig:
    return CellConfig(workload, preset, "cpu", "fp32", "eager", 1, batch_size)


def test_a_real_host_allocation_failure_fails_the_cell_with_the_fix() -> None:
    record = run_cell(cell(f"{FAULTS}:host_oom", batch_size=3), POLICY)
    assert record.status == "failed"
    assert record.error.phase == "reference"
    assert record.error.type == "OutOfMemoryError"
    assert record.error.message == ("host out of memory; tried to allocate 1.00 EiB; try a smaller --batch-size than 3")


@pytest.mark.slow
def test_crashing_and_oom_cells_fail_alone_in_their_child_processes(tmp_path: Path) -> None:
    cells = [cell(f"{FAULTS}:segfault"), cell(f"{FAULTS}:cuda_oom", batch_size=64), cell("mlp", "tiny")]
    writer = RunWriter(tmp_path, collect_environment([]))
    records = run_cells(cells, POLICY, writer, isolate=lambda _: True)

    crashed, oom, ok = records
    assert crashed.status == "failed"
    assert crashed.error.phase == "child"
    assert crashed.error.message == (
        "the cell's child process was killed by SIGSEGV (a crash in native code: a driver, compiler or "
        "kernel fault) before reporting"
    )
    assert oom.status == "failed"
    assert oom.error.type == "OutOfMemoryError"
    assert oom.error.message == (
        "CUDA out of memory; tried to allocate 20.00 GiB; GPU 0 has a total capacity of 79.10 GiB of which "
        "3.12 GiB is free; try a smaller --batch-size than 64"
    )
    assert ok.status == "ok" and ok.measurement.sampling.timer == "host_clock"

    saved = load_run(writer.path)  # validates against the schema
    assert saved.status == "complete"
    assert [c.status for c in saved.cells] == ["failed", "failed", "ok"]
