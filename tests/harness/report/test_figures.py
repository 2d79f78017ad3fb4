"""The report carries uncertainty into cost, capacity, % of peak and the verdict across runs."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from harness.measure.between import spread_of
from harness.measure.stats import median_ci
from harness.report import figures as u
from harness.report.formats import render
from harness.report.rows import cell_rows
from harness.runfile.price import Price
from harness.runfile.records import (
    CapacitySearchRecord,
    Peak,
    ProcessesPart,
    RunRecord,
    ServerPart,
    SloTargets,
    peak_key,
)
from tests.harness.runfactory import lognormal_samples, make_cell, make_run


def _price(usd_per_hour: float) -> dict:
    return Price(None, None, None, usd_per_hour, "test contract", "2026-10-01").to_dict()


def _with_measurement(run: RunRecord, **changes: object) -> RunRecord:
    cell = run.cells[0]
    assert cell.measurement is not None
    return replace(run, cells=(replace(cell, measurement=replace(cell.measurement, **changes)),))


def test_cost_interval_is_the_median_interval_mapped_through_the_price() -> None:
    samples = lognormal_samples(2e6, 400, seed=1)
    run = make_run([make_cell(samples, batch_size=2)], pricing=_price(1.8))
    (row,) = cell_rows([run])
    p50_lo, p50_hi = median_ci(samples)
    cost = u.usd_per_million_measured(row)
    assert cost is not None and cost.low is not None and cost.high is not None
    # $1.80/h over 3600 s at 2/p50 per second, per million: the slow end of the median gives the high cost.
    assert cost.low == pytest.approx(1.8 / (3600 * 2 / (p50_lo / 1e9)) * 1e6)
    assert cost.high == pytest.approx(1.8 / (3600 * 2 / (p50_hi / 1e9)) * 1e6)
    assert cost.low < cost.value < cost.high
    throughput = u.throughput(row)
    assert throughput is not None and throughput.low == pytest.approx(2 / (p50_hi / 1e9))
    text = render([run], "table")
    assert f"[{cost.low:.3g}, {cost.high:.3g}]" in text
    (data,) = json.loads(render([run], "json"))
    assert data["usd_per_million_lo"] == pytest.approx(cost.low)
    assert data["throughput_per_s_hi"] == pytest.approx(throughput.high)


def test_no_cost_interval_where_the_median_has_none() -> None:
    run = make_run([make_cell([1_000_000, 1_100_000, 1_200_000])], pricing=_price(1.0))  # 3 samples: p50 needs 6
    (row,) = cell_rows([run])
    cost = u.usd_per_million_measured(row)
    assert cost is not None and (cost.low, cost.high) == (None, None)


def test_fraction_of_peak_from_the_runs_measured_peak() -> None:
    run = make_run([make_cell([1_000_000] * 20)])  # 1 ms: 1000/s x 2 MFLOP = 2 GFLOP/s
    peak = Peak("fp32", "cpu", None, 4e9, 1024, "2026-11-29T00:00:00Z", "k")
    with_peak = replace(
        run, environment=replace(run.environment, matmul_peaks={peak_key("cpu", None, "fp32", None): peak})
    )
    (row,) = cell_rows([with_peak])
    assert u.fraction_of_peak(row) == pytest.approx(0.5)
    text = render([with_peak], "table")
    assert "% peak" in text and "50%" in text
    # No peak recorded (older runs): no column, no figure.
    (bare,) = cell_rows([run])
    assert u.fraction_of_peak(bare) is None
    assert "% peak" not in render([run], "table")


def test_a_cell_faster_than_its_peak_shows_no_fraction_over_100_percent() -> None:
    """A peak measured on a busy machine is no ceiling: the report says so instead of '664%'."""
    run = make_run([make_cell([1_000_000] * 20)])  # 2 GFLOP/s achieved
    low = Peak("fp32", "cpu", None, 1e9, 1024, "2026-11-29T00:00:00Z", "k")
    with_low = replace(
        run, environment=replace(run.environment, matmul_peaks={peak_key("cpu", None, "fp32", None): low})
    )
    (row,) = cell_rows([with_low])
    assert u.fraction_of_peak(row) is None and u.peak_exceeded(row)
    assert "200%" not in render([with_low], "table")


def test_processes_widen_the_p50_throughput_and_cost_intervals() -> None:
    rng = np.random.default_rng(3)
    per_process = [rng.lognormal(np.log(1e6 * f), 0.05, 200) for f in (1.0, 1.08, 0.95, 1.1, 0.97)]
    pooled = [int(x) for p in per_process for x in p]
    spread = spread_of(per_process)
    part = ProcessesPart(
        medians_ns=spread.medians_ns,
        counts=(200,) * 5,
        mean_ns=spread.mean_ns,
        std_ns=spread.std_ns,
        low_ns=spread.low_ns,
        high_ns=spread.high_ns,
        confidence=0.95,
        rel_spread=spread.rel_spread,
        planned=5,
        failed=0,
        stop_reasons=("converged",) * 5,
        started_utc=("2026-11-01T10:00:00Z",) * 5,
    )
    run = _with_measurement(make_run([make_cell(pooled)], pricing=_price(1.0)), processes=part)
    (row,) = cell_rows([run])
    assert u.process_spread(row) == pytest.approx(spread.rel_spread)
    p50 = u.p50_ms(row)
    assert p50 is not None and (p50.low, p50.high) == (spread.low_ns / 1e6, spread.high_ns / 1e6)
    pooled_lo, pooled_hi = median_ci(pooled)
    throughput = u.throughput(row)
    assert throughput is not None and throughput.low is not None and throughput.high is not None
    assert throughput.high - throughput.low > 3 * (1e9 / pooled_lo - 1e9 / pooled_hi)
    text = render([run], "table")
    assert "between procs" in text and f"±{spread.rel_spread / 2:.1%} (5)" in text


def _server(samples: list[int], capacity: float, failing: float | None) -> ServerPart:
    return ServerPart(
        mode="capacity_search",
        rate_rps=capacity,
        concurrency=1,
        slo_ms=SloTargets(e2e_p99=5.0),
        slo_met=True,
        capacity_rps=capacity,
        goodput_rps=capacity,
        completed_rps=capacity,
        dropped=0,
        requests=len(samples),
        duration_s=10.0,
        service_time_ns=1_000_000,
        search=CapacitySearchRecord(True, "converged", failing, 0.05),
        probes=(),
    )


def test_capacity_bracket_and_confidence_that_p99_is_met() -> None:
    samples = [4_000_000] * 299 + [6_000_000]  # one of 300 above a 5 ms target
    run = make_run([make_cell(samples, batch_size=2)], pricing=_price(3.6))
    run = _with_measurement(run, server=_server(samples, 40.0, 42.0), capacity_rps=40.0)
    (row,) = cell_rows([run])
    bracket = u.capacity(row)
    assert bracket is not None and (bracket.value, bracket.low, bracket.high) == (40.0, 40.0, 42.0)
    assert u.p99_met(row) == pytest.approx(1 - 0.99**300 - 300 * 0.01 * 0.99**299)
    cost = u.usd_per_million_at_capacity(row)
    # At the failing rate the cost would be 3.6 / (3600 x 42 x 2) x 1e6; at the capacity 3.6 / (3600 x 80) x 1e6.
    assert cost is not None and cost.low == pytest.approx(3.6 / (3600 * 84) * 1e6)
    assert cost.value == pytest.approx(3.6 / (3600 * 80) * 1e6)


def _runs_on_two_machines() -> list[RunRecord]:
    cheap = make_cell(lognormal_samples(4e6, 300, seed=5))  # 250/s at $0.36/h: $0.40 per million
    dear = make_cell(lognormal_samples(1e6, 300, seed=6))  # 1000/s at $3.60/h: $1.00 per million
    return [
        make_run(
            [cheap],
            run_id="20261101T100000Z-cccccc",
            target={"kind": "aws", "instance_type": "c7i.large"},
            pricing=_price(0.36),
        ),
        make_run(
            [dear],
            run_id="20261101T100000Z-dddddd",
            target={"kind": "aws", "instance_type": "g5.xlarge"},
            pricing=_price(3.6),
        ),
    ]


def test_report_slo_prints_the_verdict_across_machines() -> None:
    runs = _runs_on_two_machines()
    text = render(runs, "table", slo_p99_ms=50.0)
    assert "Across runs" in text
    line = next(x for x in text.splitlines() if "is cheaper than" in x)
    assert line.startswith("- mlp:tiny: c7i.large cpu fp32 eager bs1")
    assert "with probability > 0.999" in line
    data = json.loads(render(runs, "json", slo_p99_ms=50.0))
    (verdict,) = data["verdicts"]
    assert verdict["probability"] > 0.999
    rows = {r["run_id"]: r for r in data["cells"]}
    ratio = rows["20261101T100000Z-dddddd"]["throughput_per_s"] / rows["20261101T100000Z-cccccc"]["throughput_per_s"]
    assert verdict["break_even_usd_per_hour"]["estimate"] == pytest.approx(0.36 * ratio)
    assert "Across runs" in render(runs, "html", slo_p99_ms=50.0)


def test_no_verdict_from_one_run() -> None:
    (run, _) = _runs_on_two_machines()
    assert "Across runs" not in render([run], "table", slo_p99_ms=50.0)
    assert json.loads(render([run], "json", slo_p99_ms=50.0))["verdicts"] == []
