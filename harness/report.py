"""Turn run files into tables: terminal (tabulate), Markdown, CSV and JSON.

Reports only read run files; they never re-run anything, so a run from another machine reports
exactly like a local one. Rows are built once as plain data and each format only renders them.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

from harness.errors import ConfigError

__all__ = ["FORMATS", "cell_rows", "render"]

FORMATS = ("table", "markdown", "csv", "json")


def _ms(ns: float | None) -> float | None:
    return None if ns is None else ns / 1e6


def cell_rows(runs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row of raw numbers per cell, in milliseconds, across all given runs."""
    rows: list[dict[str, Any]] = []
    for run in runs:
        target = run.get("target", {})
        for cell in run["cells"]:
            cfg = cell["config"]
            row: dict[str, Any] = {
                "run_id": run["run_id"],
                "target": target.get("instance_type") or target.get("kind", "local"),
                "workload": cfg["workload"],
                "preset": cfg["preset"],
                "backend": cfg["backend"],
                "dtype": cfg["dtype"],
                "mode": cfg["mode"],
                "threads": cell.get("device", {}).get("threads", cfg["threads"]),
                "batch_size": cfg["batch_size"],
                "scenario": cfg.get("scenario", "latency"),
                "status": cell["status"],
            }
            if cell["status"] == "ok":
                lat = cell["latency_ns"]
                p50_ci = lat["ci"].get("p50", [None, None])
                p99_ci = lat["ci"].get("p99", [None, None])
                row.update(
                    p50_ms=_ms(lat["p50"]), p50_lo_ms=_ms(p50_ci[0]), p50_hi_ms=_ms(p50_ci[1]),
                    p90_ms=_ms(lat["p90"]),
                    p99_ms=_ms(lat["p99"]), p99_lo_ms=_ms(p99_ci[0]), p99_hi_ms=_ms(p99_ci[1]),
                    mean_ms=_ms(lat["mean"]),
                    throughput_per_s=cell["throughput_per_s"],
                    gflops_per_s=(cell["flops_per_s"] or 0) / 1e9 if cell.get("flops_per_s") else None,
                    samples=lat["count"],
                    stop_reason=cell["sampling"]["stop_reason"],
                    compile_s=cell.get("compile_s"),
                    max_rel_error=cell["correctness"]["max_rel_error"],
                    correct=cell["correctness"]["passed"],
                    warnings=list(cell.get("warnings", [])),
                    error=None,
                )
                row.update(_scenario_fields(cell))
            else:
                err = cell.get("error") or {}
                row.update(error=f"{err.get('phase', '?')}: {err.get('type', 'Error')}: {err.get('message', '')}", warnings=[])
            rows.append(row)
    return rows


def _p(summary: dict[str, Any] | None, key: str) -> float | None:
    return None if not summary else _ms(summary.get(key))


def _scenario_fields(cell: dict[str, Any]) -> dict[str, Any]:
    """The extra columns of generate, server, offline and LoadGen cells (none for latency)."""
    fields: dict[str, Any] = {}
    params = cell["config"].get("scenario_params") or {}
    token_metrics = cell.get("generation") or (cell.get("server") if "ttft_ns" in cell.get("server", {}) else None)
    if token_metrics:
        ttft = token_metrics.get("ttft_ns") or {}
        ttft_ci = (ttft.get("ci") or {}).get("p50", [None, None])
        fields.update(
            prompt_tokens=params.get("prompt_tokens"), output_tokens=params.get("output_tokens"),
            ttft_p50_ms=_p(ttft, "p50"), ttft_p50_lo_ms=_ms(ttft_ci[0]), ttft_p50_hi_ms=_ms(ttft_ci[1]),
            ttft_p99_ms=_p(token_metrics.get("ttft_ns"), "p99"),
            tpot_p50_ms=_p(token_metrics.get("tpot_ns"), "p50"), tpot_p99_ms=_p(token_metrics.get("tpot_ns"), "p99"),
            itl_p99_ms=_p(token_metrics.get("itl_ns"), "p99"),
        )
    for key in ("output_tokens_per_s", "total_tokens_per_s", "capacity_rps", "goodput_rps"):
        if key in cell:
            fields[key] = cell[key]
    if "server" in cell:
        server = cell["server"]
        slo = server.get("slo_ms") or {}
        fields.update(
            server_mode=server["mode"], rate_rps=server.get("rate_rps"), slo_met=server.get("slo_met"),
            slo=", ".join(f"{name.replace('_p99', '')}≤{value:g}ms" for name, value in slo.items() if value is not None) or None,
        )
    if "loadgen" in cell:
        fields.update(loadgen_scenario=cell["loadgen"]["scenario"], loadgen_verdict=cell["loadgen"]["verdict"])
    if "validity" in cell and cell["config"].get("scenario", "latency") != "latency":
        fields.update(valid=cell["validity"]["valid"], validity_reasons=list(cell["validity"]["reasons"]))
    return fields


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def _with_ci(mid: float | None, lo: float | None, hi: float | None) -> str:
    if mid is None:
        return "-"
    if lo is None or hi is None:
        return _fmt(mid)
    return f"{_fmt(mid)} [{_fmt(lo)}, {_fmt(hi)}]"


HEADERS = (
    "workload", "preset", "backend", "dtype", "mode", "thr", "batch",
    "p50 ms [95% CI]", "p99 ms [95% CI]", "inf/s", "GFLOP/s", "n", "stop", "notes",
)


#: Columns of the tables of generate and server cells (after the common configuration columns).
GENERATE_HEADERS = (
    "prompt", "output", "TTFT p50 ms [95% CI]", "TTFT p99 ms", "TPOT p50 ms", "ITL p99 ms", "out tok/s", "total tok/s", "n",
)
SERVER_HEADERS = ("SLO", "capacity req/s", "rate req/s", "goodput req/s", "p99 ms", "TTFT p99 ms", "TPOT p50 ms", "out tok/s", "n")
OFFLINE_HEADERS = ("samples/s", "out tok/s", "batch p50 ms", "batches")


def _scenario_cells(row: dict[str, Any]) -> list[str]:
    """The scenario-specific cells of a display row (generate, server, offline)."""
    scenario = row["scenario"]
    if scenario == "generate":
        return [
            str(row.get("prompt_tokens")), str(row.get("output_tokens")),
            _with_ci(row.get("ttft_p50_ms"), row.get("ttft_p50_lo_ms"), row.get("ttft_p50_hi_ms")), _fmt(row.get("ttft_p99_ms")), _fmt(row.get("tpot_p50_ms")),
            _fmt(row.get("itl_p99_ms")), _fmt(row.get("output_tokens_per_s")), _fmt(row.get("total_tokens_per_s")),
            str(row["samples"]),
        ]
    if scenario == "server":
        return [
            row.get("slo") or "-", _fmt(row.get("capacity_rps")), _fmt(row.get("rate_rps")), _fmt(row.get("goodput_rps")),
            _fmt(row["p99_ms"]), _fmt(row.get("ttft_p99_ms")), _fmt(row.get("tpot_p50_ms")),
            _fmt(row.get("output_tokens_per_s")), str(row["samples"]),
        ]
    return [_fmt(row["throughput_per_s"]), _fmt(row.get("output_tokens_per_s")), _fmt(row["p50_ms"]), str(row["samples"])]


def _scenario_headers(scenario: str) -> tuple[str, ...]:
    if scenario == "generate":
        return GENERATE_HEADERS
    if scenario == "server":
        return SERVER_HEADERS
    if scenario == "offline":
        return OFFLINE_HEADERS
    return HEADERS[7:-1]


def _display_rows(
    rows: Sequence[dict[str, Any]], multi_target: bool, notes: list[str] | None = None
) -> tuple[list[str], list[list[str]], list[str]]:
    """One table of rows of a single scenario; ``notes`` continues a numbering across tables."""
    scenario = rows[0]["scenario"] if rows else "latency"
    if scenario in ("latency", "throughput"):
        return _latency_display_rows(rows, multi_target, notes)
    headers = (["target"] if multi_target else []) + list(HEADERS[:7]) + list(_scenario_headers(scenario)) + ["notes"]
    table: list[list[str]] = []
    notes = [] if notes is None else notes
    for row in rows:
        prefix = [row["target"]] if multi_target else []
        base = prefix + [
            row["workload"], row["preset"], row["backend"], row["dtype"], row["mode"],
            str(row["threads"] or "-"), str(row["batch_size"]),
        ]
        if row["status"] != "ok":
            notes.append(f"FAILED {row['workload']}/{row['preset']} {row['backend']} {row['dtype']} bs{row['batch_size']}: {row['error']}")
            table.append(base + ["FAILED"] + ["-"] * (len(_scenario_headers(scenario)) - 1) + [f"[{len(notes)}]"])
            continue
        marks = []
        for note in [*row["warnings"], *(f"not valid for p99: {r}" for r in row.get("validity_reasons", []))]:
            notes.append(note)
            marks.append(f"[{len(notes)}]")
        verdict = f" LoadGen {row['loadgen_verdict']}" if row.get("loadgen_verdict") else ""
        table.append(base + _scenario_cells(row) + [" ".join(marks) + ("" if row["correct"] else " WRONG") + verdict])
    return headers, table, notes


def _latency_display_rows(
    rows: Sequence[dict[str, Any]], multi_target: bool, notes: list[str] | None = None
) -> tuple[list[str], list[list[str]], list[str]]:
    headers = (["target"] if multi_target else []) + list(HEADERS)
    table: list[list[str]] = []
    notes = [] if notes is None else notes
    for row in rows:
        prefix = [row["target"]] if multi_target else []
        base = prefix + [
            row["workload"], row["preset"], row["backend"], row["dtype"], row["mode"],
            str(row["threads"] or "-"), str(row["batch_size"]),
        ]
        if row["status"] != "ok":
            notes.append(f"FAILED {row['workload']}/{row['preset']} {row['backend']} {row['dtype']} bs{row['batch_size']}: {row['error']}")
            table.append(base + ["FAILED", "-", "-", "-", "-", "-", f"[{len(notes)}]"])
            continue
        marks = []
        for warning in [*row["warnings"], *(f"not valid for p99: {r}" for r in row.get("validity_reasons", []))]:
            notes.append(warning)
            marks.append(f"[{len(notes)}]")
        verdict = f" LoadGen {row['loadgen_verdict']}" if row.get("loadgen_verdict") else ""
        table.append(base + [
            _with_ci(row["p50_ms"], row["p50_lo_ms"], row["p50_hi_ms"]),
            _with_ci(row["p99_ms"], row["p99_lo_ms"], row["p99_hi_ms"]),
            _fmt(row["throughput_per_s"]),
            _fmt(row["gflops_per_s"]),
            str(row["samples"]),
            row["stop_reason"],
            " ".join(marks) + ("" if row["correct"] else " WRONG") + verdict,
        ])
    return headers, table, notes


def render(runs: Sequence[dict[str, Any]], fmt: str = "table") -> str:
    """The cells of ``runs`` in format ``fmt`` (one of FORMATS)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown report format {fmt!r}; use one of: {', '.join(FORMATS)}")
    rows = cell_rows(runs)
    if fmt == "json":
        return json.dumps(rows, indent=1)
    if fmt == "csv":
        buffer = io.StringIO()
        fieldnames: list[str] = []
        for row in rows:
            fieldnames.extend(k for k in row if k not in fieldnames)
        writer = csv.DictWriter(buffer, fieldnames=fieldnames, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "; ".join(v) if isinstance(v, list) else v for k, v in row.items()})
        return buffer.getvalue()
    from tabulate import tabulate

    multi_target = len({r["target"] for r in rows}) > 1
    style = "github" if fmt == "markdown" else "simple"
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows)) or ["latency"]
    notes: list[str] = []
    parts = []
    for scenario in scenarios:
        headers, table, notes = _display_rows([r for r in rows if r["scenario"] == scenario], multi_target, notes)
        body = tabulate(table, headers=headers, tablefmt=style, disable_numparse=True)
        # A run of latency cells only prints as it always did; other scenarios get a title.
        parts.append(body if scenarios == ["latency"] else f"scenario: {scenario}\n{body}")
    text = "\n\n".join(parts)
    if notes:
        if fmt == "markdown":
            text += "\n\n" + "\n".join(f"{i}. {note}" for i, note in enumerate(notes, start=1))
        else:
            text += "\n\n" + "\n".join(f"[{i}] {note}" for i, note in enumerate(notes, start=1))
    return text
