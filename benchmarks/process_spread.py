"""Benchmark of the harness itself (not a test): how far one model's median moves between processes.

Runs ``siliconbench run --processes N`` for one workload (fresh, interleaved processes) and
prints each process's median, their spread, the between-process interval the report shows, and
the interval one process alone would have claimed. On a shared or busy machine the spread is
much wider than any single process's interval; that gap is why ``--processes`` exists.

Run:  python benchmarks/process_spread.py [--workload mlp] [--processes 5] [--max-time 2] [RUNFILE]
      (with RUNFILE, only reads an existing run file made with --processes)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from harness.measure.stats import median_ci


def measure(workload: str, processes: int, max_time: float, dtype: str, output: Path) -> Path:
    command = [
        sys.executable, "-m", "harness", "run", "--workload", workload, "--dtype", dtype,
        "--processes", str(processes), "--max-time", str(max_time), "--output", str(output), "--quiet",
    ]  # fmt: skip
    print("$ siliconbench " + " ".join(command[3:]), file=sys.stderr)
    subprocess.run(command, check=False)
    return max(output.glob("run-*.json"), key=lambda p: p.stat().st_mtime)


def describe(path: Path) -> None:
    from harness.runfile.files import load_run

    run = load_run(path)
    cpu = run.environment.cpu
    print(f"run {run.run_id} on {cpu.model} ({cpu.usable_cores} usable cores)")
    for cell in run.cells:
        measured = cell.measurement
        if measured is None or measured.processes is None:
            print(f"{cell.id}: {cell.status} (no processes part)")
            continue
        part = measured.processes
        medians = [m / 1e6 for m in part.medians_ns]
        mean = part.mean_ns / 1e6
        print(f"\n{cell.id}: {len(medians)} processes, {len(measured.samples_ns)} samples pooled")
        print("  process medians (ms, run order): " + ", ".join(f"{m:.4g}" for m in medians))
        print(f"  spread (max-min)/mean: {part.rel_spread:.1%}; sd between processes {part.std_ns / 1e6 / mean:.1%}")
        if part.low_ns is not None and part.high_ns is not None:
            lo, hi = part.low_ns / 1e6, part.high_ns / 1e6
            print(f"  between-process 95% interval: {mean:.4g} ms [{lo:.4g}, {hi:.4g}] (±{(hi - lo) / 2 / mean:.1%})")
        # What the first process alone claimed: its median's order-statistic interval.
        first = measured.samples_ns[: part.counts[0]]
        low, high = median_ci(first)
        first_median = float(np.median(first)) / 1e6
        print(
            f"  first process alone: {first_median:.4g} ms [{low / 1e6:.4g}, {high / 1e6:.4g}] "
            f"(±{(high - low) / 2e6 / first_median:.1%})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runfile", nargs="?")
    parser.add_argument("--workload", default="mlp")
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--max-time", type=float, default=2.0)
    args = parser.parse_args()
    if args.runfile:
        describe(Path(args.runfile))
        return
    with tempfile.TemporaryDirectory() as folder:
        describe(measure(args.workload, args.processes, args.max_time, args.dtype, Path(folder)))


if __name__ == "__main__":
    main()
