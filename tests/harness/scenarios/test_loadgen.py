"""The MLPerf LoadGen adapter: summary parsing, and end-to-end runs on the tiny decoder.

The runs are short (LoadGen's min_duration is the cell's 0.3 s budget), so LoadGen may judge them
INVALID, by early stopping for instance: the tests check that its verdict is recorded faithfully,
not that it is VALID.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from harness.measure.sampler import SamplingPolicy
from harness.run.cell import run_cell
from harness.scenarios.loadgen import parse_summary

Roundtrip = Callable[[dict[str, Any]], dict[str, Any]]

SERVER_SUMMARY = """\
================================================
MLPerf Results Summary
================================================
SUT name : PySUT
Scenario : Server
Mode     : PerformanceOnly
Completed samples per second    : 48.47
Completed tokens per second: 204.09
Result is : INVALID
  Performance constraints satisfied : Yes
  Min duration satisfied : Yes
  Min queries satisfied : Yes
  Early stopping satisfied: NO
Recommendations:
TPOT Early Stopping Result:
 * Run unsuccessful.
 * Processed 20 queries.

================================================
Additional Stats
================================================
Scheduled samples per second : 49.27
Min latency (ns)                : 6363541
99.00 percentile latency (ns)   : 6797362
Completed tokens per second                 : 204.09
"""


def test_parse_summary() -> None:
    parsed = parse_summary(SERVER_SUMMARY)
    assert parsed["verdict"] == "INVALID"
    assert parsed["criteria"] == {
        "Performance constraints satisfied": True,
        "Min duration satisfied": True,
        "Min queries satisfied": True,
        "Early stopping satisfied": False,
    }
    fields = parsed["fields"]
    assert fields["Scenario"] == "Server"
    assert fields["Completed samples per second"] == 48.47
    assert fields["Completed tokens per second"] == 204.09
    assert fields["99.00 percentile latency (ns)"] == 6797362
    assert fields["Scheduled samples per second"] == 49.27
    assert not any(key.startswith("*") for key in fields)


def test_parse_summary_of_a_valid_run_and_of_nothing() -> None:
    assert parse_summary("Result is : VALID\n  Min duration satisfied : Yes\n")["verdict"] == "VALID"
    assert parse_summary("")["verdict"] is None


@pytest.fixture
def loadgen() -> None:
    pytest.importorskip("mlperf_loadgen", reason="MLPerf LoadGen is not installed: pip install 'siliconbench[loadgen]'")


@pytest.mark.usefixtures("loadgen")
@pytest.mark.parametrize(
    ("scenario", "extra", "loadgen_name"),
    [
        ("latency", {}, "SingleStream"),
        ("server", {"rate": 40.0, "slo_ttft_ms": 500.0, "slo_tpot_ms": 500.0}, "Server"),
        ("offline", {}, "Offline"),
    ],
)
def test_loadgen_end_to_end_on_the_tiny_decoder(
    scenario: str,
    extra: dict[str, float],
    loadgen_name: str,
    tiny_cell: Any,
    short: SamplingPolicy,
    through_run_file: Roundtrip,
) -> None:
    cell = tiny_cell("llama", scenario, prompt_tokens=8, output_tokens=4, loadgen=True, **extra)
    record = run_cell(cell, short)
    assert record.status == "ok", record.error
    assert record.id.endswith("-loadgen")
    result = record.measurement.loadgen
    assert result.scenario == loadgen_name
    assert result.verdict in ("VALID", "INVALID")
    assert f"Result is : {result.verdict}" in result.summary_text  # LoadGen's own words, kept
    assert result.valid == (result.verdict == "VALID")
    assert result.criteria and all(isinstance(v, bool) for v in result.criteria.values())
    assert result.settings["use_token_latencies"] is True
    assert result.settings["min_duration_ms"] == 300
    assert record.measurement.throughput_per_s > 0 and record.measurement.output_tokens_per_s > 0
    assert result.tokens.ttft_ns.count == len(record.measurement.samples_ns) >= short.min_count
    if result.verdict == "INVALID":
        assert not record.measurement.validity.valid
        assert any(r.startswith("LoadGen: INVALID") for r in record.measurement.validity.reasons)
    if scenario == "server":
        assert record.measurement.goodput_rps > 0
    through_run_file(record)


@pytest.mark.usefixtures("loadgen")
def test_loadgen_single_stream_on_a_plain_model(tiny_cell: Any, short: SamplingPolicy) -> None:
    record = run_cell(tiny_cell("mlp", "latency", loadgen=True), short)
    assert record.status == "ok", record.error
    assert record.measurement.loadgen.scenario == "SingleStream"
    assert "use_token_latencies" not in record.measurement.loadgen.settings
    assert record.measurement.throughput_per_s == record.measurement.loadgen.result["QPS w/o loadgen overhead"]


@pytest.mark.usefixtures("loadgen")
def test_loadgen_server_for_a_decoder_needs_token_targets(tiny_cell: Any, short: SamplingPolicy) -> None:
    record = run_cell(
        tiny_cell("llama", "server", prompt_tokens=8, output_tokens=2, loadgen=True, rate=10.0, slo_p99_ms=100.0), short
    )
    assert record.status == "failed" and "--slo-ttft and --slo-tpot" in record.error.message
