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
                "status": cell["status"],
            }
            if cell["status"] == "ok":
                lat = cell["latency_ns"]
                p50_ci = lat["ci"].get("p50", [None, None])
                p99_ci = lat["ci"].get("p99", [None, None])
                row.update(
                    p50_ms=_ms(lat["p50"]),
                    p50_lo_ms=_ms(p50_ci[0]),
                    p50_hi_ms=_ms(p50_ci[1]),
                    p90_ms=_ms(lat["p90"]),
                    p99_ms=_ms(lat["p99"]),
                    p99_lo_ms=_ms(p99_ci[0]),
                    p99_hi_ms=_ms(p99_ci[1]),
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
            else:
                err = cell.get("error") or {}
                row.update(
                    error=f"{err.get('phase', '?')}: {err.get('type', 'Error')}: {err.get('message', '')}", warnings=[]
                )
            rows.append(row)
    return rows


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
    "workload",
    "preset",
    "backend",
    "dtype",
    "mode",
    "thr",
    "batch",
    "p50 ms [95% CI]",
    "p99 ms [95% CI]",
    "inf/s",
    "GFLOP/s",
    "n",
    "stop",
    "notes",
)


def _display_rows(rows: Sequence[dict[str, Any]], multi_target: bool) -> tuple[list[str], list[list[str]], list[str]]:
    headers = (["target"] if multi_target else []) + list(HEADERS)
    table: list[list[str]] = []
    notes: list[str] = []
    for row in rows:
        prefix = [row["target"]] if multi_target else []
        base = [
            *prefix,
            row["workload"],
            row["preset"],
            row["backend"],
            row["dtype"],
            row["mode"],
            str(row["threads"] or "-"),
            str(row["batch_size"]),
        ]
        if row["status"] != "ok":
            where = f"{row['workload']}/{row['preset']} {row['backend']} {row['dtype']} bs{row['batch_size']}"
            notes.append(f"FAILED {where}: {row['error']}")
            table.append([*base, "FAILED", "-", "-", "-", "-", "-", f"[{len(notes)}]"])
            continue
        marks = []
        for warning in row["warnings"]:
            notes.append(warning)
            marks.append(f"[{len(notes)}]")
        table.append(
            [
                *base,
                _with_ci(row["p50_ms"], row["p50_lo_ms"], row["p50_hi_ms"]),
                _with_ci(row["p99_ms"], row["p99_lo_ms"], row["p99_hi_ms"]),
                _fmt(row["throughput_per_s"]),
                _fmt(row["gflops_per_s"]),
                str(row["samples"]),
                row["stop_reason"],
                " ".join(marks) + ("" if row["correct"] else " WRONG"),
            ]
        )
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
    headers, table, notes = _display_rows(rows, multi_target)
    style = "github" if fmt == "markdown" else "simple"
    text: str = tabulate(table, headers=headers, tablefmt=style, disable_numparse=True)
    if notes:
        if fmt == "markdown":
            text += "\n\n" + "\n".join(f"{i}. {note}" for i, note in enumerate(notes, start=1))
        else:
            text += "\n\n" + "\n".join(f"[{i}] {note}" for i, note in enumerate(notes, start=1))
    return text
