"""Progress lines on stderr while a suite runs (used by the ``run`` and ``agent`` commands)."""

from __future__ import annotations

import sys
from typing import Any

from harness.run.runner import ProgressFn

__all__ = ["progress_detail", "progress_printer"]


def progress_detail(record: dict[str, Any]) -> str:
    """The figures worth a progress line for the record's scenario."""
    lat, samp = record["latency_ns"], record["sampling"]
    scenario = record["config"].get("scenario", "latency")
    if "generation" in record:
        gen = record["generation"]
        tpot = gen["tpot_ns"]["p50"] / 1e6 if gen.get("tpot_ns") else float("nan")
        return (
            f"TTFT p50 {gen['ttft_ns']['p50'] / 1e6:.3f} ms, TPOT p50 {tpot:.3f} ms, "
            f"{record['output_tokens_per_s']:.1f} output tok/s ({gen['requests']} requests)"
        )
    if "server" in record:
        srv = record["server"]
        head = (
            f"capacity {srv['capacity_rps']:.2f} req/s"
            if srv["capacity_rps"] is not None
            else f"{srv['rate_rps']:g} req/s offered"
        )
        good = f", goodput {srv['goodput_rps']:.2f} req/s" if srv.get("goodput_rps") is not None else ""
        return f"{head}{good}, p99 {lat['p99'] / 1e6:.3f} ms ({len(srv['probes'])} probes)"
    if "loadgen" in record:
        return f"{record['throughput_per_s']:.1f} samples/s, LoadGen {record['loadgen']['verdict']}"
    if scenario == "offline":
        return f"{record['throughput_per_s']:.1f} samples/s ({record['offline']['samples']} samples)"
    return (
        f"p50 {lat['p50'] / 1e6:.3f} ms, {record['throughput_per_s']:.1f} inf/s "
        f"({samp['stop_reason']}, {lat['count']} samples)"
    )


def progress_printer(quiet: bool) -> ProgressFn:
    def show(index: int, total: int, config: Any, record: dict[str, Any] | None) -> None:
        if quiet:
            return
        label = (
            f"[{index}/{total}] {config.workload}:{config.preset} {config.backend} {config.dtype} "
            f"{config.mode} bs={config.batch_size}"
        )
        if config.scenario != "latency" or config.params.loadgen:
            label += f" {config.params.label(config.scenario)}"
        if record is None:
            print(f"{label} ...", file=sys.stderr, flush=True)
        elif record["status"] == "ok":
            print(f"{label} ok: {progress_detail(record)}", file=sys.stderr, flush=True)
        else:
            err = record["error"]
            print(f"{label} FAILED in {err['phase']}: {err['message']}", file=sys.stderr, flush=True)

    return show
