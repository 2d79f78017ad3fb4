"""The plan (``harness.run.plan``): suites from defaults, suite files and the command line, the cells
they multiply into, the scenario options every cell carries, the tail the stopping rule waits
for, and the errors for bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.errors import ConfigError
from harness.run.plan import DEFAULT_SUITE, Suite, load_suite_file
from harness.runfile.records import CellConfig, ScenarioParams
from harness.scenarios.registry import cell_id, spec


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


PRESETS = {"mlp": "tiny", "llama": "tiny"}


def test_defaults_are_a_plain_latency_suite() -> None:
    (cell,) = Suite(workloads=("mlp",), dtypes=("fp32",)).cells(PRESETS)
    assert cell.scenario == "latency" and cell.params == ScenarioParams()
    assert cell_id(cell) == "mlp/tiny/cpu/fp32/eager/tdefault/bs1/latency"


def test_scenario_parameters_reach_every_cell() -> None:
    suite = DEFAULT_SUITE.with_overrides(
        workloads=["llama"],
        dtypes=["fp32"],
        batch_sizes=[1, 4],
        scenario="server",
        prompt_tokens=64,
        output_tokens=32,
        slo_ttft=200,
        slo_tpot=50.5,
        concurrency=2,
    )
    cells = suite.cells(PRESETS)
    assert len(cells) == 2
    for cell in cells:
        assert cell.params == ScenarioParams(
            prompt_tokens=64, output_tokens=32, slo_ttft_ms=200.0, slo_tpot_ms=50.5, concurrency=2
        )
        assert cell.params.slo_ttft_ms == 200.0
    assert cell_id(cells[0]).endswith("/bs1/server-p64o32-capacity-c2")
    assert isinstance(cells[0].params.slo_ttft_ms, float)


@pytest.mark.parametrize(
    ("scenario", "params", "label"),
    [
        ("generate", {"prompt_tokens": 8, "output_tokens": 2}, "generate-p8o2"),
        ("server", {"rate": 12.5}, "server-p128o128-r12.5"),
        ("throughput", {}, "throughput"),
        ("offline", {"loadgen": True}, "offline-p128o128-loadgen"),
        ("latency", {"loadgen": True}, "latency-loadgen"),
    ],
)
def test_labels(scenario: str, params: dict[str, object], label: str) -> None:
    assert spec(scenario).cell_label(ScenarioParams(**params)) == label  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"scenario": "batch"}, "unknown scenario 'batch'; available: generate, latency, offline, server, throughput"),
        ({"scenario": "server"}, "needs --rate"),
        ({"scenario": "generate", "loadgen": True}, "not 'generate'"),
        ({"scenario": "server", "loadgen": True, "slo_p99": 5}, "fixed rate: give --rate"),
        ({"scenario": "server", "loadgen": True, "rate": 5}, "judges a latency target"),
        ({"prompt_tokens": 0}, "prompt-tokens must be a whole number of 1 or more"),
        ({"rate": -1.0}, "rate must be a finite positive number"),
        ({"concurrency": 0}, "concurrency must be"),
    ],
)
def test_bad_scenario_options(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        DEFAULT_SUITE.with_overrides(**overrides)


def test_suite_file_scenario_keys(tmp_path: Path) -> None:
    path = tmp_path / "suite.toml"
    path.write_text(
        '[suite]\nworkloads = ["llama"]\ndtypes = ["fp32"]\nscenario = "generate"\nprompt_tokens = 16\n'
        "output_tokens = 4\n"
    )
    suite = load_suite_file(path)
    (cell,) = suite.cells(PRESETS)
    assert (cell.scenario, cell.params.prompt_tokens, cell.params.output_tokens) == ("generate", 16, 4)


def test_suite_file_type_errors(tmp_path: Path) -> None:
    path = tmp_path / "suite.toml"
    path.write_text('scenario = "server"\nrate = "fast"\n')
    with pytest.raises(ConfigError, match="'rate' must be int or float"):
        load_suite_file(path)
    path.write_text('loadgen = "yes"\n')
    with pytest.raises(ConfigError, match="'loadgen' must be bool"):
        load_suite_file(path)


def test_concurrency_sweeps_are_one_cell_per_value() -> None:
    suite = DEFAULT_SUITE.with_overrides(
        workloads=["llama"], dtypes=["fp32"], scenario="server", rate=4.0, concurrency=[1, 2, 4]
    )
    cells = suite.cells(PRESETS)
    assert [c.params.concurrency for c in cells] == [1, 2, 4]
    assert len({cell_id(c) for c in cells}) == 3
    with pytest.raises(ConfigError, match="'concurrency' is empty"):
        DEFAULT_SUITE.with_overrides(concurrency=[])


def test_the_default_suite_watches_the_median_alone() -> None:
    assert DEFAULT_SUITE.tail_percentile() is None


@pytest.mark.parametrize(
    ("overrides", "tail"),
    [
        ({"tail": 95}, 95.0),
        ({"scenario": "server", "slo_p99": 5.0}, 99.0),
        ({"scenario": "server", "slo_ttft": 50.0}, 99.0),
        ({"scenario": "server", "slo_p99": 5.0, "tail": 90}, 90.0),  # an explicit tail wins
    ],
)
def test_a_tail_flag_or_a_p99_slo_asks_for_the_tail(overrides: dict[str, Any], tail: float) -> None:
    assert DEFAULT_SUITE.with_overrides(**overrides).tail_percentile() == tail


@pytest.mark.parametrize("tail", [50, 100, 120])
def test_a_tail_outside_50_to_100_is_a_config_error(tail: float) -> None:
    with pytest.raises(ConfigError, match="tail must be a percentile between 50 and 100"):
        Suite(tail=tail)


def test_a_suite_file_can_ask_for_the_tail(tmp_path: Path) -> None:
    path = tmp_path / "suite.toml"
    path.write_text("tail = 99\n")
    assert load_suite_file(path).stopping.tail == 99.0


@pytest.mark.parametrize(("argv", "tail"), [([], None), (["--tail", "99"], 99.0), (["--tail", "95.5"], 95.5)])
def test_the_tail_flag_reaches_the_suite(argv: list[str], tail: float | None) -> None:
    from harness.cli.main import _build_parser
    from harness.cli.suite import suite_from_args

    args = _build_parser().parse_args(["run", "--workload", "mlp", *argv])
    assert suite_from_args(args).tail_percentile() == tail
