"""Export a run file as pytest-benchmark JSON, so ``pytest-benchmark compare`` can read it.

Each successful cell becomes one benchmark whose rounds are the cell's raw samples (in seconds,
one call per round); the statistics are computed by pytest-benchmark's own ``Stats`` class, so
its quartile and outlier conventions hold exactly. Failed cells are left out, as pytest-benchmark
leaves out benchmarks that errored. Run-file facts with no pytest-benchmark field (throughput,
cost inputs, correctness, warnings) go to each benchmark's ``extra_info``.
"""

from __future__ import annotations

from typing import Any

from harness.errors import ConfigError

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


def _machine_info(run: dict[str, Any]) -> dict[str, Any]:
    env = run.get("environment", {})
    cpu = env.get("cpu", {})
    target = run.get("target", {})
    return {
        "node": env.get("host", ""),
        "processor": cpu.get("model", ""),
        "machine": cpu.get("arch", ""),
        "python_compiler": "",
        "python_implementation": "CPython",
        "python_implementation_version": env.get("python", ""),
        "python_version": env.get("python", ""),
        "python_build": [],
        "release": "",
        "system": str(env.get("os", "")).split("-")[0],
        "cpu": {
            "brand_raw": cpu.get("model", ""),
            "arch": cpu.get("arch", ""),
            "count": cpu.get("logical_cores"),
            "flags": cpu.get("flags", []),
        },
        "siliconbench_target": target,
    }


def _commit_info(run: dict[str, Any]) -> dict[str, Any]:
    commit = run.get("environment", {}).get("git_commit") or ""
    return {
        "id": commit.removesuffix("+dirty") or None,
        "time": None,
        "author_time": None,
        "dirty": commit.endswith("+dirty"),
        "project": "siliconbench",
        "branch": None,
    }


def _params(config: dict[str, Any]) -> dict[str, Any]:
    keys = ("backend", "dtype", "mode", "threads", "batch_size", "scenario", "device")
    return {k: config.get(k) for k in keys if config.get(k) is not None}


def to_pytest_benchmark(run: dict[str, Any], include_data: bool = False) -> dict[str, Any]:
    """The pytest-benchmark document for ``run`` (a loaded, validated run file)."""
    benchmarks = []
    for cell in run["cells"]:
        if cell["status"] != "ok" or not cell.get("samples_ns"):
            continue
        config = cell["config"]
        params = _params(config)
        param = "-".join(str(v) for v in params.values())
        name = f"{config['workload']}:{config['preset']}[{param}]"
        sampling = cell.get("sampling", {})
        benchmarks.append(
            {
                "group": f"{config['workload']}:{config['preset']}",
                "name": name,
                "fullname": f"siliconbench/{cell['id']}",
                "params": params,
                "param": param,
                "extra_info": {
                    "siliconbench_run_id": run["run_id"],
                    "cell_id": cell["id"],
                    "throughput_per_s": cell.get("throughput_per_s"),
                    "tokens_per_s": cell.get("tokens_per_s"),
                    "flops_per_s": cell.get("flops_per_s"),
                    "correctness_passed": (cell.get("correctness") or {}).get("passed"),
                    "stop_reason": sampling.get("stop_reason"),
                    "warnings": list(cell.get("warnings", [])),
                },
                "options": {
                    "disable_gc": False,
                    "timer": "siliconbench sampler (perf_counter_ns + backend synchronize)",
                    "min_rounds": sampling.get("min_count"),
                    "max_time": sampling.get("max_time_s"),
                    "min_time": 0,
                    "warmup": bool(sampling.get("warmup_count")),
                },
                "stats": _stats(cell["samples_ns"], include_data),
            }
        )
    return {
        "machine_info": _machine_info(run),
        "commit_info": _commit_info(run),
        "benchmarks": benchmarks,
        "datetime": str(run.get("started_utc", "")).replace("Z", "+00:00"),
        "version": _pytest_benchmark_version(),
        "siliconbench": {"run_id": run["run_id"], "schema_version": run.get("schema_version")},
    }


def _pytest_benchmark_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytest-benchmark")
    except PackageNotFoundError:
        return "unknown"
