"""The command line on a machine without a GPU: cuda is listed as unavailable with the reason,
and a run that asks for it fails with one line and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import CliRunner

pytestmark = pytest.mark.skipif(
    torch.cuda.is_available(), reason="this machine has a GPU; the no-GPU answers cannot be seen here"
)


def test_list_shows_cuda_unavailable_with_the_reason(run_cli: CliRunner) -> None:
    result = run_cli("list")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("cuda ")]
    assert len(rows) == 1
    row = rows[0]
    assert " no " in row
    assert "fp32, tf32, fp16, bf16" in row
    assert "eager, compile, compile-max-autotune, cudagraph" in row
    assert ("CPU-only build" in row) or ("no NVIDIA GPU is visible" in row)


def test_a_cuda_run_fails_in_one_line_with_exit_2_and_writes_nothing(run_main: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = run_main("run", "--backend", "cuda", "--workload", "mlp", "--preset", "tiny", "--output", str(out))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("siliconbench: error: backend 'cuda' is not available here: ")
    assert not out.exists()
