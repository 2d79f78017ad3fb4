"""Every report format renders the same columns: each row as wide as its header, each value under it.

The run mixes every scenario and failed cells (frozen version-1 fixtures, read as version 2), the
cases where a row one column short put a failed cell's note under "stop", and where the HTML
report put latency figures under the server table's headers.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.report.formats import render
from harness.report.rows import cell_rows
from harness.report.tables import scenario_tables, text_cells
from harness.runfile.files import load_run
from harness.runfile.records import RunRecord

FIXTURES = Path(__file__).parents[1] / "runfile" / "fixtures"
SCENARIOS = ("latency", "throughput", "generate", "server", "offline")


@pytest.fixture(scope="module")
def mixed() -> RunRecord:
    runs = [load_run(FIXTURES / f"run-v1-{name}.json") for name in SCENARIOS]
    cells = tuple(cell for run in runs for cell in run.cells)
    failed_generate = replace(
        runs[0].cells[1], config=replace(runs[2].cells[0].config), id="failed-generate"
    )  # a failed cell in a load-scenario table too
    run = replace(runs[0], cells=(*cells, failed_generate))
    assert {c.config.scenario for c in run.cells} == set(SCENARIOS)
    assert sum(c.status == "failed" for c in run.cells) == 2
    return run


def _expected(run: RunRecord) -> dict[str, tuple[list[str], list[list[str]]]]:
    notes: list[str] = []
    return {t.scenario: text_cells(t, notes) for t in scenario_tables(cell_rows([run]))}


def test_every_table_row_is_as_wide_as_its_header_and_failed_rows_keep_their_notes_last(mixed: RunRecord) -> None:
    for scenario, (headers, rows) in _expected(mixed).items():
        assert headers[-1] == "notes"
        for row in rows:
            assert len(row) == len(headers), scenario
            if "FAILED" in row:
                assert row[-1].startswith("["), (scenario, row)  # the note mark is under "notes"
                assert row[headers.index("workload")] != "-"


def _table_blocks(text: str) -> dict[str, list[str]]:
    blocks: dict[str, list[str]] = {}
    for block in text.split("\n\n"):
        lines = block.splitlines()
        if lines and lines[0].startswith("scenario: "):
            blocks[lines[0].removeprefix("scenario: ")] = lines[1:]
    return blocks


def test_the_terminal_table_puts_every_value_under_its_header(mixed: RunRecord) -> None:
    expected = _expected(mixed)
    blocks = _table_blocks(render([mixed], "table"))
    assert set(blocks) == set(SCENARIOS)
    for scenario, lines in blocks.items():
        headers, rows = expected[scenario]
        rule = lines[1]
        spans, start = [], 0
        for dashes in rule.split("  "):
            if dashes:
                spans.append((start, start + len(dashes)))
            start += len(dashes) + 2
        assert len(spans) == len(headers)
        for (lo, hi), header in zip(spans, headers, strict=True):
            assert lines[0][lo:hi].strip() == header
        for line, row in zip(lines[2:], rows, strict=True):
            assert [line[lo:hi].strip() for lo, hi in spans] == [cell.strip() for cell in row]


def test_markdown_rows_have_one_cell_per_header(mixed: RunRecord) -> None:
    expected = _expected(mixed)
    blocks = _table_blocks(render([mixed], "markdown"))
    for scenario, lines in blocks.items():
        headers, rows = expected[scenario]
        parsed = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]
        assert parsed[0] == headers
        assert parsed[2:] == [[cell.strip() for cell in row] for row in rows]


def test_csv_rows_are_as_wide_as_the_header_and_values_sit_under_their_keys(mixed: RunRecord) -> None:
    reader = list(csv.reader(io.StringIO(render([mixed], "csv"))))
    header, body = reader[0], reader[1:]
    assert len(body) == len(mixed.cells)
    assert all(len(row) == len(header) for row in body)
    by_id = {row[header.index("cell_id")]: dict(zip(header, row, strict=True)) for row in body}
    for cell in mixed.cells:
        row = by_id[cell.id]
        assert row["status"] == cell.status
        measured = cell.measurement
        if measured is not None:
            assert row["scenario"] == cell.config.scenario
            key, want = {
                "latency": ("p50_ms", measured.latency_ns.p50 / 1e6),
                "throughput": ("throughput_per_s", measured.throughput_per_s),
                "generate": ("output_tokens_per_s", measured.output_tokens_per_s),
                "server": ("rate_rps", measured.server.rate_rps if measured.server else None),
                "offline": ("samples_per_s", measured.offline.samples_per_s if measured.offline else None),
            }[row["scenario"]]
            assert float(row[key]) == pytest.approx(want)
        else:
            assert row["error"] and row["notes"].startswith("FAILED")


def test_json_is_valid_and_carries_each_value_under_its_key(mixed: RunRecord) -> None:
    rows = json.loads(render([mixed], "json"))
    order = sorted(mixed.cells, key=lambda c: SCENARIOS.index(c.config.scenario))
    assert [r["cell_id"] for r in rows] == [c.id for c in order]
    for row in rows:
        cell = next(c for c in mixed.cells if c.id == row["cell_id"])
        if cell.measurement is None:
            assert row["error"] and row["correct"] is None
            continue
        if row["scenario"] in ("latency", "throughput"):
            assert row["p50_ms"] == pytest.approx(cell.measurement.latency_ns.p50 / 1e6)
            assert row["throughput_per_s"] == cell.measurement.throughput_per_s
        if row["scenario"] == "server":
            assert row["rate_rps"] == (cell.measurement.server.rate_rps if cell.measurement.server else None)


class _Tables(HTMLParser):
    """Headers and rows of every <table> in a document."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[tuple[list[str], list[list[str]]]] = []
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._in_head = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append(([], []))
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "thead":
            self._in_head = False
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            headers, rows = self.tables[-1]
            if self._in_head:
                headers.extend(self._row)
            else:
                rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_html_has_one_table_per_scenario_with_every_value_under_its_header(mixed: RunRecord) -> None:
    parser = _Tables()
    parser.feed(render([mixed], "html"))
    expected = _expected(mixed)
    results = [t for t in parser.tables if t[0] and t[0][0] == "workload"]
    assert len(results) == len(SCENARIOS)
    for (headers, rows), (scenario, (want_headers, want_rows)) in zip(results, expected.items(), strict=True):
        assert headers == want_headers, scenario
        assert rows == want_rows, scenario
        assert all(len(row) == len(headers) for row in rows)
    server_headers = results[list(expected).index("server")][0]
    latency_headers = results[list(expected).index("latency")][0]
    assert "capacity req/s" in server_headers and "capacity req/s" not in latency_headers
