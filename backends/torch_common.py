"""What PyTorch-based backends share: dtype casting, eager or compiled modules, input binding.

The cpu and cuda backends differ in device placement, synchronization and memory accounting, not
in how a module becomes callable, so that part lives here once.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from backends.base import BackendOptions, PreparedModel
from harness.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["DTYPES", "cast_inputs", "check_options", "compile_module", "tensors_to_host"]

#: Our dtype names mapped to torch dtype attribute names. ``tf32`` stores fp32 and lets matrix
#: products round their inputs to TF32; a backend that offers it switches that on.
DTYPES: dict[str, str] = {"fp32": "float32", "tf32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def check_options(backend: str, options: BackendOptions, dtypes: tuple[str, ...], modes: tuple[str, ...]) -> None:
    """Raise a ConfigError naming the allowed values when a dtype or mode is not supported."""
    if options.dtype not in dtypes:
        raise ConfigError(
            f"backend {backend!r} does not support dtype {options.dtype!r}; use one of: {', '.join(dtypes)}"
        )
    if options.mode not in modes:
        raise ConfigError(f"backend {backend!r} does not support mode {options.mode!r}; use one of: {', '.join(modes)}")
    if options.threads is not None and options.threads < 1:
        raise ConfigError(f"--threads must be 1 or more, got {options.threads}")


def torch_dtype(name: str) -> torch.dtype:
    import torch

    return getattr(torch, DTYPES[name])  # type: ignore[no-any-return]


def cast_inputs(inputs: tuple[torch.Tensor, ...], dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Move inputs to the device; floating inputs take the model's dtype, integer ones (ids) stay."""
    return tuple(t.to(device=device, dtype=dtype) if t.is_floating_point() else t.to(device=device) for t in inputs)


def compile_module(
    model: torch.nn.Module,
    inputs: tuple[torch.Tensor, ...],
    options: BackendOptions,
    device: torch.device,
    synchronize: Any,
    compile_kwargs: dict[str, Any] | None = None,
    warmup_calls: int = 1,
) -> PreparedModel:
    """Cast and place ``model``; compile it if asked; bind inputs; run it to compile.

    The first ``warmup_calls`` calls are part of preparation, so compilation (and autotuning, and
    the recording of CUDA graphs, which take a few calls) never lands in the timed samples and is
    reported as ``compile_s`` instead.
    """
    import torch

    start = time.perf_counter()
    dtype = torch_dtype(options.dtype)
    model = model.to(device=device, dtype=dtype).eval()
    bound = cast_inputs(inputs, dtype, device)
    module: Any = model
    if options.mode.startswith("compile"):
        module = torch.compile(model, **(compile_kwargs or {}))

    def call() -> Any:
        with torch.inference_mode():
            return module(*bound)

    for _ in range(max(1, warmup_calls)):
        call()
    synchronize()
    return PreparedModel(call=call, compile_s=time.perf_counter() - start)


def tensors_to_host(output: Any) -> Any:
    """Every tensor leaf of ``output`` as an fp32 CPU tensor (structure kept)."""
    import torch
    from torch.utils._pytree import tree_map

    def convert(leaf: Any) -> Any:
        if isinstance(leaf, torch.Tensor):
            leaf = leaf.detach().to("cpu")
            return leaf.float() if leaf.is_floating_point() else leaf
        return leaf

    return tree_map(convert, output)
