"""The cuda backend on a real GPU. Skips itself, with the backend's own reason, where there is none.

Correctness and structure only: no pass/fail on speed. Figures come from
``benchmarks/cuda_mlp_tflops.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from backends.base import BackendOptions
from backends.cuda import CudaBackend, CudaEventTimer
from harness.measure.correctness import max_relative_error, tolerance_for
from harness.measure.environment import collect_environment
from harness.measure.sampler import SamplingPolicy, sample
from harness.run.cell import run_cell
from harness.run.runner import run_cells
from harness.runfile.files import RunWriter, load_run
from harness.runfile.records import CellConfig, CellError, CellRecord, Measurement
from workloads.registry import resolve

_STATUS = CudaBackend().availability()
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not _STATUS.available, reason=f"cuda backend unavailable: {_STATUS.reason}"),
]

FAULTS = "tests.harness.fault_workloads"
POLICY = SamplingPolicy(max_time_s=0.3, warmup_time_s=0.05, min_count=10)
COMPILED = ("compile", "compile-max-autotune")


@pytest.fixture(autouse=True)
def fresh_compiler() -> Iterator[None]:
    """Each test compiles its own model; dynamo's caches would otherwise count recompiles."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def tiny_mlp(batch_size: int = 8) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    workload = resolve("mlp", "tiny")
    torch.manual_seed(0)
    return workload.build_model().eval(), workload.make_inputs(batch_size)


@pytest.mark.parametrize("dtype", ["fp32", "tf32", "fp16", "bf16"])
@pytest.mark.parametrize(
    "mode",
    [
        "eager",
        "cudagraph",
        pytest.param("compile", marks=pytest.mark.slow),
        pytest.param("compile-max-autotune", marks=pytest.mark.slow),
    ],
)
def test_every_dtype_and_mode_matches_the_cpu_reference(dtype: str, mode: str) -> None:
    model, inputs = tiny_mlp()
    with torch.inference_mode():
        reference = model(*inputs).float()
    backend = CudaBackend()
    options = BackendOptions(dtype=dtype, mode=mode)
    backend.validate(options)
    prepared = backend.prepare(model, inputs, options)
    output = backend.to_host(prepared.call())
    assert max_relative_error(reference, output) <= tolerance_for(dtype)
    assert prepared.compile_s > 0
    assert prepared.details["precision"]["tf32_matmul"] is (dtype == "tf32")
    assert torch.backends.cuda.matmul.allow_tf32 is (dtype == "tf32")
    assert torch.backends.cudnn.allow_tf32 is (dtype == "tf32")
    if mode == "cudagraph":
        assert prepared.details["graph_captures"] == 1


def test_events_time_queued_device_work() -> None:
    """``_sleep`` spins the GPU for a number of cycles; the host returns at once."""
    timer = CudaEventTimer()
    timer.start()
    torch.cuda._sleep(100_000_000)  # type: ignore[no-untyped-call]  # 10^8 cycles: over 40 ms below 2.5 GHz
    timer.stop()
    torch.cuda.synchronize()
    assert timer.elapsed_ns() >= 40_000_000


def test_the_sampler_with_events_keeps_both_clocks() -> None:
    model, inputs = tiny_mlp()
    backend = CudaBackend()
    prepared = backend.prepare(model, inputs, BackendOptions(dtype="fp16"))
    assert prepared.device_timer is not None
    result = sample(prepared.call, POLICY, backend.synchronize, device_timer=prepared.device_timer)
    assert result.timer == "cuda_events"
    assert result.host_samples_ns is not None
    assert len(result.host_samples_ns) == len(result.samples_ns) >= POLICY.min_count
    assert all(s > 0 for s in result.samples_ns)


def test_events_sit_inside_the_host_clock_interval() -> None:
    """The host interval runs from before the launch to after the synchronize, so it contains the
    device's; the start event is enqueued just before the host clock is read (a few µs early).
    Medians, so a preempted call cannot fail it; noise only ever lengthens the host side."""
    model, inputs = tiny_mlp(256)
    backend = CudaBackend()
    prepared = backend.prepare(model, inputs, BackendOptions(dtype="fp32"))
    assert prepared.device_timer is not None
    result = sample(prepared.call, POLICY, backend.synchronize, device_timer=prepared.device_timer)
    assert result.host_samples_ns is not None
    events = sorted(result.samples_ns)[len(result.samples_ns) // 2]
    host = sorted(result.host_samples_ns)[len(result.host_samples_ns) // 2]
    assert 0 < events <= host + 5_000


def test_graphs_are_captured_once_per_shape_and_replay_new_inputs() -> None:
    from backends.cuda_graphs import CudaGraphCache

    model, _ = tiny_mlp()
    module = model.to("cuda").eval()
    graphs = CudaGraphCache(module)
    generator = torch.Generator(device="cuda").manual_seed(3)

    def batch(n: int) -> torch.Tensor:
        return torch.randn(n, 256, device="cuda", generator=generator)

    for shape in (8, 8, 16, 8):
        x = batch(shape)
        with torch.inference_mode():
            expected = module(x)
        got = graphs(x).clone()
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert len(graphs) == 2


def _measured(record: CellRecord) -> Measurement:
    assert record.status == "ok", record.error
    assert record.measurement is not None
    return record.measurement


def _error(record: CellRecord) -> CellError:
    assert record.status == "failed"
    assert record.error is not None
    return record.error


def test_a_full_cell_records_device_facts_events_energy_and_memory(tmp_path: Path) -> None:
    record = run_cell(CellConfig("mlp", "tiny", "cuda", "bf16", "cudagraph", None, 32, device="cuda:0"), POLICY)
    measured = _measured(record)
    device: dict[str, Any] = dict(measured.device)
    props = torch.cuda.get_device_properties(0)
    assert device["gpu_name"] == props.name
    assert device["compute_capability"] == f"{props.major}.{props.minor}"
    assert device["memory_bytes"] == props.total_memory
    assert device["cuda_version"] == torch.version.cuda
    assert device["graph_captures"] == 1
    if device["nvml"]["available"]:
        assert device["driver_version"]
        assert device["cuda_driver_version"]
        assert set(device["clocks_mhz"]) == {"sm", "memory", "max_sm", "max_memory"}
    assert measured.sampling.timer == "cuda_events"
    assert measured.host is not None
    assert len(measured.host.samples_ns) == len(measured.samples_ns)
    assert measured.peak_memory_bytes is not None and measured.peak_memory_bytes > 0
    energy = measured.energy
    assert energy is not None
    assert energy.calls == measured.sampling.warmup_count + measured.latency_ns.count
    assert (energy.joules_per_inference is None) == (energy.reason is not None)

    writer = RunWriter(tmp_path, collect_environment([]))
    writer.add_cell(record)
    saved = load_run(writer.finish())
    assert saved.cells == (record,)
    gpus = saved.environment.gpus
    if gpus is not None and gpus.available:
        assert props.name in [d["name"] for d in gpus.devices]


def test_out_of_memory_fails_its_cell_with_the_fix_and_the_run_goes_on(tmp_path: Path) -> None:
    cells = [
        CellConfig(f"{FAULTS}:cuda_hog", "default", "cuda", "fp32", "eager", None, 2),
        CellConfig("mlp", "tiny", "cuda", "bf16", "eager", None, 2),
    ]
    writer = RunWriter(tmp_path, collect_environment([]))
    hog, ok = run_cells(cells, POLICY, writer, isolate=lambda _: True)
    error = _error(hog)
    assert error.type == "OutOfMemoryError"
    assert error.message.startswith("CUDA out of memory; tried to allocate 32.00 TiB; GPU ")
    assert error.message.endswith("try a smaller --batch-size than 2")
    _measured(ok)


def test_a_device_fault_fails_its_cell_and_the_run_goes_on(tmp_path: Path) -> None:
    cells = [
        CellConfig(f"{FAULTS}:cuda_assert", "default", "cuda", "fp32", "eager", None, 2),
        CellConfig("mlp", "tiny", "cuda", "fp16", "eager", None, 2),
    ]
    writer = RunWriter(tmp_path, collect_environment([]))
    faulted, ok = run_cells(cells, POLICY, writer, isolate=lambda _: True)
    assert _error(faulted).message.startswith("CUDA device fault: ")
    _measured(ok)
