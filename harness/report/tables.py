"""The report's tables, laid out once: one per scenario, its columns, its text cells and notes.

Every text format (``harness.report.formats``: terminal, Markdown) and the HTML page
(``harness.report.html``) render these same tables, so a figure reads the same everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.report.columns import Column, columns_for
from harness.report.rows import CellRow, Figure
from harness.runfile.records import RunRecord

__all__ = [
    "ScenarioTable",
    "left_out_lines",
    "price_lines",
    "scenario_tables",
    "text_cells",
    "verdict_marks",
    "withheld_lines",
]


@dataclass(frozen=True)
class ScenarioTable:
    """The rows of one scenario and the columns they are shown with."""

    scenario: str
    rows: tuple[CellRow, ...]
    columns: tuple[Column, ...]


def scenario_tables(rows: Sequence[CellRow]) -> list[ScenarioTable]:
    """Rows grouped by scenario, in the order scenarios first appear."""
    scenarios = list(dict.fromkeys(r.scenario for r in rows))
    tables = []
    for scenario in scenarios:
        mine = tuple(r for r in rows if r.scenario == scenario)
        tables.append(ScenarioTable(scenario, mine, tuple(columns_for(scenario, mine))))
    return tables


def verdict_marks(row: CellRow) -> str:
    """What follows the note numbers: WRONG for a failed correctness check, LoadGen's verdict."""
    measured = row.measurement
    if measured is None:
        return ""
    marks = "" if measured.correctness.passed else " WRONG"
    if measured.loadgen is not None:
        marks += f" LoadGen {measured.loadgen.verdict}"
    return marks


def text_cells(table: ScenarioTable, notes: list[str]) -> tuple[list[str], list[list[str]]]:
    """Headers and rendered cells of one table; ``notes`` collects the numbered notes across tables."""
    headers = [c.header for c in table.columns] + ["notes"]
    body = []
    for row in table.rows:
        cells = [c.render(row) for c in table.columns]
        if not row.ok:
            first = next((i for i, c in enumerate(table.columns) if c.measured), None)
            if first is not None:
                cells[first] = "FAILED"
        marks = []
        for note in row.notes():
            notes.append(note)
            marks.append(f"[{len(notes)}]")
        cells.append(" ".join(marks) + verdict_marks(row))
        body.append(cells)
    return headers, body


def price_lines(rows: Sequence[CellRow]) -> list[str]:
    """One line per run: its price with source and date, or why it has none."""
    lines: dict[str, str] = {}
    for row in rows:
        if row.run_id in lines:
            continue
        where = f"{row.target} (run {row.run_id})"
        if row.price is not None:
            lines[row.run_id] = f"{where}: {row.price.describe()}; {row.price_note}"
        else:
            lines[row.run_id] = f"{where}: no price; {row.price_note or 'none recorded'}"
    return list(lines.values())


def left_out_lines(runs: Sequence[RunRecord]) -> list[str]:
    """One line per dtype a run's default suite left out because its silicon emulates it."""
    lines: dict[str, None] = {}
    for run in runs:
        for left in run.environment.dtypes_left_out:
            lines[f"{left.backend} {left.dtype}: {left.reason}; --dtype {left.dtype} measures it (marked emulated)"] = (
                None
            )
    return list(lines)


def withheld_lines(tables: Sequence[ScenarioTable]) -> list[str]:
    """One line per figure whose interval some cells cannot back: how many, what is shown instead,
    and how many samples the missing bound needs."""
    counts: dict[str, list[Figure]] = {}
    for table in tables:
        for column in table.columns:
            for row in table.rows:
                value = column.value(row) if row.ok else None
                if isinstance(value, Figure) and value.low is None and value.needs is not None:
                    name = column.header.split(" ms")[0]
                    counts.setdefault(name, []).append(value)
    lines = []
    for name, figures in counts.items():
        how = "; --tail 99 (or a p99 SLO) samples for it" if name.endswith("p99") else ""
        needs = max(f.needs or 0 for f in figures)
        shown = []
        at_least = [f for f in figures if f.at_least is not None]
        if at_least:
            upper = max(f.upper_needs or 0 for f in at_least)
            shown.append(
                f"'≥ x' in {len(at_least)}: the highest sample that is a 95% lower bound (no upper bound holds; "
                f"one needs ≥ {upper} samples)"
            )
        if any(f.bound is not None for f in figures):
            shown.append("'≤ x (c%)': the upper bound their samples back, at its confidence c")
        if len(at_least) + sum(f.bound is not None for f in figures) < len(figures):
            shown.append("the estimate alone where no bound holds")
        lines.append(
            f"{name}: no 95% interval in {len(figures)} cell(s) (fewer than the {needs} samples one needs); "
            f"shown instead: {'; '.join(shown)}{how}"
        )
    return lines
