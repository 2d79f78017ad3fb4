"""Export a run file as pytest-benchmark JSON, so ``pytest-benchmark compare`` can read it.

Each successful cell becomes one benchmark whose rounds are the cell's raw samples (in seconds,
one call per round); the statistics are computed by pytest-benchmark's own ``Stats`` class, so
its quartile and outlier conventions hold exactly. Failed cells are left out, as pytest-benchmark
leaves out benchmarks that errored. Run-file facts with no pytest-benchmark field (throughput,
cost inputs, correctness, warnings) go to each benchmark's ``extra_info``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from harness.errors import ConfigError
from harness.runfile.records import CellConfig, RunRecord

__all__ = ["to_pytest_benchmark"]


def _stats(samples_ns: list[int], include_data: bool) -> dict[str, Any]:
    try:
        from pytest_benchmark import stats as pb_stats
    except ImportError:
        raise ConfigError(
            "exporting to pytest-benchmark needs the pytest-benchmark package: pip install pytest-benchmark"
        ) from None
    stats: Any = pb_stats.Stats()  # type: ignore[no-untyped-call]
    for ns in samples_ns:
        stats.update(ns / 1e9)
    out: dict[str, Any] = stats.as_dict()
    if include_data:
        out["data"] = list(stats.data)
    out["iterations"] = 1
    return out


def _machine_info(run: RunRecord) -> dict[str, Any]:
    env, cpu = run.environment, run.environment.cpu
    return {
        "node": env.host,
        "processor": cpu.model,
        "machine": cpu.arch,
        "python_compiler": "",
        "python_implementation": "CPython",
        "python_implementation_version": env.python,
        "python_version": env.python,
        "python_build": [],
        "release": "",
        "system": env.os.split("-")[0],
        "cpu": {"brand_raw": cpu.model, "arch": cpu.arch, "count": cpu.logical_cores, "flags": list(cpu.flags)},
        "siliconbench_target": {k: v for k, v in asdict(run.target).items() if v is not None},
    }


def _commit_info(run: RunRecord) -> dict[str, Any]:
    commit = run.environment.git_commit or ""
    return {
        "id": commit.removesuffix("+dirty") or None,
        "time": None,
        "author_time": None,
        "dirty": commit.endswith("+dirty"),
        "project": "siliconbench",
        "branch": None,
    }


def _params(config: CellConfig) -> dict[str, Any]:
    keys = ("backend", "dtype", "mode", "threads", "batch_size", "scenario", "device")
    return {k: getattr(config, k) for k in keys if getattr(config, k) is not None}


def to_pytest_benchmark(run: RunRecord, include_data: bool = False) -> dict[str, Any]:
    """The pytest-benchmark document for ``run`` (a loaded, validated run file)."""
    benchmarks = []
    for cell in run.cells:
        measured = cell.measurement
        if measured is None or not measured.samples_ns:
            continue
        config = cell.config
        params = _params(config)
        param = "-".join(str(v) for v in params.values())
        sampling = measured.sampling
        benchmarks.append(
            {
                "group": f"{config.workload}:{config.preset}",
                "name": f"{config.workload}:{config.preset}[{param}]",
                "fullname": f"siliconbench/{cell.id}",
                "params": params,
                "param": param,
                "extra_info": {
                    "siliconbench_run_id": run.run_id,
                    "cell_id": cell.id,
                    "throughput_per_s": measured.throughput_per_s,
                    "tokens_per_s": measured.tokens_per_s,
                    "flops_per_s": measured.flops_per_s,
                    "correctness_passed": measured.correctness.passed,
                    "stop_reason": sampling.stop_reason,
                    "warnings": list(measured.warnings),
                },
                "options": {
                    "disable_gc": False,
                    "timer": "siliconbench sampler (perf_counter_ns + backend synchronize)",
                    "min_rounds": sampling.min_count,
                    "max_time": sampling.max_time_s,
                    "min_time": 0,
                    "warmup": bool(sampling.warmup_count),
                },
                "stats": _stats(list(measured.samples_ns), include_data),
            }
        )
    return {
        "machine_info": _machine_info(run),
        "commit_info": _commit_info(run),
        "benchmarks": benchmarks,
        "datetime": run.started_utc.replace("Z", "+00:00"),
        "version": _pytest_benchmark_version(),
        "siliconbench": {"run_id": run.run_id, "schema_version": run.schema_version},
    }


def _pytest_benchmark_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytest-benchmark")
    except PackageNotFoundError:
        return "unknown"
