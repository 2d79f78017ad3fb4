"""Run files: schema validity, atomic rewrites, readable errors, survival of a kill mid-run."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import jsonschema
import pytest

from harness.errors import OutputError, RunFileError
from harness.measure.environment import collect_environment
from harness.runfile.codec import SCHEMA_PATH, encode_run, json_schema
from harness.runfile.files import RunWriter, load_run
from harness.runfile.records import SCHEMA_VERSION, CellConfig, CellError, CellRecord
from tests.cli import start_cli


def _writer(tmp_path: Path) -> RunWriter:
    return RunWriter(tmp_path, collect_environment(["siliconbench", "run"]))


def _validate(data: dict[str, object]) -> None:
    jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text())).validate(data)


def test_a_new_run_file_is_valid_and_running(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    data = json.loads(writer.path.read_text())
    _validate(data)
    assert data["status"] == "running"
    assert data["schema_version"] == SCHEMA_VERSION == 2
    run = load_run(writer.path)
    assert run.environment.cpu.usable_cores >= 1


def _failed(cell_id: str = "x") -> CellRecord:
    config = CellConfig("x", "tiny", "cpu", "fp32", "eager", None, 1)
    return CellRecord(
        id=cell_id,
        config=config,
        status="failed",
        error=CellError("RuntimeError", "boom", "build"),
        started_utc="t",
        finished_utc="t",
    )


def test_failed_cells_are_recorded_and_finish_marks_the_file_complete(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    writer.add_cell(_failed())
    path = writer.finish()
    run = load_run(path)
    assert run.status == "complete"
    assert run.cells[0].error is not None and run.cells[0].error.message == "boom"
    assert run.cells[0].measurement is None


def test_a_record_that_says_ok_without_a_measurement_is_refused() -> None:
    with pytest.raises(ValueError, match="an ok cell has a measurement"):
        CellRecord(id="x", config=_failed().config, status="ok", started_utc="t", finished_utc="t")


def test_no_temporary_files_are_left_behind(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    writer.finish()
    assert [p.name for p in tmp_path.iterdir()] == [writer.path.name]


def test_an_unwritable_output_folder_is_an_output_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match="cannot create output folder"):
        RunWriter(blocker / "results", collect_environment([]))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"schema": "siliconbench/run", "schema_version": 2, "cells": [', "not valid JSON"),
        ('{"schema": "siliconbench/run", "schema_version": 99}', "schema version 99"),
        ('{"hello": 1}', "not a siliconbench run file"),
        ('{"schema": "siliconbench/run", "schema_version": 2}', "does not match run-file schema version 2 at run_id"),
        ('{"schema": "siliconbench/run", "schema_version": 1}', "lacks what version 1 requires"),
        ("[" * 100_000, "nested too deeply|not valid JSON"),
    ],
)
def test_unreadable_run_files_get_one_line_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "run.json"
    path.write_text(content)
    with pytest.raises(RunFileError, match=message) as info:
        load_run(path)
    assert "\n" not in str(info.value)


def test_a_binary_run_file_is_reported_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(RunFileError, match="not UTF-8") as info:
        load_run(path)
    assert "\n" not in str(info.value)


def test_a_string_where_a_latency_belongs_names_the_field(tmp_path: Path) -> None:
    run = load_run(FIXTURES / "run-v1-latency.json")
    data = json.loads(encode_run(run))
    data["cells"][0]["measurement"]["latency_ns"]["p50"] = "fast"
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    with pytest.raises(RunFileError, match=r"cells/0/measurement/latency_ns/p50"):
        load_run(path)


def test_a_missing_run_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(RunFileError, match="does not exist"):
        load_run(tmp_path / "nope.json")


def test_the_committed_schema_is_the_one_the_records_declare() -> None:
    """``python -m harness.runfile.codec`` regenerates it after a record changes."""
    assert json.loads(SCHEMA_PATH.read_text()) == json.loads(json.dumps(json_schema(), sort_keys=True))


# --- frozen fixtures: every later release must still read them (as pyperf keeps its old files) ---

FIXTURES = Path(__file__).parent / "fixtures"
V1_FIXTURES = sorted(FIXTURES.glob("run-v1-*.json"))


def test_there_is_a_version_1_fixture_of_every_scenario() -> None:
    names = {p.stem.removeprefix("run-v1-") for p in V1_FIXTURES}
    assert {"latency", "throughput", "generate", "server", "offline"} <= names


@pytest.mark.parametrize("path", V1_FIXTURES, ids=lambda p: p.stem)
def test_version_1_files_are_read_and_written_back_as_valid_version_2(path: Path, tmp_path: Path) -> None:
    raw = json.loads(path.read_text())
    assert raw["schema_version"] == 1
    run = load_run(path)
    assert [c.id for c in run.cells] == [c["id"] for c in raw["cells"]]
    for cell, old in zip(run.cells, raw["cells"], strict=True):
        assert cell.status == old["status"]
        assert cell.config.workload == old["config"]["workload"]
        if cell.measurement is not None:
            assert list(cell.measurement.samples_ns) == old["samples_ns"]
            assert cell.measurement.latency_ns.p50 == old["latency_ns"]["p50"]
            assert cell.measurement.throughput_per_s == old["throughput_per_s"]
            for part in ("generation", "server", "offline", "loadgen"):
                assert (getattr(cell.measurement, part) is not None) == (part in old)
    upgraded = json.loads(encode_run(run))
    _validate(upgraded)
    again = tmp_path / "v2.json"
    again.write_text(json.dumps(upgraded))
    assert load_run(again) == run


@pytest.mark.parametrize("path", V1_FIXTURES, ids=lambda p: p.stem)
def test_version_1_fixtures_are_what_the_version_1_schema_describes(path: Path) -> None:
    schema = json.loads((SCHEMA_PATH.parent / "run-v1.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(json.loads(path.read_text()))


def test_a_version_1_decoder_cell_keeps_its_token_metrics() -> None:
    run = load_run(FIXTURES / "run-v1-generate.json")
    measured = run.cells[0].measurement
    assert measured is not None and measured.generation is not None
    tokens = measured.generation.tokens
    assert tokens.ttft_ns is not None and tokens.timelines_ns
    assert measured.token_metrics is tokens


@pytest.mark.slow
def test_a_run_killed_mid_way_keeps_every_finished_cell(tmp_path: Path) -> None:
    """SIGKILL (no cleanup at all) after the first cells: the file is valid and holds them."""
    batches = [arg for size in (1, 2, 4, 8, 16, 32) for arg in ("--batch-size", str(size))]
    args = ["run", "--workload", "mlp", "--preset", "tiny", *batches, "--max-time", "1", "--output", str(tmp_path)]
    process = start_cli(*args, "--quiet", capture=False)
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
    run = load_run(path)
    assert run.status == "running"
    assert len(run.cells) >= 2
    assert all(cell.status == "ok" for cell in run.cells)
