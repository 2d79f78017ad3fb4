"""Benchmark of the harness itself (not a test): the default suite's cells on this machine's roofline.

Runs the default suite (``siliconbench run`` with no workload or dtype flags, so exactly the
cells a new user's quick start measures, on the dtypes this silicon runs natively) and prints,
per cell, the achieved FLOP/s and bytes/s against both ceilings the run measured: the compute
ceiling of its dtype (best of several products, linear layers and convolutions) and the memory
bandwidth over its working set (best of a STREAM triad, a pure read and a matrix-vector product),
with the roof that binds and the fraction of it. Then every shape and size behind the ceilings,
and (``--kernels``) each stream kernel's own rate per size, so a reader sees how far apart they are.

Run:  python benchmarks/roofline.py [--max-time 2] [RUNFILE]
      python benchmarks/roofline.py --kernels   (only the stream kernels, side by side per size)
      (with RUNFILE, only reads an existing run file)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def measure(max_time: float, output: Path) -> Path:
    command = [sys.executable, "-m", "harness", "run", "--max-time", str(max_time), "--output", str(output), "--quiet"]
    print("$ siliconbench " + " ".join(command[3:]), file=sys.stderr)
    subprocess.run(command, check=False)
    return max(output.glob("run-*.json"), key=lambda p: p.stat().st_mtime)


def describe(path: Path) -> None:
    from harness.report.rows import cell_rows
    from harness.runfile.files import load_run

    run = load_run(path)
    environment = run.environment
    cpu = environment.cpu
    print(f"run {run.run_id} on {cpu.model} ({cpu.usable_cores} usable cores, flags {' '.join(cpu.flags)})")
    for name, capability in environment.capabilities.items():
        print(f"silicon {name}: {capability.summary}")
    for left in environment.dtypes_left_out:
        print(f"left out: {left.backend} {left.dtype} ({left.reason})")
    header = (
        f"{'cell':<34} {'GFLOP/call':>10} {'MB/call':>9} {'FLOP/B':>7} {'GFLOP/s':>8} {'ceiling':>8} "
        f"{'GB/s':>7} {'ceiling':>8} {'bound':>7} {'roofline':>8}"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for row in cell_rows([run]):
        label = f"{row.workload}/{row.preset} {row.dtype} bs{row.batch_size}"
        point = row.roofline()
        if point is None:
            print(f"{label:<34} {'(no roofline: ' + (row.error_text if not row.ok else 'no ceilings') + ')'}")
            continue
        flops_per_call = point.intensity * point.working_set_bytes
        print(
            f"{label:<34} {flops_per_call / 1e9:>10.3g} {point.working_set_bytes / 1e6:>9.4g} "
            f"{point.intensity:>7.3g} {point.achieved_flops_per_s / 1e9:>8.4g} {point.compute_ceiling / 1e9:>8.4g} "
            f"{point.achieved_bytes_per_s / 1e9:>7.4g} {point.memory_ceiling / 1e9:>8.4g} "
            f"{point.bound:>7} {point.fraction:>8.0%}"
        )
        defect = point.defect()
        if defect:
            print(f"  DEFECT: {defect}")
    print("\nceilings (GFLOP/s per shape; * the best):")
    for key, ceiling in environment.ceilings.items():
        cached = " (cached)" if ceiling.cached else ""
        print(f"  {key}{cached} measured {ceiling.measured_utc}")
        for shape, rate in sorted(ceiling.tried.items(), key=lambda item: -item[1]):
            print(f"    {'*' if shape == ceiling.best else ' '} {shape:<32} {rate / 1e9:8.4g}")
    print("bandwidth (best stream kernel, GB/s by working-set size):")
    for key, band in environment.bandwidths.items():
        cached = " (cached)" if band.cached else ""
        print(f"  {key}{cached} measured {band.measured_utc}")
        for point in band.points:
            print(f"    {point.bytes / 2**20:10.4g} MiB {point.bytes_per_s / 1e9:8.4g}  {point.kernel or 'triad'}")


def kernels(rounds: int) -> None:
    """Each stream kernel's best GB/s per working set, rounds interleaved so drift hits them alike."""
    import platform
    import time

    import torch

    from harness.measure.ceilings import STREAM_BYTES, _best_ns, _stream_kernels

    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    best: dict[tuple[int, str], float] = {}
    with torch.inference_mode():
        for _ in range(rounds):
            for total in STREAM_BYTES:
                repeat = max(1, (1 << 24) // total)
                for name, (moved, call) in _stream_kernels(torch, "cpu", total).items():

                    def timed(call: object = call, repeat: int = repeat) -> None:
                        for _ in range(repeat):
                            call()  # type: ignore[operator]

                    timed()
                    ns = _best_ns(timed, lambda: None, time.perf_counter_ns)
                    rate = moved * repeat / (ns / 1e9)
                    best[(total, name)] = max(best.get((total, name), 0.0), rate)
    names = ("triad", "read", "gemv")
    print(f"{'MiB':>8} " + " ".join(f"{n:>8}" for n in names) + "   best/triad")
    for total in STREAM_BYTES:
        rates = [best[(total, n)] / 1e9 for n in names]
        print(f"{total / 2**20:8.4g} " + " ".join(f"{r:8.4g}" for r in rates) + f"   {max(rates) / rates[0]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("runfile", nargs="?", type=Path, help="an existing run file to read instead of measuring")
    parser.add_argument("--max-time", type=float, default=2.0, help="sampling budget per cell, seconds")
    parser.add_argument("--kernels", action="store_true", help="only the stream kernels, side by side per size")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds for --kernels")
    args = parser.parse_args()
    if args.kernels:
        kernels(args.rounds)
        return
    if args.runfile is not None:
        describe(args.runfile)
        return
    with tempfile.TemporaryDirectory() as folder:
        describe(measure(args.max_time, Path(folder)))


if __name__ == "__main__":
    main()
