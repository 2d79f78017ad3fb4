"""--processes: ABAB order over fresh processes, records merged with the between-process spread."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import harness.run.runner as runner
from harness.errors import ConfigError
from harness.measure.sampler import SamplingPolicy
from harness.report.compare import compare_runs
from harness.run.plan import CellConfig, Suite
from harness.run.repeats import merge_processes, schedule
from harness.runfile.files import RunWriter, load_run
from tests.harness.runfactory import ENVIRONMENT, lognormal_samples, make_cell, make_failed_cell, make_run


def test_schedule_is_abab() -> None:
    assert schedule(2, 3) == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    assert schedule(3, 1) == [(0, 0), (0, 1), (0, 2)]


def _process_record(median_ns: float, seed: int, **kwargs: Any) -> dict[str, Any]:
    record = make_cell(lognormal_samples(median_ns, 200, seed, sigma=0.05), **kwargs)
    record["started_utc"] = f"2026-11-01T10:00:{seed:02d}.000000Z"
    return record


def test_merge_pools_samples_and_keeps_each_process_median() -> None:
    records = [_process_record(m, i, batch_size=2) for i, m in enumerate((1.0e6, 1.1e6, 0.95e6))]
    merged = merge_processes(records, 3)
    pooled = [s for r in records for s in r["samples_ns"]]
    assert merged["samples_ns"] == pooled
    assert merged["latency_ns"]["p50"] == pytest.approx(float(np.median(pooled)))
    assert merged["throughput_per_s"] == pytest.approx(2 / (float(np.median(pooled)) / 1e9))
    part = merged["processes"]
    assert part["medians_ns"] == [pytest.approx(float(np.median(r["samples_ns"]))) for r in records]
    assert part["low_ns"] < part["mean_ns"] < part["high_ns"]
    assert (part["planned"], part["failed"]) == (3, 0)
    assert part["started_utc"] == [r["started_utc"] for r in records]
    # A spread of ±7% against a within-process interval of ±0.5% is called out.
    assert any("between processes the median moved" in w for w in merged["warnings"])
    make_run([merged])  # the merged record is a valid cell of the run-file schema


def test_a_failed_process_leaves_the_others_standing() -> None:
    records = [_process_record(1e6, 1), make_failed_cell(), _process_record(1.02e6, 2)]
    merged = merge_processes(records, 3)
    assert merged["status"] == "ok"
    assert merged["processes"]["failed"] == 1 and len(merged["processes"]["medians_ns"]) == 2
    assert any("1 of 3 processes failed: out of memory" in w for w in merged["warnings"])
    everything_failed = merge_processes([make_failed_cell(), make_failed_cell()], 2)
    assert everything_failed["status"] == "failed"
    assert everything_failed["error"]["message"].startswith("all 2 processes failed")


def test_runner_interleaves_fresh_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def fake_isolated(config: CellConfig, policy: SamplingPolicy, timeout_s: float) -> dict[str, Any]:
        calls.append(config.batch_size)
        record = _process_record(1e6 * config.batch_size, len(calls), batch_size=config.batch_size)
        return record | {"config": config.to_dict(), "id": config.cell_id}

    monkeypatch.setattr(runner, "run_cell_isolated", fake_isolated)
    cells = [CellConfig("mlp", "tiny", "cpu", "fp32", "eager", 1, bs) for bs in (1, 2)]
    writer = RunWriter(tmp_path, json.loads(json.dumps(ENVIRONMENT)))
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
    assert [len(r["processes"]["medians_ns"]) for r in done] == [3, 3]
    saved = load_run(writer.path)
    assert saved["status"] == "complete" and len(saved["cells"]) == 2


def test_suite_checks_processes() -> None:
    assert Suite(processes=3).processes == 3
    with pytest.raises(ConfigError, match="latency and throughput"):
        Suite(processes=2, scenario="server", rate=5.0)
    with pytest.raises(ConfigError, match="drop --no-isolate"):
        Suite(processes=2, isolate=False)
    with pytest.raises(ConfigError, match="processes must be"):
        Suite(processes=0)


def _run_with_processes(medians: list[float], run_id: str) -> dict[str, Any]:
    records = [_process_record(m, i) for i, m in enumerate(medians)]
    return make_run([merge_processes(records, len(records))], run_id=run_id)


def test_compare_uses_the_between_process_interval() -> None:
    base = _run_with_processes([1.0e6, 1.08e6, 0.94e6, 1.05e6, 0.97e6], "20261101T100000Z-aaaaaa")
    new = _run_with_processes([1.02e6, 1.1e6, 0.96e6, 1.07e6, 0.99e6], "20261101T100000Z-bbbbbb")
    (cell,) = compare_runs(base, new).cells
    assert cell.basis == "between processes"
    # 2% slower inside a ±7% process spread: not significant between processes...
    assert cell.verdict == "no significant change"
    assert cell.p50 is not None and cell.p50.low < 1.0 < cell.p50.high
    # ...though the pooled samples alone (one-process reasoning) would have called it.
    pooled_only = compare_runs(
        make_run([dict(base["cells"][0], processes=None)], run_id="20261101T100000Z-cccccc"),
        make_run([dict(new["cells"][0], processes=None)], run_id="20261101T100000Z-dddddd"),
    )
    assert pooled_only.cells[0].basis == "within one process"
    assert pooled_only.cells[0].verdict == "slower"
