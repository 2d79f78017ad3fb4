"""The suite's typed sections: strict types, one table of keys, and options that follow the fields."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import pytest

from harness.cli.main import _build_parser
from harness.cli.suite import suite_from_args
from harness.errors import ConfigError
from harness.run import config
from harness.run.config import FIELDS, SECTIONS, FieldRef, Option, StoppingRule, describe_type
from harness.run.plan import DEFAULT_SUITE, RUN_FILE_ORDER, EngineCell, Suite, load_suite_file
from harness.runfile.records import CellConfig

SNAPSHOT = Path(__file__).parents[1] / "cli" / "fixtures" / "run_options.json"


def test_every_suite_key_of_the_snapshot_is_a_field_of_one_section() -> None:
    frozen = json.loads(SNAPSHOT.read_text())["suite"]
    assert set(FIELDS) | {"output"} == set(frozen)
    assert {ref.section for ref in FIELDS.values()} == set(SECTIONS)
    for key, ref in FIELDS.items():
        assert frozen[key] == json.loads(json.dumps(ref.default)), key  # the default is the field's


@pytest.mark.parametrize(
    ("key", "described"),
    [("batch_sizes", "a list of int"), ("max_time", "int or float"), ("isolate", "bool"), ("model", "str")],
)
def test_types_are_named_from_the_annotations(key: str, described: str) -> None:
    assert describe_type(FIELDS[key]) == described


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"min_samples": 5.0}, "'min_samples' must be int, got 5.0"),
        ({"min_samples": True}, "'min_samples' must be int, got True"),
        ({"max_time": "2"}, "'max_time' must be int or float, got '2'"),
        ({"concurrency": [1, "2"]}, "'concurrency' must be a list of int, got '2'"),
        ({"engine_silicon": 3}, "'engine_silicon' must be str, got 3"),
        ({"pricing": "1.5"}, "'pricing' must be dict, got '1.5'"),
    ],
)
def test_strict_types_are_one_line_naming_the_key(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DEFAULT_SUITE.with_overrides(**values)


def test_sections_are_frozen_and_refuse_unknown_keys() -> None:
    with pytest.raises(Exception, match="frozen"):
        DEFAULT_SUITE.stopping.max_time = 1.0  # type: ignore[misc]
    with pytest.raises(ConfigError, match="unknown key 'max_tim' in command line; allowed keys: workloads, preset"):
        DEFAULT_SUITE.with_overrides(max_tim=1.0)


def test_sections_and_flat_keys_build_the_same_suite() -> None:
    flat = Suite(max_time=2, workloads=("mlp",))
    nested = Suite(
        stopping=StoppingRule(max_time=2.0), matrix=DEFAULT_SUITE.matrix.model_copy(update={"workloads": ("mlp",)})
    )
    assert flat == nested
    assert flat.to_dict() == nested.to_dict()
    assert list(flat.to_dict())[:3] == ["workloads", "preset", "backends"]


def test_an_engine_cell_is_planned_in_its_own_words_and_recorded_as_before() -> None:
    suite = Suite(scenario="generate", endpoint="http://127.0.0.1:9", model="m", concurrency=(1, 4))
    cells = suite.engine_cells()
    assert [c.params.concurrency for c in cells] == [1, 4]
    first = cells[0]
    assert isinstance(first, EngineCell)
    assert (first.model, first.server, first.dtype, first.scenario) == ("m", "endpoint", None, "generate")
    config_ = first.to_config()
    assert config_ == CellConfig(
        "m", first.request_set, "endpoint", "engine-default", "engine", None, 1, "generate", params=first.params
    )
    assert suite.cells({}) == [c.to_config() for c in cells]


class _WithKnob(StoppingRule):
    """A stopping rule with one more knob, as a contributor would add it: one annotated field."""

    settle: Annotated[float | None, Option("--settle", "stop once the median settles for this long", "SECONDS")] = None


def test_a_new_field_is_a_flag_and_a_suite_key_with_no_other_edit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Adding ``settle`` to the stopping rule: the CLI flag, the suite key and the run file follow."""
    monkeypatch.setitem(SECTIONS, "stopping", _WithKnob)
    for key, ref in config._fields().items():
        monkeypatch.setitem(FIELDS, key, ref)
    assert isinstance(FIELDS["settle"], FieldRef) and FIELDS["settle"].section == "stopping"
    suite = Suite()
    assert isinstance(suite.stopping, _WithKnob)

    args = _build_parser().parse_args(["run", "--settle", "2.5"])
    from_cli = suite_from_args(args)
    assert from_cli.stopping.settle == 2.5  # type: ignore[attr-defined]
    written = list(from_cli.to_dict())
    # after every key schema v2 was frozen with (RUN_FILE_ORDER), as each key added since is
    assert from_cli.to_dict()["settle"] == 2.5 and written.index("settle") >= len(RUN_FILE_ORDER)

    path = tmp_path / "suite.toml"
    path.write_text("settle = 3\n")
    assert load_suite_file(path, Suite()).stopping.settle == 3.0  # type: ignore[attr-defined]
    path.write_text("settle = 'soon'\n")
    with pytest.raises(ConfigError, match="'settle' must be int or float, got 'soon'"):
        load_suite_file(path, Suite())


def test_a_suite_file_may_group_keys_by_section(tmp_path: Path) -> None:
    path = tmp_path / "suite.toml"
    with pytest.raises(ConfigError, match=r"key 'max_time' belongs in \[stopping\], not \[matrix\]"):
        path.write_text("[matrix]\nmax_time = 2\n")
        load_suite_file(path)
    path.write_text(
        '[load]\nscenario = "generate"\n[stopping]\nmax_time = 2\n[engine]\nmodel = "m"\nendpoint = "http://x:9"\n'
    )
    suite = load_suite_file(path)
    assert suite.stopping.max_time == 2.0 and suite.engine.model == "m"
    flat = tmp_path / "flat.toml"
    flat.write_text('scenario = "generate"\nmax_time = 2\nmodel = "m"\nendpoint = "http://x:9"\n')
    assert load_suite_file(flat) == suite
    path.write_text("[stopping]\nmax_tme = 2\n")
    with pytest.raises(ConfigError, match=r"unknown key 'max_tme' in \[stopping\] .*allowed keys: max_time"):
        load_suite_file(path)
