"""Benchmark: the tiny decoder's generation speed, eager vs ``torch.compile``, on this machine's CPU.

Runs the ``generate`` scenario through the harness itself (the fp32 reference check, the static
KV cache, the per-token synchronize and clock), once per mode, and prints output tokens/s, TTFT and
TPOT side by side with the speed-up. It also checks that both modes produced exactly the greedy
tokens of the fp32 eager reference (the first ``REFERENCE_TOKENS``), so a faster compiled path
cannot be a wrong one.

    python benchmarks/decoder_tokens_per_s.py                       # tiny llama, 64 + 64 tokens
    python benchmarks/decoder_tokens_per_s.py --workload gpt2 --max-time 10 --output results

Each mode runs in a fresh child process (the harness's ``--isolate``): measured one after the
other in one process, the compiled kernels ran ten times slower after the eager run on this
2-core machine (both OpenMP thread pools competing for the cores), which is the process's state and
not the mode's speed. Compilation happens before timing and is reported separately (``compile s``).
On a machine shared with other processes the figures are indicative: compare the two modes of one
invocation.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.measure.environment import collect_environment
from harness.measure.sampler import SamplingPolicy
from harness.report.formats import render
from harness.run.isolation import run_cell_isolated
from harness.run.limits import CellLimits
from harness.runfile.files import RunWriter
from harness.runfile.records import CellConfig, ScenarioParams
from harness.scenarios.registry import cell_id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="llama", help="decoder workload (llama or gpt2)")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--output-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: PyTorch's)")
    parser.add_argument("--max-time", type=float, default=5.0, help="sampling budget per mode, seconds")
    parser.add_argument("--output", help="also write a run file to this folder (report it with siliconbench report)")
    args = parser.parse_args()

    policy = SamplingPolicy.for_budget(args.max_time, min_count=10)
    params = ScenarioParams(prompt_tokens=args.prompt_tokens, output_tokens=args.output_tokens)
    writer = RunWriter(Path(args.output), collect_environment()) if args.output else None
    records = {}
    for mode in ("eager", "compile"):
        config = CellConfig(
            workload=args.workload,
            preset=args.preset,
            backend="cpu",
            dtype="fp32",
            mode=mode,
            threads=args.threads,
            batch_size=args.batch_size,
            scenario="generate",
            params=params,
        )
        print(f"{mode}: measuring {cell_id(config)} ...", file=sys.stderr, flush=True)
        record = run_cell_isolated(config, policy, CellLimits(prepare_s=900.0))
        if record.measurement is None or record.measurement.generation is None:
            error = record.error
            print(f"{mode} failed in {error.phase}: {error.message}" if error else f"{mode} failed", file=sys.stderr)
            return 1
        records[mode] = record
        if writer:
            writer.add_cell(record)

    print("| mode | output tok/s | total tok/s | TTFT p50 ms | TPOT p50 ms | requests | compile s | = fp32 tokens |")
    print("|---|---|---|---|---|---|---|---|")
    generations = {mode: r.measurement.generation for mode, r in records.items() if r.measurement}
    for mode, record in records.items():
        gen, measured = generations[mode], record.measurement
        assert gen is not None and measured is not None
        tokens = gen.tokens
        tpot = tokens.tpot_ns.p50 / 1e6 if tokens.tpot_ns else float("nan")
        ttft = tokens.ttft_ns.p50 / 1e6 if tokens.ttft_ns else float("nan")
        agreement = f"{gen.token_agreement or 0:.0%} of {gen.reference_tokens}"
        print(
            f"| {mode} | {gen.output_tokens_per_s:,.0f} | {gen.total_tokens_per_s:,.0f} | "
            f"{ttft:.3f} | {tpot:.3f} | {gen.requests} | {measured.compile_s or 0:.1f} | {agreement} |"
        )
    eager, compiled = generations["eager"], generations["compile"]
    assert eager is not None and compiled is not None
    speedup = compiled.output_tokens_per_s / eager.output_tokens_per_s
    print(f"\ntorch.compile / eager output tokens/s: {speedup:.2f}x")
    if writer:
        writer.finish()
        print(render([writer.run]))
        print(f"run file: {writer.path}")
    agree = all(g is not None and g.token_agreement == 1.0 for g in generations.values())
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
