"""The neuron backend on a real Neuron instance (skipped, with the reason, everywhere else).

These run the whole path a user runs: a child process per cell, the real torch-neuronx (or
TorchNeuron) and neuronx-cc, the real runtime and neuron-ls. On NeuronCore-v2 (inf2, trn1) the
trace modes run and the second run must hit the cache; on Trn2/Trn3 the compile mode runs. The
decoder test is the hardware check of the state held as aliased parameters (trace) or in device
buffers (compile): greedy tokens equal to the CPU reference's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.neuron import NeuronBackend
from backends.neuron.facts import device_facts
from backends.neuron.options import neuroncore_version
from harness.measure.sampler import SamplingPolicy
from harness.run.isolation import run_cell_isolated
from harness.run.limits import CellLimits
from harness.runfile.records import CellConfig, ScenarioParams

_STATUS = NeuronBackend().availability()
#: The NeuronCore generation here (None off Neuron hardware, or when neuron-ls and DMI cannot tell).
_VERSION = neuroncore_version(device_facts()["instance_type"]) if _STATUS.available else None
_TRACE = pytest.mark.skipif(_VERSION is not None and _VERSION != 2, reason="trace runs on NeuronCore-v2 only")
_COMPILE = pytest.mark.skipif(_VERSION is not None and _VERSION < 3, reason="TorchNeuron runs on Trn2/Trn3 only")

pytestmark = [
    pytest.mark.neuron,
    pytest.mark.slow,
    pytest.mark.skipif(not _STATUS.available, reason=f"neuron backend unavailable: {_STATUS.reason}"),
]

POLICY = SamplingPolicy(max_time_s=1.0, min_count=10)


@_TRACE
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


@_COMPILE
def test_tiny_mlp_in_compile_mode(tmp_path: Path) -> None:
    config = CellConfig(
        workload="mlp", preset="tiny", backend="neuron", dtype="fp32", mode="compile", threads=None, batch_size=2
    )
    record = run_cell_isolated(config, POLICY, CellLimits(prepare_s=1200))
    assert record.status == "ok", record.error
    assert record.measurement.correctness.passed, record.measurement.correctness


@pytest.mark.parametrize("workload", ["llama", "gpt2"])
def test_tiny_decoders_generate_the_reference_tokens(
    workload: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SILICONBENCH_NEURON_CACHE", str(tmp_path / "cache"))
    config = CellConfig(
        workload=workload,
        preset="tiny",
        backend="neuron",
        dtype="fp32",
        mode="compile" if _VERSION is not None and _VERSION >= 3 else "trace",
        threads=None,
        batch_size=2,
        scenario="generate",
        params=ScenarioParams(prompt_tokens=8, output_tokens=6),
    )
    record = run_cell_isolated(config, POLICY, CellLimits(prepare_s=1800))
    assert record.status == "ok", record.error
    assert record.measurement.correctness.passed, record.measurement.correctness
    assert record.measurement.generation.token_agreement == 1.0
