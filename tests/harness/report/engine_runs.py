"""Synthetic engine run files for the serving report's tests: cells whose requests have chosen
TTFT, TPOT and output rate, built through the records and read back through the codec, so the
report sees exactly what a real engine run would give it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from harness.measure.stats import summarize
from harness.runfile.codec import encode_run, parse_run
from harness.runfile.engine import EngineParams, EngineRecord, EngineSpec
from harness.runfile.price import Price
from harness.runfile.records import (
    CellConfig,
    CellRecord,
    Correctness,
    EngineAgreement,
    EngineLoadRecord,
    EnginePart,
    EngineRequestRecord,
    GenerationPart,
    Measurement,
    RequestSetFacts,
    RunRecord,
    SamplingRecord,
    ScenarioParams,
    TokenMetrics,
    Validity,
    WorkloadFacts,
)
from tests.harness.runfactory import make_cell, make_run

OUTPUT_TOKENS = 16
MODEL = "tiny-llama"


def engine_cell(
    args: tuple[tuple[str, str], ...],
    users: int,
    ttft_ms: float,
    tpot_ms: float,
    out_tok_s: float,
    *,
    requests: int = 40,
    seed: int = 0,
    correct: bool = True,
    request_set: str = "in32-out16",
    model: str = MODEL,
) -> CellRecord:
    """An ``ok`` generate cell on a started vLLM CPU engine with configuration ``args``."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(requests):
        ttft = int(rng.lognormal(np.log(ttft_ms * 1e6), 0.05))
        tpot = rng.lognormal(np.log(tpot_ms * 1e6), 0.05)
        token_ns = tuple(ttft + int(k * tpot) for k in range(OUTPUT_TOKENS))
        records.append(
            EngineRequestRecord(
                id=f"r{i}", api="completions", scheduled_ns=i * 1000, sent_ns=0, token_ns=token_ns,
                end_ns=token_ns[-1] + 1000, input_tokens=32, output_tokens=OUTPUT_TOKENS,
                expected_input_tokens=32, max_tokens=OUTPUT_TOKENS, finish_reason="length",
            )
        )  # fmt: skip
    ttfts = [float(r.token_ns[0]) for r in records]
    tpots = [float(r.tpot_ns or 0.0) for r in records]
    e2e = [r.end_ns for r in records]
    tokens = TokenMetrics(summarize(ttfts), summarize(tpots), None, summarize(e2e))
    duration = requests * OUTPUT_TOKENS / out_tok_s
    load = EngineLoadRecord(
        kind="closed_loop", rate_rps=None, concurrency=users, requests=requests, ok=requests, failed=0, failures={},
        duration_s=duration, completed_rps=requests / duration, input_tokens=32 * requests,
        output_tokens=OUTPUT_TOKENS * requests, output_tokens_per_s=out_tok_s,
        total_tokens_per_s=out_tok_s * 3, goodput_rps=None, slo_met=None, ttft_ns=tokens.ttft_ns,
        tpot_ns=tokens.tpot_ns, itl_ns=None, e2e_ns=tokens.e2e_ns, output_short=0, input_mismatched=0,
        request_records=tuple(records),
    )  # fmt: skip
    spec = EngineSpec(model=model, engine="vllm", engine_args=args)
    params = ScenarioParams(prompt_tokens=32, output_tokens=OUTPUT_TOKENS, concurrency=users, engine=EngineParams(spec))
    config = CellConfig(
        workload=model, preset=request_set, backend="vllm-cpu", dtype="engine-default", mode="engine",
        threads=None, batch_size=1, scenario="generate", params=params,
    )  # fmt: skip
    agreement = EngineAgreement(4, 8, 1.0 if correct else 0.5, (None,) * 4, 0.9)
    measurement = Measurement(
        workload=WorkloadFacts("text-generation", "synthetic", 0, None, 48),
        device={"engine": "vllm"},
        compile_s=60.0,
        peak_memory_bytes=None,
        correctness=Correctness(0.0 if correct else 0.5, 0.1, correct, "engine greedy token ids"),
        sampling=SamplingRecord(
            warmup_count=2,
            warmup_s=0.1,
            elapsed_s=duration,
            stop_reason="converged",
            rel_ci_half_width=0.01,
            target_rel_ci=0.05,
            confidence=0.95,
            max_time_s=2.0,
            min_count=8,
            max_count=1000,
            wall_s=duration,
        ),
        latency_ns=summarize(e2e),
        samples_ns=tuple(e2e),
        throughput_per_s=requests / duration,
        tokens_per_s=out_tok_s * 3,
        flops_per_s=None,
        warnings=(),
        validity=Validity(True, 99, 299, 1.0, {"requests": requests}, duration),
        output_tokens_per_s=out_tok_s,
        total_tokens_per_s=out_tok_s * 3,
        generation=GenerationPart(
            32, OUTPUT_TOKENS, 1, requests, tokens, requests / duration, out_tok_s, out_tok_s * 3, 1.0, 8
        ),
        engine=EnginePart(
            EngineRecord("vllm", "launched", "http://127.0.0.1:1", silicon="cpu", cold_start_s=60.0),
            RequestSetFacts("synthetic", 8, "32", "16", 0, "completions"),
            agreement,
            load,
        ),
    )
    from harness.scenarios.registry import cell_id

    return CellRecord(cell_id(config), config, "ok", measurement=measurement, started_utc="t", finished_utc="t")


def engine_run(
    *cells: CellRecord,
    run_id: str = "20261101T100000Z-aaaaaa",
    started_utc: str = "2026-11-01T10:00:00.000000Z",
    usd_per_hour: float | None = 2.0,
) -> RunRecord:
    """A run of ``cells`` (priced at ``usd_per_hour``), written to JSON and read back."""
    base = make_run([make_cell([1000] * 5)], run_id=run_id, started_utc=started_utc)
    price = None if usd_per_hour is None else Price("local", None, None, usd_per_hour, "test price", "2026-11-01")
    run = replace(base, cells=tuple(cells), pricing=price)
    return parse_run(encode_run(run), "synthetic engine run")
