"""The one way the tests run siliconbench's command line, and the one check of a one-line error.

In a child process, as a user or a script would run it (``run_cli``, ``start_cli`` for a run to
signal or kill), against this checkout; or, for the many bad-input cases whose answer comes before
anything is measured, in this process (``run_main``: ``main([...])``, which is much faster). The
``run_cli`` and ``run_main`` fixtures of ``tests/conftest.py`` are these functions.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

__all__ = [
    "REPO_ROOT",
    "CliRunner",
    "cli_command",
    "cli_env",
    "one_line",
    "one_line_error",
    "run_cli",
    "run_main",
    "start_cli",
]

CliRunner = Callable[..., subprocess.CompletedProcess[str]]


def cli_env(extra: Mapping[str, str] | None = None, *, drop_prefix: str | None = None) -> dict[str, str]:
    """The environment for a CLI subprocess: this checkout first on the path, few threads.

    ``drop_prefix`` leaves out the inherited variables it starts (``"AWS_"``: no stray credentials
    or endpoint from the caller); ``extra`` goes on top.
    """
    env = {k: v for k, v in os.environ.items() if not (drop_prefix and k.startswith(drop_prefix))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(extra or {})
    return env


def cli_command(*args: str) -> list[str]:
    """``siliconbench ARGS`` as this checkout's interpreter runs it (no installed script needed)."""
    return [sys.executable, "-m", "harness", *args]


def run_cli(
    *args: str,
    timeout: float = 240,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``siliconbench ARGS`` in a child process and return it, finished.

    ``env`` adds variables to ``cli_env()``; ``environ`` replaces that base (then ``env`` goes on top).
    """
    base = dict(environ) if environ is not None else cli_env()
    return subprocess.run(
        cli_command(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or REPO_ROOT,
        env={**base, **(env or {})},
    )


def start_cli(
    *args: str, cwd: Path | None = None, environ: Mapping[str, str] | None = None, capture: bool = True
) -> subprocess.Popen[str]:
    """Start ``siliconbench ARGS`` in a child process and return it, running (to signal or kill)."""
    out = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(
        cli_command(*args),
        cwd=cwd or REPO_ROOT,
        env=dict(environ) if environ is not None else cli_env(),
        stdout=out,
        stderr=out,
        text=True,
    )


def run_main(
    *args: str, timeout: float = 240, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``siliconbench ARGS`` in this process (``main([...])``), captured like ``run_cli``.

    ``timeout``, ``cwd`` and ``env`` are accepted so a test can switch between the two runners, and
    ignored: only use it for answers that come before anything runs.
    """
    from harness.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's own exits (bad usage, --help)
            code = exc.code if isinstance(exc.code, int) else 2
    return subprocess.CompletedProcess(["siliconbench", *args], code, out.getvalue(), err.getvalue())


def one_line(stderr: str, *fragments: str) -> str:
    """The single line on ``stderr``, checked to hold each fragment and no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def one_line_error(done: subprocess.CompletedProcess[str], *fragments: str, code: int = 2) -> str:
    """Bad input's answer: exit ``code``, and one line on stderr, ``siliconbench[ command]: error: …``
    (ours, or argparse's for a bad option), saying what was wrong (and holding each fragment)."""
    assert done.returncode == code, done.stdout + done.stderr
    line = one_line(done.stderr, *fragments)
    assert re.match(r"siliconbench( [a-z-]+)*: error: ", line), line
    return line
