"""Synthetic run files with known samples, for reporter tests that must not measure anything.

Every run built here passes the run-file schema, so the reporter sees exactly what a real run
would give it; only the samples are chosen by the test.
"""

from __future__ import annotations

import copy
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from harness.measure.stats import summarize
from harness.runfile.codec import decode_run, encode_run
from harness.runfile.records import CellRecord, RunRecord

ENVIRONMENT: dict[str, Any] = {
    "host": "bench-host",
    "user": "ci",
    "os": "Linux-6.8-x86_64-with-glibc2.36",
    "python": "3.11.7",
    "cpu": {
        "model": "Intel(R) Xeon(R) Platinum 8488C",
        "arch": "x86_64",
        "logical_cores": 8,
        "physical_cores": 4,
        "usable_cores": 8,
        "flags": ["avx2", "avx512f", "amx_bf16"],
    },
    "packages": {
        "siliconbench": "0.1.0",
        "torch": "2.13.0+cpu",
        "numpy": "2.4.6",
        "transformers": "5.24.0",
        "torch-neuronx": None,
        "neuronx-cc": None,
    },
    "torch": {"num_threads": 8, "num_interop_threads": 8, "cuda_build": None},
    "env_threads": {},
    "git_commit": "0123456789abcdef0123456789abcdef01234567",
    "command": ["siliconbench", "run"],
    "time_utc": "2026-11-01T10:00:00.000000Z",
}


def lognormal_samples(median_ns: float, n: int, seed: int, sigma: float = 0.15) -> list[int]:
    """``n`` latencies (ns) from a log-normal distribution with the given median."""
    rng = np.random.default_rng(seed)
    return [int(x) for x in rng.lognormal(np.log(median_ns), sigma, n)]


def make_cell(
    samples_ns: list[int],
    workload: str = "mlp",
    preset: str = "tiny",
    backend: str = "cpu",
    dtype: str = "fp32",
    mode: str = "eager",
    batch_size: int = 1,
    threads: int | None = None,
    tokens_per_sample: int = 0,
    correct: bool = True,
    warnings: list[str] | None = None,
) -> dict[str, Any]:
    """An ``ok`` cell whose statistics are computed from ``samples_ns`` as the harness would."""
    config = {
        "workload": workload,
        "preset": preset,
        "backend": backend,
        "dtype": dtype,
        "mode": mode,
        "threads": threads,
        "batch_size": batch_size,
        "scenario": "latency",
        "device": None,
    }
    summary = summarize(samples_ns)
    throughput = batch_size / (summary.p50 / 1e9)
    threads_part = f"t{threads}" if threads else "tdefault"
    return {
        "id": f"{workload}/{preset}/{backend}/{dtype}/{mode}/{threads_part}/bs{batch_size}/latency",
        "config": config,
        "status": "ok",
        "error": None,
        "workload": {
            "task": "dense",
            "description": "synthetic",
            "params": 1000,
            "flops_per_inference": 2.0e6,
            "tokens_per_sample": tokens_per_sample,
        },
        "device": {"device": backend, "threads": threads or 8},
        "compile_s": 0.0,
        "peak_memory_bytes": None,
        "correctness": {
            "max_rel_error": 0.0 if correct else 0.5,
            "tolerance": 1e-4,
            "passed": correct,
            "reference": "cpu eager fp32",
        },
        "sampling": {
            "warmup_count": 10,
            "warmup_s": 0.1,
            "elapsed_s": 1.0,
            "stop_reason": "converged",
            "rel_ci_half_width": 0.005,
            "target_rel_ci": 0.01,
            "confidence": 0.95,
            "max_time_s": 4.0,
            "min_count": 10,
            "max_count": 100000,
        },
        "latency_ns": {**asdict(summary), "ci": {k: list(v) for k, v in summary.ci.items()}},
        "throughput_per_s": throughput,
        "tokens_per_s": throughput * tokens_per_sample if tokens_per_sample else None,
        "flops_per_s": 2.0e6 * throughput,
        "samples_ns": samples_ns,
        "warnings": list(warnings or []),
        "started_utc": "2026-11-01T10:00:01.000000Z",
        "finished_utc": "2026-11-01T10:00:02.000000Z",
    }


def make_failed_cell(workload: str = "mlp", batch_size: int = 1, backend: str = "cpu") -> dict[str, Any]:
    cell = make_cell([1000, 1100, 1200], workload=workload, batch_size=batch_size, backend=backend)
    return {k: cell[k] for k in ("id", "config")} | {
        "status": "failed",
        "error": {"type": "RuntimeError", "message": "out of memory", "phase": "measure"},
        "started_utc": "2026-11-01T10:00:01.000000Z",
        "finished_utc": "2026-11-01T10:00:02.000000Z",
    }


def make_run(
    cells: list[dict[str, Any]],
    run_id: str = "20261101T100000Z-aaaaaa",
    started_utc: str = "2026-11-01T10:00:00.000000Z",
    target: dict[str, Any] | None = None,
    pricing: dict[str, Any] | None = None,
    environment: dict[str, Any] | None = None,
) -> RunRecord:
    """A run record built the way a version-1 writer laid it out, read through the version-1 reader."""
    run: dict[str, Any] = {
        "schema": "siliconbench/run",
        "schema_version": 1,
        "run_id": run_id,
        "status": "complete",
        "started_utc": started_utc,
        "finished_utc": started_utc,
        "target": target or {"kind": "local"},
        "environment": copy.deepcopy(environment or ENVIRONMENT),
        "suite": {},
        "cells": cells,
    }
    if pricing is not None:
        run["pricing"] = pricing
    return decode_run(run, "synthetic run")


def write_run(run: RunRecord, folder: Path) -> Path:
    path = folder / f"run-{run.run_id}.json"
    path.write_text(encode_run(run))
    return path


def round_trip(*cells: CellRecord) -> RunRecord:
    """A run holding ``cells``, written to JSON and read back: what a report of them would see."""
    from harness.measure.environment import collect_environment
    from harness.runfile.codec import parse_run
    from harness.runfile.records import TargetFacts

    run = RunRecord(
        run_id="r",
        status="complete",
        started_utc="2026-11-01T10:00:00Z",
        finished_utc="2026-11-01T10:00:01Z",
        target=TargetFacts(),
        environment=collect_environment([]),
        cells=cells,
    )
    again = parse_run(encode_run(run), "round trip")
    assert again == run
    return again
