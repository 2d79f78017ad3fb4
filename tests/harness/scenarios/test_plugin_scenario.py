"""A scenario from outside the package is planned, run and reported with no core file edited.

``tests/harness/plugin_scenario.py`` declares ``volley``; here it is installed as a plugin would
install it, through a ``siliconbench.scenarios`` entry point (a ``*.dist-info`` folder on the
path, which ``importlib.metadata`` reads as it reads any installed distribution), and the CLI
lists it, plans it, runs it on a tiny workload and reports it. The in-process half uses the
registry's public ``register``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.run.plan import Suite
from harness.runfile.files import load_run
from harness.scenarios import registry
from tests.conftest import REPO_ROOT, CliRunner
from tests.harness import plugin_scenario


def _install_entry_point(root: Path) -> dict[str, str]:
    """A distribution whose only content is the entry point, and the environment that finds it."""
    info = root / "siliconbench_volley-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: siliconbench-volley\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[siliconbench.scenarios]\nvolley = tests.harness.plugin_scenario:SPEC\n")
    return {"PYTHONPATH": f"{REPO_ROOT}:{root}"}


@pytest.fixture
def registered() -> Iterator[None]:
    registry.register(plugin_scenario.SPEC)
    try:
        yield
    finally:
        registry.unregister("volley")


def test_the_core_does_not_know_the_plugin_scenario() -> None:
    """The premise: no file of the packages names it, so whatever runs it came from its spec."""
    for package in ("harness", "backends", "workloads"):
        for path in (REPO_ROOT / package).rglob("*.py"):
            assert "volley" not in path.read_text().lower(), path


def test_a_registered_scenario_is_planned_and_labelled_by_its_spec(registered: None) -> None:
    assert "volley" in registry.scenario_names()
    assert registry.scenario_names()[-1] == "volley"  # its order, 50: after the built-ins (0 to 4)
    (cell,) = Suite(workloads=("mlp",), dtypes=("fp32",), scenario="volley").cells({"mlp": "tiny"})
    assert registry.cell_id(cell) == "mlp/tiny/cpu/fp32/eager/tdefault/bs1/volley-v4"
    # Its traits, not its name, decide what the plan allows: it is not mergeable, so no --processes.
    with pytest.raises(ConfigError, match=r"scenarios latency and throughput .* not 'volley'"):
        Suite(scenario="volley", processes=2)
    with pytest.raises(ConfigError, match="LoadGen runs the scenarios latency, server, offline"):
        Suite(scenario="volley", loadgen=True)


def test_register_refuses_a_built_in_name_and_a_non_spec() -> None:
    with pytest.raises(ConfigError, match="'latency' is built in"):
        registry.register(plugin_scenario.SPEC.__class__(name="latency", help="", runner="x:y"))
    with pytest.raises(ConfigError, match="takes a ScenarioSpec, got str"):
        registry.register("volley")  # type: ignore[arg-type]


@pytest.mark.slow
def test_an_entry_point_scenario_runs_and_reports_through_the_cli(run_cli: CliRunner, tmp_path: Path) -> None:
    env = _install_entry_point(tmp_path / "site")
    usage = run_cli("run", "--help", env=env)
    assert usage.returncode == 0, usage.stderr
    assert re.search(r"volley: volleys of 4\s+calls", usage.stdout), usage.stdout
    out = tmp_path / "results"
    result = run_cli(
        "run",
        "--scenario",
        "volley",
        "--workload",
        "mlp",
        "--preset",
        "tiny",
        "--dtype",
        "fp32",
        "--threads",
        "1",
        "--max-time",
        "0.2",
        "--min-samples",
        "5",
        "--no-isolate",
        "--quiet",
        "--output",
        str(out),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    (path,) = out.glob("run-*.json")
    (cell,) = load_run(path).cells
    assert cell.status == "ok", cell.error
    assert cell.id == "mlp/tiny/cpu/fp32/eager/t1/bs1/volley-v4"
    assert cell.measurement is not None and len(cell.measurement.samples_ns) >= 5
    assert cell.measurement.validity.samples == {"volleys": len(cell.measurement.samples_ns)}
    report = run_cli("report", str(path), "--format", "json", env=env)
    assert report.returncode == 0, report.stderr
    rows = json.loads(report.stdout)
    assert [(r["cell_id"], r["scenario"]) for r in rows] == [(cell.id, "volley")]
    table = run_cli("report", str(path), env=env)
    assert table.returncode == 0, table.stderr
    assert "p50 ms" in table.stdout and "process spread" not in table.stdout
    # Without the plugin the same run file still reports: an unknown scenario gets the forward columns.
    bare = run_cli("report", str(path))
    assert bare.returncode == 0, bare.stderr
    # And the plan refuses the name with the scenarios there are.
    refused = run_cli("run", "--scenario", "volley", "--workload", "mlp")
    assert refused.returncode == 2 and "invalid choice: 'volley'" in refused.stderr
