"""The server scenario on real tiny models: a fixed rate, a capacity search, decoders' token SLOs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.measure.sampler import SamplingPolicy
from harness.run.cell import run_cell

Roundtrip = Callable[[dict[str, Any]], dict[str, Any]]


def test_fixed_rate_on_a_tiny_mlp(tiny_cell: Any, short: SamplingPolicy, through_run_file: Roundtrip) -> None:
    record = run_cell(tiny_cell("mlp", "server", rate=200.0), short)
    assert record.status == "ok", record.error
    assert record.id.endswith("/server-p128o128-r200")
    server = record.measurement.server
    assert server.mode == "fixed_rate" and server.rate_rps == 200.0
    assert server.requests == 60 and server.dropped == 0  # 200 requests/s for the 0.3 s budget
    assert record.measurement.capacity_rps is None and record.measurement.capacity_rps is None
    assert record.measurement.goodput_rps is None and server.slo_met is None  # no SLO, no goodput
    assert len(record.measurement.samples_ns) == 60 and record.measurement.latency_ns.count == 60
    assert record.measurement.sampling.stop_reason == "fixed_rate"
    assert record.measurement.correctness.passed
    assert through_run_file(record).measurement.server.requests == 60


def test_capacity_search_on_a_tiny_mlp(tiny_cell: Any, short: SamplingPolicy, through_run_file: Roundtrip) -> None:
    record = run_cell(tiny_cell("mlp", "server", slo_p99_ms=20.0), short)
    assert record.status == "ok", record.error
    server = record.measurement.server
    assert server.mode == "capacity_search"
    probes = server.probes
    passing = [p.rate_rps for p in probes if p.passed]
    assert passing, probes
    assert record.measurement.capacity_rps == record.measurement.capacity_rps == max(passing) == server.rate_rps
    if server.search.lowest_failing_rps is not None:
        assert server.search.lowest_failing_rps > record.measurement.capacity_rps
    assert record.measurement.goodput_rps == record.measurement.goodput_rps > 0
    assert server.slo_met is True
    assert record.measurement.latency_ns.p99 <= 20e6  # the reported probe met the SLO
    through_run_file(record)


def test_an_slo_below_the_unloaded_latency_has_no_capacity(tiny_cell: Any, short: SamplingPolicy) -> None:
    record = run_cell(tiny_cell("mlp", "server", slo_p99_ms=1e-6), short)
    assert record.status == "ok", record.error
    assert record.measurement.capacity_rps == 0.0 and record.measurement.goodput_rps == 0.0
    assert record.measurement.sampling.stop_reason == "nothing_passed"
    assert any("the median request, alone, already misses it" in w for w in record.measurement.warnings)
    assert record.measurement.validity.valid is False


def test_decoder_server_with_token_slos(tiny_cell: Any, short: SamplingPolicy, through_run_file: Roundtrip) -> None:
    cell = tiny_cell(
        "llama",
        "server",
        prompt_tokens=8,
        output_tokens=4,
        rate=50.0,
        slo_ttft_ms=1000.0,
        slo_tpot_ms=1000.0,
        concurrency=2,
    )
    record = run_cell(cell, short)
    assert record.status == "ok", record.error
    server = record.measurement.server
    assert server.concurrency == 2 and server.dropped == 0
    assert server.slo_met is True and record.measurement.goodput_rps > 0
    assert server.tokens.ttft_ns.count == server.requests == len(server.tokens.timelines_ns)
    assert all(len(offsets) == 4 for offsets in server.tokens.timelines_ns)
    assert server.tokens.itl_ns.count == 3 * server.requests
    assert record.measurement.output_tokens_per_s == record.measurement.output_tokens_per_s > 0
    assert record.measurement.total_tokens_per_s == 3 * record.measurement.output_tokens_per_s  # (8 + 4) / 4
    assert through_run_file(record).measurement.server.slo_met is True


def test_token_slos_need_a_decoder(tiny_cell: Any, short: SamplingPolicy) -> None:
    record = run_cell(tiny_cell("mlp", "server", slo_ttft_ms=5.0), short)
    assert record.status == "failed" and "apply to decoders" in record.error.message
