"""Decoder generation through the neuron backend and the torch-neuronx double.

The double follows the documentation and public torch-neuronx source (see its docstring): trace
inlines buffers as constants, and ``input_output_aliases`` is keyed on the traced module's
*parameters*, which the traced module keeps as its state. So the backend runs the decoders'
parameter steps: the decode step holds sequence, position and KV cache as parameters, aliased and
moved to the NeuronCore; the prefill computes the whole state from the prompt and resets the
decode step's state to it at the start of every request. These tests show that this reaches the
CPU reference tokens, and that each wrong belief fails: state keyed on forward inputs (what this
backend used to do), no reset between requests, the state read from the host-side module.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from backends.neuron import NeuronBackend
from backends.neuron import backend as neuron_backend
from harness.measure.sampler import SamplingPolicy
from harness.run.cell import run_cell
from harness.runfile.records import CellConfig, ScenarioParams
from workloads import decoder
from workloads.gpt2 import SHAPES as GPT2_SHAPES
from workloads.llama import SHAPES as LLAMA_SHAPES

POLICY = SamplingPolicy(max_time_s=0.2, warmup_time_s=0.01, warmup_min_count=1, min_count=3, max_count=50)
LAYERS = {"llama": LLAMA_SHAPES["tiny"].layers, "gpt2": GPT2_SHAPES["tiny"].layers}


def _generate_cell(workload: str, mode: str = "trace", scenario: str = "generate") -> CellConfig:
    return CellConfig(
        workload=workload,
        preset="tiny",
        backend="neuron",
        dtype="fp32",
        mode=mode,
        threads=None,
        batch_size=2,
        scenario=scenario,
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
    assert prefill.state_aliases == {}  # the prefill is a pure function of the prompt
    assert prefill.input_shapes == [(2, 8)]
    assert decode.input_shapes == []  # the decode step needs nothing but its state
    assert decode.state_aliases == {f"state.{index}": 1 + index for index in range(state)}
    assert prefill.inline_weights_to_neff is True and decode.inline_weights_to_neff is True
    assert not prefill.positional and not decode.positional
    assert list(neuron_double.moved) == [decode.tag]  # its state was moved onto the NeuronCore
    assert neuron_double.host_state_calls == 0

    again = run_cell(_generate_cell(workload), POLICY)  # the cached artifacts keep their state
    assert again.status == "ok" and again.measurement.device["cache_hit"] is True
    assert again.measurement.generation.token_agreement == 1.0


class _InputKeyed(torch.nn.Module):
    """The decode step as this backend used to trace it: the state passed in as forward inputs."""

    def __init__(self, step: decoder.ParameterDecode) -> None:
        super().__init__()
        self.step = step.step  # the FunctionalStep: same weights, same arithmetic

    def forward(self, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        result: tuple[torch.Tensor, ...] = self.step(*state)
        return result


def test_state_keyed_on_forward_inputs_fails_the_same_test(neuron_double: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The old way: ``{example_input: output index}``. trace matches alias keys against the module's
    parameters (public torch-neuronx source), so the key is not found and the trace raises KeyError."""
    original = decoder.Session.parameter_steps

    def input_keyed_steps(self: decoder.Session) -> Any:
        prefill, decode, prefill_inputs, _ = original(self)
        assert isinstance(decode, decoder.ParameterDecode)
        old = _InputKeyed(decode)
        state = tuple(decode.state)
        old.state_aliases = lambda: {tensor: 1 + index for index, tensor in enumerate(state)}  # type: ignore[attr-defined]
        return prefill, old, prefill_inputs, state

    monkeypatch.setattr(decoder.Session, "parameter_steps", input_keyed_steps)
    record = run_cell(_generate_cell("llama"), POLICY)
    assert record.status == "failed"
    assert "KeyError" in record.error.message and "named_parameters" in record.error.message


def test_without_the_reset_between_requests_the_state_runs_on(
    neuron_double: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decode state lives in the traced module; if the prefill does not reset it, each request
    continues from where the last one stopped, until the position runs past the static cache."""
    monkeypatch.setattr(decoder.PromptPrefill, "after_call", lambda self, outputs: None)
    record = run_cell(_generate_cell("llama"), POLICY)
    assert record.status == "failed"
    assert "out of bounds" in str(record.error)


def test_the_state_must_be_reached_where_the_traced_module_keeps_it(
    neuron_double: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After ``move_trace_to_device`` the state is no longer the step's own parameters: a session
    that resets and reads those (no ``bind_state``) never resets the traced state, which runs on."""
    monkeypatch.setattr(decoder.ParameterDecode, "bind_state", lambda self, tensors: None)
    record = run_cell(_generate_cell("gpt2"), POLICY)
    assert record.status == "failed"
    assert "out of bounds" in str(record.error)


def test_without_moving_the_state_every_call_crosses_from_the_host(
    neuron_double: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(NeuronBackend, "_hold_state", staticmethod(lambda torch_neuronx, module, model: None))
    record = run_cell(_generate_cell("gpt2"), POLICY)
    assert neuron_double.host_state_calls > 0
    assert record.status == "ok"  # the double keeps the values; real hardware pays per call


def test_the_stateful_steps_would_lose_the_cache_on_neuron(neuron_double: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Why the parameter steps exist: buffers written in place do not survive a traced call."""
    monkeypatch.setattr(NeuronBackend, "keeps_buffer_updates", lambda self, options: True)
    record = run_cell(_generate_cell("llama"), POLICY)
    assert record.status == "ok", record.error
    assert record.measurement.correctness.passed is True  # the prefill logits do not depend on the cache
    assert record.measurement.generation.token_agreement < 0.5  # but no token ever reaches the session
    assert all(not call.state_aliases for call in neuron_double.trace_calls)


def test_generation_needs_one_neuroncore(neuron_double: Any) -> None:
    record = run_cell(_generate_cell("gpt2", mode="dataparallel"), POLICY)
    assert record.status == "failed"
    assert record.error.type == "CellFailedError" and "one NeuronCore" in record.error.message


def test_state_aliases_name_the_decode_parameters(neuron_double: Any) -> None:
    session = decoder.new_session(decoder.build_causal_lm(LLAMA_SHAPES["tiny"]), 1, 4, 3)
    _, decode, _, _ = session.parameter_steps()
    assert isinstance(decode, decoder.ParameterDecode)
    names = neuron_backend._state_names(decode, neuron_backend._state_aliases(decode))
    assert names[0] == ("state.0", 1) and len(names) == 2 + 2 * LLAMA_SHAPES["tiny"].layers


def test_generate_in_compile_mode_runs_the_stateful_steps(torchneuron: Any) -> None:
    """On Trn2/Trn3 TorchNeuron keeps tensors on the device, so the ordinary steps run compiled."""
    record = run_cell(_generate_cell("llama", mode="compile"), POLICY)
    assert record.status == "ok", record.error
    assert record.measurement.generation.token_agreement == 1.0
    assert record.measurement.device["neuron_mode"] == "compile"
    assert torchneuron.graphs  # the steps went through torch.compile(backend="neuron")


def test_trace_generate_on_trn2_fails_with_one_line(trn2: Any) -> None:
    record = run_cell(_generate_cell("gpt2"), POLICY)
    assert record.status == "failed" and record.error.type == "CellFailedError"
    assert "NeuronCore-v2 (inf2, trn1) only" in record.error.message
    assert "\n" not in record.error.message


def test_new_prompts_reuse_the_compiled_decode_step(neuron_double: Any) -> None:
    """The decode state's values change with every request (the prefill resets them, even while the
    steps are prepared); they are not part of the artifact key, its shapes and the weights are."""
    model = decoder.build_causal_lm(GPT2_SHAPES["tiny"])
    _, decode, _, _ = decoder.new_session(model, 2, 8, 6).parameter_steps()
    assert isinstance(decode, decoder.ParameterDecode)
    config = neuron_backend.parse_config(neuron_backend.BackendOptions(dtype="fp32", mode="trace"))

    def key() -> str:
        components = NeuronBackend._key_components(decode, (), config, "inf2.xlarge", {"torch": "x"})
        return neuron_backend.cache_key(components)

    before = key()
    decode.reset_state([torch.ones_like(t) for t in decode.state])
    assert key() == before
    with torch.no_grad():
        model.lm_head.weight.add_(1.0)
    assert key() != before


def test_the_default_mode_on_trn2_is_compile(torchneuron: Any) -> None:
    """``eager`` (the suite default) is each silicon's own path: trace on inf2/trn1, compile on trn2."""
    record = run_cell(_generate_cell("gpt2", mode="eager"), POLICY)
    assert record.status == "ok", record.error
    assert record.measurement.device["neuron_mode"] == "compile"
    assert record.measurement.generation.token_agreement == 1.0
