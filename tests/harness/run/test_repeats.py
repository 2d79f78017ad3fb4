"""--processes: ABAB order over fresh processes, records merged with the between-process spread."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import harness.run.runner as runner
import harness.run.strategies as strategies
from harness.errors import ConfigError
from harness.measure.environment import collect_environment
from harness.measure.sampler import SamplingPolicy
from harness.report.compare import compare_runs
from harness.run.plan import CellConfig, Suite
from harness.run.repeats import merge_processes, schedule
from harness.runfile.files import RunWriter, load_run
from harness.runfile.records import CellRecord, RunRecord
from harness.scenarios.registry import cell_id
from tests.harness.runfactory import lognormal_samples, make_cell, make_failed_cell, make_run


def test_schedule_is_abab() -> None:
    assert schedule(2, 3) == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    assert schedule(3, 1) == [(0, 0), (0, 1), (0, 2)]


def _process_record(median_ns: float, seed: int, batch_size: int = 1) -> CellRecord:
    cell = make_run([make_cell(lognormal_samples(median_ns, 200, seed, sigma=0.05), batch_size=batch_size)]).cells[0]
    return replace(cell, started_utc=f"2026-11-01T10:00:{seed:02d}.000000Z")


def _failed_record() -> CellRecord:
    return make_run([make_failed_cell()]).cells[0]


def test_merge_pools_samples_and_keeps_each_process_median() -> None:
    records = [_process_record(m, i, batch_size=2) for i, m in enumerate((1.0e6, 1.1e6, 0.95e6))]
    merged = merge_processes(records, 3)
    measured = merged.measurement
    assert measured is not None and measured.processes is not None
    pooled = [s for r in records if r.measurement is not None for s in r.measurement.samples_ns]
    assert list(measured.samples_ns) == pooled
    assert measured.latency_ns.p50 == pytest.approx(float(np.median(pooled)))
    assert measured.throughput_per_s == pytest.approx(2 / (float(np.median(pooled)) / 1e9))
    part = measured.processes
    assert list(part.medians_ns) == [
        pytest.approx(float(np.median(r.measurement.samples_ns))) for r in records if r.measurement is not None
    ]
    assert part.low_ns is not None and part.high_ns is not None
    assert part.low_ns < part.mean_ns < part.high_ns
    assert (part.planned, part.failed, part.counts) == (3, 0, (200, 200, 200))
    assert part.started_utc == tuple(r.started_utc for r in records)
    # A spread of ±7% against a within-process interval of ±0.5% is called out.
    assert any("between processes the median moved" in w for w in measured.warnings)


def test_a_failed_process_leaves_the_others_standing() -> None:
    records = [_process_record(1e6, 1), _failed_record(), _process_record(1.02e6, 2)]
    merged = merge_processes(records, 3)
    assert merged.status == "ok" and merged.measurement is not None and merged.measurement.processes is not None
    assert merged.measurement.processes.failed == 1 and len(merged.measurement.processes.medians_ns) == 2
    assert any("1 of 3 processes failed: out of memory" in w for w in merged.measurement.warnings)
    everything_failed = merge_processes([_failed_record(), _failed_record()], 2)
    assert everything_failed.status == "failed" and everything_failed.error is not None
    assert everything_failed.error.message.startswith("all 2 processes failed")


def test_merged_warnings_count_the_processes_and_judge_sample_counts_on_the_pool() -> None:
    first = _process_record(1e6, 1)
    second = _process_record(1e6, 2)
    assert first.measurement is not None and second.measurement is not None
    records = [
        replace(first, measurement=replace(first.measurement, warnings=("busy machine: load average 7.5 on 2",))),
        replace(
            second,
            measurement=replace(
                second.measurement, warnings=("busy machine: load average 9.1 on 2", "only 20 samples: p99 ...")
            ),
        ),
    ]
    merged = merge_processes(records, 2)
    assert merged.measurement is not None
    warnings = merged.measurement.warnings
    assert "busy machine: load average 7.5 on 2 (in 2 of 2 processes)" in warnings
    assert not any(w.startswith("only ") for w in warnings)


def test_runner_interleaves_fresh_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def fake_isolated(config: CellConfig, policy: SamplingPolicy, timeout_s: float) -> CellRecord:
        calls.append(config.batch_size)
        record = _process_record(1e6 * config.batch_size, len(calls), batch_size=config.batch_size)
        return replace(record, config=config, id=cell_id(config))

    monkeypatch.setattr(strategies, "run_cell_isolated", fake_isolated)
    cells = [CellConfig("mlp", "tiny", "cpu", "fp32", "eager", 1, bs) for bs in (1, 2)]
    writer = RunWriter(tmp_path, collect_environment())
    seen: list[tuple[int, int, bool]] = []
    done = runner.run_cells(
        cells,
        SamplingPolicy(),
        writer,
        isolate=lambda _: False,
        progress=lambda i, n, c, r: seen.append((i, n, r is None)),
        processes=3,
    )
    assert calls == [1, 2, 1, 2, 1, 2]  # ABAB, never AABB
    assert [i for i, _, before in seen if not before] == [1, 2, 3, 4, 5, 6] and {n for _, n, _ in seen} == {6}
    assert [len(r.measurement.processes.medians_ns) for r in done if r.measurement and r.measurement.processes] == [
        3,
        3,
    ]
    saved = load_run(writer.path)
    assert saved.status == "complete" and len(saved.cells) == 2
    assert saved.cells[0].measurement is not None and saved.cells[0].measurement.processes is not None


def test_suite_checks_processes() -> None:
    assert Suite(processes=3).execution.processes == 3
    with pytest.raises(ConfigError, match="latency and throughput"):
        Suite(processes=2, scenario="server", rate=5.0)
    with pytest.raises(ConfigError, match="drop --no-isolate"):
        Suite(processes=2, isolate=False)
    with pytest.raises(ConfigError, match="processes must be"):
        Suite(processes=0)


def _run_with_processes(medians: list[float], run_id: str) -> RunRecord:
    records = [_process_record(m, i) for i, m in enumerate(medians)]
    return replace(make_run([make_cell([1, 2, 3])], run_id=run_id), cells=(merge_processes(records, len(records)),))


def _without_processes(run: RunRecord) -> RunRecord:
    """The pooled samples as if one process had taken them in random order: no process part, and
    shuffled, so the serial-dependence estimate sees no blocks (in process order the blocks would
    widen the within-process interval too, which is the dependence-aware reading working)."""
    cell = run.cells[0]
    assert cell.measurement is not None
    samples = list(cell.measurement.samples_ns)
    random.Random(0).shuffle(samples)
    measurement = replace(cell.measurement, processes=None, samples_ns=tuple(samples))
    return replace(run, cells=(replace(cell, measurement=measurement),))


def test_compare_uses_the_between_process_interval() -> None:
    base = _run_with_processes([1.0e6, 1.08e6, 0.94e6, 1.05e6, 0.97e6], "20261101T100000Z-aaaaaa")
    new = _run_with_processes([1.02e6, 1.1e6, 0.96e6, 1.07e6, 0.99e6], "20261101T100000Z-bbbbbb")
    (cell,) = compare_runs(base, new).cells
    assert cell.basis == "between processes"
    # 2% slower inside a ±7% process spread: not significant between processes...
    assert cell.verdict == "no significant change"
    assert cell.p50 is not None and cell.p50.low is not None and cell.p50.high is not None
    assert cell.p50.low < 1.0 < cell.p50.high
    # ...though the pooled samples alone (one-process reasoning) call it slower.
    (pooled_only,) = compare_runs(_without_processes(base), _without_processes(new)).cells
    assert pooled_only.basis == "within one process"
    assert pooled_only.verdict == "slower"


def test_warnings_of_one_kind_merge_whatever_their_figures() -> None:
    from harness.run.repeats import _merged_warnings

    merged = _merged_warnings(
        [
            ["no steady state: the median moved +18% from the first to the last third"],
            ["no steady state: the median moved -6% from the first to the last third"],
            ["high dispersion: IQR is 43% of the median"],
        ]
    )
    assert merged == [
        "no steady state: the median moved +18% from the first to the last third (in 2 of 3 processes)",
        "high dispersion: IQR is 43% of the median (in 1 of 3 processes)",
    ]
