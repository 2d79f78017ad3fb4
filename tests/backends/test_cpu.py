"""The cpu backend: option validation, casting, threads, compile, memory accounting."""

from __future__ import annotations

import pytest
import torch

from backends.base import Backend, BackendOptions
from backends.cpu import CpuBackend
from harness.errors import ConfigError


def _model() -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(), torch.nn.Linear(32, 4)), (torch.randn(3, 16),)


def test_cpu_backend_follows_the_protocol_and_is_available() -> None:
    backend = CpuBackend()
    assert isinstance(backend, Backend)
    assert backend.availability().available
    assert not backend.isolate_by_default


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (BackendOptions(dtype="fp16"), "does not support dtype 'fp16'; use one of: fp32, bf16"),
        (BackendOptions(mode="graph"), "does not support mode 'graph'; use one of: eager, compile"),
        (BackendOptions(threads=0), "--threads must be 1 or more"),
    ],
)
def test_unsupported_options_are_rejected_with_the_allowed_values(options: BackendOptions, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        CpuBackend().validate(options)


def test_bf16_casts_the_model_and_float_inputs_but_not_integer_ids() -> None:
    model, inputs = _model()
    reference = model(*inputs)
    prepared = CpuBackend().prepare(model, inputs, BackendOptions(dtype="bf16", threads=1))
    output = prepared.call()
    assert output.dtype == torch.bfloat16
    assert next(model.parameters()).dtype == torch.bfloat16
    assert prepared.details["threads"] == 1
    torch.testing.assert_close(output.float(), reference, rtol=0.05, atol=0.05)

    from backends.torch_common import cast_inputs

    ids = torch.arange(4)
    assert cast_inputs((ids,), torch.bfloat16, torch.device("cpu"))[0].dtype == torch.int64


@pytest.mark.slow
def test_compile_mode_gives_the_eager_answer_and_reports_compile_time() -> None:
    model, inputs = _model()
    with torch.inference_mode():
        reference = model(*inputs)
    prepared = CpuBackend().prepare(model, inputs, BackendOptions(mode="compile"))
    torch.testing.assert_close(prepared.call(), reference, rtol=1e-4, atol=1e-5)
    assert prepared.compile_s > 0


def test_peak_memory_sees_a_large_allocation_after_a_reset() -> None:
    backend = CpuBackend()
    backend.reset_peak_memory()
    before = backend.peak_memory_bytes()
    if before is None:
        pytest.skip("this OS has no /proc/self/status VmHWM")
    block = torch.ones(64 * 1024 * 1024 // 4)  # 64 MiB, touched
    after = backend.peak_memory_bytes()
    assert after is not None and after >= before + 60 * 1024 * 1024
    del block


def test_output_to_host_is_float32_with_structure_kept() -> None:
    out = CpuBackend().to_host({"a": torch.ones(2, dtype=torch.bfloat16), "b": (torch.arange(3),)})
    assert out["a"].dtype == torch.float32
    assert out["b"][0].dtype == torch.int64
