"""Reader of version-1 run files: rewrites their JSON into version 2's layout.

Version 1 grew optional keys while keeping its number (see ``harness.runfile.codec``), so this
reader accepts every shape a version-1 writer produced: with or without ``scenario_params``,
``sampling.timer``, ``validity`` details, energy, host-clock samples and scenario parts. Values the
early files lack get the defaults those writers used (95% confidence, the host clock).
"""

from __future__ import annotations

from typing import Any

__all__ = ["upgrade_v1"]

_MEASUREMENT_KEYS = (
    "workload",
    "device",
    "compile_s",
    "peak_memory_bytes",
    "correctness",
    "sampling",
    "latency_ns",
    "samples_ns",
    "throughput_per_s",
    "tokens_per_s",
    "flops_per_s",
    "warnings",
    "validity",
    "output_tokens_per_s",
    "total_tokens_per_s",
    "capacity_rps",
    "goodput_rps",
    "energy",
    "block",
)
_TOKEN_KEYS = ("ttft_ns", "tpot_ns", "itl_ns", "e2e_ns", "timelines_ns")


def _tokens(part: dict[str, Any]) -> dict[str, Any] | None:
    """Move a part's decoder token metrics under ``tokens`` (None when it has none)."""
    if "ttft_ns" not in part:
        return None
    tokens = {key: part.pop(key, None) for key in _TOKEN_KEYS}
    tokens["timelines_ns"] = tokens["timelines_ns"] or []
    return tokens


def _config(config: dict[str, Any]) -> dict[str, Any]:
    upgraded = {k: v for k, v in config.items() if k not in ("scenario_params", "options")}
    upgraded.setdefault("scenario", "latency")
    upgraded["params"] = dict(config.get("scenario_params") or {})
    return upgraded


def _measurement(cell: dict[str, Any]) -> dict[str, Any]:
    measured = {key: cell[key] for key in _MEASUREMENT_KEYS if key in cell}
    sampling = dict(measured["sampling"])
    sampling.setdefault("confidence", measured["latency_ns"].get("confidence", 0.95))
    sampling.setdefault("wall_s", sampling["elapsed_s"])
    sampling.setdefault("timer", "host_clock")
    sampling.setdefault("rel_ci_half_width", None)
    measured["sampling"] = sampling
    count = measured["latency_ns"]["count"]
    validity = dict(cell.get("validity") or {"valid": count >= 100, "reasons": []})
    validity.setdefault("percentile", 99)
    validity.setdefault("min_samples", 100)
    validity.setdefault("min_duration_s", 1.0)
    validity.setdefault("samples", {"latency": count})
    validity.setdefault("duration_s", sampling["elapsed_s"])
    measured["validity"] = validity
    measured.setdefault("warnings", [])
    measured.setdefault("device", {})
    measured.setdefault("tokens_per_s", None)
    measured.setdefault("flops_per_s", None)
    measured.setdefault("compile_s", None)
    measured.setdefault("peak_memory_bytes", None)
    workload = dict(measured["workload"])
    workload.setdefault("description", "")
    measured["workload"] = workload
    if "host_latency_ns" in cell:
        measured["host"] = {"latency_ns": cell["host_latency_ns"], "samples_ns": cell.get("host_samples_ns", [])}
    if "generation" in cell:
        generation = dict(cell["generation"])
        generation["tokens"] = _tokens(generation)
        generation.setdefault("batch_size", cell["config"]["batch_size"])
        generation.setdefault("sequences_per_s", measured["throughput_per_s"])
        generation.setdefault("token_agreement", None)
        generation.setdefault("reference_tokens", 0)
        measured["generation"] = generation
    if "server" in cell:
        server = dict(cell["server"])
        server["tokens"] = _tokens(server)
        for key in ("output_tokens_per_s", "total_tokens_per_s"):
            server.pop(key, None)
        server.setdefault("rate_rps", None)
        server.setdefault("slo_met", None)
        server.setdefault("completed_rps", 0.0)
        server.setdefault("dropped", 0)
        server.setdefault("requests", count)
        server.setdefault("duration_s", sampling["elapsed_s"])
        server.setdefault("service_time_ns", 0)
        server.setdefault("search", None)
        measured["server"] = server
    if "offline" in cell:
        offline = dict(cell["offline"])
        for key in ("output_tokens_per_s", "total_tokens_per_s"):
            offline.pop(key, None)
        offline.setdefault("batch_size", cell["config"]["batch_size"])
        offline.setdefault("library_size", offline["samples"])
        measured["offline"] = offline
    if "loadgen" in cell:
        loadgen = dict(cell["loadgen"])
        loadgen["tokens"] = _tokens(loadgen)
        loadgen.setdefault("version", None)
        loadgen.setdefault("summary_text", "")
        loadgen.setdefault("wall_s", sampling["elapsed_s"])
        measured["loadgen"] = loadgen
    return measured


def _cell(cell: dict[str, Any]) -> dict[str, Any]:
    upgraded: dict[str, Any] = {
        "id": cell["id"],
        "config": _config(cell["config"]),
        "status": cell["status"],
        "started_utc": cell["started_utc"],
        "finished_utc": cell["finished_utc"],
        "error": cell.get("error"),
        "measurement": _measurement(cell) if cell["status"] == "ok" else None,
    }
    return upgraded


def _environment(environment: dict[str, Any]) -> dict[str, Any]:
    upgraded = dict(environment)
    cpu = dict(upgraded["cpu"])
    cpu.setdefault("physical_cores", None)
    upgraded["cpu"] = cpu
    torch = upgraded.get("torch")
    if not torch:
        upgraded["torch"] = None
    return upgraded


def _pricing(pricing: dict[str, Any] | None) -> dict[str, Any] | None:
    """Version 1 let a recorded price leave out where it applies."""
    if not pricing:
        return None
    return {"instance_type": None, "region": None, "purchase_option": None, **pricing}


def upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """The version-2 form of a version-1 run file's parsed JSON (which is left unchanged).

    Raises KeyError/TypeError/AttributeError on a file too broken to upgrade; the caller turns
    them into one line naming the file.
    """
    from harness.errors import RunFileError

    try:
        return {
            "schema": data["schema"],
            "schema_version": 2,
            "run_id": data["run_id"],
            "status": data["status"],
            "started_utc": data["started_utc"],
            "finished_utc": data.get("finished_utc"),
            "target": data.get("target") or {"kind": "local"},
            "environment": _environment(data["environment"]),
            "suite": data.get("suite") or {},
            "pricing": _pricing(data.get("pricing")),
            "cells": [_cell(cell) for cell in data.get("cells", [])],
        }
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise RunFileError(
            f"version-1 run file {data.get('run_id', '?')!r} lacks what version 1 requires "
            f"({type(exc).__name__}: {exc})"
        ) from None
