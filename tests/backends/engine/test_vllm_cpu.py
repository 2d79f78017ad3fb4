"""The launcher and the /metrics sampler against the real vLLM CPU engine.

Marked ``engine`` (and ``slow``): run by ``.ci/run``'s engine stage with ``--run-engine``.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from backends.engine.client import OpenAIClient
from backends.engine.launcher import VLLM_SERVER_MODULE
from backends.engine.metrics import MetricsSampler
from backends.engine.records import RequestOutcome
from backends.engine.serving import ServingEngine, open_engine
from harness.errors import CellFailedError
from harness.runfile.engine import EngineRequest, EngineSpec
from tests.vllm_cpu import VllmCpu

pytestmark = [pytest.mark.engine, pytest.mark.slow]


def test_the_launched_engine_is_recorded(vllm_server: ServingEngine, vllm_cpu: VllmCpu) -> None:
    record = vllm_server.record()
    assert record.mode == "launched" and record.silicon == "cpu"
    assert record.version is not None and re.fullmatch(r"\d+\.\d+(\.\d+)?.*", record.version)
    assert record.cold_start_s is not None and record.cold_start_s > 0
    assert record.argv[:3] == (vllm_cpu.python, "-m", VLLM_SERVER_MODULE)
    assert record.argv[record.argv.index("--model") + 1] == vllm_cpu.model
    assert record.model == vllm_cpu.model and vllm_server.endpoint.model == vllm_cpu.model


async def _run(serving: ServingEngine, requests: list[EngineRequest]) -> list[RequestOutcome]:
    async with OpenAIClient(serving.endpoint) as client:
        streams = [client.submit(r) for r in requests]
        return [await s.outcome() for s in streams]


def test_token_counts_are_the_servers_and_metrics_see_the_batch(vllm_server: ServingEngine) -> None:
    requests = [
        EngineRequest(f"r{i}", max_tokens=200, prompt=(1, 86, 393, 447 + i), return_token_ids=True) for i in range(16)
    ]
    with MetricsSampler(vllm_server.record().url, interval_s=0.05) as sampler:
        outcomes = asyncio.run(_run(vllm_server, requests))
    metrics = sampler.result()
    assert all(o.ok for o in outcomes), [o.failure for o in outcomes]
    assert [o.output_tokens for o in outcomes] == [200] * 16
    assert [o.input_tokens for o in outcomes] == [4] * 16
    # The ids the server streamed, counted apart from its usage report, say the same.
    assert [sum(len(e.token_ids or ()) for e in o.events) for o in outcomes] == [200] * 16
    assert len(metrics.samples) >= 2 and metrics.failed_samples == 0
    assert metrics.peak_running is not None and metrics.peak_running >= 2  # continuous batching, seen by the engine
    assert metrics.peak_kv_cache_usage is not None and metrics.peak_kv_cache_usage > 0
    assert metrics.preemptions == 0


def test_a_second_engine_that_cannot_start_fails_in_one_line_and_leaves_nothing(
    vllm_cpu: VllmCpu, tmp_path: Path
) -> None:
    # A model folder that does not exist: vLLM exits during start; the launcher says so in one line.
    spec = EngineSpec(model=str(tmp_path / "no-model"), engine="vllm", python=vllm_cpu.python, ready_timeout_s=300)
    with pytest.raises(CellFailedError) as info, open_engine(spec, log_dir=tmp_path):
        pytest.fail("an engine without a model must not become ready")
    assert "\n" not in str(info.value) and "exited with code" in str(info.value)
    left = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(tmp_path / "no-model") in (proc / "cmdline").read_text():
                left.append(int(proc.name))
        except OSError:
            continue
    assert left == []
