"""The machine's real ceilings: the best compute rate per dtype and memory bandwidth by working set.

A roofline has two roofs (Williams, Waterman and Patterson, "Roofline", CACM 2009): the flat one
is the most arithmetic the silicon does per second, the slanted one the bytes it moves per second
times the work done per byte (the arithmetic intensity). Both are measured here, on this machine,
at the cells' thread count, because a datasheet figure is not what this torch reaches:

- **Compute**, per dtype: the best of several shapes *and* paths, not one square ``torch.mm``.
  Matrix products of several sizes (MKL or oneDNN), ``F.linear`` (oneDNN's inner product for
  reduced precision, MKL's sgemm for fp32) and 3x3 and 1x1 convolutions (oneDNN's direct and
  Winograd/brgemm kernels). On one 2-core Zen 3 the square 2048 product reached 111 GFLOP/s while
  the 1024 one reached 136 and a 3x3 convolution 134: a ceiling taken from one shape is no ceiling.
  Each shape's figure is its fastest timed call (a ceiling is an upper bound: noise only adds
  time), and the ceiling the best shape's.
- **Memory**: the best of three stream kernels at each working set: a STREAM triad (``a = b +
  s*c``, McCalpin's STREAM, counting 3 arrays' bytes per element and no write-allocate traffic)
  through ``torch.add(b, c, alpha=s, out=a)``, a pure read (``sum``) and a matrix-vector product
  (what a batch-1 linear layer streams), over working sets from inside L2 to far past the
  last-level cache. A triad alone is no roof for a read-dominated cell (``_stream_kernels``).
  A cell whose working set fits a cache is held to that cache's rate
  (``Bandwidth.for_working_set``: the fastest size from half the working set up), so a small
  model whose weights stay cached does not appear to beat main memory.

Both are cached per machine and conditions (silicon, torch, threads and the ISA limits in force,
``harness.measure.capability.ISA_LIMIT_VARIABLES``) in ``ceilings.json`` beside the peak cache,
and never cached when measured on a busy machine: other work seen on our CPUs during the
measurement (``harness.measure.contention``), or the load average's rule (``peak.machine_busy``).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.measure.capability import ISA_LIMIT_VARIABLES
from harness.measure.contention import watch_contention
from harness.measure.peak import PEAK_DTYPES, _read_cache, _write_cache, cache_path, machine_busy, machine_key
from harness.measure.torch_settings import measuring
from harness.runfile.records import peak_key
from harness.runfile.silicon import Bandwidth, BandwidthPoint, ComputeCeiling, bandwidth_key

if TYPE_CHECKING:
    from harness.runfile.records import Environment

__all__ = [
    "STREAM_BYTES",
    "bandwidth_key",
    "ceilings_cache_path",
    "compute_shapes",
    "measure_bandwidth",
    "measure_compute",
    "run_ceilings",
]

#: Timed calls per shape or size, after one warmup call.
CALLS = 5
#: Working-set sizes, a factor of two apart from inside L2 (256 KiB) to far past a large L3
#: (512 MiB): every cell's working set then has a measured size within a factor of two below it
#: (``Bandwidth.for_working_set``). A sparser grid (0.5, 4, 16, 256 MiB) held a 67 MB weight stream
#: to the 256 MiB rate and the cell showed 126% of its roof.
STREAM_BYTES: tuple[int, ...] = tuple(1 << k for k in range(18, 30))
#: Bytes a triad moves per element: read b, read c, write a (STREAM's convention).
TRIAD_ARRAYS = 3

Shape = tuple[str, float, Callable[[], Callable[[], Any]]]


def ceilings_cache_path() -> Path:
    """``ceilings.json`` beside the peak cache (``$SILICONBENCH_CACHE`` or ``~/.cache/siliconbench``)."""
    return cache_path().parent / "ceilings.json"


def compute_shapes(dtype: str, device: str) -> list[Shape]:
    """(name, FLOPs per call, builder) for every shape and path tried, cheapest first.

    FLOPs are 2 per multiply-add, as the FLOP counter counts model work: 2·M·N·K for a product,
    2·N·C_out·H_out·W_out·C_in·k² for a convolution.
    """
    import torch
    import torch.nn.functional as F

    torch_dtype = getattr(torch, PEAK_DTYPES[dtype])
    generator = torch.Generator().manual_seed(0)

    def tensor(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator).to(device=device, dtype=torch_dtype)

    def mm(m: int, k: int, n: int) -> Shape:
        def build() -> Callable[[], Any]:
            a, b = tensor(m, k), tensor(k, n)
            return lambda: torch.mm(a, b)

        return (f"mm {m}x{k}x{n}", 2.0 * m * k * n, build)

    def linear(m: int, k: int, n: int) -> Shape:
        def build() -> Callable[[], Any]:
            x, w = tensor(m, k), tensor(n, k)
            return lambda: F.linear(x, w)

        return (f"linear {m}x{k}->{n}", 2.0 * m * k * n, build)

    def conv(batch: int, c_in: int, c_out: int, size: int, kernel: int) -> Shape:
        def build() -> Callable[[], Any]:
            x, w = tensor(batch, c_in, size, size), tensor(c_out, c_in, kernel, kernel)
            return lambda: F.conv2d(x, w, padding=kernel // 2)

        flops = 2.0 * batch * c_out * size * size * c_in * kernel * kernel
        return (f"conv{kernel}x{kernel} {c_in}->{c_out} {size}x{size} bs{batch}", flops, build)

    shapes = [
        mm(256, 256, 256),
        mm(512, 512, 512),
        conv(1, 64, 64, 56, 3),
        linear(256, 1024, 1024),
        mm(1024, 1024, 1024),
        conv(4, 128, 128, 28, 3),
        conv(8, 256, 1024, 14, 1),
        linear(512, 1024, 4096),
        mm(1024, 4096, 1024),
        mm(2048, 2048, 2048),
    ]
    if device.startswith("cuda"):
        shapes += [mm(4096, 4096, 4096), mm(8192, 8192, 8192), linear(8192, 8192, 8192), conv(32, 256, 256, 56, 3)]
    return sorted(shapes, key=lambda s: s[1])


def _best_ns(fn: Callable[[], Any], synchronize: Callable[[], None], clock: Callable[[], int]) -> int:
    """The fastest of ``CALLS`` timed calls: other work and interrupts only ever add time, so the
    fastest call is the closest to what the silicon does (STREAM reports its best trial too)."""
    times = []
    for _ in range(CALLS):
        started = clock()
        fn()
        synchronize()
        times.append(clock() - started)
    return min(times)


def measure_compute(
    dtype: str,
    device: str = "cpu",
    threads: int | None = None,
    budget_s: float = 2.0,
    clock: Callable[[], int] = time.perf_counter_ns,
    shapes: list[Shape] | None = None,
) -> tuple[float, str, dict[str, float]]:
    """(best FLOP/s, its shape, every shape's FLOP/s) within about ``budget_s``.

    Shapes run cheapest first; one that the best rate so far says would overrun the budget is
    skipped (the cheapest always runs), so an emulated dtype still gets a figure in its budget.
    """
    if dtype not in PEAK_DTYPES:
        raise ValueError(f"no compute ceiling for dtype {dtype!r}; known: {', '.join(PEAK_DTYPES)}")
    tried: dict[str, float] = {}
    deadline = clock() + int(budget_s * 1e9)
    with measuring(device, threads, dtype) as synchronize:
        for name, flops, build in shapes if shapes is not None else compute_shapes(dtype, device):
            if tried:
                # Predicted from the best rate so far (larger shapes run at least as fast, so
                # this errs long): a shape that would overrun is never started.
                predicted_ns = flops / max(tried.values()) * 1e9
                if clock() + predicted_ns * (CALLS + 1) > deadline:
                    continue
            fn = build()
            fn()
            synchronize()
            best_ns = _best_ns(fn, synchronize, clock)
            tried[name] = flops / (best_ns / 1e9) if best_ns > 0 else 0.0
    best = max(tried, key=lambda k: tried[k])
    return tried[best], best, tried


def _stream_kernels(torch: Any, device: str, total: int) -> dict[str, tuple[int, Callable[[], Any]]]:
    """Each kernel's bytes moved per call and the call itself, over ``total`` bytes of fp32 arrays.

    One kernel is not an upper bound for every access pattern: a triad writes a third of its
    bytes, and on some machines a write costs more than a read (write-allocate, a store buffer),
    so a model streaming its weights (reads only, as a linear layer at batch 1 does) ran at 138%
    of a triad-only roof on one Xeon. The roof is the best of a triad, a pure read (a sum) and
    the matrix-vector product a batch-1 linear layer makes, each over the same working set.
    """
    # One buffer of the working set, viewed three ways: allocating and filling it is most of a
    # large size's cost, and every kernel then streams the very same bytes.
    buffer = torch.full((max(TRIAD_ARRAYS, total // 4),), 1.0, device=device)
    n = buffer.numel() // TRIAD_ARRAYS
    a, b, c = buffer[:n], buffer[n : 2 * n], buffer[2 * n : 3 * n]
    whole = buffer
    cols = max(16, min(1024, int(math.sqrt(total / 4))))  # a square-ish matrix: the vectors stay small
    rows = max(1, buffer.numel() // cols)
    weights = buffer[: rows * cols].view(rows, cols)
    vector = torch.full((cols,), 1.0, device=device)
    out = torch.empty(rows, device=device)
    return {
        "triad": (TRIAD_ARRAYS * 4 * n, lambda: torch.add(b, c, alpha=3.0, out=a)),
        "read": (4 * whole.numel(), lambda: whole.sum()),
        "gemv": (4 * (weights.numel() + cols + rows), lambda: torch.mv(weights, vector, out=out)),
    }


def measure_bandwidth(
    device: str = "cpu",
    threads: int | None = None,
    sizes: Iterable[int] = STREAM_BYTES,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> tuple[BandwidthPoint, ...]:
    """The best bytes per second of the stream kernels at each working-set size (fp32 arrays)."""
    import torch

    points = []
    with measuring(device, threads) as synchronize:
        for total in sizes:
            # Small arrays run in microseconds: repeat them inside one timed call so the clock
            # and the Python call are a small part of it.
            repeat = max(1, (1 << 24) // total)
            rates: dict[str, float] = {}
            for name, (moved, kernel) in _stream_kernels(torch, device, total).items():

                def timed(kernel: Callable[[], Any] = kernel, repeat: int = repeat) -> None:
                    for _ in range(repeat):
                        kernel()

                timed()
                synchronize()
                best_ns = _best_ns(timed, synchronize, clock)
                rates[name] = moved * repeat / (best_ns / 1e9) if best_ns else 0.0
            best = max(rates, key=lambda k: rates[k])
            points.append(BandwidthPoint(total, rates[best], kernel=best))
    return tuple(points)


def _conditions() -> str:
    limits = ",".join(f"{k}={os.environ[k]}" for k in ISA_LIMIT_VARIABLES if os.environ.get(k))
    return limits or "no ISA limits"


def _in_child(function: Callable[..., Any], *args: Any) -> Any:
    """Run ``function`` in a spawned child, so the harness process never holds a CUDA context."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(function, *args).result(timeout=300)


def run_ceilings(
    environment: Environment,
    wanted: Iterable[tuple[str, str | None, str, int | None]],
    *,
    path: Path | None = None,
    busy: Callable[[], bool] | None = None,
    compute: Callable[[str, str, int | None], tuple[float, str, dict[str, float]]] | None = None,
    bandwidth: Callable[[str, int | None], tuple[BandwidthPoint, ...]] | None = None,
) -> tuple[dict[str, ComputeCeiling], dict[str, Bandwidth]]:
    """The ceilings a run's cells need: compute per (backend, device, dtype, threads) by
    ``peak_key``, bandwidth per (backend, device, threads) by ``bandwidth_key``.

    CPU ceilings are measured in this process, CUDA ones in a child; other backends have none. A
    ceiling that cannot be measured is left out: its cells then show no roofline figure.
    """
    from harness.runfile.records import utc_now

    path = path or ceilings_cache_path()
    cache = _read_cache(path)
    computes: dict[str, ComputeCeiling] = {}
    bandwidths: dict[str, Bandwidth] = {}
    changed = False
    for backend, device, dtype, threads in dict.fromkeys(wanted):
        if backend not in ("cpu", "cuda") or dtype not in PEAK_DTYPES or (dtype == "tf32" and backend == "cpu"):
            continue
        where = "cpu" if backend == "cpu" else device or "cuda:0"
        conditions = _conditions()
        name = peak_key(backend, device, dtype, threads)
        key = f"compute | {machine_key(environment, where, dtype, threads)} | {conditions}"
        try:
            found = _cached(cache, key, ComputeCeiling)
            if found is None:
                measure = compute or (
                    measure_compute if backend == "cpu" else lambda d, w, t: _in_child(measure_compute, d, w, t)
                )
                with watch_contention() as window:
                    flops, best, tried = measure(dtype, where, threads)
                busy_now = busy() if busy else window.busy or machine_busy()
                found = ComputeCeiling(dtype, where, threads, flops, best, tried, utc_now(), key, busy=busy_now)
                if not busy_now:
                    cache[key], changed = asdict(found), True
            computes[name] = found
            band_name = bandwidth_key(backend, device, threads)
            if band_name in bandwidths:
                continue
            kernels = f"stream fp32 triad/read/gemv {STREAM_BYTES[0]}-{STREAM_BYTES[-1]} x2"
            band_key = f"bandwidth | {machine_key(environment, where, kernels, threads)} | {conditions}"
            band = _cached(cache, band_key, Bandwidth)
            if band is None:
                triad = bandwidth or (
                    measure_bandwidth if backend == "cpu" else lambda w, t: _in_child(measure_bandwidth, w, t)
                )
                with watch_contention() as window:
                    points = triad(where, threads)
                busy_now = busy() if busy else window.busy or machine_busy()
                band = Bandwidth(where, threads, points, utc_now(), band_key, busy=busy_now)
                if not busy_now:
                    cache[band_key], changed = _bandwidth_dict(band), True
            bandwidths[band_name] = band
        except Exception:  # a ceiling is context, never a reason to fail the run
            continue
    if changed:
        _write_cache(path, cache)
    return computes, bandwidths


def _bandwidth_dict(band: Bandwidth) -> dict[str, Any]:
    data = asdict(band)
    data["points"] = [asdict(p) for p in band.points]
    return data


def _cached(cache: dict[str, Any], key: str, kind: type[Any]) -> Any:
    found = cache.get(key)
    if not isinstance(found, dict):
        return None
    try:
        if kind is Bandwidth:
            points = tuple(BandwidthPoint(**p) for p in found["points"])
            return replace(Bandwidth(**{**found, "points": points}), cached=True)
        return replace(kind(**found), cached=True)
    except (TypeError, KeyError):
        return None  # an older layout: measure again
