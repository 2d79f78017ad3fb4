"""The report carries uncertainty into cost, capacity, % of peak and the verdict across runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.measure.between import spread_of
from harness.measure.peak import peak_key
from harness.measure.stats import median_ci
from harness.pricing.catalog import Price
from harness.report.tables import cell_rows, render
from harness.report.uncertainty import uncertainty_fields
from tests.harness.runfactory import ENVIRONMENT, lognormal_samples, make_cell, make_run


def _price(usd_per_hour: float) -> dict:
    return Price(None, None, None, usd_per_hour, "test contract", "2026-10-01").to_dict()


def test_cost_interval_is_the_median_interval_mapped_through_the_price() -> None:
    samples = lognormal_samples(2e6, 400, seed=1)
    run = make_run([make_cell(samples, batch_size=2)], pricing=_price(1.8))
    (row,) = cell_rows([run])
    p50_lo, p50_hi = row["p50_lo_ms"] / 1e3, row["p50_hi_ms"] / 1e3
    # $1.80/h over 3600 s at 2/p50 per second, per million: the slow end of the median gives the high cost.
    assert row["usd_per_million_lo"] == pytest.approx(1.8 / (3600 * 2 / p50_lo) * 1e6)
    assert row["usd_per_million_hi"] == pytest.approx(1.8 / (3600 * 2 / p50_hi) * 1e6)
    assert row["usd_per_million_lo"] < row["usd_per_million"] < row["usd_per_million_hi"]
    assert row["throughput_per_s_lo"] == pytest.approx(2 / p50_hi)
    text = render([run], "table")
    assert f"[{row['usd_per_million_lo']:.3g}, {row['usd_per_million_hi']:.3g}]" in text


def test_fraction_of_peak_from_the_runs_measured_peak() -> None:
    environment = dict(ENVIRONMENT)
    environment["matmul_peaks"] = {peak_key("cpu", None, "fp32", None): {"flops_per_s": 4e9, "size": 1024}}
    cell = make_cell([1_000_000] * 20)  # 1 ms: 1000/s x 2 MFLOP = 2 GFLOP/s
    (row,) = cell_rows([make_run([cell], environment=environment)])
    assert row["fraction_of_peak"] == pytest.approx(0.5)
    assert "% peak" in render([make_run([cell], environment=environment)], "table")
    assert "50%" in render([make_run([cell], environment=environment)], "table")
    # No peak recorded (older runs): no column, no figure.
    (bare,) = cell_rows([make_run([cell])])
    assert bare.get("fraction_of_peak") is None


def test_processes_widen_the_throughput_interval() -> None:
    rng = np.random.default_rng(3)
    per_process = [rng.lognormal(np.log(1e6 * f), 0.05, 200) for f in (1.0, 1.08, 0.95, 1.1, 0.97)]
    pooled = [int(x) for p in per_process for x in p]
    cell = make_cell(pooled)
    spread = spread_of(per_process)
    cell["processes"] = {
        "medians_ns": list(spread.medians_ns),
        "mean_ns": spread.mean_ns,
        "low_ns": spread.low_ns,
        "high_ns": spread.high_ns,
        "confidence": 0.95,
    }
    run = make_run([cell])
    (row,) = cell_rows([run])
    assert row["processes"] == 5
    assert row["process_rel_spread"] == pytest.approx(
        (max(spread.medians_ns) - min(spread.medians_ns)) / spread.mean_ns
    )
    # The p50 and throughput intervals are the between-process ones, far wider than the pooled median's.
    assert (row["p50_lo_ms"], row["p50_hi_ms"]) == (spread.low_ns / 1e6, spread.high_ns / 1e6)
    pooled_lo, pooled_hi = median_ci(pooled)
    assert row["throughput_per_s_hi"] - row["throughput_per_s_lo"] > 3 * (1e9 / pooled_lo - 1e9 / pooled_hi)
    assert "between procs" in render([run], "table")


def test_capacity_bracket_and_confidence_that_p99_is_met() -> None:
    samples = [4_000_000] * 299 + [6_000_000]  # one of 300 above a 5 ms target
    cell = {
        "config": {"backend": "cpu", "dtype": "fp32", "batch_size": 2, "threads": None, "device": None},
        "capacity_rps": 40.0,
        "throughput_per_s": 80.0,
        "samples_ns": samples,
        "latency_ns": {},
        "server": {"slo_ms": {"e2e_p99": 5.0}, "search": {"lowest_failing_rps": 42.0}},
    }
    fields = uncertainty_fields({}, cell, 3.6)
    assert fields["capacity_hi_rps"] == 42.0
    assert fields["capacity_met_confidence"] == pytest.approx(1 - 0.99**300 - 300 * 0.01 * 0.99**299)
    # Cost per million inferences if the true capacity were the failing rate: 3.6 / (3600 x 42 x 2) x 1e6.
    assert fields["usd_per_million_at_capacity_lo"] == pytest.approx(3.6 / (3600 * 84) * 1e6)


def _runs_on_two_machines() -> list[dict]:
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
    # g5 would match at $0.36/h x (its throughput / c7i's): about 4 x 0.36.
    rows = {r["run_id"]: r for r in data["cells"]}
    ratio = rows["20261101T100000Z-dddddd"]["throughput_per_s"] / rows["20261101T100000Z-cccccc"]["throughput_per_s"]
    assert verdict["break_even_usd_per_hour"]["estimate"] == pytest.approx(0.36 * ratio)


def test_no_verdict_from_one_run() -> None:
    (run, _) = _runs_on_two_machines()
    assert "Across runs" not in render([run], "table", slo_p99_ms=50.0)
    assert json.loads(render([run], "json", slo_p99_ms=50.0))["verdicts"] == []
