"""Reports of runs mixing scenarios: one titled table per scenario, its own columns, notes."""

from __future__ import annotations

from typing import Any

import pytest

from harness.measure.sampler import SamplingPolicy
from harness.report.tables import HEADERS, cell_rows, render
from harness.run.cell import run_cell
from harness.run.plan import CellConfig, ScenarioParams

SHORT = SamplingPolicy(max_time_s=0.2, warmup_time_s=0.01, warmup_min_count=1, min_count=3)


def _cell(workload: str, scenario: str, **params: Any) -> dict[str, Any]:
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
    assert record["status"] == "ok", record["error"]
    return record


@pytest.fixture(scope="module")
def mixed_run() -> dict[str, Any]:
    cells = [
        _cell("mlp", "latency"),
        _cell("llama", "generate", prompt_tokens=8, output_tokens=3),
        _cell("mlp", "server", rate=100.0, slo_p99_ms=50.0),
        _cell("llama", "offline", prompt_tokens=8, output_tokens=3),
    ]
    return {"run_id": "r1", "target": {"kind": "local"}, "cells": cells}


def test_latency_only_runs_print_as_before(mixed_run: dict[str, Any]) -> None:
    run = {**mixed_run, "cells": mixed_run["cells"][:1]}
    text = render([run])
    assert "scenario:" not in text
    assert text.splitlines()[0].split() == " ".join(HEADERS).split()


def test_each_scenario_gets_its_titled_table(mixed_run: dict[str, Any]) -> None:
    text = render([mixed_run])
    for title in ("scenario: latency", "scenario: generate", "scenario: server", "scenario: offline"):
        assert title in text
    assert "TTFT p50 ms [95% CI]" in text and "TPOT p50 ms" in text and "out tok/s" in text
    assert "capacity req/s" in text and "goodput req/s" in text and "e2e≤50ms" in text
    assert "samples/s" in text
    # Notes are numbered across tables: validity reasons of the generate cell appear with their mark.
    assert "not valid for p99: requests (TTFT, TPOT, end-to-end)" in text


def test_rows_carry_the_figures_the_cost_report_needs(mixed_run: dict[str, Any]) -> None:
    rows = {row["scenario"]: row for row in cell_rows([mixed_run])}
    generate, server, offline = mixed_run["cells"][1], mixed_run["cells"][2], mixed_run["cells"][3]
    assert rows["generate"]["output_tokens_per_s"] == generate["output_tokens_per_s"]
    assert rows["generate"]["total_tokens_per_s"] == generate["total_tokens_per_s"]
    assert rows["generate"]["ttft_p50_ms"] == pytest.approx(generate["generation"]["ttft_ns"]["p50"] / 1e6)
    assert rows["server"]["goodput_rps"] == server["goodput_rps"] and rows["server"]["slo"] == "e2e≤50ms"
    assert rows["server"]["capacity_rps"] is None and rows["server"]["rate_rps"] == 100.0
    assert rows["offline"]["output_tokens_per_s"] == offline["output_tokens_per_s"]
    assert rows["latency"].keys() >= {"p50_ms", "throughput_per_s", "scenario"}
    assert "valid" not in rows["latency"]  # latency rows keep their columns


def test_markdown_and_csv_render(mixed_run: dict[str, Any]) -> None:
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
    assert failed["status"] == "failed"
    text = render([{"run_id": "r2", "target": {"kind": "local"}, "cells": [failed]}])
    assert "scenario: generate" in text and "FAILED" in text and "needs a decoder workload" in text


def test_load_scenarios_are_priced_per_token_and_at_capacity(mixed_run: dict[str, Any]) -> None:
    from harness.pricing.catalog import Price

    price = Price("local", "local", "on-demand", 3.6, "test", "2026-11-24")
    generate = dict(mixed_run["cells"][1])
    server = {**mixed_run["cells"][2], "capacity_rps": 50.0}
    run = {**mixed_run, "pricing": price.to_dict(), "cells": [generate, server]}
    rows = {row["scenario"]: row for row in cell_rows([run])}
    # $3.60/h is $0.001/s: per million of a rate r/s that is 1000 / r dollars.
    gen = rows["generate"]
    assert gen["usd_per_million_output_tokens"] == pytest.approx(1000 / generate["output_tokens_per_s"])
    assert gen["usd_per_million_total_tokens"] == pytest.approx(1000 / generate["total_tokens_per_s"])
    srv = rows["server"]
    assert srv["usd_per_million_at_capacity"] == pytest.approx(1000 / 50.0)  # batch 1
    assert srv["usd_per_million"] == srv["usd_per_million_at_capacity"]
    text = render([run])
    assert "$/M out tok" in text and "$/M inf @capacity" in text


def test_a_decoder_server_cell_prices_its_tokens_at_the_capacity_not_the_measured_rate() -> None:
    from harness.pricing.catalog import Price

    price = Price("local", "local", "on-demand", 3.6, "test", "2026-11-24")
    cell = _cell("llama", "server", rate=4.0, slo_ttft_ms=1000.0, prompt_tokens=8, output_tokens=3)
    completed = cell["server"]["completed_rps"]
    assert completed > 0
    # The measured run completed `completed` req/s with 3 output (11 total) tokens each; the
    # search found 10 req/s: tokens are priced at 30 (110) per second, not at the measured rate.
    cell = {**cell, "capacity_rps": 10.0}
    run = {"run_id": "r", "target": {"kind": "local"}, "pricing": price.to_dict(), "cells": [cell]}
    (row,) = cell_rows([run])
    assert cell["output_tokens_per_s"] == pytest.approx(completed * 3)
    assert row["usd_per_million_output_tokens_at_capacity"] == pytest.approx(1000 / 30)
    assert row["usd_per_million_total_tokens_at_capacity"] == pytest.approx(1000 / 110)
    assert row["usd_per_million_output_tokens"] == pytest.approx(1000 / (completed * 3))
    text = render([run])
    assert "$/M out tok @capacity" in text and "$/M tok @capacity" in text
