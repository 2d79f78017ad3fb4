"""One cell end to end in this process: real model, real backend, real sampler."""

from __future__ import annotations

import pytest

from harness.measure.sampler import SamplingPolicy
from harness.run.cell import run_cell
from harness.runfile.records import CellConfig
from tests.harness.runfactory import round_trip

QUICK = SamplingPolicy(max_time_s=0.3, warmup_time_s=0.05, min_count=10)


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_a_tiny_mlp_cell_is_measured_checked_and_schema_valid(dtype: str) -> None:
    record = run_cell(CellConfig("mlp", "tiny", "cpu", dtype, "eager", 1, 4), QUICK)
    assert record.status == "ok", record.error
    round_trip(record)
    measured = record.measurement
    assert measured is not None
    assert measured.correctness.passed
    assert measured.workload.flops_per_inference == 1_310_720
    assert measured.workload.params == 656_896
    assert measured.latency_ns.count == len(measured.samples_ns) >= 10
    lat = measured.latency_ns
    assert lat.min <= lat.p50 <= lat.p90 <= lat.p99 <= lat.max
    assert measured.throughput_per_s == pytest.approx(4 / (lat.p50 / 1e9))
    assert measured.flops_per_s == pytest.approx(1_310_720 * measured.throughput_per_s)
    assert measured.device["threads"] == 1


def test_a_cell_that_fails_is_recorded_with_its_phase() -> None:
    record = run_cell(
        CellConfig("tests.workloads.plugin_fixtures:broken", "default", "cpu", "fp32", "eager", 1, 1), QUICK
    )
    assert record.status == "failed" and record.error is not None
    assert record.error.phase == "reference"
    assert "deliberately broken" in record.error.message
    round_trip(record)


def test_a_wrong_backend_output_is_flagged_by_the_correctness_check() -> None:
    record = run_cell(
        CellConfig("tests.workloads.plugin_fixtures:nondeterministic", "default", "cpu", "fp32", "eager", 1, 2), QUICK
    )
    assert record.measurement is not None
    assert not record.measurement.correctness.passed
    assert record.measurement.warnings[0].startswith("correctness: max relative error")


@pytest.mark.parametrize("workload", ["mlp", "resnet50", "bert-base"])
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_every_builtin_tiny_preset_passes_its_correctness_check(workload: str, dtype: str) -> None:
    record = run_cell(CellConfig(workload, "tiny", "cpu", dtype, "eager", None, 2), QUICK)
    assert record.measurement is not None, record.error
    correctness = record.measurement.correctness
    assert correctness.passed, correctness
    # bf16 must really run in bf16: a zero error would mean the cast never happened.
    assert (correctness.max_rel_error > 0) == (dtype == "bf16")


def test_a_busy_machine_is_flagged(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from harness.measure.busy import busy_machine_warning

    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1})
    monkeypatch.setattr(os, "getloadavg", lambda: (3.2, 1.0, 1.0))
    warning = busy_machine_warning(2)
    assert warning is not None and warning.startswith("busy machine: load average 3.2 on 2 cores")
    monkeypatch.setattr(os, "getloadavg", lambda: (2.2, 1.0, 1.0))
    assert busy_machine_warning(2) is None


def test_the_cells_own_window_decides_over_the_lagging_load_average(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from harness.measure.busy import busy_machine_warning
    from harness.measure.contention import Contention

    monkeypatch.setattr(os, "getloadavg", lambda: (0.3, 0.3, 0.3))  # a job started a second ago
    competed = Contention(wall_s=2.0, own_cpu_s=4.0, foreign_cpu_s=1.8, cpus=(0, 1))
    warning = busy_machine_warning(2, competed)
    assert warning is not None and "other work used 0.90 of 2 core(s)" in warning
    monkeypatch.setattr(os, "getloadavg", lambda: (3.5, 3.5, 3.5))  # a minute of our own threads, lagging
    quiet = Contention(wall_s=2.0, own_cpu_s=4.0, foreign_cpu_s=0.05, cpus=(0, 1))
    assert busy_machine_warning(2, quiet) is None
    unseen = Contention(wall_s=2.0, own_cpu_s=4.0, foreign_cpu_s=None, cpus=(0, 1))
    assert busy_machine_warning(2, unseen) is not None  # no counters: the load average decides
