"""The cuda backend: PyTorch on an NVIDIA GPU.

Each cell runs in a child process by default, so an out-of-memory error or a device fault fails
that cell alone and the run goes on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backends.base import Availability, BackendOptions, PreparedModel
from backends.torch_common import check_options, compile_module, tensors_to_host
from harness.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["CudaBackend"]


class CudaBackend:
    """PyTorch on ``cuda:N``; synchronizes the device around each timed call."""

    name = "cuda"
    dtypes: tuple[str, ...] = ("fp32", "bf16", "fp16")
    modes: tuple[str, ...] = ("eager", "compile")
    isolate_by_default = True

    def __init__(self) -> None:
        self._device: torch.device | None = None

    def availability(self) -> Availability:
        try:
            import torch
        except ImportError as exc:
            return Availability(False, f"PyTorch is not installed ({exc})")
        if torch.version.cuda is None:
            return Availability(
                False, f"this PyTorch ({torch.__version__}) is a CPU-only build; install a CUDA build of torch"
            )
        if not torch.cuda.is_available():
            return Availability(False, "no NVIDIA GPU is visible (torch.cuda.is_available() is False)")
        return Availability(True)

    def validate(self, options: BackendOptions) -> None:
        check_options(self.name, options, self.dtypes, self.modes)
        if options.device is not None and not options.device.startswith("cuda"):
            raise ConfigError(f"cuda device must look like 'cuda:N', got {options.device!r}")

    def _torch_device(self, options: BackendOptions) -> torch.device:
        import torch

        device = torch.device(options.device or "cuda:0")
        torch.cuda.set_device(device)
        self._device = device
        return device

    def prepare(
        self, model: torch.nn.Module, inputs: tuple[torch.Tensor, ...], options: BackendOptions
    ) -> PreparedModel:
        device = self._torch_device(options)
        return compile_module(model, inputs, options, device, self.synchronize)

    def synchronize(self) -> None:
        import torch

        torch.cuda.synchronize(self._device)

    def to_host(self, output: Any) -> Any:
        return tensors_to_host(output)

    def device_info(self) -> dict[str, Any]:
        import torch

        index = (self._device or torch.device("cuda:0")).index or 0
        props = torch.cuda.get_device_properties(index)
        return {
            "device": f"cuda:{index}",
            "gpu_name": props.name,
            "compute_capability": f"{props.major}.{props.minor}",
            "memory_bytes": props.total_memory,
            "cuda_version": torch.version.cuda,
        }

    def reset_peak_memory(self) -> None:
        import torch

        torch.cuda.reset_peak_memory_stats(self._device)

    def peak_memory_bytes(self) -> int | None:
        import torch

        return int(torch.cuda.max_memory_allocated(self._device))
