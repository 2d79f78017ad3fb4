"""Scenarios register themselves: each scenario module declares a ``SPEC`` that plan, CLI and report read.

A ``ScenarioSpec`` says what a scenario is called, what it does (the CLI's help), which of the
shared scenario parameters it reads and how it checks them, which workloads it fits, which part
of the measurement record it fills, which report columns show it, and which MLPerf LoadGen
scenario runs it under ``--loadgen``. Any module of ``harness.scenarios`` with a ``SPEC`` is a
scenario: adding one touches its own module (and its tests) only.

Discovery reads each module's source first and imports only those that declare ``SPEC = ScenarioSpec(``
at top level: the shared machinery beside them (``sut`` builds a torch module, ``loadgen`` needs
MLPerf LoadGen) is not imported to list the scenarios, so ``siliconbench --help`` stays fast.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from harness.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    from harness.runfile.records import ScenarioParams
    from harness.scenarios.base import Scenario

__all__ = [
    "PARAMETERS",
    "ScenarioParameter",
    "ScenarioSpec",
    "get_scenario",
    "scenario_names",
    "scenario_specs",
    "spec",
]


@dataclass(frozen=True)
class ScenarioParameter:
    """A knob of the load scenarios: its field of ``ScenarioParams``, its flag, its help."""

    name: str
    flag: str
    kind: Literal["int", "float", "flag"]
    metavar: str
    help: str
    #: Given several times, each value is a cell of its own (a sweep); the suite keeps a tuple.
    repeatable: bool = False


#: The parameters scenarios share (``harness.run.plan.ScenarioParams``), in the CLI's order.
PARAMETERS: tuple[ScenarioParameter, ...] = (
    ScenarioParameter(
        "prompt_tokens", "--prompt-tokens", "int", "N", "decoders: exact prompt length in tokens (default 128)"
    ),
    ScenarioParameter(
        "output_tokens",
        "--output-tokens",
        "int",
        "N",
        "decoders: exact tokens generated per request, greedy, EOS ignored (default 128)",
    ),
    ScenarioParameter(
        "rate",
        "--rate",
        "float",
        "RPS",
        "server: fixed arrival rate in requests/s (default: search for the capacity under the SLO)",
    ),
    ScenarioParameter(
        "slo_p99_ms", "--slo-p99", "float", "MS", "server: target p99 end-to-end latency in milliseconds"
    ),
    ScenarioParameter(
        "slo_ttft_ms", "--slo-ttft", "float", "MS", "server, decoders: target p99 time to first token in milliseconds"
    ),
    ScenarioParameter(
        "slo_tpot_ms", "--slo-tpot", "float", "MS", "server, decoders: target p99 time per output token in milliseconds"
    ),
    ScenarioParameter(
        "concurrency",
        "--concurrency",
        "int",
        "N",
        "server: requests served at once; an engine's generate: closed-loop users (repeatable, one cell each: "
        "1, 2, 4, ...; default 1)",
        repeatable=True,
    ),
    ScenarioParameter(
        "loadgen",
        "--loadgen",
        "flag",
        "",
        "run latency/server/offline under MLPerf LoadGen as SingleStream/Server/Offline and record its "
        "VALID/INVALID verdict (pip install 'siliconbench[loadgen]')",
    ),
)


def _no_check(params: ScenarioParams) -> None:
    """Most scenarios accept any valid parameters."""


@dataclass(frozen=True)
class ScenarioSpec:
    """What a scenario declares about itself."""

    name: str
    help: str
    #: ``module:attribute`` of the object that runs a cell (a ``harness.scenarios.base.Scenario``).
    runner: str
    #: Which workloads it fits: any model, or decoders only (``generate``).
    workloads: Literal["any", "decoders"] = "any"
    #: The ``ScenarioParams`` fields it reads; the others are ignored for its cells.
    params: tuple[str, ...] = ()
    #: The ``Measurement`` attribute holding its own part of the record (None: the common fields only).
    part: str | None = None
    #: Report columns after the cell's configuration, by key of ``harness.report.columns.COLUMNS``.
    columns: tuple[str, ...] = ()
    #: The MLPerf LoadGen scenario that runs it under ``--loadgen``, if any.
    loadgen: str | None = None
    #: Refuses parameters that cannot make a cell of this scenario (one line, before anything runs).
    check: Callable[[ScenarioParams], None] = field(default=_no_check, compare=False)


_DECLARES_SPEC = re.compile(r"^SPEC = ScenarioSpec\(", re.MULTILINE)


@cache
def scenario_specs() -> dict[str, ScenarioSpec]:
    """Every scenario of ``harness.scenarios``, by name, in the order the modules declare."""
    import harness.scenarios as package

    found: dict[str, ScenarioSpec] = {}
    for module in pkgutil.iter_modules(package.__path__):
        name = f"{package.__name__}.{module.name}"
        located = importlib.util.find_spec(name)
        if located is None or located.origin is None or not _DECLARES_SPEC.search(Path(located.origin).read_text()):
            continue
        declared = getattr(importlib.import_module(name), "SPEC", None)
        if isinstance(declared, ScenarioSpec):
            found[declared.name] = declared
    order = {"latency": 0, "throughput": 1, "generate": 2, "server": 3, "offline": 4}
    return dict(sorted(found.items(), key=lambda item: (order.get(item[0], len(order)), item[0])))


def scenario_names() -> tuple[str, ...]:
    return tuple(scenario_specs())


def spec(name: str) -> ScenarioSpec:
    """The spec of scenario ``name``, or an error listing the scenarios there are."""
    specs = scenario_specs()
    if name not in specs:
        raise UnknownNameError("scenario", name, list(specs))
    return specs[name]


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
