"""The torch-neuronx double keeps the documented contract the backend's tests rely on.

If the double drifted from the documentation, the backend's tests would prove nothing, so its
own behaviour is pinned here: argument checks, positional options, NeuronCore-v2 only, work
directory, precision flags and their default, fixed shapes, TorchScript save/load, state keyed on
parameters, runtime placement and DataParallel scattering.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 4)).eval()


def _neuronx() -> Any:
    import torch_neuronx

    return torch_neuronx


def _error(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out.float() - ref).abs().max() / ref.abs().max())


@pytest.fixture(autouse=True)
def _no_grad() -> Any:
    with torch.no_grad():
        yield


def test_trace_checks_example_inputs(neuron_double: Any) -> None:
    with pytest.raises(TypeError, match="Tensor or a tuple of Tensors"):
        _neuronx().trace(_model(), [1, 2])


def test_positional_options_warn_and_are_read_as_keywords(neuron_double: Any, tmp_path: Path) -> None:
    """Trace API page: "a warning will be raised, but torch_neuronx.trace() will attempt to infer the
    keyword arguments"; public source reads them as (states, aliases, workdir, args, options)."""
    neuronx = _neuronx()
    with pytest.warns(DeprecationWarning, match="positional arguments after `func` and `example_inputs`"):
        traced = neuronx.trace(_model(), torch.randn(2, 8), None, None, str(tmp_path / "wd"), "--auto-cast all")
    assert traced(torch.randn(2, 8)).shape == (2, 4)
    call = neuron_double.trace_calls[-1]
    assert call.positional and call.auto_cast == "all" and call.workdir == str(tmp_path / "wd")
    with pytest.warns(DeprecationWarning), pytest.raises(RuntimeError, match="8 positional arguments"):
        neuronx.trace(_model(), torch.randn(2, 8), None, None, None, None, None, None)


def test_trace_refuses_neuroncore_v3_targets(neuron_double: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Trace API page: "Currently this only supports NeuronCore-v2 type instances (e.g. trn1, inf2)"."""
    neuronx = _neuronx()
    with pytest.raises(RuntimeError, match=r"NeuronCore-v2 instances .* not trn2"):
        neuronx.trace(_model(), torch.randn(2, 8), compiler_args="--target trn2", cpu_backend=True)
    neuronx.trace(_model(), torch.randn(2, 8), compiler_args="--target trn1", cpu_backend=True)
    monkeypatch.setenv("NEURON_DOUBLE_INSTANCE", "trn3.48xlarge")
    with pytest.raises(RuntimeError, match="not trn3"):
        neuronx.trace(_model(), torch.randn(2, 8))


def test_weight_separation_is_not_modelled(neuron_double: Any) -> None:
    with pytest.raises(NotImplementedError, match="inline_weights_to_neff=False"):
        _neuronx().trace(_model(), torch.randn(2, 8), inline_weights_to_neff=False)


def test_trace_returns_a_scriptmodule_with_real_outputs_and_uses_the_workdir(
    neuron_double: Any, tmp_path: Path
) -> None:
    neuronx = _neuronx()
    model, x = _model(), torch.randn(2, 8)
    traced = neuronx.trace(model, x, compiler_workdir=str(tmp_path / "wd"), compiler_args="--auto-cast none")
    assert isinstance(traced, torch.jit.ScriptModule)
    assert torch.equal(traced(x), model(x))
    assert {p.name for p in (tmp_path / "wd").iterdir()} == {"log-neuron-cc.txt", "graph.neff"}
    (call,) = neuron_double.trace_calls
    assert (call.compiler_args, call.auto_cast, call.input_shapes) == (["--auto-cast", "none"], "none", [(2, 8)])


def test_default_and_explicit_auto_cast_follow_the_compiler_reference(neuron_double: Any) -> None:
    neuronx = _neuronx()
    model, x = _model(), torch.randn(4, 8)
    ref = model(x)
    default = neuronx.trace(model, x)  # since Neuron 2.27 "The --auto-cast flag now defaults to none"
    assert (neuron_double.trace_calls[-1].auto_cast, neuron_double.trace_calls[-1].auto_cast_type) == ("none", "bf16")
    assert default(x).dtype == torch.float32
    assert _error(default(x), ref) < 1e-6
    matmult = neuronx.trace(model, x, compiler_args="--auto-cast matmult")
    assert 1e-6 < _error(matmult(x), ref) < 6e-2
    fp16_all = neuronx.trace(
        model, x, compiler_args=["--auto-cast", "none", "--auto-cast=all", "--auto-cast-type", "fp16"]
    )
    assert neuron_double.trace_calls[-1].auto_cast == "all"  # the later flag wins
    assert 1e-6 < _error(fp16_all(x), ref) < 2e-2
    assert model[0].weight.dtype == torch.float32  # the caller's model is never cast


def test_invalid_flag_and_injected_failures_fail_like_neuronx_cc(neuron_double: Any, tmp_path: Path) -> None:
    neuronx = _neuronx()
    with pytest.raises(RuntimeError, match=r"^neuronx-cc failed with 2$"):
        neuronx.trace(
            _model(), torch.randn(2, 8), compiler_workdir=str(tmp_path), compiler_args=["--auto-cast", "half"]
        )
    assert "invalid choice" in (tmp_path / "log-neuron-cc.txt").read_text()
    neuron_double.fail_compile = "unsupported"
    with pytest.raises(RuntimeError, match=r"^neuronx-cc failed with 70$"):
        neuronx.trace(_model(), torch.randn(2, 8), compiler_workdir=str(tmp_path))
    assert "list-operators" in (tmp_path / "log-neuron-cc.txt").read_text()


def test_fixed_shapes_survive_save_and_load(neuron_double: Any) -> None:
    neuronx = _neuronx()
    traced = neuronx.trace(_model(), torch.randn(2, 8), compiler_args="--auto-cast none")
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(traced, buffer)
        buffer.seek(0)
        loaded = torch.jit.load(buffer)
    assert loaded(torch.randn(2, 8)).shape == (2, 4)
    with pytest.raises(RuntimeError, match=r"compiled for \[2, 8\]"):
        loaded(torch.randn(3, 8))


def test_runtime_reads_placement_once_and_places_round_robin(
    neuron_double: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "1")
    neuronx = _neuronx()
    assert neuron_double.env_at_import["NEURON_RT_VISIBLE_CORES"] == "1"
    first = neuronx.trace(_model(), torch.randn(2, 8))
    first(torch.randn(2, 8))
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "0")  # too late: the runtime has started
    second = neuronx.trace(_model(), torch.randn(2, 8))
    second(torch.randn(2, 8))
    assert [e.core for e in neuron_double.executions] == [1, 1]
    assert neuron_double.visible_cores == [1]


def test_oom_is_raised_when_a_model_is_first_loaded(neuron_double: Any) -> None:
    neuronx = _neuronx()
    traced = neuronx.trace(_model(), torch.randn(2, 8))
    neuron_double.fail_load = "oom"
    with pytest.raises(RuntimeError, match="Allocation Failure"):
        traced(torch.randn(2, 8))


def test_dataparallel_scatters_along_dim0_across_device_ids(neuron_double: Any) -> None:
    neuronx = _neuronx()
    model = _model()
    traced = neuronx.trace(model, torch.randn(3, 8), compiler_args="--auto-cast none")
    parallel = neuronx.DataParallel(traced, device_ids=["nc:0", 1], set_dynamic_batching=False)
    x = torch.randn(6, 8)
    assert torch.allclose(parallel(x), model(x), atol=1e-6)
    assert neuron_double.dataparallel_calls == [{"cores": [0, 1], "chunk": 3, "batch": 6}]
    with pytest.raises(RuntimeError, match="must equal the compiled batch 3"):
        parallel(torch.randn(4, 8))
    dynamic = neuronx.DataParallel(traced)
    assert dynamic(torch.randn(12, 8)).shape == (12, 4)
    assert neuron_double.dataparallel_calls[-1]["cores"] == [0, 1, 0, 1]
    with pytest.raises(ValueError, match="not one of the 2 NeuronCores"):
        neuronx.DataParallel(traced, device_ids=[2])


class _Counter(torch.nn.Module):
    """A step that keeps a running total in a buffer, in place: state a traced model must not keep."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("total", torch.zeros(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.total.add_(x)
        return self.total.clone()


class _StateCounter(torch.nn.Module):
    """The running total as a parameter, returned as output 1: state as trace's aliases expect it."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.full((3,), 2.0), requires_grad=False)
        self.total = torch.nn.Parameter(torch.zeros(3), requires_grad=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        new = self.total + x
        return new * self.scale, new


class _InputCounter(torch.nn.Module):
    """The same step with the total passed in as a forward input: not something trace can alias."""

    def forward(self, x: torch.Tensor, total: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        new = total + x
        return new * 2, new


def test_inlined_buffers_do_not_keep_in_place_updates(neuron_double: Any) -> None:
    model, x = _Counter(), torch.ones(3)
    traced = _neuronx().trace(model, x, compiler_args="--auto-cast none")
    assert torch.equal(traced(x), torch.ones(3)) and torch.equal(traced(x), torch.ones(3))  # no running total
    assert torch.equal(model.total, torch.zeros(3))  # and the caller's buffer is untouched
    model.total.fill_(5)
    assert torch.equal(traced(x), torch.ones(3))  # the weights were compiled in: later changes unseen


def test_aliased_parameters_are_state_the_traced_module_keeps(neuron_double: Any) -> None:
    """Public source: the alias keys become the traced module's ``states`` parameters; the T5
    tutorial resets them through ``parameters()``, and moves them with ``move_trace_to_device``."""
    neuronx = _neuronx()
    model, x = _StateCounter(), torch.ones(3)
    traced = neuronx.trace(model, x, input_output_aliases={model.total: 1}, compiler_args="--auto-cast none")
    assert neuron_double.trace_calls[-1].state_aliases == {"total": 1}
    (state,) = traced.parameters()  # the state alone: the other weights are inlined constants
    assert torch.equal(state, torch.zeros(3))  # tracing leaves the state as it was
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(traced, buffer)  # saved as traced: the state on the host
        buffer.seek(0)
        loaded = torch.jit.load(buffer)
    neuronx.move_trace_to_device(traced, 0)
    (state,) = traced.parameters()
    assert state.data_ptr() != model.total.data_ptr()  # on the device, no longer the caller's tensor
    doubled, new = traced(x)
    assert torch.equal(new, torch.ones(3)) and torch.equal(doubled, torch.full((3,), 2.0))
    traced(x)
    (state,) = traced.parameters()
    assert torch.equal(state, torch.full((3,), 2.0)) and torch.equal(model.total, torch.zeros(3))
    assert neuron_double.host_state_calls == 0
    (loaded_state,) = loaded.parameters()
    loaded_state.copy_(torch.full((3,), 10.0))  # the T5 tutorial's reset: state.copy_(tensor)
    doubled, new = loaded(x)
    assert torch.equal(new, torch.full((3,), 11.0)) and torch.equal(doubled, torch.full((3,), 22.0))
    assert neuron_double.host_state_calls == 1  # the loaded copy's state was never moved


def test_state_keyed_on_anything_but_a_parameter_is_rejected(neuron_double: Any) -> None:
    """Public source: keys are matched against ``func.named_parameters()`` and then looked up."""
    neuronx = _neuronx()
    x, total = torch.ones(3), torch.zeros(3)
    with pytest.raises(KeyError, match=r"not among func\.named_parameters"):
        neuronx.trace(_InputCounter(), (x, total), input_output_aliases={total: 1})  # a forward input
    with pytest.raises(KeyError, match=r"not among func\.named_parameters"):
        neuronx.trace(_StateCounter(), x, input_output_aliases={torch.zeros(3): 1})  # equal values, other tensor
    with pytest.raises(AssertionError, match=r"expected to be of type torch\.nn\.Module"):
        neuronx.trace(lambda t: (t, t), x, input_output_aliases={total: 1})


def test_a_mismatched_alias_is_rejected(neuron_double: Any) -> None:
    neuronx = _neuronx()
    model = _StateCounter()
    with pytest.raises(ValueError, match=r"\(\[3\], torch.float64\) cannot alias its state"):
        neuronx.trace(model, torch.ones(3).double(), input_output_aliases={model.total: 1})
    with pytest.raises(ValueError, match=r"\[2, 3\].* cannot alias its state \(\[3\].*shape and dtype must match"):
        neuronx.trace(model, torch.ones(2, 3), input_output_aliases={model.total: 1})
    with pytest.raises(ValueError, match="output 2 does not exist"):
        neuronx.trace(model, torch.ones(3), input_output_aliases={model.total: 2})
