"""The machine's dense matmul peak per dtype: what "% of peak" divides by.

A vendor's datasheet peak is not what this machine, at this thread count, with this torch, can
reach; a measured one is, and it is the honest denominator for "how much of the silicon does
this model use". So each run measures ``torch.mm`` of square matrices once per (device, dtype,
threads) and keeps the best of a few sizes (the largest that fit the time budget are the most
efficient; small ones show launch and packing overhead instead of arithmetic). The figure is
cached per machine and versions (CPU model and flags or GPU name, torch version, threads) under
``$SILICONBENCH_CACHE`` or ``~/.cache/siliconbench``, because it does not change between runs of
one setup and costs a second or two per dtype to measure.

FLOPs are 2·n³ per product (one multiply and one add per multiply-add), as the FLOP counter
counts model work, so the fraction compares like with like. The median of each size's timed
calls is used, not the minimum: the peak a model could sustain, not a lucky call.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.measure.contention import watch_contention
from harness.measure.torch_settings import measuring
from harness.runfile.records import Peak, peak_key

if TYPE_CHECKING:
    from harness.runfile.records import Environment

__all__ = [
    "PEAK_DTYPES",
    "cache_path",
    "fraction_of_peak",
    "machine_key",
    "measure_matmul_peak",
    "peak_for",
    "run_peaks",
]

#: The dtypes a matmul peak can be measured for, as torch dtype names; tf32 is float32 with
#: TF32 tensor cores allowed (CUDA only).
PEAK_DTYPES: dict[str, str] = {"fp32": "float32", "tf32": "float32", "bf16": "bfloat16", "fp16": "float16"}
#: Square sizes tried, smallest first; a size is skipped once the budget is spent.
SIZES: tuple[int, ...] = (256, 512, 1024, 2048, 4096)
#: Timed calls per size (after one warmup call).
CALLS_PER_SIZE = 5


def cache_path() -> Path:
    """The peak cache file: ``$SILICONBENCH_CACHE/peak.json`` or ``~/.cache/siliconbench/peak.json``."""
    root = os.environ.get("SILICONBENCH_CACHE")
    base = Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "siliconbench"
    return base / "peak.json"


def machine_key(environment: Environment, device: str, dtype: str, threads: int | None) -> str:
    """What a peak depends on: the silicon, torch's version, the dtype and the thread count.

    Built from the run's recorded environment (``collect_environment``), so looking a peak up
    needs neither torch nor a CUDA context in the harness process.
    """
    torch_version = environment.packages.get("torch")
    if device.startswith("cuda"):
        index = int(device.partition(":")[2] or 0)
        gpus = environment.gpus.devices if environment.gpus is not None else ()
        name = gpus[index].get("name") if index < len(gpus) else None
        silicon = f"{name or 'unknown GPU'} #{index}"
    else:
        cpu = environment.cpu
        silicon = f"{cpu.model} {cpu.arch} {'+'.join(cpu.flags)} cores={cpu.usable_cores}"
    default_threads = environment.torch.num_threads if environment.torch is not None else None
    return f"{silicon} | torch {torch_version} | {device} {dtype} threads={threads or default_threads}"


def measure_matmul_peak(
    dtype: str,
    device: str = "cpu",
    threads: int | None = None,
    budget_s: float = 2.0,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> tuple[float, int]:
    """(best FLOP/s, its size) of square ``torch.mm`` on ``device`` in ``dtype``, within about ``budget_s``."""
    import torch

    if dtype not in PEAK_DTYPES:
        raise ValueError(f"no matmul peak for dtype {dtype!r}; known: {', '.join(PEAK_DTYPES)}")
    torch_dtype = getattr(torch, PEAK_DTYPES[dtype])
    best, best_size = 0.0, 0
    deadline = clock() + int(budget_s * 1e9)
    with measuring(device, threads, dtype) as synchronize:
        generator = torch.Generator().manual_seed(0)
        for size in SIZES:
            a = torch.randn(size, size, generator=generator).to(device=device, dtype=torch_dtype)
            b = torch.randn(size, size, generator=generator).to(device=device, dtype=torch_dtype)
            started = clock()
            torch.mm(a, b)
            synchronize()
            first_ns = clock() - started
            if size != SIZES[0] and clock() + first_ns * CALLS_PER_SIZE > deadline:
                break
            times = []
            for _ in range(CALLS_PER_SIZE):
                started = clock()
                torch.mm(a, b)
                synchronize()
                times.append(clock() - started)
            median_ns = sorted(times)[len(times) // 2]
            rate = 2.0 * size**3 / (median_ns / 1e9) if median_ns > 0 else 0.0
            if rate > best:
                best, best_size = rate, size
            if clock() > deadline:
                break
    return best, best_size


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, data: dict[str, Any]) -> None:
    """Atomically; a cache that cannot be written only costs a re-measurement next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
        os.replace(handle.name, path)
    except OSError:
        pass


def peak_for(
    dtype: str,
    device: str = "cpu",
    threads: int | None = None,
    *,
    path: Path | None = None,
    measure: Callable[[str, str, int | None], tuple[float, int]] | None = None,
    key: str,
    busy: Callable[[], bool] | None = None,
) -> Peak | None:
    """The cached peak under ``key`` (see ``machine_key``), measuring (and caching) it on a miss.

    None for a dtype or device a matmul peak cannot be measured on (neuron, int8).
    """
    from harness.runfile.records import utc_now

    if dtype not in PEAK_DTYPES or not (device == "cpu" or device.startswith("cuda")):
        return None
    if dtype == "tf32" and not device.startswith("cuda"):
        return None
    path = path or cache_path()
    cache = _read_cache(path)
    found = cache.get(key)
    if isinstance(found, dict):
        try:
            return Peak(**{**found, "cached": True})
        except TypeError:
            pass  # an older cache layout: measure again
    with watch_contention() as window:
        flops, size = (measure or measure_matmul_peak)(dtype, device, threads)
    if not flops > 0:
        return None
    peak = Peak(dtype, device, threads, flops, size, utc_now(), key)
    if not (busy() if busy else window.busy or machine_busy()):
        # A peak measured while other work held the cores is far too low (33 against 152 GFLOP/s
        # fp32 here) and would make every later cell look above its peak: use it, never keep it.
        # The window's own counters see competition the lagging load average misses.
        cache[key] = peak.to_dict()
        _write_cache(path, cache)
    return peak


def machine_busy() -> bool:
    """Whether other work competes for the cores now (the cells' own busy-machine rule)."""
    from harness.measure.busy import busy_machine_warning

    return busy_machine_warning(1) is not None


def _measure_in_child(dtype: str, device: str, threads: int | None) -> tuple[float, int]:
    """Measure in a spawned child, so the harness process never holds a CUDA context."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(measure_matmul_peak, dtype, device, threads).result(timeout=300)


def run_peaks(
    environment: Environment,
    wanted: Iterable[tuple[str, str | None, str, int | None]],
    *,
    path: Path | None = None,
) -> dict[str, Peak]:
    """The peaks a run's cells need (``environment.matmul_peaks``), keyed by ``peak_key``.

    ``wanted`` holds (backend, device, dtype, threads) per cell. CPU peaks are measured in this
    process (the CPU cells run here by default), CUDA ones in a child; other backends have none.
    A peak that cannot be measured is left out: the report then shows no fraction for its cells.
    """
    peaks: dict[str, Peak] = {}
    measure: Callable[[str, str, int | None], tuple[float, int]]
    for backend, device, dtype, threads in dict.fromkeys(wanted):
        if backend == "cpu":
            where, measure = "cpu", measure_matmul_peak
        elif backend == "cuda":
            where, measure = device or "cuda:0", _measure_in_child
        else:
            continue
        name = peak_key(backend, device, dtype, threads)
        try:
            peak = peak_for(
                dtype, where, threads, path=path, measure=measure, key=machine_key(environment, where, dtype, threads)
            )
        except Exception:  # a peak is context, never a reason to fail the run
            peak = None
        if peak is not None:
            peaks[name] = peak
    return peaks


def fraction_of_peak(flops_per_s: float | None, peak: Peak | None) -> float | None:
    """Achieved FLOP/s as a fraction of the measured peak (None when either is unknown)."""
    if flops_per_s is None or peak is None or not peak.flops_per_s > 0:
        return None
    return flops_per_s / peak.flops_per_s
