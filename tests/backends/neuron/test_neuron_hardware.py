"""The neuron backend on a real Inf2/Trn1 instance (skipped, with the reason, everywhere else).

These run the whole path a user runs: a child process per cell, the real torch-neuronx and
neuronx-cc, the real runtime and neuron-ls. The first run compiles; the second must hit the cache.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.neuron import NeuronBackend
from harness.measure.sampler import SamplingPolicy
from harness.run.isolation import run_cell_isolated
from harness.run.limits import CellLimits
from harness.runfile.records import CellConfig

_STATUS = NeuronBackend().availability()

pytestmark = [
    pytest.mark.neuron,
    pytest.mark.slow,
    pytest.mark.skipif(not _STATUS.available, reason=f"neuron backend unavailable: {_STATUS.reason}"),
]

POLICY = SamplingPolicy(max_time_s=1.0, min_count=10)


@pytest.mark.parametrize(
    ("dtype", "mode", "batch"), [("fp32", "trace", 1), ("bf16", "trace", 4), ("bf16", "dataparallel", 4)]
)
def test_tiny_mlp_compiles_runs_correctly_and_is_cached(
    dtype: str, mode: str, batch: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SILICONBENCH_NEURON_CACHE", str(tmp_path / "cache"))
    config = CellConfig(
        workload="mlp",
        preset="tiny",
        backend="neuron",
        dtype=dtype,
        mode=mode,
        threads=None,
        batch_size=batch,
        device="nc:0-1" if mode == "dataparallel" else None,
    )
    first = run_cell_isolated(config, POLICY, CellLimits(prepare_s=1200))
    assert first.status == "ok", first.error
    assert first.measurement.correctness.passed, first.measurement.correctness
    assert first.measurement.device["cache_hit"] is False and first.measurement.device["neuron_cores"]
    second = run_cell_isolated(config, POLICY, CellLimits(prepare_s=600))
    assert second.status == "ok", second.error
    assert second.measurement.device["cache_hit"] is True and second.measurement.device["trace_s"] == 0.0
