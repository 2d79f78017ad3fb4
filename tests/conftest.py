"""Shared fixtures: run the CLI as a user would, in a subprocess, against this checkout."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

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
