"""Find scenarios by name: built-ins, ``siliconbench.scenarios`` entry points, and ``register``.

Each scenario declares a ``ScenarioSpec`` (``harness.scenarios.specs``) in its own module: what it
is called, what it does, which parameters it reads and how it checks them, which workloads it
fits, whether ``--processes`` may pool it, whether an engine runs it, how its cells are labelled,
which report columns show it and which LoadGen scenario runs it. Plan, CLI and report read those
traits and never a scenario's name, so a new scenario is one module: a built-in is one line of
``BUILTIN_SCENARIOS``; a plugin declares an entry point (as backends and workloads do) or calls
``register``. Only the spec modules are imported to list the scenarios (``sut`` and ``loadgen``,
which need torch and MLPerf LoadGen, are not), so ``siliconbench --help`` stays fast.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

from harness.errors import ConfigError, UnknownNameError
from harness.plugins import discover, import_target
from harness.scenarios.specs import ScenarioSpec

if TYPE_CHECKING:
    from harness.runfile.records import CellConfig
    from harness.scenarios.base import Scenario

__all__ = [
    "BUILTIN_SCENARIOS",
    "ENTRY_POINT_GROUP",
    "ScenarioSpec",
    "cell_id",
    "get_scenario",
    "register",
    "scenario_names",
    "scenario_specs",
    "spec",
    "unregister",
]

ENTRY_POINT_GROUP = "siliconbench.scenarios"


#: The scenarios this package ships, by name: ``module:attribute`` of each ``ScenarioSpec``.
BUILTIN_SCENARIOS: dict[str, str] = {
    "latency": "harness.scenarios.latency:SPEC",
    "throughput": "harness.scenarios.throughput:SPEC",
    "generate": "harness.scenarios.generate:SPEC",
    "server": "harness.scenarios.server:SPEC",
    "offline": "harness.scenarios.offline:SPEC",
}

#: Scenarios registered by ``register`` in this process (a test, or a plugin without an entry point).
_registered: dict[str, ScenarioSpec] = {}


def register(scenario: ScenarioSpec) -> None:
    """Make ``scenario`` known to plan, CLI and report in this process, as an entry point would.

    A built-in keeps its name: registering another spec under one is refused.
    """
    if not isinstance(scenario, ScenarioSpec):
        raise ConfigError(f"register() takes a ScenarioSpec, got {type(scenario).__name__}")
    if scenario.name in BUILTIN_SCENARIOS:
        raise ConfigError(f"scenario {scenario.name!r} is built in; give the plugin's scenario another name")
    _registered[scenario.name] = scenario
    scenario_specs.cache_clear()


def unregister(name: str) -> None:
    """Forget a scenario ``register`` added (tests clean up after themselves)."""
    _registered.pop(name, None)
    scenario_specs.cache_clear()


@cache
def scenario_specs() -> dict[str, ScenarioSpec]:
    """Every scenario: built-ins, ``siliconbench.scenarios`` entry points, then registered ones,
    by name, in the order their specs declare (``ScenarioSpec.order``, then name)."""
    found: dict[str, ScenarioSpec] = {}
    for name, target in discover(ENTRY_POINT_GROUP, BUILTIN_SCENARIOS).items():
        declared = import_target(target, f"scenario {name!r}")
        if not isinstance(declared, ScenarioSpec):
            raise ConfigError(f"scenario {name!r} ({target}) is a {type(declared).__name__}, not a ScenarioSpec")
        if declared.name != name:
            raise ConfigError(f"scenario {name!r} ({target}) declares the name {declared.name!r}; make them agree")
        found[name] = declared
    for name, declared in _registered.items():
        found.setdefault(name, declared)
    return dict(sorted(found.items(), key=lambda item: (item[1].order, item[0])))


def scenario_names() -> tuple[str, ...]:
    return tuple(scenario_specs())


def spec(name: str) -> ScenarioSpec:
    """The spec of scenario ``name``, or an error listing the scenarios there are."""
    specs = scenario_specs()
    if name not in specs:
        raise UnknownNameError("scenario", name, list(specs))
    return specs[name]


def cell_id(config: CellConfig) -> str:
    """The id of a cell: its configuration and its scenario's label (``ScenarioSpec.cell_id``)."""
    return spec(config.scenario).cell_id(config)


def get_scenario(name: str, loadgen: bool = False) -> Scenario:
    """The object that runs cells of scenario ``name`` (LoadGen's when ``loadgen``)."""
    found = spec(name)
    if loadgen:
        if found.loadgen is None:
            raise ConfigError(f"LoadGen does not run the {name!r} scenario; drop --loadgen")
        module_name, attribute = "harness.scenarios.loadgen", "SCENARIO"
    else:
        module_name, attribute = found.runner.split(":")
    scenario: Scenario = getattr(importlib.import_module(module_name), attribute)
    return scenario
