"""The cuda backend: PyTorch on an NVIDIA GPU, timed with CUDA events.

- dtypes: ``fp32`` (true fp32: TF32 off for matmul and cuDNN), ``tf32`` (fp32 storage, TF32 matrix
  products), ``fp16``, ``bf16``. PyTorch's default lets cuDNN use TF32 and matmul not, which
  is neither; every cell sets both flags, so a result says exactly which arithmetic ran.
- modes: ``eager``; ``compile`` and ``compile-max-autotune`` (``torch.compile``; the latter
  autotunes kernels and replays CUDA graphs); ``cudagraph`` (eager kernels captured once into a
  CUDA graph with static input buffers and replayed). Compilation, autotuning, graph capture and
  their warmup calls all happen in ``prepare`` and are reported as ``compile_s``.
- timing: CUDA events around each call, read after a synchronize; the host clock is kept beside
  (see ``harness.measure.sampler``). Energy comes from NVML's counter where the GPU has one.

Each cell runs in a child process by default, so an out-of-memory error or a device fault fails
that cell alone and the run goes on.
"""

from __future__ import annotations

import os
import re
import time
import warnings
from typing import TYPE_CHECKING, Any

from backends.base import Availability, BackendOptions, EnergyMeter, PreparedModel
from backends.nvml import NvmlDevice, NvmlEnergyMeter, system_nvml
from backends.torch_common import cast_inputs, check_options, compile_module, tensors_to_host, torch_dtype
from harness.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["COMPILE_OPTIONS", "CudaBackend", "CudaEventTimer", "parse_device", "precision_flags"]

#: ``torch.compile`` keyword arguments per compiled mode.
COMPILE_OPTIONS: dict[str, dict[str, Any]] = {
    "compile": {},
    "compile-max-autotune": {"mode": "max-autotune"},
}
#: Calls made while preparing a compiled mode: the first compiles (and autotunes); CUDA-graph
#: trees record on a later one, so one call is not enough to reach the steady state.
COMPILE_WARMUP_CALLS = 3

_DEVICE = re.compile(r"cuda(?::(\d+))?")


def parse_device(text: str | None) -> int:
    """The index N of ``cuda`` or ``cuda:N`` (None means cuda:0); ConfigError otherwise."""
    if text is None:
        return 0
    match = _DEVICE.fullmatch(text.strip())
    if match is None:
        raise ConfigError(f"cuda device must be 'cuda' or 'cuda:N' (N = 0, 1, ...), got {text!r}")
    return int(match.group(1) or 0)


def precision_flags(dtype: str) -> dict[str, bool]:
    """Whether matmul and cuDNN may round fp32 inputs to TF32: only for the ``tf32`` dtype."""
    tf32 = dtype == "tf32"
    return {"tf32_matmul": tf32, "tf32_cudnn": tf32}


class CudaEventTimer:
    """A ``DeviceTimer`` on a pair of CUDA events, reused for every call.

    Reuse is safe because the sampler synchronizes (and reads) before the next ``start``.
    ``elapsed_time`` has about half a microsecond of resolution, far below any model's latency.
    """

    name = "cuda_events"

    def __init__(self) -> None:
        import torch

        self._start = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        self._stop = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]

    def start(self) -> None:
        self._start.record()

    def stop(self) -> None:
        self._stop.record()

    def elapsed_ns(self) -> int:
        elapsed_ms: float = self._start.elapsed_time(self._stop)
        return max(0, round(elapsed_ms * 1_000_000))


class CudaBackend:
    """PyTorch on ``cuda:N``."""

    name = "cuda"
    dtypes: tuple[str, ...] = ("fp32", "tf32", "fp16", "bf16")
    modes: tuple[str, ...] = ("eager", "compile", "compile-max-autotune", "cudagraph")
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
        index = parse_device(options.device)
        import torch

        if torch.cuda.is_available():
            count = torch.cuda.device_count()
            if index >= count:
                raise ConfigError(
                    f"device cuda:{index} does not exist; this machine has {count} GPU(s): "
                    f"{', '.join(f'cuda:{i}' for i in range(count))}"
                )

    def _torch_device(self, options: BackendOptions) -> torch.device:
        import torch

        device = torch.device("cuda", parse_device(options.device))
        torch.cuda.set_device(device)
        self._device = device
        return device

    def prepare(
        self, model: torch.nn.Module, inputs: tuple[torch.Tensor, ...], options: BackendOptions
    ) -> PreparedModel:
        import torch

        device = self._torch_device(options)
        # The peak-memory window opens here, once the device is known (see reset_peak_memory).
        torch.cuda.reset_peak_memory_stats(device)
        flags = precision_flags(options.dtype)
        torch.backends.cuda.matmul.allow_tf32 = flags["tf32_matmul"]
        torch.backends.cudnn.allow_tf32 = flags["tf32_cudnn"]
        if options.mode == "cudagraph":
            prepared = self._prepare_graph(model, inputs, options, device)
        else:
            compiled = options.mode in COMPILE_OPTIONS
            with warnings.catch_warnings():
                # Inductor suggests TF32 when it compiles an fp32 matmul; fp32 means fp32 here,
                # and tf32 is a dtype of its own.
                warnings.filterwarnings("ignore", message="TensorFloat32 tensor cores")
                prepared = compile_module(
                    model,
                    inputs,
                    options,
                    device,
                    self.synchronize,
                    compile_kwargs=COMPILE_OPTIONS.get(options.mode),
                    warmup_calls=COMPILE_WARMUP_CALLS if compiled else 1,
                )
        prepared.details.update(precision=flags)
        prepared.device_timer = CudaEventTimer()
        prepared.energy_meter = self._energy_meter()
        return prepared

    def _prepare_graph(
        self, model: torch.nn.Module, inputs: tuple[torch.Tensor, ...], options: BackendOptions, device: torch.device
    ) -> PreparedModel:
        """Capture the eager model once for the cell's shape; the timed call is a bare replay.

        The inputs are bound before timing, as in the other modes, so the replay reads them from
        its static buffers without a copy: the figure is the model's, comparable with eager.
        """
        from backends.cuda_graphs import CudaGraphCache

        start = time.perf_counter()
        dtype = torch_dtype(options.dtype)
        module = model.to(device=device, dtype=dtype).eval()
        graphs = CudaGraphCache(module)
        captured = graphs.capture(cast_inputs(inputs, dtype, device))
        captured.replay()
        self.synchronize()
        return PreparedModel(
            call=captured.replay, compile_s=time.perf_counter() - start, details={"graph_captures": len(graphs)}
        )

    def _nvml_device(self) -> NvmlDevice | str:
        import torch

        index = self._index()
        uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
        nvml = system_nvml()
        found = nvml.device(index, str(uuid) if uuid else None)
        if isinstance(found, str) and uuid and "CUDA_VISIBLE_DEVICES" not in os.environ:
            # Without renumbering, CUDA's and NVML's indices agree.
            found = nvml.device(index)
        return found

    def _energy_meter(self) -> EnergyMeter:
        nvml_device = self._nvml_device()
        if isinstance(nvml_device, str):
            return NvmlEnergyMeter(None, nvml_device)
        return nvml_device.energy_meter()

    def _index(self) -> int:
        return (self._device.index if self._device is not None else None) or 0

    def synchronize(self) -> None:
        import torch

        torch.cuda.synchronize(self._device)

    def to_host(self, output: Any) -> Any:
        return tensors_to_host(output)

    def device_info(self) -> dict[str, Any]:
        """Device facts from CUDA and, where present, NVML (driver, clocks, power limit).

        Called after sampling, so the clocks are those of a GPU that has just been busy and the
        reserved-memory peak covers the whole cell.
        """
        import torch

        index = self._index()
        props = torch.cuda.get_device_properties(index)
        info: dict[str, Any] = {
            "device": f"cuda:{index}",
            "gpu_name": props.name,
            "compute_capability": f"{props.major}.{props.minor}",
            "memory_bytes": props.total_memory,
            "multiprocessors": props.multi_processor_count,
            "cuda_version": torch.version.cuda,
            "cudnn_version": torch.backends.cudnn.version(),  # type: ignore[no-untyped-call]
            "peak_memory_reserved_bytes": int(torch.cuda.max_memory_reserved(index)),
            "driver_version": None,
            "cuda_driver_version": None,
            "clocks_mhz": None,
            "power_limit_w": None,
        }
        nvml_device = self._nvml_device()
        if isinstance(nvml_device, str):
            info["nvml"] = {"available": False, "reason": nvml_device}
        else:
            facts = nvml_device.facts()
            info.update(system_nvml().system_facts())
            info.update(clocks_mhz=facts["clocks_mhz"], power_limit_w=facts["power_limit_w"])
            info["nvml"] = {"available": True, "reason": ""}
        return info

    def reset_peak_memory(self) -> None:
        """Reset the device's peak; before ``prepare`` chose a device, ``prepare`` does it.

        Resetting before the device is known would create a CUDA context on cuda:0 for a cell that
        runs on cuda:N.
        """
        if self._device is None:
            return
        import torch

        torch.cuda.reset_peak_memory_stats(self._device)

    def peak_memory_bytes(self) -> int | None:
        import torch

        return int(torch.cuda.max_memory_allocated(self._device))
