"""The runner's orders: one by one by the strategy a cell asks for, and --processes with an interrupt."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

import harness.run.runner as runner
import harness.run.strategies as strategies
from harness.measure.environment import collect_environment
from harness.measure.sampler import SamplingPolicy
from harness.runfile.files import RunWriter, load_run
from harness.runfile.records import CellConfig, CellRecord
from harness.scenarios.registry import cell_id
from tests.harness.runfactory import make_cell, make_run

CELLS = [CellConfig("mlp", "tiny", "cpu", "fp32", "eager", 1, bs) for bs in (1, 2)]


def _record(config: CellConfig, seed: int) -> CellRecord:
    cell = make_run([make_cell([1000 + seed, 1100 + seed, 1200 + seed], batch_size=config.batch_size)]).cells[0]
    return replace(cell, config=config, id=cell_id(config))


def test_an_interrupt_keeps_every_cell_with_a_process_measured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def fake_isolated(config: CellConfig, policy: SamplingPolicy, limits: object) -> CellRecord:
        calls.append(config.batch_size)
        if len(calls) == 4:  # round 2, second cell: the user presses Ctrl-C
            raise KeyboardInterrupt
        return _record(config, len(calls))

    monkeypatch.setattr(strategies, "run_cell_isolated", fake_isolated)
    writer = RunWriter(tmp_path, collect_environment([]))
    with pytest.raises(KeyboardInterrupt):
        runner.run_cells(CELLS, SamplingPolicy(), writer, isolate=lambda _: True, processes=3)
    saved = load_run(writer.path)
    assert (saved.status, saved.status_reason) == ("interrupted", "SIGINT")
    parts = [c.measurement.processes for c in saved.cells if c.measurement is not None]
    assert [(p.counts, p.planned) for p in parts if p is not None] == [((3, 3), 3), ((3,), 3)]


def test_each_cell_goes_to_the_strategy_it_asks_for_and_progress_follows_the_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = RunWriter(tmp_path, collect_environment([]))
    events: list[str] = []

    def fake_isolated(config: CellConfig, policy: SamplingPolicy, limits: object) -> CellRecord:
        events.append(f"isolated {config.batch_size}")
        return _record(config, 0)

    def fake_here(config: CellConfig, policy: SamplingPolicy, **kwargs: object) -> CellRecord:
        events.append(f"here {config.batch_size} {sorted(kwargs)}")
        return _record(config, 0)

    monkeypatch.setattr(strategies, "run_cell_isolated", fake_isolated)
    monkeypatch.setattr(strategies, "run_cell", fake_here)

    def progress(index: int, total: int, config: CellConfig, record: CellRecord | None) -> None:
        events.append(f"{'done' if record else 'start'} {index}/{total} saved {len(load_run(writer.path).cells)}")

    runner.run_cells(CELLS, SamplingPolicy(), writer, isolate=lambda c: c.batch_size == 2, progress=progress)
    assert events == [
        "start 1/2 saved 0",
        "here 1 ['on_phase']",
        "done 1/2 saved 1",
        "start 2/2 saved 1",
        "isolated 2",
        "done 2/2 saved 2",
    ]
    assert load_run(writer.path).status == "complete"
