"""Version 2 frozen: the run file's JSON shape is a promise, and moving a record must not change it.

The fixtures (``fixtures/run-v2-*.json``, made by ``make_v2_fixtures``) are real runs of every
scenario, an engine cell, ``--processes``, a failed cell and an aborted run. Each must read and
re-encode to the very same bytes, and the schema the records generate must be the frozen copy
(``frozen/run-v2.schema.json``) byte for byte: a record that moves between modules, or a
producer's dataclass that changes, shows up here before it reaches anyone's run file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.runfile.codec import SCHEMA_PATH, encode_run, json_schema
from harness.runfile.files import load_run

HERE = Path(__file__).parent
V2_FIXTURES = sorted((HERE / "fixtures").glob("run-v2-*.json"))
FROZEN_SCHEMA = HERE / "frozen" / "run-v2.schema.json"


def test_there_is_a_version_2_fixture_of_every_case_the_issue_names() -> None:
    names = {p.stem.removeprefix("run-v2-") for p in V2_FIXTURES}
    cases = {"latency", "throughput", "generate", "server", "offline", "loadgen", "engine", "processes"}
    assert cases | {"failed", "aborted"} <= names


@pytest.mark.parametrize("path", V2_FIXTURES, ids=lambda p: p.stem)
def test_a_version_2_fixture_re_encodes_byte_identically(path: Path) -> None:
    text = path.read_text()
    assert json.loads(text)["schema_version"] == 2
    assert encode_run(load_run(path)) == text


def test_the_fixtures_hold_what_their_names_say() -> None:
    runs = {p.stem.removeprefix("run-v2-"): load_run(p) for p in V2_FIXTURES}
    assert runs["aborted"].status == "aborted" and runs["aborted"].status_reason
    assert [c.status for c in runs["failed"].cells] == ["ok", "failed"]
    assert runs["latency"].pricing is not None and runs["latency"].environment.matmul_peaks
    for name, part in [("processes", "processes"), ("engine", "engine"), ("server-capacity", "server")]:
        measured = runs[name].cells[0].measurement
        assert measured is not None and getattr(measured, part) is not None, name
    engine = runs["engine"].cells[0].measurement
    assert engine is not None and engine.engine is not None and engine.engine.metrics is not None
    assert runs["engine"].cells[0].config.params.engine is not None


def test_the_generated_schema_is_byte_identical_to_the_frozen_one() -> None:
    generated = json.dumps(json_schema(), indent=1, sort_keys=True) + "\n"
    assert generated == FROZEN_SCHEMA.read_text()
    assert SCHEMA_PATH.read_text() == FROZEN_SCHEMA.read_text()
