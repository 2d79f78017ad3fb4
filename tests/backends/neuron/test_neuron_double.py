"""The torch-neuronx double keeps the documented contract the backend's tests rely on.

If the double drifted from the documentation, the backend's tests would prove nothing, so its
own behaviour is pinned here: argument checks, work directory, precision flags, fixed shapes,
TorchScript save/load, runtime placement and DataParallel scattering.
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


def test_trace_checks_example_inputs_and_keyword_use(neuron_double: Any) -> None:
    neuronx = _neuronx()
    with pytest.raises(TypeError, match="Tensor or a tuple of Tensors"):
        neuronx.trace(_model(), [1, 2])
    with pytest.raises(TypeError, match="keyword arguments"):
        neuronx.trace(_model(), torch.randn(2, 8), "/tmp/workdir")


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
    default = neuronx.trace(model, x)  # neuronx-cc's default: --auto-cast matmult --auto-cast-type bf16
    assert (neuron_double.trace_calls[-1].auto_cast, neuron_double.trace_calls[-1].auto_cast_type) == (
        "matmult",
        "bf16",
    )
    assert default(x).dtype == torch.float32
    assert 1e-6 < _error(default(x), ref) < 6e-2
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


class _FunctionalCounter(torch.nn.Module):
    """The same step with the total passed in and returned (output 1 is the new value of input 1)."""

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


def test_aliased_inputs_carry_state_across_calls_and_through_save_and_load(neuron_double: Any) -> None:
    neuronx = _neuronx()
    x, total = torch.ones(3), torch.zeros(3)
    traced = neuronx.trace(
        _FunctionalCounter(), (x, total), input_output_aliases={total: 1}, compiler_args="--auto-cast none"
    )
    assert neuron_double.trace_calls[-1].input_output_aliases == {1: 1}
    assert torch.equal(total, torch.zeros(3))  # tracing does not write into the example inputs
    doubled, new = traced(x, total)
    assert torch.equal(new, torch.ones(3)) and torch.equal(total, torch.ones(3))
    traced(x, total)
    assert torch.equal(total, torch.full((3,), 2.0))
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(traced, buffer)
        buffer.seek(0)
        loaded = torch.jit.load(buffer)
    doubled, _ = loaded(x, total)
    assert torch.equal(total, torch.full((3,), 3.0)) and torch.equal(doubled, torch.full((3,), 6.0))


def test_a_mismatched_or_foreign_alias_is_rejected(neuron_double: Any) -> None:
    neuronx = _neuronx()
    x, total = torch.ones(3), torch.zeros(3)
    with pytest.raises(ValueError, match=r"\(\[3\], torch.float64\) cannot alias input 1"):
        # float64 + float32 gives a float64 total, which cannot replace the float32 input
        neuronx.trace(_FunctionalCounter(), (x.double(), total), input_output_aliases={total: 1})
    with pytest.raises(ValueError, match=r"\[2, 3\].* cannot alias input 1 \(\[3\].*shape and dtype must match"):
        # a batch of two broadcasts the total to (2, 3), which cannot replace the (3,) input
        neuronx.trace(_FunctionalCounter(), (torch.ones(2, 3), total), input_output_aliases={total: 1})
    with pytest.raises(ValueError, match="output 2 does not exist"):
        neuronx.trace(_FunctionalCounter(), (x, total), input_output_aliases={total: 2})
    with pytest.raises(ValueError, match="example_inputs"):
        neuronx.trace(_FunctionalCounter(), (x, total), input_output_aliases={torch.zeros(3): 1})
