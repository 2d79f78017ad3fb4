"""Reports show only the intervals a cell's samples back, the bound that exists otherwise, and why."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from harness.measure.stats import summarize
from harness.report.formats import render
from harness.report.rows import cell_rows
from harness.runfile.codec import decode_run, encode_run
from tests.harness.runfactory import lognormal_samples, make_cell, make_run


def _run(*counts: int):  # type: ignore[no-untyped-def]
    return make_run([make_cell(lognormal_samples(1e6 * (i + 1), n, i), batch_size=i + 1) for i, n in enumerate(counts)])


def _p99_lower_bound_ms(n: int, seed: int, scale: float = 1e6) -> float:
    """The highest order statistic below the p99 with 95%: X(r), P(Bin(n, 0.99) ≥ r) ≥ 0.95."""
    from scipy import stats

    r = max(k for k in range(1, n + 1) if stats.binom.sf(k - 1, n, 0.99) >= 0.95)
    return sorted(lognormal_samples(scale, n, seed))[r - 1] / 1e6


def test_a_small_cell_shows_what_its_p99_samples_back_and_a_large_one_its_interval() -> None:
    from harness.report.columns import fmt

    text = render([_run(60, 400)])
    small, large = (line.split() for line in text.splitlines()[2:4])
    # 60 samples hold the p99 below their max only with 1 − 0.99^60 = 45%: no "≤ max (45%)", but the
    # lower bound they do back at 95%.
    assert "≤" not in small and "(45%)" not in " ".join(small)
    assert f"≥ {fmt(_p99_lower_bound_ms(60, 0))}" in " ".join(small)
    assert "≥" not in large and text.count("[") >= 5  # p50, p90 both rows; p99 of the 400-sample row
    assert "Intervals withheld:" in text
    assert "p99: no 95% interval in 1 cell(s) (fewer than the 368 samples one needs)" in text
    assert "a 95% lower bound (no upper bound holds; one needs ≥ 299 samples)" in text
    assert "--tail 99" in text


def test_every_format_says_at_least_never_a_low_confidence_upper_bound() -> None:
    run = _run(60)
    for fmt_name in ("table", "markdown", "html"):
        text = render([run], fmt_name)
        assert "≥ " in text and "(45%)" not in text, fmt_name
    csv_text = render([run], "csv")
    assert "p99_ms_at_least" in csv_text.splitlines()[0]


def test_every_cell_backed_means_no_withheld_section() -> None:
    assert "Intervals withheld" not in render([_run(400, 500)])


def test_machine_formats_carry_the_lower_bound_and_its_confidence() -> None:
    from scipy import stats

    (row, _) = json.loads(render([_run(60, 400)], "json"))
    assert row["p99_ms_lo"] is None and row["p99_ms_hi"] is None
    assert row["p99_ms_bound"] is None and row["p99_ms_bound_confidence"] is None
    assert row["p99_ms_at_least"] == _p99_lower_bound_ms(60, 0)
    assert row["p99_ms_at_least_confidence"] >= 0.95
    r = max(k for k in range(1, 61) if stats.binom.sf(k - 1, 60, 0.99) >= 0.95)
    assert row["p99_ms_at_least_confidence"] == pytest.approx(stats.binom.sf(r - 1, 60, 0.99), rel=1e-12)
    assert row["p90_ms_lo"] is not None  # 60 samples back the p90 (36 needed)


def test_a_run_file_from_before_keeps_its_bootstrap_interval_only_where_the_count_backs_it() -> None:
    run = _run(60, 400)
    old_cells = []
    for cell in run.cells:
        assert cell.measurement is not None
        summary = cell.measurement.latency_ns
        # What a version-1 writer recorded: bootstrap intervals for every percentile, no ``intervals``.
        fake_ci = {k: (getattr(summary, k) * 0.99, getattr(summary, k) * 1.01) for k in ("p50", "p90", "p99")}
        old = replace(summary, intervals={}, ci=fake_ci)
        old_cells.append(replace(cell, measurement=replace(cell.measurement, latency_ns=old)))
    small, large = cell_rows([replace(run, cells=tuple(old_cells))])
    p99_small, p99_large = small.latency_ms("p99"), large.latency_ms("p99")
    assert p99_small is not None and p99_small.low is None and p99_small.needs == 368
    assert p99_large is not None and p99_large.low is not None
    p90_small = small.latency_ms("p90")
    assert p90_small is not None and p90_small.low is not None


def test_intervals_and_the_stopping_targets_survive_the_run_file() -> None:
    run = _run(60)
    again = decode_run(json.loads(encode_run(run)), "test")
    assert again.cells[0].measurement == run.cells[0].measurement
    summary = summarize(lognormal_samples(1e6, 60, 0))
    assert run.cells[0].measurement is not None
    assert run.cells[0].measurement.latency_ns.intervals["p99"] == summary.intervals["p99"]
