"""The cpu backend: PyTorch on the host CPU, eager or ``torch.compile``, fp32 or bf16.

bf16 matters on CPUs with AMX or AVX-512-BF16, where it runs several times faster than fp32, so
the dtype is a first-class option rather than an afterthought.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from backends.base import Availability, BackendOptions, PreparedModel
from backends.torch_common import check_options, compile_module, tensors_to_host

if TYPE_CHECKING:
    import torch

__all__ = ["CpuBackend"]

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


class CpuBackend:
    """PyTorch on the CPU; runs in the harness process by default (nothing to crash but us)."""

    name = "cpu"
    dtypes: tuple[str, ...] = ("fp32", "bf16")
    modes: tuple[str, ...] = ("eager", "compile")
    isolate_by_default = False

    def availability(self) -> Availability:
        try:
            import torch  # noqa: F401
        except ImportError as exc:
            return Availability(False, f"PyTorch is not installed ({exc}); pip install torch")
        return Availability(True)

    def validate(self, options: BackendOptions) -> None:
        check_options(self.name, options, self.dtypes, self.modes)

    def prepare(
        self, model: torch.nn.Module, inputs: tuple[torch.Tensor, ...], options: BackendOptions
    ) -> PreparedModel:
        import torch

        if options.threads is not None:
            torch.set_num_threads(options.threads)
        prepared = compile_module(model, inputs, options, torch.device("cpu"), self.synchronize)
        prepared.details["threads"] = torch.get_num_threads()
        return prepared

    def synchronize(self) -> None:
        """CPU kernels finish before the call returns, so there is nothing to wait for."""

    def to_host(self, output: Any) -> Any:
        return tensors_to_host(output)

    def device_info(self) -> dict[str, Any]:
        import torch

        return {
            "device": "cpu",
            "torch_threads": torch.get_num_threads(),
            "mkldnn": bool(torch.backends.mkldnn.is_available()),  # type: ignore[no-untyped-call]
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        }

    def reset_peak_memory(self) -> None:
        """Reset the kernel's peak-RSS mark (Linux: writing 5 to clear_refs resets VmHWM)."""
        try:
            _CLEAR_REFS.write_text("5")
        except OSError:
            pass

    def peak_memory_bytes(self) -> int | None:
        """Peak resident memory of this process since the last reset (VmHWM), in bytes."""
        try:
            for line in _STATUS.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None
