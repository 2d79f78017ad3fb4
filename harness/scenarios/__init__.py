"""Scenarios: how load is applied to a prepared model, one module each.

========== =====================================================================================
latency    one request at a time, device synchronized after each: latency percentiles with CIs
throughput back-to-back calls at the cell's batch, synchronized once per block: the sustained rate
generate   LLM generation, closed loop: TTFT, TPOT, ITL, end-to-end, output and total tokens/s
server     open-loop Poisson arrivals: latency from the due time, goodput, capacity under an SLO
offline    one query of many samples fed through the host, batch by batch: samples/s end to end
========== =====================================================================================

``--loadgen`` runs ``latency``, ``server`` and ``offline`` through MLPerf LoadGen as its
SingleStream, Server and Offline scenarios instead (``harness.scenarios.loadgen``).

Modules are imported only when a cell runs, so listing scenarios imports nothing heavy.
"""

from __future__ import annotations

import importlib

from harness.errors import UnknownNameError
from harness.scenarios.base import CellContext, Scenario

__all__ = ["SCENARIO_MODULES", "CellContext", "Scenario", "get_scenario"]

#: scenario name -> module whose ``SCENARIO`` attribute runs it.
SCENARIO_MODULES: dict[str, str] = {
    "latency": "harness.scenarios.latency",
    "throughput": "harness.scenarios.throughput",
    "generate": "harness.scenarios.generate",
    "server": "harness.scenarios.server",
    "offline": "harness.scenarios.offline",
    "loadgen": "harness.scenarios.loadgen",
}


def get_scenario(name: str, loadgen: bool = False) -> Scenario:
    """The runner of scenario ``name`` (LoadGen's when ``loadgen``)."""
    if name not in SCENARIO_MODULES or name == "loadgen":
        raise UnknownNameError("scenario", name, [n for n in SCENARIO_MODULES if n != "loadgen"])
    module = importlib.import_module(SCENARIO_MODULES["loadgen" if loadgen else name])
    scenario: Scenario = module.SCENARIO
    return scenario
