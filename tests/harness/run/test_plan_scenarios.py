"""Scenario options in the plan: validated once, carried by every cell, named in its id."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.run.plan import DEFAULT_SUITE, Suite, load_suite_file
from harness.runfile.records import ScenarioParams
from harness.scenarios.registry import cell_id, scenario_names, scenario_specs, spec

PRESETS = {"mlp": "tiny", "llama": "tiny"}


def test_every_scenario_registers_itself_and_the_cli_offers_it() -> None:
    assert scenario_names() == ("latency", "throughput", "generate", "server", "offline")
    loadgen = {s.name: s.loadgen for s in scenario_specs().values() if s.loadgen}
    assert loadgen == {"latency": "SingleStream", "server": "Server", "offline": "Offline"}
    from harness.cli.main import _build_parser

    run = next(a for a in _build_parser()._subparsers._group_actions[0].choices["run"]._actions if a.dest == "scenario")  # type: ignore[union-attr]
    assert tuple(run.choices or ()) == scenario_names()


def test_every_declared_column_exists() -> None:
    from harness.report.columns import BY_KEY

    for scenario in scenario_specs().values():
        assert set(scenario.columns) <= set(BY_KEY), scenario.name


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
