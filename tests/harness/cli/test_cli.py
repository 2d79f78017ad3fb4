"""The CLI end to end, in a subprocess, as a user or a script would run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.runfile.files import load_run
from tests.cli import one_line_error
from tests.conftest import REPO_ROOT, CliRunner, cli_env


@pytest.mark.slow
def test_run_measures_writes_a_run_file_and_prints_the_table(run_cli: CliRunner, tmp_path: Path) -> None:
    result = run_cli(
        "run",
        "--workload",
        "mlp",
        "--workload",
        "tests.workloads.plugin_fixtures:scale",
        "--preset",
        "tiny",
        "--batch-size",
        "1",
        "--batch-size",
        "4",
        "--dtype",
        "fp32",
        "--max-time",
        "0.3",
        "--threads",
        "1",
        "--output",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    (path,) = tmp_path.glob("run-*.json")
    assert f"run file: {path}" in result.stdout
    assert "p50 ms [95% CI]" in result.stdout
    assert "[4/4]" in result.stderr  # progress
    data = load_run(path)
    assert data.status == "complete"
    assert [c.config.batch_size for c in data.cells] == [1, 4, 1, 4]
    assert all(c.status == "ok" for c in data.cells)
    assert data.environment.command[-1] == str(tmp_path)

    for fmt, marker in (("table", "p50 ms"), ("markdown", "| workload"), ("csv", "run_id,")):
        report = run_cli("report", str(path), "--format", fmt)
        assert report.returncode == 0, report.stderr
        assert marker in report.stdout
    rows = json.loads(run_cli("report", str(path), "--format", "json").stdout)
    assert len(rows) == 4 and rows[0]["p50_ms"] > 0


@pytest.mark.slow
def test_a_suite_file_runs_with_command_line_overrides(run_cli: CliRunner, tmp_path: Path) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(
        'workloads = ["mlp"]\npreset = "tiny"\ndtypes = ["fp32", "bf16"]\nbatch_sizes = [2]\n'
        "max_time = 0.2\nthreads = 1\n"
    )
    result = run_cli("run", "--suite", str(suite), "--dtype", "bf16", "--output", str(tmp_path), "--quiet")
    assert result.returncode == 0, result.stderr
    (path,) = tmp_path.glob("run-*.json")
    cells = load_run(path).cells
    assert [(c.config.dtype, c.config.batch_size) for c in cells] == [("bf16", 2)]


@pytest.mark.slow
def test_a_failing_cell_is_recorded_and_the_run_goes_on(run_main: CliRunner, tmp_path: Path) -> None:
    result = run_main(
        "run",
        "--workload",
        "tests.workloads.plugin_fixtures:broken",
        "--workload",
        "mlp",
        "--preset",
        "tiny",
        "--dtype",
        "fp32",
        "--max-time",
        "0.2",
        "--output",
        str(tmp_path),
    )
    assert result.returncode == 1
    assert "FAILED" in result.stdout and "deliberately broken" in result.stdout
    (path,) = tmp_path.glob("run-*.json")
    statuses = [c.status for c in load_run(path).cells]
    assert statuses == ["failed", "ok"]


def test_list_shows_workloads_presets_and_backend_availability(run_cli: CliRunner) -> None:
    result = run_cli("list")
    assert result.returncode == 0, result.stderr
    for word in ("mlp", "resnet50", "bert-base", "tiny", "cpu", "cuda"):
        assert word in result.stdout
    cuda_line = next(line for line in result.stdout.splitlines() if line.startswith("cuda"))
    assert " no " in cuda_line or " yes " in cuda_line


def test_help_does_not_import_torch(run_cli: CliRunner) -> None:
    result = run_cli("run", "--help")
    assert result.returncode == 0
    assert "--max-time" in result.stdout
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, harness.cli.main as c\n"
            "try:\n    c.main(['--help'])\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=cli_env(),
    )
    assert check.stdout.strip().endswith("False")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "--workload", "nope"], "unknown workload 'nope'; available: bert-base, gpt2, llama, mlp, resnet50"),
        (
            ["run", "--workload", "mlp", "--preset", "huge"],
            "workload 'mlp' has no preset 'huge'; available: tiny, large",
        ),
        (["run", "--backend", "tpu"], "unknown backend 'tpu'; available: cpu, cuda, neuron"),
        (["run", "--backend", "cuda"], "backend 'cuda' is not available here:"),
        (["run", "--batch-size", "0"], "argument --batch-size: must be 1 or more, got 0"),
        (["run", "--batch-size", "-3"], "argument --batch-size: must be 1 or more, got -3"),
        (["run", "--dtype", "int4"], "backend 'cpu' does not support dtype 'int4'; use one of: fp32, bf16"),
        (["run", "--mode", "jit"], "backend 'cpu' does not support mode 'jit'; use one of: eager, compile"),
        (["run", "--max-time", "abc"], "argument --max-time: 'abc' is not a number"),
        (["run", "--suite", "/nonexistent/suite.toml"], "suite file '/nonexistent/suite.toml' does not exist"),
        (["run", "--bogus"], "unrecognized arguments: --bogus"),
        (["report", "/nonexistent/run.json"], "run file '/nonexistent/run.json' does not exist"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_input_gets_one_line_and_exit_code_2(run_main: CliRunner, args: list[str], expected: str) -> None:
    one_line_error(run_main(*args), expected)


def test_bad_suite_files_get_one_line(run_main: CliRunner, tmp_path: Path) -> None:
    malformed = tmp_path / "malformed.toml"
    malformed.write_text("workloads = [\n")
    one_line_error(run_main("run", "--suite", str(malformed)), "is not valid TOML")
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("workload = 'mlp'\n")
    one_line_error(run_main("run", "--suite", str(unknown)), "unknown key 'workload' in suite file")


def test_an_unwritable_output_path_gets_one_line(run_main: CliRunner, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    one_line_error(
        run_main("run", "--workload", "mlp", "--preset", "tiny", "--output", str(blocker / "sub")),
        "cannot create output folder",
    )


def test_a_truncated_run_file_gets_one_line(run_main: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text('{"schema": "siliconbench/run", "schema_version": 1, "cells": [')
    one_line_error(run_main("report", str(path)), "is not valid JSON")
