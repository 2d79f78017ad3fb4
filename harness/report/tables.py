"""Turn run files into tables: terminal (tabulate), Markdown, CSV, JSON and self-contained HTML.

Reports only read run files; they never re-run anything, so a run from another machine reports
exactly like a local one. Rows are built once as plain data and each format only renders them.
Cost columns appear for cells with a price (see ``harness.report.cost``), each price's source and date
beside the table; ``slo_p99_ms`` adds the fastest and cheapest cell meeting that p99 per workload.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from harness.errors import ConfigError
from harness.report.cost import PriceResolver, usd_per_million
from harness.runfile.checks import dumps_json

__all__ = ["FORMATS", "cell_rows", "render"]

FORMATS = ("table", "markdown", "csv", "json", "html")


def _ms(ns: float | None) -> float | None:
    return None if ns is None else ns / 1e6


def cell_rows(runs: Iterable[dict[str, Any]], prices: PriceResolver | None = None) -> list[dict[str, Any]]:
    """One flat row of raw numbers per cell, in milliseconds, across all given runs, priced where
    ``prices`` (default: recorded prices, then the bundled catalog) finds a price."""
    resolver = prices or PriceResolver()
    rows: list[dict[str, Any]] = []
    for run in runs:
        target = run.get("target", {})
        price, price_note = resolver.for_run(run)
        for cell in run["cells"]:
            cfg = cell["config"]
            row: dict[str, Any] = {
                "run_id": run["run_id"],
                "run_started_utc": run.get("started_utc"),
                "cell_id": cell.get("id"),
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
                "usd_per_hour": price.usd_per_hour if price else None,
                "price": price.describe() if price else None,
                "price_source": price.source if price else None,
                "price_as_of": price.as_of if price else None,
                "price_note": price_note,
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
                    tokens_per_s=cell.get("tokens_per_s"),
                    usd_per_million=usd_per_million(price.usd_per_hour, cell["throughput_per_s"]) if price else None,
                    usd_per_million_tokens=(
                        usd_per_million(price.usd_per_hour, cell.get("tokens_per_s")) if price else None
                    ),
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
                if price:
                    row.update(_scenario_costs(cell, price.usd_per_hour))
            else:
                err = cell.get("error") or {}
                row.update(
                    error=f"{err.get('phase', '?')}: {err.get('type', 'Error')}: {err.get('message', '')}", warnings=[]
                )
                row.update(usd_per_million=None, usd_per_million_tokens=None)
            rows.append(row)
    return rows


def _scenario_costs(cell: dict[str, Any], usd_per_hour: float) -> dict[str, Any]:
    """Costs the load scenarios are judged by: per million output and total tokens, and, for a
    server cell whose capacity was searched, per million inferences at that capacity (which then
    also becomes the cell's ``usd_per_million``, so SLO picks rank by it)."""
    costs: dict[str, Any] = {
        "usd_per_million_output_tokens": usd_per_million(usd_per_hour, cell.get("output_tokens_per_s")),
        "usd_per_million_total_tokens": usd_per_million(usd_per_hour, cell.get("total_tokens_per_s")),
    }
    capacity = cell.get("capacity_rps")
    if capacity:
        at_capacity = usd_per_million(usd_per_hour, capacity * cell["config"]["batch_size"])
        costs["usd_per_million_at_capacity"] = at_capacity
        costs["usd_per_million"] = at_capacity
    return costs


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
            prompt_tokens=params.get("prompt_tokens"),
            output_tokens=params.get("output_tokens"),
            ttft_p50_ms=_p(ttft, "p50"),
            ttft_p50_lo_ms=_ms(ttft_ci[0]),
            ttft_p50_hi_ms=_ms(ttft_ci[1]),
            ttft_p99_ms=_p(token_metrics.get("ttft_ns"), "p99"),
            tpot_p50_ms=_p(token_metrics.get("tpot_ns"), "p50"),
            tpot_p99_ms=_p(token_metrics.get("tpot_ns"), "p99"),
            itl_p99_ms=_p(token_metrics.get("itl_ns"), "p99"),
        )
    for key in ("output_tokens_per_s", "total_tokens_per_s", "capacity_rps", "goodput_rps"):
        if key in cell:
            fields[key] = cell[key]
    if "server" in cell:
        server = cell["server"]
        slo = server.get("slo_ms") or {}
        fields.update(
            server_mode=server["mode"],
            rate_rps=server.get("rate_rps"),
            slo_met=server.get("slo_met"),
            slo=", ".join(f"{name.replace('_p99', '')}≤{value:g}ms" for name, value in slo.items() if value is not None)
            or None,
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
#: Cost columns, shown (before "n") only when some cell has a price.
COST_HEADERS = ("$/M inf", "$/M tok")


def _money(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def price_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One line per run: its price with source and date, or why it has none."""
    lines: dict[str, str] = {}
    for row in rows:
        if row["run_id"] in lines:
            continue
        where = f"{row['target']} (run {row['run_id']})"
        if row.get("price"):
            lines[row["run_id"]] = f"{where}: {row['price']}; {row['price_note']}"
        else:
            lines[row["run_id"]] = f"{where}: no price; {row.get('price_note') or 'none recorded'}"
    return list(lines.values())


#: Columns of the tables of generate and server cells (after the common configuration columns).
GENERATE_HEADERS = (
    "prompt",
    "output",
    "TTFT p50 ms [95% CI]",
    "TTFT p99 ms",
    "TPOT p50 ms",
    "ITL p99 ms",
    "out tok/s",
    "total tok/s",
    "n",
)
SERVER_HEADERS = (
    "SLO",
    "capacity req/s",
    "rate req/s",
    "goodput req/s",
    "p99 ms",
    "TTFT p99 ms",
    "TPOT p50 ms",
    "out tok/s",
    "n",
)
OFFLINE_HEADERS = ("samples/s", "out tok/s", "batch p50 ms", "batches")


#: Cost columns of the load-scenario tables (header, row key), shown when some row has a price.
SCENARIO_COSTS: dict[str, tuple[tuple[str, str], ...]] = {
    "generate": (("$/M out tok", "usd_per_million_output_tokens"), ("$/M tok", "usd_per_million_total_tokens")),
    "server": (("$/M inf @capacity", "usd_per_million_at_capacity"), ("$/M out tok", "usd_per_million_output_tokens")),
    "offline": (("$/M inf", "usd_per_million"), ("$/M out tok", "usd_per_million_output_tokens")),
}


def _failure_note(row: dict[str, Any]) -> str:
    where = f"{row['workload']}/{row['preset']} {row['backend']} {row['dtype']} bs{row['batch_size']}"
    return f"FAILED {where}: {row['error']}"


def _scenario_cells(row: dict[str, Any]) -> list[str]:
    """The scenario-specific cells of a display row (generate, server, offline)."""
    scenario = row["scenario"]
    if scenario == "generate":
        return [
            str(row.get("prompt_tokens")),
            str(row.get("output_tokens")),
            _with_ci(row.get("ttft_p50_ms"), row.get("ttft_p50_lo_ms"), row.get("ttft_p50_hi_ms")),
            _fmt(row.get("ttft_p99_ms")),
            _fmt(row.get("tpot_p50_ms")),
            _fmt(row.get("itl_p99_ms")),
            _fmt(row.get("output_tokens_per_s")),
            _fmt(row.get("total_tokens_per_s")),
            str(row["samples"]),
        ]
    if scenario == "server":
        return [
            row.get("slo") or "-",
            _fmt(row.get("capacity_rps")),
            _fmt(row.get("rate_rps")),
            _fmt(row.get("goodput_rps")),
            _fmt(row["p99_ms"]),
            _fmt(row.get("ttft_p99_ms")),
            _fmt(row.get("tpot_p50_ms")),
            _fmt(row.get("output_tokens_per_s")),
            str(row["samples"]),
        ]
    return [
        _fmt(row["throughput_per_s"]),
        _fmt(row.get("output_tokens_per_s")),
        _fmt(row["p50_ms"]),
        str(row["samples"]),
    ]


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
    costs = [(h, k) for h, k in SCENARIO_COSTS.get(scenario, ()) if any(r.get(k) is not None for r in rows)]
    headers = [
        *(["target"] if multi_target else []),
        *HEADERS[:7],
        *_scenario_headers(scenario),
        *(h for h, _ in costs),
        "notes",
    ]
    table: list[list[str]] = []
    notes = [] if notes is None else notes
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
            notes.append(_failure_note(row))
            table.append(
                [*base, "FAILED", *["-"] * (len(_scenario_headers(scenario)) + len(costs) - 1), f"[{len(notes)}]"]
            )
            continue
        marks = []
        for note in [*row["warnings"], *(f"not valid for p99: {r}" for r in row.get("validity_reasons", []))]:
            notes.append(note)
            marks.append(f"[{len(notes)}]")
        verdict = f" LoadGen {row['loadgen_verdict']}" if row.get("loadgen_verdict") else ""
        money = [_money(row.get(key)) for _, key in costs]
        table.append(
            [*base, *_scenario_cells(row), *money, " ".join(marks) + ("" if row["correct"] else " WRONG") + verdict]
        )
    return headers, table, notes


def _latency_display_rows(
    rows: Sequence[dict[str, Any]], multi_target: bool, notes: list[str] | None = None
) -> tuple[list[str], list[list[str]], list[str]]:
    show_cost = any(r.get("usd_per_million") is not None for r in rows)
    show_tokens = any(r.get("usd_per_million_tokens") is not None for r in rows)
    cost_headers = [COST_HEADERS[0]] * show_cost + [COST_HEADERS[1]] * show_tokens
    # Rows of several runs on one target are told apart by their run id.
    runs_per_target: dict[str, set[str]] = {}
    for row in rows:
        runs_per_target.setdefault(row["target"], set()).add(row["run_id"])
    show_run = any(len(ids) > 1 for ids in runs_per_target.values())
    headers = [
        *(["target"] if multi_target else []),
        *(["run"] if show_run else []),
        *HEADERS[:-3],
        *cost_headers,
        *HEADERS[-3:],
    ]
    table: list[list[str]] = []
    notes = [] if notes is None else notes
    for row in rows:
        prefix = ([row["target"]] if multi_target else []) + ([row["run_id"]] if show_run else [])
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
            notes.append(_failure_note(row))
            table.append([*base, "FAILED", *["-"] * (4 + len(cost_headers)), f"[{len(notes)}]"])
            continue
        marks = []
        for warning in [*row["warnings"], *(f"not valid for p99: {r}" for r in row.get("validity_reasons", []))]:
            notes.append(warning)
            marks.append(f"[{len(notes)}]")
        verdict = f" LoadGen {row['loadgen_verdict']}" if row.get("loadgen_verdict") else ""
        cost = [_money(row.get("usd_per_million"))] * show_cost
        cost += [_money(row.get("usd_per_million_tokens"))] * show_tokens
        table.append(
            [
                *base,
                _with_ci(row["p50_ms"], row["p50_lo_ms"], row["p50_hi_ms"]),
                _with_ci(row["p99_ms"], row["p99_lo_ms"], row["p99_hi_ms"]),
                _fmt(row["throughput_per_s"]),
                _fmt(row["gflops_per_s"]),
                *cost,
                str(row["samples"]),
                row["stop_reason"],
                " ".join(marks) + ("" if row["correct"] else " WRONG") + verdict,
            ]
        )
    return headers, table, notes


def _slo_text(rows: Sequence[dict[str, Any]], slo_p99_ms: float, markdown: bool) -> str:
    from harness.report.slo import cell_label, choose

    def describe(row: dict[str, Any] | None) -> str:
        if row is None:
            return "none"
        cost = f", ${_money(row['usd_per_million'])}/M inf" if row.get("usd_per_million") is not None else ""
        return f"{cell_label(row)}: {_fmt(row['throughput_per_s'])} inf/s, p99 {_fmt(row['p99_ms'])} ms{cost}"

    lines = [f"{'### ' if markdown else ''}At p99 <= {slo_p99_ms:g} ms"]
    if markdown:
        lines.append("")
    for choice in choose(rows, slo_p99_ms):
        lines.append(
            f"{'- **' if markdown else '- '}{choice.workload}{'**' if markdown else ''} "
            f"({choice.meeting} of {choice.considered} cells meet it)"
        )
        lines.append(f"  - fastest: {describe(choice.fastest)}")
        lines.append(f"  - cheapest: {describe(choice.cheapest)}")
        lines.extend(f"  - note: {note}" for note in choice.notes)
    return "\n".join(lines)


def render(
    runs: Sequence[dict[str, Any]],
    fmt: str = "table",
    prices: PriceResolver | None = None,
    slo_p99_ms: float | None = None,
) -> str:
    """The cells of ``runs`` in format ``fmt`` (one of FORMATS), priced by ``prices``, with the
    fastest and cheapest cell per workload when a p99 target ``slo_p99_ms`` is given."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown report format {fmt!r}; use one of: {', '.join(FORMATS)}")
    rows = cell_rows(runs, prices)
    if fmt == "html":
        from harness.report.html import render_html

        return render_html(runs, rows, slo_p99_ms=slo_p99_ms)
    if fmt == "json":
        if slo_p99_ms is None:
            return dumps_json(rows, indent=1)
        from harness.report.slo import choose

        return dumps_json({"cells": rows, "slo": [c.to_dict() for c in choose(rows, slo_p99_ms)]}, indent=1)
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

    markdown = fmt == "markdown"
    multi_target = len({r["target"] for r in rows}) > 1
    style = "github" if markdown else "simple"
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows)) or ["latency"]
    notes: list[str] = []
    parts = []
    for scenario in scenarios:
        headers, table, notes = _display_rows([r for r in rows if r["scenario"] == scenario], multi_target, notes)
        body = str(tabulate(table, headers=headers, tablefmt=style, disable_numparse=True))
        # A run of latency cells only prints as it always did; other scenarios get a title.
        parts.append(body if scenarios == ["latency"] else f"scenario: {scenario}\n{body}")
    text = "\n\n".join(parts)
    if notes:
        if markdown:
            text += "\n\n" + "\n".join(f"{i}. {note}" for i, note in enumerate(notes, start=1))
        else:
            text += "\n\n" + "\n".join(f"[{i}] {note}" for i, note in enumerate(notes, start=1))
    if any(r.get("price") for r in rows):
        heading = "**Prices**\n\n" if markdown else "Prices:\n"
        text += "\n\n" + heading + "\n".join(f"- {line}" for line in price_lines(rows))
    if slo_p99_ms is not None:
        text += "\n\n" + _slo_text(rows, slo_p99_ms, markdown)
    return text
