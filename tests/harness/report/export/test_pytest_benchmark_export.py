"""pytest-benchmark JSON export, read back by pytest-benchmark's own ``compare`` command."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.report.export.pytest_benchmark import to_pytest_benchmark
from tests.harness.runfactory import lognormal_samples, make_cell, make_failed_cell, make_run, write_run

pytest.importorskip("pytest_benchmark")


def _run() -> dict[str, Any]:
    return make_run(
        [
            make_cell(lognormal_samples(2e6, 300, 1)),
            make_cell(lognormal_samples(5e6, 300, 2), batch_size=8, threads=4),
            make_failed_cell(batch_size=64),
        ]
    )


def test_each_ok_cell_becomes_one_benchmark_with_its_samples_in_seconds() -> None:
    run = _run()
    document = to_pytest_benchmark(run, include_data=True)
    assert [b["name"] for b in document["benchmarks"]] == [
        "mlp:tiny[cpu-fp32-eager-1-latency]",
        "mlp:tiny[cpu-fp32-eager-4-8-latency]",
    ]  # the failed cell is left out, as pytest-benchmark leaves out errored benchmarks
    first = document["benchmarks"][0]
    samples_s = np.asarray(run.cells[0].measurement.samples_ns) / 1e9
    assert first["stats"]["rounds"] == 300 and first["stats"]["iterations"] == 1
    assert first["stats"]["median"] == pytest.approx(float(np.median(samples_s)))
    assert first["stats"]["min"] == pytest.approx(float(samples_s.min()))
    assert first["stats"]["data"] == pytest.approx(list(samples_s))
    assert first["extra_info"]["cell_id"] == run.cells[0].id
    assert first["extra_info"]["throughput_per_s"] == run.cells[0].measurement.throughput_per_s
    assert document["commit_info"]["id"] == run.environment.git_commit
    assert document["machine_info"]["processor"] == run.environment.cpu.model
    assert "data" not in to_pytest_benchmark(run)["benchmarks"][0]["stats"]


def _pytest_benchmark_cli() -> list[str]:
    found = shutil.which("pytest-benchmark", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "pytest_benchmark"]


def test_pytest_benchmark_compare_reads_the_export(run_cli: Any, tmp_path: Path) -> None:
    runfile = write_run(_run(), tmp_path)
    exported = tmp_path / "0001_siliconbench.json"
    done = run_cli("export", "pytest-benchmark", str(runfile), "--output", str(exported))
    assert done.returncode == 0, done.stderr
    assert json.loads(exported.read_text())["benchmarks"]
    # pytest-benchmark logs unreadable files as a warning and carries on, so check what it printed.
    compared = subprocess.run(
        [*_pytest_benchmark_cli(), "compare", str(exported), "--columns", "min,median,rounds"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert compared.returncode == 0, compared.stderr
    output = compared.stdout + compared.stderr
    assert "Failed to load" not in output
    assert "benchmark 'mlp:tiny': 2 tests" in output
    assert "mlp:tiny[cpu-fp32-eager-1-latency]" in output and "mlp:tiny[cpu-fp32-eager-4-8-latency]" in output
    assert re.search(r"cpu-fp32-eager-1-latency\]\s.*\s300\s*$", output, re.MULTILINE), output


def test_exporting_a_bad_run_file_is_a_one_line_error(run_cli: Any, tmp_path: Path) -> None:
    truncated = tmp_path / "run.json"
    truncated.write_text('{"schema": "siliconbench/run", "schema_version": 1, "cells": [')
    done = run_cli("export", "pytest-benchmark", str(truncated))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "not valid JSON" in done.stderr
