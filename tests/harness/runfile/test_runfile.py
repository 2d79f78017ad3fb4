"""Run files: schema validity, atomic rewrites, readable errors, survival of a kill mid-run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.errors import OutputError, RunFileError
from harness.measure.environment import collect_environment
from harness.runfile.files import SCHEMA_VERSION, RunWriter, load_run, validate
from tests.conftest import REPO_ROOT, cli_env


def _writer(tmp_path: Path) -> RunWriter:
    return RunWriter(tmp_path, collect_environment(["siliconbench", "run"]))


def test_a_new_run_file_is_valid_and_running(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    data = json.loads(writer.path.read_text())
    validate(data)
    assert data["status"] == "running"
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["environment"]["cpu"]["usable_cores"] >= 1


def test_failed_cells_are_recorded_and_finish_marks_the_file_complete(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    writer.add_cell(
        {
            "id": "x",
            "status": "failed",
            "error": {"type": "RuntimeError", "message": "boom", "phase": "build"},
            "config": {
                "workload": "x",
                "preset": "tiny",
                "backend": "cpu",
                "dtype": "fp32",
                "mode": "eager",
                "threads": None,
                "batch_size": 1,
                "scenario": "latency",
                "device": None,
            },
            "started_utc": "t",
            "finished_utc": "t",
        }
    )
    path = writer.finish()
    data = load_run(path)
    assert data["status"] == "complete"
    assert data["cells"][0]["error"]["message"] == "boom"


def test_no_temporary_files_are_left_behind(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    writer.finish()
    assert [p.name for p in tmp_path.iterdir()] == [writer.path.name]


def test_an_unwritable_output_folder_is_an_output_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match="cannot create output folder"):
        RunWriter(blocker / "results", {})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"schema": "siliconbench/run", "schema_version": 1, "cells": [', "not valid JSON"),
        ('{"schema": "siliconbench/run", "schema_version": 99}', "schema version 99"),
        ('{"hello": 1}', "not a siliconbench run file"),
        ('{"schema": "siliconbench/run", "schema_version": 1}', "does not match the run-file schema"),
    ],
)
def test_unreadable_run_files_get_one_line_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "run.json"
    path.write_text(content)
    with pytest.raises(RunFileError, match=message) as info:
        load_run(path)
    assert "\n" not in str(info.value)


def test_a_missing_run_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(RunFileError, match="does not exist"):
        load_run(tmp_path / "nope.json")


@pytest.mark.slow
def test_a_run_killed_mid_way_keeps_every_finished_cell(tmp_path: Path) -> None:
    """SIGKILL (no cleanup at all) after the first cells: the file is valid and holds them."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            "--workload",
            "mlp",
            "--preset",
            "tiny",
            "--batch-size",
            "1",
            "--batch-size",
            "2",
            "--batch-size",
            "4",
            "--batch-size",
            "8",
            "--batch-size",
            "16",
            "--batch-size",
            "32",
            "--max-time",
            "1",
            "--output",
            str(tmp_path),
            "--quiet",
        ],
        cwd=REPO_ROOT,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        cells = 0
        while time.monotonic() < deadline and process.poll() is None:
            files = list(tmp_path.glob("run-*.json"))
            if files:
                try:
                    cells = len(json.loads(files[0].read_text())["cells"])
                except json.JSONDecodeError:
                    pytest.fail("a reader saw a torn run file")
                if cells >= 2:
                    break
            time.sleep(0.05)
        assert process.poll() is None, "the run finished before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    (path,) = tmp_path.glob("run-*.json")
    data = load_run(path)
    assert data["status"] == "running"
    assert len(data["cells"]) >= 2
    assert all(cell["status"] == "ok" for cell in data["cells"])
