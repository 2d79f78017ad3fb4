"""The run-file fields of device-timed cells, measured through run_cell with a CPU backend that
offers a second clock and an energy counter (tests/backends/timed_backend.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends.registry import BUILTIN_BACKENDS
from harness.errors import RunFileError
from harness.measure.environment import collect_environment
from harness.measure.sampler import SamplingPolicy
from harness.run.cell import run_cell
from harness.runfile.files import RunWriter, load_run
from harness.runfile.records import CellConfig, CellRecord, Measurement
from tests.backends.timed_backend import ENERGY_STEP_MJ

POLICY = SamplingPolicy(max_time_s=0.2, warmup_time_s=0.02, min_count=5)


@pytest.fixture(scope="module")
def timed_cell() -> CellRecord:
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(BUILTIN_BACKENDS, "cpu-timed", "tests.backends.timed_backend:TimedCpuBackend")
        return run_cell(CellConfig("mlp", "tiny", "cpu-timed", "fp32", "eager", 1, 4), POLICY)


def _measured(cell: CellRecord) -> Measurement:
    assert cell.measurement is not None, cell.error
    return cell.measurement


def test_device_samples_are_primary_and_host_samples_sit_beside_them(timed_cell: CellRecord) -> None:
    measured = _measured(timed_cell)
    assert measured.sampling.timer == "thread_cpu_time"
    host = measured.host
    assert host is not None
    count = measured.latency_ns.count
    assert len(measured.samples_ns) == len(host.samples_ns) == count
    assert host.latency_ns.count == count
    # Each summary is of its own samples.
    assert measured.latency_ns.min == min(measured.samples_ns)
    assert measured.latency_ns.max == max(measured.samples_ns)
    assert host.latency_ns.min == min(host.samples_ns)
    assert host.latency_ns.max == max(host.samples_ns)


def test_energy_covers_every_call_of_the_window(timed_cell: CellRecord) -> None:
    measured = _measured(timed_cell)
    energy = measured.energy
    assert energy is not None and energy.joules is not None
    calls = measured.sampling.warmup_count + measured.latency_ns.count
    assert energy.calls == calls
    assert energy.joules == pytest.approx(ENERGY_STEP_MJ / 1000)  # one step between two readings
    assert energy.joules_per_inference == pytest.approx(energy.joules / (calls * 4))
    assert energy.reason is None


def test_the_cell_round_trips_through_a_run_file(timed_cell: CellRecord, tmp_path: Path) -> None:
    writer = RunWriter(tmp_path, collect_environment([]))
    writer.add_cell(timed_cell)
    writer.finish()
    saved = load_run(writer.path)
    assert saved.cells[0] == timed_cell
    gpus = saved.environment.gpus
    assert gpus is not None and isinstance(gpus.available, bool)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("energy", "joules"), -1.0),
        (("host", "samples_ns"), [1, -5]),
        (("sampling", "timer"), 3),
        (("samples_ns",), [1, "2"]),
    ],
)
def test_the_reader_checks_the_device_fields(
    timed_cell: CellRecord, tmp_path: Path, path: tuple[str, ...], value: object
) -> None:
    writer = RunWriter(tmp_path, collect_environment([]))
    writer.add_cell(timed_cell)
    data = json.loads(writer.path.read_text())
    target = data["cells"][0]["measurement"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    writer.path.write_text(json.dumps(data))
    with pytest.raises(RunFileError, match="/".join(path)):
        load_run(writer.path)


def test_cells_without_the_device_fields_still_read(timed_cell: CellRecord, tmp_path: Path) -> None:
    writer = RunWriter(tmp_path, collect_environment([]))
    writer.add_cell(timed_cell)
    data = json.loads(writer.path.read_text())
    del data["environment"]["gpus"]
    for key in ("energy", "host"):
        del data["cells"][0]["measurement"][key]
    del data["cells"][0]["measurement"]["sampling"]["timer"]
    writer.path.write_text(json.dumps(data))
    measured = _measured(load_run(writer.path).cells[0])
    assert measured.energy is None and measured.host is None and measured.sampling.timer == "host_clock"
