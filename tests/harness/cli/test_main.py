"""The program as a whole (``harness.cli.main``): ``--help`` stays cheap, and bad input to any command
is one line on stderr and exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.cli import CliRunner, one_line_error
from tests.conftest import REPO_ROOT, cli_env


def test_help_does_not_import_torch(run_cli: CliRunner) -> None:
    result = run_cli("run", "--help")
    assert result.returncode == 0
    assert "--max-time" in result.stdout
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, harness.cli.main as c\n"
            "try:\n    c.main(['--help'])\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=cli_env(),
    )
    assert check.stdout.strip().endswith("False")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "--workload", "nope"], "unknown workload 'nope'; available: bert-base, gpt2, llama, mlp, resnet50"),
        (
            ["run", "--workload", "mlp", "--preset", "huge"],
            "workload 'mlp' has no preset 'huge'; available: tiny, large",
        ),
        (["run", "--backend", "tpu"], "unknown backend 'tpu'; available: cpu, cuda, neuron"),
        (["run", "--backend", "cuda"], "backend 'cuda' is not available here:"),
        (["run", "--batch-size", "0"], "argument --batch-size: must be 1 or more, got 0"),
        (["run", "--batch-size", "-3"], "argument --batch-size: must be 1 or more, got -3"),
        (["run", "--dtype", "int4"], "backend 'cpu' does not support dtype 'int4'; use one of: fp32, bf16"),
        (["run", "--mode", "jit"], "backend 'cpu' does not support mode 'jit'; use one of: eager, compile"),
        (["run", "--max-time", "abc"], "argument --max-time: 'abc' is not a number"),
        (["run", "--suite", "/nonexistent/suite.toml"], "suite file '/nonexistent/suite.toml' does not exist"),
        (["run", "--bogus"], "unrecognized arguments: --bogus"),
        (["report", "/nonexistent/run.json"], "run file '/nonexistent/run.json' does not exist"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_input_gets_one_line_and_exit_code_2(run_main: CliRunner, args: list[str], expected: str) -> None:
    one_line_error(run_main(*args), expected)
