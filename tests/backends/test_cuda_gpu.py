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
from harness.run.isolation import run_cell_isolated
from harness.run.limits import CellLimits
from harness.run.runner import run_cells
from harness.runfile.files import RunWriter, load_run
from harness.runfile.records import CellConfig
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
    torch.cuda._sleep(100_000_000)  # 10^8 cycles: over 40 ms at any SM clock below 2.5 GHz
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


def test_a_full_cell_records_device_facts_events_energy_and_memory(tmp_path: Path) -> None:
    record = run_cell(CellConfig("mlp", "tiny", "cuda", "bf16", "cudagraph", None, 32, device="cuda:0"), POLICY)
    assert record["status"] == "ok", record.get("error")
    device: dict[str, Any] = record["device"]
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
    assert record["sampling"]["timer"] == "cuda_events"
    assert len(record["host_samples_ns"]) == len(record["samples_ns"])
    assert record["peak_memory_bytes"] > 0
    energy = record["energy"]
    assert energy["calls"] == record["sampling"]["warmup_count"] + record["latency_ns"]["count"]
    assert (energy["joules_per_inference"] is None) == (energy["reason"] is not None)

    writer = RunWriter(tmp_path, collect_environment([]))
    writer.add_cell(record)
    saved = load_run(writer.finish())
    gpus = saved["environment"]["gpus"]
    if gpus["available"]:
        assert props.name in [d["name"] for d in gpus["devices"]]


def test_out_of_memory_fails_the_cell_in_its_child_with_the_fix() -> None:
    config = CellConfig(f"{FAULTS}:cuda_hog", "default", "cuda", "fp32", "eager", None, 2)
    record = run_cell_isolated(config, POLICY, CellLimits(prepare_s=300))
    assert record["status"] == "failed"
    assert record["error"]["type"] == "OutOfMemoryError"
    message = record["error"]["message"]
    assert message.startswith("CUDA out of memory; tried to allocate 32.00 TiB; GPU ")
    assert message.endswith("try a smaller --batch-size than 2")


def test_a_device_fault_fails_its_cell_and_the_run_goes_on(tmp_path: Path) -> None:
    cells = [
        CellConfig(f"{FAULTS}:cuda_assert", "default", "cuda", "fp32", "eager", None, 2),
        CellConfig("mlp", "tiny", "cuda", "fp16", "eager", None, 2),
    ]
    writer = RunWriter(tmp_path, collect_environment([]))
    faulted, ok = run_cells(cells, POLICY, writer, isolate=lambda _: True)
    assert faulted["status"] == "failed"
    assert faulted["error"]["message"].startswith("CUDA device fault: ")
    assert ok["status"] == "ok", ok.get("error")
