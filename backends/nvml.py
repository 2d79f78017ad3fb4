"""NVIDIA's management library (NVML, from ``nvidia-ml-py``): GPU facts and the energy counter.

NVML answers from the driver without creating a CUDA context, so the harness process can list the
GPUs for the run file while only the cells' child processes touch CUDA. It is optional: without the
package, the driver library or a given counter, the figure is None with the reason beside it, and
nothing raises. ``pynvml`` is imported only when first asked for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from functools import cache
from typing import Any

from harness.runfile.records import Energy, GpuInventory

__all__ = ["ENERGY_SOURCE", "Nvml", "NvmlDevice", "NvmlEnergyMeter", "energy_record", "gpu_inventory", "system_nvml"]

INSTALL_HINT = "pip install 'siliconbench[cuda]' (the nvidia-ml-py package)"
ENERGY_SOURCE = "nvml total energy counter (nvmlDeviceGetTotalEnergyConsumption)"


def _import_pynvml() -> Any:
    import pynvml

    return pynvml


def _text(value: Any) -> str:
    """NVML strings: str from recent nvidia-ml-py, bytes from older releases."""
    return value.decode() if isinstance(value, bytes) else str(value)


def cuda_driver_version(encoded: int) -> str:
    """NVML's CUDA driver version, 1000 × major + 10 × minor (12040), as '12.4'."""
    return f"{encoded // 1000}.{(encoded % 1000) // 10}"


class Nvml:
    """An initialised NVML library, or the one-line reason there is none."""

    def __init__(self, module: Any | None, reason: str = "") -> None:
        self.module = module
        self.reason = reason

    @classmethod
    def load(cls, importer: Callable[[], Any] = _import_pynvml) -> Nvml:
        """Import and initialise NVML; failures become the reason, not an exception."""
        try:
            module = importer()
        except ImportError:
            return cls(None, f"nvidia-ml-py is not installed; {INSTALL_HINT}")
        try:
            module.nvmlInit()
        except module.NVMLError as exc:
            return cls(None, f"NVML cannot start ({exc}): no NVIDIA driver here?")
        return cls(module)

    @property
    def available(self) -> bool:
        return self.module is not None

    def query(self, function: str, *args: Any) -> Any:
        """``function(*args)``, or None where NVML or this GPU does not offer it."""
        if self.module is None:
            return None
        try:
            return getattr(self.module, function)(*args)
        except (self.module.NVMLError, AttributeError):
            return None

    def system_facts(self) -> dict[str, Any]:
        """Driver and CUDA driver versions (None where unknown)."""
        driver = self.query("nvmlSystemGetDriverVersion")
        cuda = self.query("nvmlSystemGetCudaDriverVersion")
        return {
            "driver_version": None if driver is None else _text(driver),
            "cuda_driver_version": None if cuda is None else cuda_driver_version(int(cuda)),
        }

    def device(self, index: int, uuid: str | None = None) -> NvmlDevice | str:
        """The GPU with this UUID (or, without one, this NVML index), or why it cannot be had.

        The UUID is preferred because CUDA_VISIBLE_DEVICES renumbers CUDA's devices but not NVML's.
        """
        if self.module is None:
            return self.reason
        try:
            if uuid:
                name = uuid if uuid.startswith(("GPU-", "MIG-")) else f"GPU-{uuid}"
                handle = self.module.nvmlDeviceGetHandleByUUID(name)
            else:
                handle = self.module.nvmlDeviceGetHandleByIndex(index)
        except self.module.NVMLError as exc:
            return f"NVML cannot find GPU {uuid or index} ({exc})"
        return NvmlDevice(self, self.module, handle)

    def inventory(self) -> GpuInventory:
        """Every GPU NVML sees, for the run file's environment."""
        if self.module is None:
            return GpuInventory(available=False, reason=self.reason)
        count = self.query("nvmlDeviceGetCount") or 0
        devices = []
        for index in range(int(count)):
            device = self.device(index)
            if isinstance(device, NvmlDevice):
                devices.append({"nvml_index": index, **device.facts()})
        system = self.system_facts()
        return GpuInventory(
            available=True,
            driver_version=system["driver_version"],
            cuda_driver_version=system["cuda_driver_version"],
            devices=tuple(devices),
        )


class NvmlDevice:
    """One GPU as NVML sees it."""

    def __init__(self, nvml: Nvml, module: Any, handle: Any) -> None:
        self.nvml = nvml
        self.module = module
        self.handle = handle

    def facts(self) -> dict[str, Any]:
        """Name, memory, compute capability, clocks and power limit (None where not offered)."""
        module, get = self.module, self.nvml.query
        name = get("nvmlDeviceGetName", self.handle)
        uuid = get("nvmlDeviceGetUUID", self.handle)
        memory = get("nvmlDeviceGetMemoryInfo", self.handle)
        capability = get("nvmlDeviceGetCudaComputeCapability", self.handle)
        power_mw = get("nvmlDeviceGetPowerManagementLimit", self.handle)
        sm, mem = module.NVML_CLOCK_SM, module.NVML_CLOCK_MEM
        return {
            "name": None if name is None else _text(name),
            "uuid": None if uuid is None else _text(uuid),
            "memory_bytes": None if memory is None else int(memory.total),
            "compute_capability": None if capability is None else f"{capability[0]}.{capability[1]}",
            "clocks_mhz": {
                "sm": get("nvmlDeviceGetClockInfo", self.handle, sm),
                "memory": get("nvmlDeviceGetClockInfo", self.handle, mem),
                "max_sm": get("nvmlDeviceGetMaxClockInfo", self.handle, sm),
                "max_memory": get("nvmlDeviceGetMaxClockInfo", self.handle, mem),
            },
            "power_limit_w": None if power_mw is None else power_mw / 1000,
        }

    def energy_mj(self) -> int:
        """Energy used since the driver loaded, in millijoules (raises NVMLError if not offered)."""
        return int(self.module.nvmlDeviceGetTotalEnergyConsumption(self.handle))

    def energy_meter(self, clock: Callable[[], int] = time.perf_counter_ns) -> NvmlEnergyMeter:
        """A meter on this GPU's counter, or one that reports why there is none."""
        error: type[BaseException] = self.module.NVMLError
        try:
            self.energy_mj()
        except AttributeError:
            return NvmlEnergyMeter(None, "this nvidia-ml-py has no energy counter function; upgrade it", clock=clock)
        except error as exc:
            return NvmlEnergyMeter(None, f"this GPU offers no NVML energy counter ({exc})", clock=clock)
        return NvmlEnergyMeter(self.energy_mj, "", error=error, clock=clock)


def energy_record(
    start_mj: int | None, end_mj: int | None, window_ns: int, calls: int, batch_size: int, reason: str = ""
) -> Energy:
    """Energy of a window of ``calls`` calls of ``batch_size`` inferences each.

    Per inference is per call over the batch size, matching ``throughput_per_s``. The window
    includes the gaps between calls (synchronize, bookkeeping), during which the GPU idles at its
    idle power: that is what one request at a time costs on a dedicated device.
    """
    unknown = Energy(ENERGY_SOURCE, None, None, None, None, window_ns / 1e9, calls, reason or None)
    if reason:
        return unknown
    if start_mj is None or end_mj is None:
        why = "the energy counter could not be read at both ends of the window"
    elif end_mj < start_mj:
        why = "the energy counter went backwards (driver reloaded during the cell?)"
    elif end_mj == start_mj:
        why = f"the energy counter did not advance in {window_ns / 1e9:.3f} s; give the cell a longer --max-time"
    elif calls < 1 or batch_size < 1 or window_ns <= 0:
        why = "no calls were measured in the window"
    else:
        joules = (end_mj - start_mj) / 1000
        return replace(
            unknown,
            joules=joules,
            joules_per_call=joules / calls,
            joules_per_inference=joules / (calls * batch_size),
            average_power_w=joules / (window_ns / 1e9),
        )
    return replace(unknown, reason=why)


class NvmlEnergyMeter:
    """Reads the energy counter at both ends of the measurement window (an ``EnergyMeter``)."""

    def __init__(
        self,
        read_mj: Callable[[], int] | None,
        reason: str,
        error: type[BaseException] = Exception,
        clock: Callable[[], int] = time.perf_counter_ns,
    ) -> None:
        self._read = read_mj
        self._reason = reason
        self._error = error
        self._clock = clock
        self._start_mj: int | None = None
        self._start_ns = 0

    def _sample(self) -> int | None:
        if self._read is None:
            return None
        try:
            return self._read()
        except self._error:
            return None

    def start(self) -> None:
        self._start_ns = self._clock()
        self._start_mj = self._sample()

    def stop(self, calls: int, batch_size: int) -> Energy:
        end_mj = self._sample()
        window_ns = self._clock() - self._start_ns
        return energy_record(self._start_mj, end_mj, window_ns, calls, batch_size, self._reason)


@cache
def system_nvml() -> Nvml:
    """This process's NVML, initialised once (NVML counts its initialisations)."""
    return Nvml.load()


def gpu_inventory() -> GpuInventory:
    """The GPUs of this machine for the run file's environment; never raises."""
    return system_nvml().inventory()
