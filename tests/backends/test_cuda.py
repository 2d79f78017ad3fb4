"""The cuda backend's configuration and validation: everything that runs without a GPU."""

from __future__ import annotations

import pytest
import torch

from backends.base import Backend, BackendOptions
from backends.cuda import COMPILE_OPTIONS, CudaBackend, parse_device, precision_flags
from backends.cuda_graphs import shape_key
from backends.registry import get_backend, require_backend
from backends.torch_common import torch_dtype
from harness.errors import BackendUnavailableError, ConfigError
from harness.measure.correctness import TOLERANCES

NO_GPU = not torch.cuda.is_available()


def test_the_cuda_backend_meets_the_backend_protocol_and_isolates_by_default() -> None:
    backend = get_backend("cuda")
    assert isinstance(backend, Backend)
    assert backend.isolate_by_default is True


def test_dtypes_and_modes_are_flat_names() -> None:
    backend = CudaBackend()
    assert backend.dtypes == ("fp32", "tf32", "fp16", "bf16")
    assert backend.modes == ("eager", "compile", "compile-max-autotune", "cudagraph")
    for dtype in backend.dtypes:
        assert dtype in TOLERANCES, f"{dtype} needs a correctness tolerance"


@pytest.mark.parametrize("dtype", ["fp32", "tf32", "fp16", "bf16"])
@pytest.mark.parametrize("mode", ["eager", "compile", "compile-max-autotune", "cudagraph"])
def test_every_dtype_and_mode_validates(dtype: str, mode: str) -> None:
    CudaBackend().validate(BackendOptions(dtype=dtype, mode=mode))


def test_an_unknown_dtype_lists_the_allowed_ones() -> None:
    with pytest.raises(ConfigError, match="does not support dtype 'fp8'; use one of: fp32, tf32, fp16, bf16"):
        CudaBackend().validate(BackendOptions(dtype="fp8"))


def test_an_unknown_mode_lists_the_allowed_ones() -> None:
    allowed = "eager, compile, compile-max-autotune, cudagraph"
    with pytest.raises(ConfigError, match=f"does not support mode 'reduce-overhead'; use one of: {allowed}"):
        CudaBackend().validate(BackendOptions(mode="reduce-overhead"))


@pytest.mark.parametrize(("text", "index"), [(None, 0), ("cuda", 0), ("cuda:0", 0), ("cuda:3", 3), (" cuda:1 ", 1)])
def test_device_names_parse(text: str | None, index: int) -> None:
    assert parse_device(text) == index


@pytest.mark.parametrize("text", ["cpu", "cuda:", "cuda:-1", "cuda:x", "gpu:0", "cuda0", "cuda:0:1"])
def test_bad_device_names_say_what_is_expected(text: str) -> None:
    with pytest.raises(ConfigError, match=r"'cuda' or 'cuda:N'"):
        CudaBackend().validate(BackendOptions(device=text))


def test_tf32_is_fp32_storage_with_tf32_matmul_and_only_tf32_allows_it() -> None:
    assert torch_dtype("tf32") is torch.float32
    assert precision_flags("tf32") == {"tf32_matmul": True, "tf32_cudnn": True}
    for dtype in ("fp32", "fp16", "bf16"):
        assert precision_flags(dtype) == {"tf32_matmul": False, "tf32_cudnn": False}


def test_compile_modes_map_to_torch_compile_options() -> None:
    assert COMPILE_OPTIONS == {"compile": {}, "compile-max-autotune": {"mode": "max-autotune"}}
    assert set(COMPILE_OPTIONS) < set(CudaBackend.modes)


def test_the_cpu_backend_does_not_offer_the_cuda_only_dtypes() -> None:
    with pytest.raises(ConfigError, match="use one of: fp32, bf16"):
        get_backend("cpu").validate(BackendOptions(dtype="tf32"))


def test_graph_shape_keys_separate_shapes_and_dtypes() -> None:
    a = (torch.zeros(4, 8), torch.zeros(4, dtype=torch.int64))
    assert shape_key(a) == shape_key((torch.ones(4, 8), torch.ones(4, dtype=torch.int64)))
    assert shape_key(a) != shape_key((torch.zeros(5, 8), torch.zeros(4, dtype=torch.int64)))
    assert shape_key(a) != shape_key((torch.zeros(4, 8, dtype=torch.float16), torch.zeros(4, dtype=torch.int64)))
    assert shape_key(a) == (((4, 8), "torch.float32", "cpu"), ((4,), "torch.int64", "cpu"))


@pytest.mark.skipif(not NO_GPU, reason="this machine has a GPU; the no-GPU answers cannot be seen here")
def test_without_a_gpu_availability_says_why_in_one_line() -> None:
    status = CudaBackend().availability()
    assert not status.available
    assert status.reason and "\n" not in status.reason
    if torch.version.cuda is None:
        assert "CPU-only build" in status.reason
    with pytest.raises(BackendUnavailableError, match="backend 'cuda' is not available here: "):
        require_backend("cuda")
