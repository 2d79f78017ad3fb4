"""The engine's own view in the report: the prefix cache hit rate beside the designed reuse, a
trace's lateness and TTFT by turn, read from the run file (the frozen v2 engine fixture, with the
optional parts set)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from harness.measure.stats import summarize
from harness.report.formats import render
from harness.runfile.engine import EngineMetrics, MetricsSample
from harness.runfile.files import load_run
from harness.runfile.records import ReuseRecord, RunRecord, TraceRecord, TurnRecord

FIXTURE = Path(__file__).parents[1] / "runfile" / "fixtures" / "run-v2-engine.json"


def _with_view(run: RunRecord) -> RunRecord:
    cell = run.cells[0]
    assert cell.measurement is not None and cell.measurement.engine is not None
    part = cell.measurement.engine
    metrics = EngineMetrics(
        "http://e",
        0.5,
        (
            MetricsSample(0.0, 0, 0, 0.01, 0, prefix_cache_queries_total=5000, prefix_cache_hits_total=1000),
            MetricsSample(0.5, 3, 2, 0.25, 1, prefix_cache_queries_total=9000, prefix_cache_hits_total=3400),
        ),
    )
    part = replace(
        part,
        metrics=metrics,
        reuse=ReuseRecord(block_size=128, prompt_tokens=4000, designed_cached_tokens=2560, designed_rate=0.64),
        trace=TraceRecord(
            file="t.jsonl",
            format="mooncake",
            read=10,
            replayed=9,
            over_context=1,
            speed=1.0,
            block_size=64,
            span_s=3.6,
            lateness_ns=summarize([1e6, 2e6, 3e6], 0.95),
        ),
        turns=(
            TurnRecord(turn=0, requests=4, ok=4, history_tokens=120.0, ttft_ns=summarize([90e6, 110e6], 0.95)),
            TurnRecord(turn=1, requests=4, ok=4, history_tokens=300.0, ttft_ns=summarize([40e6, 60e6], 0.95)),
        ),
    )
    measured = replace(cell.measurement, engine=part)
    return replace(run, cells=(replace(cell, measurement=measured), *run.cells[1:]))


def test_the_text_report_sets_the_hit_rate_beside_the_designed_reuse() -> None:
    text = render([_with_view(load_run(FIXTURE))], "table")
    (line,) = [line for line in text.splitlines() if "prefix cache hits" in line and "designed" in line]
    # 2400 hits of 4000 queried tokens over the run (the counters' rises, not their totals).
    assert "prefix cache hits 60.0% (designed 64.0%, blocks of 128)" in line
    assert "KV cache peak 25.0%" in line and "preemptions 1" in line and "peak running/waiting 3/2" in line
    assert "mooncake trace: 9 sent, 1 over the context, lateness p50 2.0 ms" in line
    assert "TTFT p50 turn 1 100.0 ms, later turns 2: 50.0 ms (turn 2 history 300 tokens)" in line


def _json_cells(text: str) -> list[Any]:
    """The cells of a JSON report: the list itself, or its ``cells`` where the report carries more
    (an engine run's serving frontier, an SLO pick)."""
    data = json.loads(text)
    return list(data["cells"] if isinstance(data, dict) else data)


def test_json_and_markdown_carry_the_view_and_cells_without_it_do_not() -> None:
    plain = load_run(FIXTURE)
    assert "engine_view" not in _json_cells(render([plain], "json"))[0]
    (cell, *_) = _json_cells(render([_with_view(plain)], "json"))
    view = cell["engine_view"]
    assert view["prefix_cache_hit_rate"] == 0.6 and view["designed_reuse"] == 0.64
    assert view["trace"]["over_context"] == 1 and [t["turn"] for t in view["turns"]] == [0, 1]
    assert "**The engine's own view**" in render([_with_view(plain)], "markdown")


@pytest.mark.slow
def test_the_html_report_lists_the_view() -> None:
    html = render([_with_view(load_run(FIXTURE))], "html")
    assert "The engine&#x27;s own view" in html and "designed 64.0%" in html


def test_a_conversation_run_without_designed_reuse_says_why() -> None:
    run = _with_view(load_run(FIXTURE))
    cell = run.cells[0]
    assert cell.measurement is not None and cell.measurement.engine is not None
    why = "each turn's prompt ids are unknown: the engine has no POST /tokenize (HTTP 404 from http://e/tokenize)"
    part = replace(cell.measurement.engine, reuse=None, reuse_unknown=why)
    run = replace(run, cells=(replace(cell, measurement=replace(cell.measurement, engine=part)), *run.cells[1:]))
    text = render([run], "table")
    assert f"prefix cache hits 60.0% (no designed reuse: {why})" in text
    (data, *_) = _json_cells(render([run], "json"))
    assert data["engine_view"]["designed_reuse"] is None and data["engine_view"]["designed_reuse_unknown"] == why


def test_each_line_of_a_sweep_names_its_engine_configuration() -> None:
    run = _with_view(load_run(FIXTURE))
    cell = run.cells[0]
    engine = cell.config.params.engine
    assert engine is not None
    swept = replace(engine, spec=replace(engine.spec, engine_args=(("enable-prefix-caching", "false"),)))
    config = replace(cell.config, params=replace(cell.config.params, engine=swept))
    run = replace(run, cells=(replace(cell, config=config), *run.cells[1:]))
    text = render([run], "table")
    (line,) = [line for line in text.splitlines() if "prefix cache hits" in line and "designed" in line]
    assert " [enable-prefix-caching=false]: prefix cache hits" in line, line
