"""Comparing runs: known shifts are flagged, equal distributions are not, and the gate's exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.report.compare import (
    bootstrap_quantile,
    compare_runs,
    environment_differences,
    ratio_ci,
    regressions,
    render_comparison,
)
from tests.harness.runfactory import ENVIRONMENT, lognormal_samples, make_cell, make_failed_cell, make_run, write_run

N = 2000


def _pair(shift: float, seed: int = 1, n: int = N) -> tuple[list[int], list[int]]:
    return lognormal_samples(1e6, n, seed), lognormal_samples(1e6 * shift, n, seed + 1000)


def test_five_percent_slower_is_flagged() -> None:
    base, new = _pair(1.05)
    ci = ratio_ci(base, new)
    assert 1.0 < ci.low < ci.estimate < ci.high
    assert ci.estimate == pytest.approx(1.05, abs=0.02)
    comparison = compare_runs(make_run([make_cell(base)]), make_run([make_cell(new)]))
    (cell,) = comparison.cells
    assert cell.verdict == "slower" and cell.change_pct == pytest.approx(5.0, abs=2.0)


def test_five_percent_faster_is_flagged_as_faster() -> None:
    base, new = _pair(0.95)
    (cell,) = compare_runs(make_run([make_cell(base)]), make_run([make_cell(new)])).cells
    assert cell.verdict == "faster"


def test_two_samples_of_one_distribution_are_not_flagged() -> None:
    # 95% intervals: about 1 in 20 pairs of equal distributions is flagged by chance. Over 40 fixed
    # pairs, allow up to 5 (binomial(40, 0.05) exceeds 5 with probability 1.4%, and the seeds are fixed).
    verdicts = []
    for seed in range(40):
        base, new = _pair(1.0, seed=seed, n=500)
        ci = ratio_ci(base, new, seed=seed)
        verdicts.append(ci.low > 1.0 or ci.high < 1.0)
    assert sum(verdicts) <= 5
    base, new = _pair(1.0)
    (cell,) = compare_runs(make_run([make_cell(base)]), make_run([make_cell(new)])).cells
    assert cell.verdict == "no significant change"


def test_the_exact_bootstrap_matches_resampling() -> None:
    # The Beta order-statistic draw must give the same distribution as resampling with replacement.
    x = np.random.default_rng(7).lognormal(0.0, 0.5, 201)
    for q in (0.5, 0.99, 0.37):
        exact = bootstrap_quantile(x, q, 40_000, np.random.default_rng(1))
        rng = np.random.default_rng(2)
        resampled = np.percentile(x[rng.integers(0, x.size, (40_000, x.size))], q * 100, axis=1)
        for level in (0.05, 0.25, 0.5, 0.75, 0.95):
            assert np.quantile(exact, level) == pytest.approx(np.quantile(resampled, level), rel=0.02), (q, level)


def test_cells_are_matched_by_configuration_and_failures_are_reported() -> None:
    base = make_run(
        [
            make_cell(lognormal_samples(1e6, 300, 1)),
            make_cell(lognormal_samples(2e6, 300, 2), batch_size=4),
            make_cell(lognormal_samples(1e6, 300, 3), dtype="bf16"),
        ]
    )
    new = make_run(
        [
            make_cell(lognormal_samples(1e6, 300, 4)),
            make_failed_cell(batch_size=4),
            make_cell(lognormal_samples(1e6, 300, 5), batch_size=8),
        ]
    )
    comparison = compare_runs(base, new)
    by_id = {c.cell_id: c for c in comparison.cells}
    assert by_id["mlp/tiny/cpu/fp32/eager/tdefault/bs1/latency"].status == "compared"
    assert by_id["mlp/tiny/cpu/fp32/eager/tdefault/bs4/latency"].status == "failed in new"
    assert comparison.only_in_base == ("mlp/tiny/cpu/bf16/eager/tdefault/bs1/latency",)
    assert comparison.only_in_new == ("mlp/tiny/cpu/fp32/eager/tdefault/bs8/latency",)
    assert [c.cell_id for c in regressions(comparison, 50.0)] == ["mlp/tiny/cpu/fp32/eager/tdefault/bs4/latency"]


def test_environment_differences_are_named() -> None:
    other = json.loads(json.dumps(ENVIRONMENT))
    other["cpu"]["model"] = "AMD EPYC 9R14"
    other["packages"]["torch"] = "2.14.0+cpu"
    other["torch"]["num_threads"] = 4
    warnings = environment_differences(make_run([]), make_run([], environment=other))
    assert "CPU model differs: 'Intel(R) Xeon(R) Platinum 8488C' in base, 'AMD EPYC 9R14' in new" in warnings
    assert "package torch differs: '2.13.0+cpu' in base, '2.14.0+cpu' in new" in warnings
    assert "torch intra-op threads differs: 8 in base, 4 in new" in warnings
    assert environment_differences(make_run([]), make_run([])) == []


def test_the_gate_needs_significance_and_a_slowdown_beyond_the_threshold() -> None:
    base, new = _pair(1.05)
    comparison = compare_runs(make_run([make_cell(base)]), make_run([make_cell(new)]))
    assert len(regressions(comparison, 2.0)) == 1
    assert regressions(comparison, 10.0) == []
    text = render_comparison(comparison, "markdown", 2.0)
    assert "REGRESSION: 1 cell(s) fail --fail-if-slower 2" in text and text.startswith("### base ")
    data = json.loads(render_comparison(comparison, "json", 2.0))
    assert data["gate"]["failing"] == ["mlp/tiny/cpu/fp32/eager/tdefault/bs1/latency"]
    assert data["cells"][0]["p50"]["low"] > 1.0


def _files(tmp_path: Path, shift: float, environment: dict[str, Any] | None = None) -> tuple[str, str]:
    base, new = _pair(shift)
    base_run = make_run([make_cell(base)], run_id="20261101T100000Z-base00")
    new_run = make_run([make_cell(new)], run_id="20261102T100000Z-new000", environment=environment)
    return str(write_run(base_run, tmp_path)), str(write_run(new_run, tmp_path))


def test_gate_exit_codes(run_cli: Any, tmp_path: Path) -> None:
    (tmp_path / "slower").mkdir()
    (tmp_path / "same").mkdir()
    slower, same = _files(tmp_path / "slower", 1.05), _files(tmp_path / "same", 1.0)
    failed = run_cli("compare", *slower, "--fail-if-slower", "2")
    assert failed.returncode == 1, failed.stderr
    assert "REGRESSION" in failed.stdout and "slower (+" in failed.stdout
    passed = run_cli("compare", *slower, "--fail-if-slower", "10")
    assert passed.returncode == 0 and "gate passed" in passed.stdout
    assert run_cli("compare", *same, "--fail-if-slower", "2").returncode == 0
    assert run_cli("compare", *slower).returncode == 0  # no gate asked for: report only


def test_compare_warns_when_the_environments_differ(run_cli: Any, tmp_path: Path) -> None:
    other = json.loads(json.dumps(ENVIRONMENT))
    other["cpu"]["model"] = "AMD EPYC 9R14"
    done = run_cli("compare", *_files(tmp_path, 1.0, other))
    assert done.returncode == 0
    assert "warning: CPU model differs" in done.stdout


def test_bad_inputs_exit_2_with_one_line(run_main: Any, tmp_path: Path) -> None:
    good, _ = _files(tmp_path, 1.0)
    other_version = tmp_path / "v2.json"
    other_version.write_text(Path(good).read_text().replace('"schema_version": 2', '"schema_version": 99'))
    truncated = tmp_path / "truncated.json"
    truncated.write_text(Path(good).read_text()[:500])
    unmatched = write_run(
        make_run([make_cell([1000] * 20, workload="resnet50")], run_id="20261103T100000Z-other0"), tmp_path
    )
    cases = {
        str(other_version): "schema version 99",
        str(truncated): "not valid JSON",
        str(tmp_path / "missing.json"): "does not exist",
        str(unmatched): "no cell of",
    }
    for new, expected in cases.items():
        done = run_main("compare", good, new, "--fail-if-slower", "5")
        assert done.returncode == 2, (new, done.stderr)
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("siliconbench: error:"), done.stderr
        assert expected in done.stderr
    assert run_main("compare", good, good, "--fail-if-slower", "-1").returncode == 2
