"""A CPU backend with a second clock and an energy counter, to test the cell fields that GPU
backends fill (device-timed samples, host samples beside them, energy) on a machine without one.

Its device clock is real: this thread's CPU time (``time.thread_time_ns``), a clock other than
the host's wall clock. Its energy counter is the NVML test double's (fake_nvml.py).
"""

from __future__ import annotations

import itertools
import time
from typing import TYPE_CHECKING

from backends.base import BackendOptions, PreparedModel
from backends.cpu import CpuBackend
from backends.nvml import Nvml, NvmlDevice
from tests.backends.fake_nvml import FakeGpu, FakeNvmlModule

if TYPE_CHECKING:
    import torch

#: The fake counter's step per reading, in millijoules.
ENERGY_STEP_MJ = 1_500


class ThreadTimeTimer:
    """A DeviceTimer on this thread's CPU time."""

    name = "thread_cpu_time"

    def __init__(self) -> None:
        self._start = self._stop = 0

    def start(self) -> None:
        self._start = time.thread_time_ns()

    def stop(self) -> None:
        self._stop = time.thread_time_ns()

    def elapsed_ns(self) -> int:
        return self._stop - self._start


class TimedCpuBackend(CpuBackend):
    name = "cpu-timed"

    def prepare(
        self, model: torch.nn.Module, inputs: tuple[torch.Tensor, ...], options: BackendOptions
    ) -> PreparedModel:
        prepared = super().prepare(model, inputs, options)
        counter = itertools.count(10_000, ENERGY_STEP_MJ)
        module = FakeNvmlModule([FakeGpu(energy_mj=counter)])
        device = Nvml.load(importer=lambda: module).device(0)
        assert isinstance(device, NvmlDevice)
        prepared.device_timer = ThreadTimeTimer()
        prepared.energy_meter = device.energy_meter()
        return prepared
