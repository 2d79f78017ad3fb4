"""Decoder generation through the neuron backend and the torch-neuronx double.

The double inlines a traced model's buffers as the real ``trace`` does, so a KV cache kept in
module buffers is lost between calls; these tests show that the backend therefore runs the
decoders' functional steps, with their state aliased (``input_output_aliases``), and that the
generated tokens are those of the CPU reference, and that the stateful steps would not be.
"""

from __future__ import annotations

from typing import Any

import pytest

from backends.neuron import NeuronBackend
from harness.measure.sampler import SamplingPolicy
from harness.run.cell import run_cell
from harness.runfile.records import CellConfig, ScenarioParams
from workloads.gpt2 import SHAPES as GPT2_SHAPES
from workloads.llama import SHAPES as LLAMA_SHAPES

POLICY = SamplingPolicy(max_time_s=0.2, warmup_time_s=0.01, warmup_min_count=1, min_count=3, max_count=50)
LAYERS = {"llama": LLAMA_SHAPES["tiny"].layers, "gpt2": GPT2_SHAPES["tiny"].layers}


def _generate_cell(workload: str, mode: str = "trace") -> CellConfig:
    return CellConfig(
        workload=workload,
        preset="tiny",
        backend="neuron",
        dtype="fp32",
        mode=mode,
        threads=None,
        batch_size=2,
        scenario="generate",
        params=ScenarioParams(prompt_tokens=8, output_tokens=6),
    )


@pytest.mark.parametrize("workload", ["llama", "gpt2"])
def test_generate_on_neuron_gives_the_cpu_reference_tokens(neuron_double: Any, workload: str) -> None:
    record = run_cell(_generate_cell(workload), POLICY)
    assert record.status == "ok", record.error
    assert record.measurement.correctness.passed is True
    assert record.measurement.generation.token_agreement == 1.0
    assert record.measurement.generation.reference_tokens == 6
    prefill, decode = neuron_double.trace_calls
    state = 2 + 2 * LAYERS[workload]  # sequence, position, a key and a value per layer
    expected = {1 + index: index for index in range(state)}
    assert prefill.input_output_aliases == expected and decode.input_output_aliases == expected
    assert prefill.input_shapes[:2] == [(2, 14), ()]  # the whole sequence and a 0-dim position
    assert prefill.input_shapes[2:] == decode.input_shapes[2:]  # one static cache for both steps

    again = run_cell(_generate_cell(workload), POLICY)  # the cached artifacts keep their aliases
    assert again.status == "ok" and again.measurement.device["cache_hit"] is True
    assert again.measurement.generation.token_agreement == 1.0


def test_the_stateful_steps_would_lose_the_cache_on_neuron(neuron_double: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Why the functional steps exist: buffers written in place do not survive a traced call."""
    monkeypatch.setattr(NeuronBackend, "stateful_buffers", True)
    record = run_cell(_generate_cell("llama"), POLICY)
    assert record.status == "ok", record.error
    assert record.measurement.correctness.passed is True  # the prefill logits do not depend on the cache
    assert record.measurement.generation.token_agreement < 0.5  # but no token ever reaches the session
    assert all(not call.input_output_aliases for call in neuron_double.trace_calls)


def test_generation_needs_one_neuroncore(neuron_double: Any) -> None:
    record = run_cell(_generate_cell("gpt2", mode="dataparallel"), POLICY)
    assert record.status == "failed"
    assert record.error.type == "CellError" and "one NeuronCore" in record.error.message
