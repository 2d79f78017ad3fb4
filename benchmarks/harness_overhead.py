"""Benchmark of the harness itself (not a test): how much it adds, and whether it agrees.

1. Overhead per timed call: the sampler timing a no-op callable, against a bare loop of
   ``perf_counter_ns(); call(); perf_counter_ns()`` over the same callable. Reported as the median
   sample of each and the wall time per call (which includes the sampler's bookkeeping).
2. Agreement: the median the harness reports for a small model (mlp, tiny preset, cpu, fp32,
   eager) against ``torch.utils.benchmark.Timer.blocked_autorange`` on the same prepared model in
   the same process.

Run:  python benchmarks/harness_overhead.py [--threads N] [--repeats R]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.measure.environment import cpu_facts
from harness.measure.sampler import SamplingPolicy, sample


def _noop() -> None:
    return None


def bare_loop(call, count: int) -> tuple[list[int], float]:  # type: ignore[no-untyped-def]
    """The reference: the cheapest honest timed loop Python can write."""
    clock = time.perf_counter_ns
    samples = [0] * count
    start = clock()
    for i in range(count):
        t0 = clock()
        call()
        samples[i] = clock() - t0
    return samples, (clock() - start) / count


def overhead(repeats: int) -> None:
    print("## 1. overhead per timed call (no-op callable)")
    rows = []
    for _ in range(repeats):
        policy = SamplingPolicy(
            max_time_s=0.5, warmup_time_s=0.05, min_count=10, max_count=200_000, target_rel_ci=0.0001
        )
        start = time.perf_counter_ns()
        result = sample(_noop, policy)
        wall = time.perf_counter_ns() - start - result.warmup_ns
        harness_median = statistics.median(result.samples_ns)
        harness_per_call = wall / len(result.samples_ns)
        bare_samples, bare_per_call = bare_loop(_noop, len(result.samples_ns))
        bare_median = statistics.median(bare_samples)
        rows.append((harness_median, bare_median, harness_per_call, bare_per_call))
        print(
            f"  harness median sample {harness_median:6.0f} ns  bare {bare_median:6.0f} ns   "
            f"wall/call harness {harness_per_call:6.0f} ns  bare {bare_per_call:6.0f} ns"
        )
    hm, bm, hw, bw = (statistics.median(col) for col in zip(*rows, strict=True))
    print(
        f"  median over {repeats} repeats: sample ratio harness/bare = {hm / bm:.3f} "
        f"({hm - bm:+.0f} ns a call); wall-per-call ratio = {hw / bw:.3f}"
    )


def agreement(threads: int, repeats: int) -> None:
    import torch
    import torch.utils.benchmark as tub

    from harness.run.cell import run_cell
    from harness.runfile.records import CellConfig

    print(f"\n## 2. median for mlp tiny (cpu fp32 eager, batch 1, {threads} thread(s)) vs blocked_autorange")
    torch.set_num_threads(threads)
    from backends.base import BackendOptions
    from backends.cpu import CpuBackend
    from workloads.registry import resolve

    workload = resolve("mlp", "tiny")
    torch.manual_seed(0)
    prepared = CpuBackend().prepare(workload.build_model(), workload.make_inputs(1), BackendOptions(threads=threads))
    ratios = []
    for _ in range(repeats):
        record = run_cell(
            CellConfig("mlp", "tiny", "cpu", "fp32", "eager", threads, 1),
            SamplingPolicy(max_time_s=2.0, warmup_time_s=0.2),
        )
        assert record.measurement is not None, record.error
        ours = record.measurement.latency_ns.p50
        timer = tub.Timer(stmt="call()", globals={"call": prepared.call}, num_threads=threads)
        theirs = timer.blocked_autorange(min_run_time=2.0).median * 1e9
        ratios.append(ours / theirs)
        print(
            f"  siliconbench p50 {ours / 1e3:8.2f} µs ({record.measurement.sampling.stop_reason}, "
            f"{record.measurement.latency_ns.count} samples)   blocked_autorange median {theirs / 1e3:8.2f} µs   "
            f"ratio {ours / theirs:.3f}"
        )
    print(f"  median ratio siliconbench/torch.utils.benchmark over {repeats} repeats = {statistics.median(ratios):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cpu = cpu_facts()
    print(f"machine: {cpu.model}, {cpu.usable_cores} usable cores, flags {' '.join(cpu.flags)}")
    print(f"python {sys.version.split()[0]}; command: {' '.join([Path(sys.executable).name, *sys.argv])}\n")
    overhead(args.repeats)
    agreement(args.threads, args.repeats)


if __name__ == "__main__":
    main()
