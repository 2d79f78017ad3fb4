"""Suites: defaults, suite files, command-line overrides, and the errors for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.run.plan import DEFAULT_SUITE, Suite, load_suite_file
from harness.runfile.records import CellConfig
from harness.scenarios.registry import cell_id


def test_the_default_suite_is_the_cpu_matrix_of_the_three_builtin_workloads() -> None:
    cells = DEFAULT_SUITE.cells({"mlp": "large", "resnet50": "default", "bert-base": "default"})
    assert len(cells) == 6
    assert {c.workload for c in cells} == {"mlp", "resnet50", "bert-base"}
    assert {c.dtype for c in cells} == {"fp32", "bf16"}
    assert {c.backend for c in cells} == {"cpu"}


def test_lists_multiply_into_cells_in_workload_major_order() -> None:
    suite = Suite(
        workloads=("a", "b"), backends=("cpu",), dtypes=("fp32",), modes=("eager", "compile"), batch_sizes=(1, 8)
    )
    cells = suite.cells({"a": "tiny", "b": "tiny"})
    assert len(cells) == 8
    assert [c.workload for c in cells[:4]] == ["a"] * 4
    assert cells[0] == CellConfig("a", "tiny", "cpu", "fp32", "eager", None, 1)


def test_cell_ids_are_unique_and_readable() -> None:
    cell = CellConfig("mlp", "tiny", "cpu", "bf16", "compile", 2, 8)
    assert cell_id(cell) == "mlp/tiny/cpu/bf16/compile/t2/bs8/latency"


def test_suite_file_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "suite.toml"
    path.write_text(
        'workloads = ["mlp"]\npreset = "tiny"\nbatch_sizes = [1, 4]\nmax_time = 2\n[pricing]\nusd_per_hour = 1.5\n'
    )
    suite = load_suite_file(path)
    assert suite.matrix.workloads == ("mlp",)
    assert suite.matrix.batch_sizes == (1, 4)
    assert suite.stopping.max_time == 2.0
    assert suite.pricing.pricing == {"usd_per_hour": 1.5}
    overridden = suite.with_overrides(batch_sizes=[16], preset=None)
    assert overridden.matrix.batch_sizes == (16,)
    assert overridden.matrix.preset == "tiny"


def test_a_suite_table_is_accepted_too(tmp_path: Path) -> None:
    path = tmp_path / "suite.toml"
    path.write_text('[suite]\nworkloads = "resnet50"\ndtypes = ["bf16"]\n')
    suite = load_suite_file(path)
    assert suite.matrix.workloads == ("resnet50",)
    assert suite.matrix.dtypes == ("bf16",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("workload = ['mlp']\n", "unknown key 'workload'"),
        ("batch_sizes = [0]\n", "batch size must be a whole number of 1 or more"),
        ("batch_sizes = ['8']\n", "must be a list of int"),
        ("threads = 0\n", "threads must be from 1 to 1024"),
        ("max_time = -1\n", "max time must be a finite positive"),
        ("workloads = []\n", "is empty"),
        ("isolate = 'yes'\n", "'isolate' must be bool"),
        ("scenario = 'nope'\n", "unknown scenario 'nope'"),
        ("workloads = [\n", "is not valid TOML"),
    ],
)
def test_bad_suite_files_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "suite.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_suite_file(path)


def test_unknown_keys_list_the_allowed_ones(tmp_path: Path) -> None:
    path = tmp_path / "suite.toml"
    path.write_text("colour = 'blue'\n")
    with pytest.raises(ConfigError) as info:
        load_suite_file(path)
    assert "allowed keys: workloads, preset, backends" in str(info.value)


def test_a_missing_suite_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_suite_file(tmp_path / "absent.toml")
