"""Render run files as reports: terminal (tabulate), Markdown, CSV, JSON and self-contained HTML.

Reports only read run files; they never re-run anything, so a run from another machine reports
exactly like a local one. Every format renders the same rows (``harness.report.rows``) through
the same column declarations (``harness.report.columns``), one table per scenario.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from harness.errors import ConfigError
from harness.report.cache_effect import cache_effect_lines, cache_effects
from harness.report.columns import Column, Value
from harness.report.cost import PriceResolver
from harness.report.frontier import Frontier, frontier_table, frontiers
from harness.report.rows import CellRow, Figure, cell_rows
from harness.report.tables import (
    ScenarioTable,
    left_out_lines,
    price_lines,
    scenario_tables,
    text_cells,
    withheld_lines,
)
from harness.runfile.json_writer import dumps_json
from harness.runfile.records import RunRecord

__all__ = ["FORMATS", "render"]

FORMATS = ("table", "markdown", "csv", "json", "html")


def _flat(key: str, value: Value) -> dict[str, Any]:
    if isinstance(value, Figure):
        return {
            key: value.value,
            f"{key}_lo": value.low,
            f"{key}_hi": value.high,
            f"{key}_bound": value.bound,
            f"{key}_bound_confidence": value.bound_confidence,
            f"{key}_at_least": value.at_least,
            f"{key}_at_least_confidence": value.at_least_confidence,
        }
    return {key: value}


def machine_row(row: CellRow, columns: Sequence[Column]) -> dict[str, Any]:
    """A row for CSV and JSON: identity, status, price, then each column's raw value."""
    data: dict[str, Any] = {
        "run_id": row.run_id,
        "run_started_utc": row.run.started_utc,
        "cell_id": row.cell.id,
        "target": row.target,
        "scenario": row.scenario,
        "status": row.cell.status,
        "error": row.error_text,
        "usd_per_hour": row.price.usd_per_hour if row.price else None,
        "price_source": row.price.source if row.price else None,
        "price_as_of": row.price.as_of if row.price else None,
        "price_note": row.price_note,
    }
    for column in columns:
        data.update(_flat(column.key, column.value(row) if (row.ok or not column.measured) else None))
    measured = row.measurement
    data["correct"] = None if measured is None else measured.correctness.passed
    data["valid"] = None if measured is None else measured.validity.valid
    data["notes"] = row.notes()
    engine = None if measured is None else measured.engine
    if engine is not None and (engine.reuse is not None or engine.trace is not None or engine.turns):
        from harness.report.engine_view import engine_view

        data["engine_view"] = engine_view(engine)
    return data


def _markdown_or_table(tables: list[ScenarioTable], markdown: bool) -> tuple[str, list[str]]:
    from tabulate import tabulate

    notes: list[str] = []
    parts = []
    for table in tables:
        headers, body = text_cells(table, notes)
        text = str(tabulate(body, headers=headers, tablefmt="github" if markdown else "simple", disable_numparse=True))
        parts.append(text if [t.scenario for t in tables] == ["latency"] else f"scenario: {table.scenario}\n{text}")
    return "\n\n".join(parts), notes


def _slo_text(rows: Sequence[CellRow], slo_p99_ms: float, markdown: bool) -> str:
    from harness.report.slo import choose, describe_pick
    from harness.report.verdict import cross_run_verdicts

    lines = [f"{'### ' if markdown else ''}At p99 <= {slo_p99_ms:g} ms"]
    if markdown:
        lines.append("")
    for choice in choose(rows, slo_p99_ms):
        lines.append(
            f"{'- **' if markdown else '- '}{choice.workload}{'**' if markdown else ''} "
            f"({choice.meeting} of {choice.considered} cells meet it)"
        )
        lines.append(f"  - fastest: {describe_pick(choice.fastest)}")
        lines.append(f"  - cheapest: {describe_pick(choice.cheapest)}")
        lines.extend(f"  - note: {note}" for note in choice.notes)
    verdicts = cross_run_verdicts(rows, slo_p99_ms) if len({r.run_id for r in rows}) > 1 else []
    if verdicts:
        lines.append("")
        lines.append(f"{'#### ' if markdown else ''}Across runs (the cheapest pick of each run, by cost per million)")
        if markdown:
            lines.append("")
        lines.extend(f"- {v.workload}: {v.sentence()}" for v in verdicts)
    return "\n".join(lines)


def _frontier_text(frontiers: Sequence[Frontier], markdown: bool) -> str:
    """The serving frontier of each model: its points (front first, marked ``*``) and the cheapest pick."""
    from tabulate import tabulate

    parts = [
        ("### " if markdown else "")
        + "Serving frontier: output tokens/s per user against per instance (* on the Pareto front)"
    ]
    for frontier in frontiers:
        headers, body = frontier_table(frontier)
        parts.append(f"{'**' if markdown else ''}{frontier.model}{'**' if markdown else ''}")
        parts.append(
            str(tabulate(body, headers=headers, tablefmt="github" if markdown else "simple", disable_numparse=True))
        )
        if frontier.cheapest is not None:
            parts.append(f"- {frontier.cheapest.sentence()}")
            parts.extend(f"- note: {note}" for note in frontier.cheapest.notes)
    return "\n\n".join(parts)


def render(
    runs: Sequence[RunRecord],
    fmt: str = "table",
    prices: PriceResolver | None = None,
    slo_p99_ms: float | None = None,
    serving_slo_ms: tuple[float | None, float | None] = (None, None),
) -> str:
    """The cells of ``runs`` in format ``fmt`` (one of FORMATS), priced by ``prices``, with the
    fastest and cheapest cell per workload when a p99 target ``slo_p99_ms`` is given, and for
    engine cells the serving frontier, with the cheapest configuration meeting the TTFT and TPOT
    p99 targets ``serving_slo_ms`` (default: those the cells were run with)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown report format {fmt!r}; use one of: {', '.join(FORMATS)}")
    rows = cell_rows(runs, prices)
    tables = scenario_tables(rows)
    found = frontiers(rows, *serving_slo_ms)
    if fmt == "html":
        from harness.report.html import render_html

        return render_html(runs, rows, tables, slo_p99_ms=slo_p99_ms, frontiers=found)
    machine = [machine_row(row, table.columns) for table in tables for row in table.rows]
    if fmt == "json":
        effects = cache_effects(rows)
        if slo_p99_ms is None and not found and not effects:
            return dumps_json(machine, indent=1)
        data: dict[str, Any] = {"cells": machine}
        if slo_p99_ms is not None:
            from harness.report.slo import choose
            from harness.report.verdict import cross_run_verdicts

            several = len({r.run_id for r in rows}) > 1
            data["slo"] = [c.to_dict() for c in choose(rows, slo_p99_ms)]
            data["verdicts"] = [v.to_dict() for v in cross_run_verdicts(rows, slo_p99_ms)] if several else []
        if found:
            data["frontier"] = [f.to_dict() for f in found]
        if effects:
            data["cache_effects"] = [e.to_dict() for e in effects]
        return dumps_json(data, indent=1)
    if fmt == "csv":
        buffer = io.StringIO()
        fieldnames: list[str] = []
        for data in machine:
            fieldnames.extend(k for k in data if k not in fieldnames)
        writer = csv.DictWriter(buffer, fieldnames=fieldnames, lineterminator="\n")
        writer.writeheader()
        for data in machine:
            writer.writerow({k: "; ".join(v) if isinstance(v, list) else v for k, v in data.items()})
        return buffer.getvalue()
    markdown = fmt == "markdown"
    text, notes = _markdown_or_table(tables, markdown)
    if notes:
        if markdown:
            text += "\n\n" + "\n".join(f"{i}. {note}" for i, note in enumerate(notes, start=1))
        else:
            text += "\n\n" + "\n".join(f"[{i}] {note}" for i, note in enumerate(notes, start=1))
    left_out = left_out_lines(runs)
    if left_out:
        heading = "**Left out of the default suite**\n\n" if markdown else "Left out of the default suite:\n"
        text += "\n\n" + heading + "\n".join(f"- {line}" for line in left_out)
    withheld = withheld_lines(tables)
    if withheld:
        heading = "**Intervals withheld**\n\n" if markdown else "Intervals withheld:\n"
        text += "\n\n" + heading + "\n".join(f"- {line}" for line in withheld)
    from harness.report.engine_view import engine_view_lines

    engine_lines = engine_view_lines([row for table in tables for row in table.rows])
    if engine_lines:
        heading = "**The engine's own view**\n\n" if markdown else "The engine's own view:\n"
        text += "\n\n" + heading + "\n".join(f"- {line}" for line in engine_lines)
    effect_lines = cache_effect_lines(rows)
    if effect_lines:
        heading = "**Prefix caching on later turns**\n\n" if markdown else "Prefix caching on later turns:\n"
        text += "\n\n" + heading + "\n".join(f"- {line}" for line in effect_lines)
    if any(r.price is not None for r in rows):
        heading = "**Prices**\n\n" if markdown else "Prices:\n"
        text += "\n\n" + heading + "\n".join(f"- {line}" for line in price_lines(rows))
    if slo_p99_ms is not None:
        text += "\n\n" + _slo_text(rows, slo_p99_ms, markdown)
    if found:
        text += "\n\n" + _frontier_text(found, markdown)
    return text
