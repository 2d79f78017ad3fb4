"""Shared fixtures: run the CLI as a user would, in a subprocess, against this checkout."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

#: The real vLLM CPU engine's fixtures, for the tests marked ``engine`` anywhere in the tree; pytester for
#: the tests that run a documented pytest session (tests/test_readme.py).
pytest_plugins = ["tests.vllm_cpu", "pytester"]

CliRunner = Callable[..., subprocess.CompletedProcess[str]]


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a CLI subprocess: this checkout first on the path, few threads."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(extra or {})
    return env


@pytest.fixture
def run_cli() -> CliRunner:
    """Run ``siliconbench ARGS`` in a child process and return the completed process."""

    def run(
        *args: str,
        timeout: float = 240,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "harness", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd or REPO_ROOT,
            env=cli_env(env),
        )

    return run


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
    whose answer comes before anything is measured; a few tests run the CLI as a subprocess."""

    def run(
        *args: str,
        timeout: float = 240,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        import contextlib
        import io

        from harness.cli.main import main

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's own exits (bad usage, --help)
                code = exc.code if isinstance(exc.code, int) else 2
        return subprocess.CompletedProcess(["siliconbench", *args], code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture(autouse=True, scope="session")
def _peak_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Measured matmul peaks go to a cache of this session, never the user's ~/.cache."""
    os.environ["SILICONBENCH_CACHE"] = str(tmp_path_factory.mktemp("siliconbench-cache"))
