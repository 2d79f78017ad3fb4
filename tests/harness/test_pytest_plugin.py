"""The pytest plugin: a benchmark written as a test is measured and saved as a run file."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from harness.runfile.files import load_run
from tests.conftest import REPO_ROOT, cli_env

BENCHMARKS = """
def test_mlp(siliconbench):
    cell = siliconbench("mlp", preset="tiny", max_time=0.2, min_samples=5)
    assert cell.status == "ok" and cell.measurement.latency_ns.p50 > 0
    assert siliconbench.cells == [cell]


def test_typo(siliconbench):
    siliconbench("no-such-workload")
"""


def test_the_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"siliconbench": "harness.pytest_plugin"}


def _plugin_args() -> list[str]:
    # Installed (pip install -e .) the entry point loads it; a bare checkout names it with -p.
    installed = any(ep.value == "harness.pytest_plugin" for ep in entry_points(group="pytest11"))
    return [] if installed else ["-p", "harness.pytest_plugin"]


@pytest.mark.slow
def test_a_benchmark_test_writes_a_run_file_that_the_reporter_reads(run_cli: Any, tmp_path: Path) -> None:
    (tmp_path / "test_bench.py").write_text(BENCHMARKS)
    out = tmp_path / "results"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *_plugin_args(),
            "-p",
            "no:cacheprovider",
            "-q",
            "test_bench.py",
            "--siliconbench-output",
            str(out),
            "--siliconbench-price-per-hour",
            "0.5",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        env=cli_env(),
    )
    assert done.returncode == 1, done.stdout + done.stderr  # test_typo fails, test_mlp passes
    assert "1 failed, 1 passed" in done.stdout
    assert "siliconbench: unknown workload 'no-such-workload'; available:" in done.stdout
    assert "Traceback" not in done.stdout  # the failure is one line, not a stack
    (runfile,) = out.glob("run-*.json")
    assert f"run file: {runfile}" in done.stdout
    run = load_run(runfile)
    assert run.status == "complete"
    (cell,) = run.cells
    assert cell.status == "ok" and cell.pytest_nodeid == "test_bench.py::test_mlp"
    assert run.pricing is not None and run.pricing.usd_per_hour == 0.5
    report = run_cli("report", str(runfile), "--format", "json")
    assert report.returncode == 0, report.stderr
    (row,) = json.loads(report.stdout)
    assert row["usd_per_million"] == pytest.approx(0.5 / (3600 * row["throughput_per_s"]) * 1e6)


@pytest.mark.slow
def test_a_session_that_measures_nothing_writes_no_run_file(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    assert True\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *_plugin_args(),
            "-p",
            "no:cacheprovider",
            "-q",
            "test_plain.py",
            "--siliconbench-output",
            str(tmp_path / "results"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=cli_env(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (tmp_path / "results").exists()
