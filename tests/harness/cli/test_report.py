"""``siliconbench report`` end to end: formats, prices and cost, reports to a file, and bad run files
and price catalogs answered in one line."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from harness.runfile.files import load_run
from tests.cli import CliRunner, one_line_error
from tests.harness.runfactory import make_cell, make_run, write_run


def _runfile(tmp_path: Path) -> Path:
    # 2 ms per call at batch 1: 500 inferences per second.
    return write_run(make_run([make_cell([2_000_000] * 200)]), tmp_path)


def test_markdown_report_with_a_given_price_and_a_latency_target(run_cli: Any, tmp_path: Path) -> None:
    done = run_cli(
        "report", str(_runfile(tmp_path)), "--format", "markdown", "--price-per-hour", "0.36", "--slo-p99", "5"
    )
    assert done.returncode == 0, done.stderr
    assert "| $/M inf" in done.stdout
    assert "| 0.2 " in done.stdout  # 0.36 / (3600 * 500) * 1e6 = 0.2
    assert "$0.36/h (given on the command line (--price-per-hour), as of " in done.stdout
    assert "### At p99 <= 5 ms" in done.stdout


def test_csv_and_json_reports_carry_the_cost_columns(run_cli: Any, tmp_path: Path) -> None:
    path = str(_runfile(tmp_path))
    table = list(
        csv.DictReader(io.StringIO(run_cli("report", path, "--format", "csv", "--price-per-hour", "0.36").stdout))
    )
    assert float(table[0]["usd_per_million"]) == pytest.approx(0.2)
    data = json.loads(run_cli("report", path, "--format", "json", "--slo-p99", "5", "--price-per-hour", "0.36").stdout)
    assert data["cells"][0]["usd_per_million"] == pytest.approx(0.2)
    assert data["slo"][0]["cheapest"]["usd_per_million"] == pytest.approx(0.2)


def test_report_writes_to_a_file_when_asked(run_cli: Any, tmp_path: Path) -> None:
    target = tmp_path / "deep" / "report.md"
    done = run_cli("report", str(_runfile(tmp_path)), "--format", "markdown", "--output", str(target))
    assert done.returncode == 0 and done.stdout == ""
    assert "| workload" in target.read_text()


def test_report_rejects_bad_run_files_and_prices(run_main: Any, tmp_path: Path) -> None:
    good = _runfile(tmp_path)
    other_version = tmp_path / "v7.json"
    other_version.write_text(good.read_text().replace('"schema_version": 2', '"schema_version": 7'))
    one_line_error(run_main("report", str(other_version)), "has run-file schema version 7")
    truncated = tmp_path / "truncated.json"
    truncated.write_text(good.read_text()[:300])
    one_line_error(run_main("report", str(truncated)), "is not valid JSON (truncated or not a run file)")
    broken_price = tmp_path / "broken-price.json"
    data = json.loads(good.read_text())
    data["pricing"] = {"usd_per_hour": 0.5, "source": "lab"}  # no as_of date
    broken_price.write_text(json.dumps(data))
    one_line_error(run_main("report", str(broken_price)), "does not match run-file schema version 2 at pricing")
    bad_catalog = tmp_path / "prices.json"
    bad_catalog.write_text("{")
    aws = write_run(
        make_run(
            [make_cell([2_000_000] * 50)],
            run_id="20261101T100000Z-aws000",
            target={"kind": "aws", "instance_type": "c7i.xlarge", "region": "us-east-1"},
        ),
        tmp_path,
    )
    one_line_error(run_main("report", str(aws), "--prices", str(bad_catalog)), "is not valid JSON")
    assert run_main("report", str(good), "--price-per-hour", "0").returncode == 2
    assert run_main("report", str(good), "--slo-p99", "-3").returncode == 2


def test_an_aws_run_is_costed_from_the_bundled_catalog(run_main: Any, tmp_path: Path) -> None:
    aws = write_run(
        make_run(
            [make_cell([2_000_000] * 50)], target={"kind": "aws", "instance_type": "c7i.xlarge", "region": "us-west-2"}
        ),
        tmp_path,
    )
    done = run_main("report", str(aws), "--format", "json")
    (row,) = json.loads(done.stdout)
    assert row["usd_per_hour"] == 0.1785
    assert row["usd_per_million"] == pytest.approx(0.1785 / (3600 * 500) * 1e6)


@pytest.mark.slow
def test_run_records_the_price_and_reports_cost(run_cli: Any, tmp_path: Path) -> None:
    done = run_cli(
        "run",
        "--workload",
        "mlp",
        "--preset",
        "tiny",
        "--dtype",
        "fp32",
        "--max-time",
        "0.2",
        "--price-per-hour",
        "0.5",
        "--output",
        str(tmp_path),
        "--format",
        "markdown",
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    (runfile,) = tmp_path.glob("run-*.json")
    run = load_run(runfile)
    assert run.pricing is not None and run.pricing.usd_per_hour == 0.5 and "--price-per-hour" in run.pricing.source
    assert "$/M inf" in done.stdout and "$0.5/h (given on the command line" in done.stdout


def test_a_truncated_run_file_gets_one_line(run_main: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text('{"schema": "siliconbench/run", "schema_version": 1, "cells": [')
    one_line_error(run_main("report", str(path)), "is not valid JSON")
