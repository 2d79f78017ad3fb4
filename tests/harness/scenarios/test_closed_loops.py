"""The closed-loop scenarios on tiny models: latency keeps its record, throughput and offline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from harness.measure.sampler import SamplingPolicy
from harness.run.cell import run_cell
from harness.scenarios.staged import StagedModel
from workloads.mlp import MLP

Roundtrip = Callable[[dict[str, Any]], dict[str, Any]]

#: The keys of a latency cell before scenarios existed; ``validity`` is the one addition.
LATENCY_KEYS = {
    "id",
    "config",
    "status",
    "error",
    "workload",
    "device",
    "compile_s",
    "peak_memory_bytes",
    "correctness",
    "sampling",
    "latency_ns",
    "throughput_per_s",
    "tokens_per_s",
    "flops_per_s",
    "samples_ns",
    "warnings",
    "started_utc",
    "finished_utc",
}


def test_latency_cell_keeps_its_shape(tiny_cell: Any, short: SamplingPolicy, through_run_file: Roundtrip) -> None:
    record = run_cell(tiny_cell("mlp", "latency"), short)
    assert record.status == "ok", record.error
    measured = record.measurement
    assert measured is not None and measured.generation is None and measured.server is None
    assert measured.host is None and measured.block is None
    assert record.id == "mlp/tiny/cpu/fp32/eager/t1/bs1/latency"
    assert record.measurement.throughput_per_s == pytest.approx(1 / (record.measurement.latency_ns.p50 / 1e9))
    through_run_file(record)


def test_decoder_in_the_latency_scenario_is_a_prefill(tiny_cell: Any, short: SamplingPolicy) -> None:
    record = run_cell(tiny_cell("llama", "latency"), short)
    assert record.status == "ok", record.error
    assert record.measurement.workload.tokens_per_sample == 128 and record.measurement.tokens_per_s > 0


def test_throughput_cell(tiny_cell: Any, short: SamplingPolicy, through_run_file: Roundtrip) -> None:
    record = run_cell(tiny_cell("mlp", "throughput", batch_size=4), short)
    assert record.status == "ok", record.error
    assert record.measurement.block.calls >= 1
    assert record.measurement.throughput_per_s == pytest.approx(4 / (record.measurement.latency_ns.p50 / 1e9))
    through_run_file(record)


@pytest.mark.parametrize(("workload", "params"), [("mlp", {}), ("llama", {"prompt_tokens": 8, "output_tokens": 3})])
def test_offline_cell(
    workload: str, params: dict[str, int], tiny_cell: Any, short: SamplingPolicy, through_run_file: Roundtrip
) -> None:
    record = run_cell(tiny_cell(workload, "offline", batch_size=2, **params), short)
    assert record.status == "ok", record.error
    offline = record.measurement.offline
    assert offline.samples == 2 * offline.batches >= 2 * short.min_count
    assert offline.samples_per_s == pytest.approx(offline.samples / offline.wall_s)
    assert record.measurement.throughput_per_s == offline.samples_per_s
    assert len(record.measurement.samples_ns) == offline.batches
    assert sum(record.measurement.samples_ns) == pytest.approx(offline.wall_s * 1e9, rel=1e-6)
    if workload == "llama":
        assert record.measurement.output_tokens_per_s == pytest.approx(3 * offline.samples_per_s)
        assert offline.token_agreement == 1.0
    through_run_file(record)


def _staged_outputs(compile_backend: str | None) -> None:
    model = MLP("tiny").build_model()
    first, second = torch.randn(2, 256), torch.randn(2, 256)
    staged = StagedModel(model, (first,))
    call = staged if compile_backend is None else torch.compile(staged, backend=compile_backend)
    with torch.inference_mode():
        torch.testing.assert_close(call(), model(first))
    staged.feed([second])
    with torch.inference_mode():
        torch.testing.assert_close(call(), model(second))  # refilled in place, seen by the same callable


def test_staged_model_sees_new_inputs_eagerly() -> None:
    _staged_outputs(None)


@pytest.mark.filterwarnings("ignore:.*torch.jit.*:DeprecationWarning")
def test_staged_model_sees_new_inputs_compiled() -> None:
    _staged_outputs("aot_eager")
