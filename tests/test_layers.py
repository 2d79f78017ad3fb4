"""The layering contract of ``harness``, ``backends`` and ``workloads``, checked on every import.

Layers, top to bottom (an import may only go down)::

    cli (and __main__, pytest_plugin)
    run, targets
    scenarios
    measure, backends, workloads, report, pricing
    runfile, plugins
    errors, harness (the version)

Inside a layer only ``__main__ -> cli``, ``targets -> run`` (a target runs the suite) and, in
the third, ``measure -> backends`` cross packages.
``report`` and ``pricing`` read run files and print or price them, so they import only
``runfile``, ``errors``, the statistics (``measure.stats``, ``measure.between``: maths that
measure nothing) and the scenario specs module; ``report`` also reads prices (``pricing``).
And the module graph has no cycle at all.

Every import is an edge: module level, inside functions, under ``if TYPE_CHECKING:``. A lazy
import (for a fast ``--help``) is fine, but it follows the layers like any other. The walk is
over the source (``ast``), so nothing is imported to check it. ``python -m tests.test_layers``
prints the edges that break the contract and the cycles.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("harness", "backends", "workloads")

#: Each package's layer, 0 at the top; a module belongs to the longest prefix listed.
LAYERS: dict[str, int] = {
    "harness.__main__": 0,
    "harness.cli": 0,
    "harness.pytest_plugin": 0,
    "harness.run": 1,
    "harness.targets": 1,
    "harness.scenarios": 2,
    "harness.measure": 3,
    "backends": 3,
    "workloads": 3,
    "harness.report": 3,
    "harness.pricing": 3,
    "harness.runfile": 4,
    "harness.plugins": 4,
    "harness.errors": 5,
    "harness": 5,
}
#: The only imports between two packages of one layer.
SIDEWAYS = {("harness.__main__", "harness.cli"), ("harness.targets", "harness.run"), ("harness.measure", "backends")}
#: The module of scenario specs (names, order, columns, sample minimums) that a report may read:
#: it imports nothing that measures (branch i17-config creates it).
SCENARIO_SPECS = "harness.scenarios.specs"
#: What report and pricing may import (a module, or every module under a package).
READERS_MAY_IMPORT: dict[str, tuple[str, ...]] = {
    "harness.report": ("harness.runfile", "harness.errors", "harness.pricing", SCENARIO_SPECS),
    "harness.pricing": ("harness.runfile", "harness.errors", SCENARIO_SPECS),
}
#: Pure statistics a report may recompute from recorded samples (dependence: issue 19; it imports
#: only numpy and the run records).
STATISTICS = ("harness.measure.stats", "harness.measure.between", "harness.measure.dependence")
#: PENDING: edges against the contract that another branch of issue 17 removes. Keep it short;
#: an entry that is no longer in the graph fails the test, so the list cannot go stale.
PENDING: dict[tuple[str, str], str] = {
    # FORWARD_COLUMNS and MIN_SAMPLES_FOR_P99 now come from harness.scenarios.specs (i17-config);
    # a report still asks the registry for a scenario's columns, and the registry imports the
    # scenario modules that declare the specs: open.
    ("harness.report.columns", "harness.scenarios.registry"): "i17-config",
}

Graph = Mapping[str, frozenset[str]]


def module_names(root: Path = REPO_ROOT) -> dict[str, Path]:
    """Every module of the packages by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imported_names(source: str, module: str) -> list[str]:
    """Every name ``source`` imports, wherever the import statement stands (relative ones resolved)."""
    names: list[str] = []
    package = module.split(".")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level], *filter(None, [base])])
            names += [f"{base}.{alias.name}" for alias in node.names]
    return names


def edges_of(source: str, module: str, modules: Iterable[str]) -> frozenset[str]:
    """The modules of the packages that ``source`` imports (the deepest module each name is in)."""
    known = set(modules)
    found: set[str] = set()
    for name in imported_names(source, module):
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name != module:
            found.add(name)
    return frozenset(found)


def import_graph(root: Path = REPO_ROOT) -> dict[str, frozenset[str]]:
    modules = module_names(root)
    return {name: edges_of(path.read_text(), name, modules) for name, path in modules.items()}


def package_of(module: str) -> str:
    """The longest prefix of ``module`` that ``LAYERS`` places."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in LAYERS:
            return prefix
    raise KeyError(module)


def _within(module: str, allowed: Iterable[str]) -> bool:
    return any(module == a or module.startswith(a + ".") for a in allowed)


def broken_edges(graph: Graph) -> list[tuple[str, str, str]]:
    """(importer, imported, why) for every edge against the contract, PENDING ones included."""
    broken: list[tuple[str, str, str]] = []
    for importer, targets in sorted(graph.items()):
        source = package_of(importer)
        for imported in sorted(targets):
            target = package_of(imported)
            if target == source:
                continue
            why = None
            if source in READERS_MAY_IMPORT:
                if not _within(imported, (*READERS_MAY_IMPORT[source], *STATISTICS)):
                    allowed = ", ".join((*READERS_MAY_IMPORT[source], *STATISTICS))
                    why = f"{source} reads run files: it may import only {allowed}"
            elif LAYERS[target] < LAYERS[source]:
                why = f"up from layer {LAYERS[source]} ({source}) to layer {LAYERS[target]} ({target})"
            elif LAYERS[target] == LAYERS[source] and (source, target) not in SIDEWAYS:
                why = f"sideways inside layer {LAYERS[source]}: {source} -> {target}"
            if _within(importer, STATISTICS) and not _within(imported, ("harness.runfile", "harness.errors")):
                why = "the statistics measure nothing: they import only runfile and errors"
            if importer == SCENARIO_SPECS and not _within(imported, ("harness.runfile", "harness.errors")):
                why = "the scenario specs import nothing that measures"
            if why:
                broken.append((importer, imported, why))
    return broken


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, frozenset[str]]:
    return import_graph()


def test_every_module_has_a_layer(graph: Graph) -> None:
    unplaced = []
    for module in graph:
        try:
            package_of(module)
        except KeyError:
            unplaced.append(module)
    assert not unplaced


def test_there_is_no_import_cycle(graph: Graph) -> None:
    assert cycles(graph) == []


def test_every_import_goes_down_the_layers(graph: Graph) -> None:
    broken = [edge for edge in broken_edges(graph) if edge[:2] not in PENDING]
    assert broken == []


def test_every_pending_edge_still_exists(graph: Graph) -> None:
    """A PENDING entry whose edge is gone must leave the list (it would hide a new one)."""
    present = {edge[:2] for edge in broken_edges(graph)}
    assert sorted(set(PENDING) - present) == []


# --- the check itself: it sees every kind of import, and a new back-edge fails it ---


def test_imports_inside_functions_and_under_type_checking_are_edges() -> None:
    source = """
from typing import TYPE_CHECKING
import harness.errors
if TYPE_CHECKING:
    from harness.run.plan import Suite
def later():
    from harness.measure import stats
    import backends.registry as registry
class Thing:
    def method(self):
        from .files import load_run
"""
    modules = ["harness.errors", "harness.run.plan", "harness.measure.stats", "backends.registry"]
    modules += ["harness.runfile.files", "harness.runfile.records"]
    edges = edges_of(source, "harness.runfile.records", modules)
    assert edges == {"harness.errors", "harness.run.plan", "harness.measure.stats", "backends.registry"} | {
        "harness.runfile.files"
    }


def test_a_new_back_edge_fails_the_contract(graph: Graph) -> None:
    back = dict(graph)
    back["harness.runfile.records"] = graph["harness.runfile.records"] | {"backends.engine.launcher"}
    back["backends.base"] = graph["backends.base"] | {"harness.measure.sampler"}
    back["harness.report.rows"] = graph["harness.report.rows"] | {"harness.measure.peak"}
    new = {edge[:2] for edge in broken_edges(back)} - {edge[:2] for edge in broken_edges(graph)}
    assert new == {
        ("harness.runfile.records", "backends.engine.launcher"),
        ("backends.base", "harness.measure.sampler"),
        ("harness.report.rows", "harness.measure.peak"),
    }


def test_a_new_cycle_is_found(graph: Graph) -> None:
    looped = dict(graph)
    looped["harness.errors"] = graph["harness.errors"] | {"harness.cli.main"}
    (component,) = [c for c in cycles(looped) if "harness.errors" in c]
    assert "harness.cli.main" in component


def test_tarjan_finds_each_component_once() -> None:
    graph = {
        "a": frozenset({"b"}),
        "b": frozenset({"c"}),
        "c": frozenset({"a"}),
        "d": frozenset({"e"}),
        "e": frozenset({"d", "a"}),
        "f": frozenset(),
    }
    assert sorted(cycles(graph)) == [["a", "b", "c"], ["d", "e"]]


def main() -> int:
    graph = import_graph()
    broken = broken_edges(graph)
    found = cycles(graph)
    for importer, imported, why in broken:
        pending = f"  [PENDING {PENDING[importer, imported]}]" if (importer, imported) in PENDING else ""
        print(f"{importer} -> {imported}: {why}{pending}")
    for component in found:
        print("cycle:", " ".join(component))
    edges = sum(len(t) for t in graph.values())
    print(f"{len(graph)} modules, {edges} import edges, {len(found)} cycles, {len(broken)} edges against the layers")
    return 1 if found or any(edge[:2] not in PENDING for edge in broken) else 0


if __name__ == "__main__":
    sys.exit(main())
