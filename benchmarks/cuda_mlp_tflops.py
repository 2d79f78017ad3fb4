"""Check the cuda backend's figures against bare PyTorch on the same GPU, in the same process.

1. Achieved TFLOP/s of the ``mlp`` workload at a large batch, measured by the harness (a full
   cell: CPU reference, correctness check, adaptive sampling on CUDA events), against a bare chain
   of ``torch.matmul`` over the same shapes, timed the same way. The MLP adds bias and GELU to the
   same GEMMs, so it should reach most, not all, of the bare figure; far less means harness
   overhead, far more means a FLOP-count or timing error.
2. Per-call latency from CUDA events (the harness's primary samples, one request at a time) and
   from the host clock beside them, against ``torch.utils.benchmark.Timer.blocked_autorange`` on
   the same prepared model. blocked_autorange runs calls back to back and synchronizes per block,
   so launches overlap the previous call's work: at a large batch (GPU-bound) the figures should
   agree closely; at batch 1 (launch-bound) it can be lower, and the gap is the per-request
   overhead that the latency scenario measures on purpose.

Usage (on a machine with an NVIDIA GPU and a CUDA build of torch)::

    python benchmarks/cuda_mlp_tflops.py [--device cuda:0] [--batch-size 16384] [--dtypes bf16,fp32]
        [--max-time 3] [--json out.json]

Without a usable GPU it prints one line saying why and exits with status 2.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shlex
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backends.cuda import CudaBackend, CudaEventTimer, precision_flags

PROG = "cuda_mlp_tflops"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--device", default="cuda:0", help="GPU to use (default cuda:0)")
    parser.add_argument("--preset", default="large", help="mlp preset (default large: 2048-wide, 4 layers)")
    parser.add_argument("--batch-size", type=int, default=16384, help="the large batch (default 16384)")
    parser.add_argument("--latency-batches", default="1", help="extra batch sizes for the latency comparison")
    parser.add_argument("--dtypes", default="bf16,fp32", help="comma-separated (default bf16,fp32)")
    parser.add_argument("--max-time", type=float, default=3.0, help="sampling budget per figure, seconds")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser.parse_args(argv)


def _bare_matmul_tflops(widths: tuple[int, ...], batch: int, dtype: str, device: Any, policy: Any) -> dict[str, Any]:
    """A chain of matmuls with the mlp's shapes, timed by the harness's sampler on CUDA events."""
    import torch

    from backends.torch_common import torch_dtype
    from harness.measure.sampler import sample
    from harness.measure.stats import summarize

    flags = precision_flags(dtype)
    torch.backends.cuda.matmul.allow_tf32 = flags["tf32_matmul"]
    torch.backends.cudnn.allow_tf32 = flags["tf32_cudnn"]
    kind = torch_dtype(dtype)
    generator = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(batch, widths[0], device=device, dtype=kind, generator=generator)
    weights = [
        torch.randn(fan_in, fan_out, device=device, dtype=kind, generator=generator) / fan_in**0.5
        for fan_in, fan_out in itertools.pairwise(widths)
    ]

    def chain() -> torch.Tensor:
        y = x
        for w in weights:
            y = torch.matmul(y, w)
        return y

    result = sample(chain, policy, lambda: torch.cuda.synchronize(device), device_timer=CudaEventTimer())
    p50_s = summarize(result.samples_ns).p50 / 1e9
    flops = sum(2 * batch * a * b for a, b in itertools.pairwise(widths))
    return {"flops_per_call": flops, "p50_ms": p50_s * 1e3, "tflops": flops / p50_s / 1e12}


def _latency(batch: int, dtype: str, preset: str, device: str, policy: Any, min_run_time: float) -> dict[str, Any]:
    """Event and host p50 from the harness's sampler, and blocked_autorange, on one prepared model."""
    import torch
    from torch.utils.benchmark import Timer

    from backends.base import BackendOptions
    from harness.measure.sampler import sample
    from harness.measure.stats import summarize
    from workloads.registry import resolve

    workload = resolve("mlp", preset)
    torch.manual_seed(0)
    backend = CudaBackend()
    prepared = backend.prepare(
        workload.build_model().eval(), workload.make_inputs(batch), BackendOptions(dtype=dtype, device=device)
    )
    result = sample(prepared.call, policy, backend.synchronize, device_timer=prepared.device_timer)
    events = summarize(result.samples_ns).p50 / 1e6
    host = summarize(result.host_samples_ns or result.samples_ns).p50 / 1e6
    measurement = Timer(stmt="call()", globals={"call": prepared.call}).blocked_autorange(min_run_time=min_run_time)
    blocked = measurement.median * 1e3
    return {
        "batch_size": batch,
        "dtype": dtype,
        "events_p50_ms": events,
        "host_p50_ms": host,
        "blocked_autorange_median_ms": blocked,
        "blocked_autorange_calls": measurement.number_per_run * len(measurement.times),
        "events_over_blocked": events / blocked,
    }


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    status = CudaBackend().availability()
    if not status.available:
        print(f"{PROG}: no usable GPU here: {status.reason}", file=sys.stderr)
        return 2

    from tabulate import tabulate

    from harness.measure.sampler import SamplingPolicy
    from harness.run.cell import run_cell
    from harness.runfile.records import CellConfig
    from workloads.registry import resolve

    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    policy = SamplingPolicy.for_budget(args.max_time)
    widths: tuple[int, ...] = tuple(resolve("mlp", args.preset).metadata["widths"])
    import torch

    device = torch.device(args.device)
    throughput_rows: list[dict[str, Any]] = []
    device_facts: dict[str, Any] = {}
    for dtype in dtypes:
        config = CellConfig("mlp", args.preset, "cuda", dtype, "eager", None, args.batch_size, device=args.device)
        cell = run_cell(config, policy)
        measured = cell.measurement
        if measured is None:
            error = cell.error
            where = f"{error.phase}: {error.message}" if error else "?"
            print(f"{PROG}: mlp {dtype} cell failed in {where}", file=sys.stderr)
            continue
        device_facts = dict(measured.device)
        bare = _bare_matmul_tflops(widths, args.batch_size, dtype, device, policy)
        mlp_tflops = (measured.flops_per_s or 0.0) / 1e12
        throughput_rows.append(
            {
                "dtype": dtype,
                "batch_size": args.batch_size,
                "mlp_flops_per_inference": measured.workload.flops_per_inference,
                "mlp_p50_ms": measured.latency_ns.p50 / 1e6,
                "mlp_tflops": mlp_tflops,
                "matmul_p50_ms": bare["p50_ms"],
                "matmul_tflops": bare["tflops"],
                "mlp_over_matmul": mlp_tflops / bare["tflops"],
                "energy_j_per_inference": measured.energy.joules_per_inference if measured.energy else None,
                "energy_reason": measured.energy.reason if measured.energy else "no energy meter",
                "correct": measured.correctness.passed,
            }
        )

    latency_batches = [args.batch_size] + [int(b) for b in args.latency_batches.split(",") if b.strip()]
    latency_rows = [
        _latency(batch, dtype, args.preset, args.device, policy, min_run_time=min(args.max_time, 2.0))
        for dtype in dtypes
        for batch in latency_batches
    ]

    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    print(
        f"device: {device_facts.get('gpu_name')} (cc {device_facts.get('compute_capability')}, "
        f"driver {device_facts.get('driver_version')}, CUDA {device_facts.get('cuda_version')}, "
        f"torch {torch.__version__})"
    )
    print(f"command: {command}\n")
    print(tabulate(throughput_rows, headers="keys", floatfmt=".4g"))
    print()
    print(tabulate(latency_rows, headers="keys", floatfmt=".4g"))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "command": command,
                    "torch": torch.__version__,
                    "device": device_facts,
                    "throughput": throughput_rows,
                    "latency": latency_rows,
                },
                indent=1,
            )
        )
    return 0 if throughput_rows and len(throughput_rows) == len(dtypes) else 1


if __name__ == "__main__":
    sys.exit(main())
