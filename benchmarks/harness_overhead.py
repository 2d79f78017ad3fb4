"""Benchmark of the harness itself (not a test): how much it adds, and whether it agrees.

1. Overhead per timed call: the sampler timing a no-op callable (with the CPU backend's
   synchronize, as the latency scenario passes it), against a bare loop of
   ``perf_counter_ns(); call(); perf_counter_ns()`` over the same callable. Reported as the timed
   region of each (median sample, and the mean with the top 1% trimmed: the clock ticks in tens of
   nanoseconds, so the median alone moves in whole ticks) and the wall time per call (which
   includes the sampler's bookkeeping: blocks, deadline and stopping checks).
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
from collections.abc import Callable
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


def _per_call(run, count_of) -> tuple[float, float, object]:  # type: ignore[no-untyped-def]
    """Wall and this thread's CPU time per call of ``run()``: on a shared machine the CPU time
    leaves out the slices other processes took, which the wall time counts."""
    wall0, cpu0 = time.perf_counter_ns(), time.thread_time_ns()
    result = run()
    wall, cpu = time.perf_counter_ns() - wall0, time.thread_time_ns() - cpu0
    n = count_of(result)
    return wall / n, cpu / n, result


def _trimmed_mean(samples: list[int]) -> float:
    ordered = sorted(samples)
    kept = ordered[: max(1, len(ordered) * 99 // 100)]
    return sum(kept) / len(kept)


#: The policies timed: the one of docs/methodology.md's figures (a 0.5 s budget, at most 200 000
#: calls; a no-op's samples are all one clock tick, so the median's interval has zero width and
#: sampling converges after the first checks), and one that takes a million calls (the minimum
#: count wins over convergence), where fixed costs vanish and the per-sample costs remain. No
#: warmup beyond three calls: its busy loop is no per-call cost, and on a shared machine its wall
#: time cannot be taken out of the CPU time.
POLICIES = {
    "a 0.5 s budget": SamplingPolicy(
        max_time_s=0.5, warmup_time_s=0.0, min_count=10, max_count=200_000, target_rel_ci=0.0001
    ),
    "a million calls": SamplingPolicy(
        max_time_s=0.5, warmup_time_s=0.0, min_count=1_000_000, max_count=2_000_000, target_rel_ci=0.01
    ),
}


def overhead(repeats: int) -> None:
    for name, policy in POLICIES.items():
        overhead_under(name, policy, repeats)


def overhead_under(name: str, policy: SamplingPolicy, repeats: int) -> None:
    from backends.cpu import CpuBackend

    print(f"## 1. overhead per timed call (no-op callable, the CPU backend's synchronize), {name} policy")
    synchronize = CpuBackend().synchronize
    rows = []
    for _ in range(repeats):
        harness_wall, harness_cpu, result = _per_call(
            lambda: sample(_noop, policy, synchronize), lambda r: len(r.samples_ns)
        )
        samples: list[int] = result.samples_ns  # type: ignore[attr-defined]
        harness_median, harness_mean = statistics.median(samples), _trimmed_mean(samples)
        count = len(samples)
        bare_wall, bare_cpu, bare = _per_call(lambda n=count: bare_loop(_noop, n)[0], len)
        bare_median, bare_mean = statistics.median(bare), _trimmed_mean(bare)  # type: ignore[arg-type]
        rows.append(
            (harness_median, bare_median, harness_mean, bare_mean, harness_wall, bare_wall, harness_cpu, bare_cpu)
        )
        print(
            f"  timed region: harness median {harness_median:4.0f} ns, trimmed mean {harness_mean:5.1f} ns;  "
            f"bare median {bare_median:4.0f} ns, trimmed mean {bare_mean:5.1f} ns;   per call harness "
            f"{harness_wall:5.0f} ns wall, {harness_cpu:5.0f} ns CPU; bare {bare_wall:5.0f} ns wall, {bare_cpu:5.0f} "
            f"ns CPU ({count} calls, {result.stop_reason})"  # type: ignore[attr-defined]
        )
    hm, bm, ht, bt, hw, bw, hc, bc = (statistics.median(col) for col in zip(*rows, strict=True))
    print(
        f"  median over {repeats} repeats: timed region harness/bare = {hm / bm:.3f} by median sample, "
        f"{ht / bt:.3f} by trimmed mean ({ht - bt:+.1f} ns a call); per call harness/bare = {hw / bw:.3f} "
        f"wall, {hc / bc:.3f} CPU time\n"
    )


def stopping_checks(total: int = 1_000_000) -> None:
    """The stopping rule's cost per sample over a run of ``total`` samples at the sampler's check
    schedule, on lognormal integer latencies: what the checks add to every sample of a long run.

    Before the order-statistic intervals (CHANGELOG.md, 0.1.0) the rule (``stats.relative_half_width``)
    converted and sorted every sample at each check, a check each time the count grew by a tenth;
    now ``sampler.Convergence`` converts only the new samples and merges them into one sorted array,
    a check each time it grows by a fifth.
    """
    import numpy as np

    import harness.measure.sampler as sampler

    values = [int(x) for x in np.random.default_rng(0).lognormal(11.5, 0.2, total)]
    checks: dict[str, tuple[Callable[[list[int]], object], float]]
    print(f"## 1b. stopping checks: CPU time per sample, amortized over {total:,} samples")
    if hasattr(sampler, "Convergence"):
        checks = {
            "median": (sampler.Convergence(SamplingPolicy()).widths, 1.2),
            "median and p99": (sampler.Convergence(SamplingPolicy(tail_percentile=99)).widths, 1.2),
        }
    else:
        from harness.measure.stats import relative_half_width

        checks = {"median": (relative_half_width, 1.1)}
    for name, (check, growth) in checks.items():
        grown: list[int] = []
        n, spent = 10, 0
        while n <= total:
            grown.extend(values[len(grown) : n])  # the sampler's list, grown outside the timing
            start = time.thread_time_ns()
            check(grown)
            spent += time.thread_time_ns() - start
            n = max(n + 1, int(n * growth))
        print(f"  {name}: {spent / total:.1f} ns a sample")


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
    parser.add_argument("--overhead-only", action="store_true", help="skip the agreement check (no torch model)")
    args = parser.parse_args()
    cpu = cpu_facts()
    print(f"machine: {cpu.model}, {cpu.usable_cores} usable cores, flags {' '.join(cpu.flags)}")
    print(f"python {sys.version.split()[0]}; command: {' '.join([Path(sys.executable).name, *sys.argv])}\n")
    overhead(args.repeats)
    stopping_checks()
    if not args.overhead_only:
        agreement(args.threads, args.repeats)


if __name__ == "__main__":
    main()
