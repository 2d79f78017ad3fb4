"""The scenario registry: every built-in scenario registered, offered by the CLI, its columns declared."""

from __future__ import annotations

from harness.scenarios.registry import scenario_names, scenario_specs


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
