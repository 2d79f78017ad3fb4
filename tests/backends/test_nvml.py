"""NVML facts and energy: the arithmetic, the documented NVML behaviours (through a test double
whose behaviour follows NVML's API reference, see fake_nvml.py) and the real missing-library path."""

from __future__ import annotations

import itertools

import pytest

from backends.nvml import ENERGY_SOURCE, Nvml, NvmlDevice, NvmlEnergyMeter, cuda_driver_version, energy_record
from harness.runfile.records import GpuInventory
from tests.backends.fake_nvml import FakeGpu, FakeNvmlModule


def loaded(*gpus: FakeGpu, **kwargs: object) -> tuple[Nvml, FakeNvmlModule]:
    module = FakeNvmlModule(list(gpus), **kwargs)  # type: ignore[arg-type]
    return Nvml.load(importer=lambda: module), module


class Ticks:
    """A clock that advances by a fixed step per reading."""

    def __init__(self, step_ns: int) -> None:
        self.now = 0
        self.step = step_ns

    def __call__(self) -> int:
        value = self.now
        self.now += self.step
        return value


# -- energy arithmetic -------------------------------------------------------------------------


def test_energy_per_call_and_per_inference() -> None:
    # 250 000 mJ = 250 J over 2 s, in 1 000 calls of batch 8.
    record = energy_record(1_000_000, 1_250_000, window_ns=2_000_000_000, calls=1_000, batch_size=8)
    assert record.joules == pytest.approx(250.0)
    assert record.joules_per_call == pytest.approx(0.25)
    assert record.joules_per_inference == pytest.approx(0.25 / 8)
    assert record.average_power_w == pytest.approx(125.0)
    assert record.window_s == pytest.approx(2.0)
    assert record.calls == 1_000
    assert record.reason is None
    assert record.source == ENERGY_SOURCE


@pytest.mark.parametrize(
    ("start", "end", "calls", "reason"),
    [
        (500, 400, 10, "went backwards"),
        (500, 500, 10, "did not advance"),
        (None, 900, 10, "could not be read"),
        (500, None, 10, "could not be read"),
        (500, 900, 0, "no calls"),
    ],
)
def test_unusable_readings_give_null_figures_with_a_reason(
    start: int | None, end: int | None, calls: int, reason: str
) -> None:
    record = energy_record(start, end, window_ns=1_000_000_000, calls=calls, batch_size=1)
    assert record.joules is None and record.joules_per_inference is None
    assert reason in record.reason


def test_a_reason_given_up_front_wins() -> None:
    record = energy_record(1, 2_000, 10**9, 5, 1, reason="no counter")
    assert record.joules is None
    assert record.reason == "no counter"


def test_cuda_driver_version_is_decoded_as_documented() -> None:
    assert cuda_driver_version(12040) == "12.4"
    assert cuda_driver_version(11020) == "11.2"
    assert cuda_driver_version(12080) == "12.8"


# -- the library as NVML documents it --------------------------------------------------------


def test_missing_package_is_a_reason_with_the_install_hint() -> None:
    def no_package() -> object:
        raise ImportError("No module named 'pynvml'")

    nvml = Nvml.load(importer=no_package)
    assert not nvml.available
    assert "nvidia-ml-py" in nvml.reason and "siliconbench[cuda]" in nvml.reason
    assert nvml.device(0) == nvml.reason
    assert nvml.inventory() == GpuInventory(available=False, reason=nvml.reason)
    assert nvml.system_facts() == {"driver_version": None, "cuda_driver_version": None}


def test_missing_driver_library_is_a_reason() -> None:
    nvml, _ = loaded(FakeGpu(), library_present=False)
    assert not nvml.available
    assert "NVML Shared Library Not Found" in nvml.reason


def test_real_pynvml_without_a_driver_reports_why() -> None:
    """The real nvidia-ml-py on this machine: no driver library, so a reason and no exception."""
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pass
    else:
        pynvml.nvmlShutdown()
        pytest.skip("this machine has an NVIDIA driver; the missing-driver path cannot be seen here")
    nvml = Nvml.load()
    assert not nvml.available
    assert nvml.reason.startswith("NVML cannot start")
    assert nvml.inventory().available is False


def test_inventory_lists_every_gpu_with_its_facts() -> None:
    nvml, module = loaded(FakeGpu(), FakeGpu(uuid="GPU-second", name="NVIDIA A10G", capability=(8, 6)))
    assert module.init_count == 1
    inventory = nvml.inventory()
    assert inventory.available is True
    assert inventory.driver_version == "550.54.15"
    assert inventory.cuda_driver_version == "12.4"
    first, second = inventory.devices
    assert first["nvml_index"] == 0 and second["nvml_index"] == 1
    assert first["name"] == "NVIDIA H100 80GB HBM3"
    assert first["compute_capability"] == "9.0" and second["compute_capability"] == "8.6"
    assert first["memory_bytes"] == 85_520_809_984
    assert first["clocks_mhz"] == {"sm": 1980, "memory": 2619, "max_sm": 1980, "max_memory": 2619}
    assert first["power_limit_w"] == pytest.approx(700.0)


def test_a_device_is_found_by_uuid_with_or_without_the_gpu_prefix() -> None:
    nvml, _ = loaded(FakeGpu(uuid="GPU-aaaa"), FakeGpu(uuid="GPU-bbbb", name="second"))
    by_torch_uuid = nvml.device(0, "bbbb")  # torch prints UUIDs without NVML's "GPU-" prefix
    assert isinstance(by_torch_uuid, NvmlDevice) and by_torch_uuid.facts()["name"] == "second"
    by_nvml_uuid = nvml.device(0, "GPU-bbbb")
    assert isinstance(by_nvml_uuid, NvmlDevice) and by_nvml_uuid.facts()["name"] == "second"
    missing = nvml.device(0, "cccc")
    assert isinstance(missing, str) and "Not Found" in missing


def test_facts_a_gpu_does_not_offer_are_none() -> None:
    class NoClocks(FakeNvmlModule):
        def nvmlDeviceGetClockInfo(self, handle: FakeGpu, kind: int) -> int:
            raise self.NVMLError(3)

    module = NoClocks([FakeGpu()])
    device = Nvml.load(importer=lambda: module).device(0)
    assert isinstance(device, NvmlDevice)
    facts = device.facts()
    assert facts["clocks_mhz"]["sm"] is None and facts["clocks_mhz"]["max_sm"] == 1980
    assert facts["name"] == "NVIDIA H100 80GB HBM3"


# -- the energy meter --------------------------------------------------------------------------


def test_meter_reads_the_counter_around_the_window() -> None:
    readings = iter([10_000, 10_000, 70_000])  # probe at creation, window start, window end
    nvml, _ = loaded(FakeGpu(energy_mj=readings))
    device = nvml.device(0)
    assert isinstance(device, NvmlDevice)
    meter = device.energy_meter(clock=Ticks(500_000_000))
    meter.start()
    record = meter.stop(calls=300, batch_size=4)
    assert record.joules == pytest.approx(60.0)
    assert record.joules_per_inference == pytest.approx(60.0 / 1200)
    assert record.window_s == pytest.approx(0.5)
    assert record.average_power_w == pytest.approx(120.0)


def test_meter_on_a_gpu_without_the_counter_reports_not_supported() -> None:
    nvml, _ = loaded(FakeGpu(energy_mj=None))  # pre-Volta: NVML_ERROR_NOT_SUPPORTED
    device = nvml.device(0)
    assert isinstance(device, NvmlDevice)
    meter = device.energy_meter()
    meter.start()
    record = meter.stop(calls=10, batch_size=1)
    assert record.joules is None
    assert "Not Supported" in record.reason


def test_meter_survives_a_counter_that_fails_mid_window() -> None:
    class Flaky(FakeNvmlModule):
        reads = itertools.count()

        def nvmlDeviceGetTotalEnergyConsumption(self, handle: FakeGpu) -> int:
            if next(self.reads) >= 2:
                raise self.NVMLError(999)
            return 5_000

    device = Nvml.load(importer=lambda: Flaky([FakeGpu()])).device(0)
    assert isinstance(device, NvmlDevice)
    meter = device.energy_meter()
    meter.start()
    record = meter.stop(calls=10, batch_size=1)
    assert record.joules is None and "could not be read" in record.reason


def test_meter_without_nvml_gives_the_reason() -> None:
    meter = NvmlEnergyMeter(None, "nvidia-ml-py is not installed")
    meter.start()
    record = meter.stop(calls=3, batch_size=2)
    assert record.reason == "nvidia-ml-py is not installed"
    assert record.calls == 3
