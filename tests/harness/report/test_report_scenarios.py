"""Reports of runs mixing scenarios: one titled table per scenario, its own columns, notes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from harness.measure.sampler import SamplingPolicy
from harness.report.formats import render
from harness.report.rows import CellRow, cell_rows
from harness.run.cell import run_cell
from harness.runfile.records import CellConfig, CellRecord, Measurement, RunRecord, ScenarioParams
from tests.harness.runfactory import round_trip

SHORT = SamplingPolicy(max_time_s=0.2, warmup_time_s=0.01, warmup_min_count=1, min_count=3)


def _cell(workload: str, scenario: str, **params: Any) -> CellRecord:
    config = CellConfig(
        workload=workload,
        preset="tiny",
        backend="cpu",
        dtype="fp32",
        mode="eager",
        threads=1,
        batch_size=1,
        scenario=scenario,
        params=ScenarioParams(**params),
    )
    record = run_cell(config, SHORT)
    assert record.status == "ok", record.error
    return record


def _measured(cell: CellRecord) -> Measurement:
    assert cell.measurement is not None
    return cell.measurement


@pytest.fixture(scope="module")
def mixed_run() -> RunRecord:
    cells = [
        _cell("mlp", "latency"),
        _cell("llama", "generate", prompt_tokens=8, output_tokens=3),
        _cell("mlp", "server", rate=100.0, slo_p99_ms=50.0),
        _cell("llama", "offline", prompt_tokens=8, output_tokens=3),
    ]
    return round_trip(*cells)


LATENCY_HEADERS = (
    "workload preset backend dtype mode thr batch p50 ms [95% CI] p90 ms [95% CI] p99 ms [95% CI] "
    "inf/s GFLOP/s n stop notes"
)


def test_latency_only_runs_print_without_a_scenario_title(mixed_run: RunRecord) -> None:
    run = replace(mixed_run, cells=mixed_run.cells[:1])
    text = render([run])
    assert "scenario:" not in text
    assert text.splitlines()[0].split() == LATENCY_HEADERS.split()


def test_each_scenario_gets_its_titled_table(mixed_run: RunRecord) -> None:
    text = render([mixed_run])
    for title in ("scenario: latency", "scenario: generate", "scenario: server", "scenario: offline"):
        assert title in text
    assert "TTFT p50 ms [95% CI]" in text and "TPOT p50 ms" in text and "out tok/s" in text
    assert "capacity req/s" in text and "goodput req/s" in text and "e2e≤50ms" in text
    assert "samples/s" in text
    # Notes are numbered across tables: validity reasons of the generate cell appear with their mark.
    assert "not valid for p99: requests (TTFT, TPOT, end-to-end)" in text


def _rows(run: RunRecord) -> dict[str, CellRow]:
    return {row.scenario: row for row in cell_rows([run])}


def test_rows_carry_the_figures_the_cost_report_needs(mixed_run: RunRecord) -> None:
    from harness.report.columns import columns_for

    rows = _rows(mixed_run)
    generate, server = _measured(mixed_run.cells[1]), _measured(mixed_run.cells[2])

    def value(scenario: str, key: str) -> object:
        (column,) = [c for c in columns_for(scenario, [rows[scenario]]) if c.key == key]
        return column.value(rows[scenario])

    assert value("generate", "output_tokens_per_s") == generate.output_tokens_per_s
    assert value("generate", "total_tokens_per_s") == generate.total_tokens_per_s
    ttft = generate.token_metrics.ttft_ns if generate.token_metrics else None
    assert ttft is not None
    assert value("generate", "ttft_p50_ms").value == pytest.approx(ttft.p50 / 1e6)  # type: ignore[attr-defined]
    assert value("server", "goodput_rps") == server.goodput_rps and value("server", "slo") == "e2e≤50ms"
    assert value("server", "capacity_rps") is None and value("server", "rate_rps") == 100.0
    assert value("offline", "output_tokens_per_s") == _measured(mixed_run.cells[3]).output_tokens_per_s


def test_markdown_and_csv_render(mixed_run: RunRecord) -> None:
    markdown = render([mixed_run], "markdown")
    assert markdown.count("scenario: ") == 4 and "| workload" in markdown
    csv_text = render([mixed_run], "csv")
    assert csv_text.splitlines()[0].startswith("run_id,") and "output_tokens_per_s" in csv_text.splitlines()[0]


def test_failed_cells_of_a_scenario_are_listed_in_its_table() -> None:
    config = CellConfig(
        workload="mlp",
        preset="tiny",
        backend="cpu",
        dtype="fp32",
        mode="eager",
        threads=1,
        batch_size=1,
        scenario="generate",
        params=ScenarioParams(prompt_tokens=4, output_tokens=2),
    )
    failed = run_cell(config, SHORT)
    assert failed.status == "failed"
    text = render([round_trip(failed)])
    assert "scenario: generate" in text and "FAILED" in text and "needs a decoder workload" in text


def test_load_scenarios_are_priced_per_token_and_at_capacity(mixed_run: RunRecord) -> None:
    from harness.runfile.price import Price

    price = Price("local", "local", "on-demand", 3.6, "test", "2026-11-24")
    generate = mixed_run.cells[1]
    server = mixed_run.cells[2]
    assert server.measurement is not None
    server = replace(server, measurement=replace(server.measurement, capacity_rps=50.0))
    run = replace(mixed_run, pricing=price, cells=(generate, server))
    rows = _rows(run)
    measured = _measured(generate)
    assert measured.output_tokens_per_s and measured.total_tokens_per_s
    # $3.60/h is $0.001/s: per million of a rate r/s that is 1000 / r dollars.
    gen = rows["generate"]
    assert gen.usd_per_million_output_tokens == pytest.approx(1000 / measured.output_tokens_per_s)
    assert gen.usd_per_million_total_tokens == pytest.approx(1000 / measured.total_tokens_per_s)
    srv = rows["server"]
    assert srv.usd_per_million_at_capacity == pytest.approx(1000 / 50.0)  # batch 1
    assert srv.usd_per_million_headline == srv.usd_per_million_at_capacity
    text = render([run])
    assert "$/M out tok" in text and "$/M inf @capacity" in text


def test_a_concurrency_sweep_shows_its_users_and_measured_token_counts(mixed_run: RunRecord) -> None:
    from harness.report.columns import columns_for

    (generate,) = [c for c in mixed_run.cells if c.config.scenario == "generate"]
    swept = replace(generate, config=replace(generate.config, params=replace(generate.config.params, concurrency=4)))
    # What the cell measured wins over what it asked (an engine's mean prompt, as the server counted).
    measured = _measured(generate)
    assert measured.generation is not None
    counted = replace(measured, generation=replace(measured.generation, prompt_tokens=9))
    swept = replace(swept, measurement=counted)
    rows = cell_rows([replace(mixed_run, cells=(generate, swept))])
    names = [column.key for column in columns_for("generate", rows)]
    assert "concurrency" in names
    users = next(c for c in columns_for("generate", rows) if c.key == "concurrency")
    prompt = next(c for c in columns_for("generate", rows) if c.key == "prompt_tokens")
    assert [users.value(r) for r in rows] == [1, 4]
    assert [prompt.value(r) for r in rows] == [8, 9]
    # Without a sweep there is nothing to tell apart: no users column.
    alone = cell_rows([replace(mixed_run, cells=(generate,))])
    assert "concurrency" not in [column.key for column in columns_for("generate", alone)]


def test_a_decoder_server_cell_prices_its_tokens_at_the_capacity_not_the_measured_rate() -> None:
    from harness.runfile.price import Price

    price = Price("local", "local", "on-demand", 3.6, "test", "2026-11-24")
    cell = _cell("llama", "server", rate=4.0, slo_ttft_ms=1000.0, prompt_tokens=8, output_tokens=3)
    measured = _measured(cell)
    assert measured.server is not None
    completed = measured.server.completed_rps
    assert completed > 0 and measured.output_tokens_per_s == pytest.approx(completed * 3)
    # The measured run completed `completed` req/s with 3 output (11 total) tokens each; the
    # search found 10 req/s: tokens are priced at 30 (110) per second, not at the measured rate.
    cell = replace(cell, measurement=replace(measured, capacity_rps=10.0))
    run = replace(round_trip(cell), pricing=price)
    (row,) = cell_rows([run])
    assert row.usd_per_million_output_tokens_at_capacity == pytest.approx(1000 / 30)
    assert row.usd_per_million_total_tokens_at_capacity == pytest.approx(1000 / 110)
    assert row.usd_per_million_output_tokens == pytest.approx(1000 / (completed * 3))
    text = render([run])
    assert "$/M out tok @capacity" in text and "$/M tok @capacity" in text and "$/M out tok measured" in text
