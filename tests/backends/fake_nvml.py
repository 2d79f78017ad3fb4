"""A test double of the ``pynvml`` functions siliconbench calls, for machines without a GPU.

Its behaviour follows NVML's API reference (docs.nvidia.com/deploy/nvml-api), as wrapped by
nvidia-ml-py's ``pynvml``:

- every call before ``nvmlInit`` fails with NVML_ERROR_UNINITIALIZED; ``nvmlInit`` is counted and
  fails with NVML_ERROR_LIBRARY_NOT_FOUND (pynvml's code) where no driver library is installed;
- ``nvmlDeviceGetTotalEnergyConsumption``: "total energy consumption for this GPU in millijoules
  (mJ) since the driver was last reloaded", Volta or newer; NVML_ERROR_NOT_SUPPORTED otherwise;
- ``nvmlSystemGetCudaDriverVersion``: 1000 × major + 10 × minor (CUDA 12.4 is 12040);
- ``nvmlDeviceGetPowerManagementLimit``: milliwatts; clocks in MHz; memory info in bytes;
- ``nvmlDeviceGetHandleByUUID``: NVML_ERROR_NOT_FOUND for an unknown UUID ("GPU-..." strings);
- errors are ``NVMLError`` subclasses carrying the NVML return code in ``value``, and ``str()``
  of one is NVML's description ("Not Supported").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_CLOCK_GRAPHICS, NVML_CLOCK_SM, NVML_CLOCK_MEM = 0, 1, 2

_DESCRIPTIONS = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_NOT_FOUND: "Not Found",
    NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
}


class NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return _DESCRIPTIONS.get(self.value, f"Unknown Error {self.value}")


class NVMLError_NotSupported(NVMLError):  # pynvml's name
    def __init__(self) -> None:
        super().__init__(NVML_ERROR_NOT_SUPPORTED)


@dataclass
class Memory:
    total: int
    free: int
    used: int


@dataclass
class FakeGpu:
    name: str = "NVIDIA H100 80GB HBM3"
    uuid: str = "GPU-8c5a7b3e-0000-4000-8000-000000000001"
    memory_total: int = 85_520_809_984
    capability: tuple[int, int] = (9, 0)
    sm_clock: int = 1980
    mem_clock: int = 2619
    max_sm_clock: int = 1980
    max_mem_clock: int = 2619
    power_limit_mw: int = 700_000
    #: Successive readings of the energy counter (mJ); None: the GPU has no counter (pre-Volta).
    energy_mj: Iterator[int] | None = field(default=None)


class FakeNvmlModule:
    """Stands in for the ``pynvml`` module."""

    NVMLError = NVMLError
    NVML_CLOCK_SM = NVML_CLOCK_SM
    NVML_CLOCK_MEM = NVML_CLOCK_MEM

    def __init__(
        self, gpus: list[FakeGpu], driver: str = "550.54.15", cuda: int = 12040, library_present: bool = True
    ) -> None:
        self.gpus = gpus
        self.driver = driver
        self.cuda = cuda
        self.library_present = library_present
        self.init_count = 0

    def _ready(self) -> None:
        if self.init_count < 1:
            raise NVMLError(NVML_ERROR_UNINITIALIZED)

    def nvmlInit(self) -> None:
        if not self.library_present:
            raise NVMLError(NVML_ERROR_LIBRARY_NOT_FOUND)
        self.init_count += 1

    def nvmlSystemGetDriverVersion(self) -> str:
        self._ready()
        return self.driver

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._ready()
        return self.cuda

    def nvmlDeviceGetCount(self) -> int:
        self._ready()
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        self._ready()
        if not 0 <= index < len(self.gpus):
            raise NVMLError(NVML_ERROR_NOT_FOUND)
        return self.gpus[index]

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> FakeGpu:
        self._ready()
        for gpu in self.gpus:
            if gpu.uuid == uuid:
                return gpu
        raise NVMLError(NVML_ERROR_NOT_FOUND)

    def nvmlDeviceGetName(self, handle: FakeGpu) -> str:
        self._ready()
        return handle.name

    def nvmlDeviceGetUUID(self, handle: FakeGpu) -> str:
        self._ready()
        return handle.uuid

    def nvmlDeviceGetMemoryInfo(self, handle: FakeGpu) -> Memory:
        self._ready()
        return Memory(total=handle.memory_total, free=handle.memory_total, used=0)

    def nvmlDeviceGetCudaComputeCapability(self, handle: FakeGpu) -> tuple[int, int]:
        self._ready()
        return handle.capability

    def nvmlDeviceGetClockInfo(self, handle: FakeGpu, kind: int) -> int:
        self._ready()
        return {NVML_CLOCK_SM: handle.sm_clock, NVML_CLOCK_MEM: handle.mem_clock}[kind]

    def nvmlDeviceGetMaxClockInfo(self, handle: FakeGpu, kind: int) -> int:
        self._ready()
        return {NVML_CLOCK_SM: handle.max_sm_clock, NVML_CLOCK_MEM: handle.max_mem_clock}[kind]

    def nvmlDeviceGetPowerManagementLimit(self, handle: FakeGpu) -> int:
        self._ready()
        return handle.power_limit_mw

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: FakeGpu) -> int:
        self._ready()
        if handle.energy_mj is None:
            raise NVMLError_NotSupported()
        return next(handle.energy_mj)
