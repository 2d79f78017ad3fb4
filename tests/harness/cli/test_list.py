"""``siliconbench list``: workloads, presets, and each backend's availability with the reason."""

from __future__ import annotations

import pytest
import torch

from tests.cli import CliRunner

#: The no-GPU answers, seen only where no GPU is visible.
NO_GPU = pytest.mark.skipif(
    torch.cuda.is_available(), reason="this machine has a GPU; the no-GPU answers cannot be seen here"
)


def test_list_shows_workloads_presets_and_backend_availability(run_cli: CliRunner) -> None:
    result = run_cli("list")
    assert result.returncode == 0, result.stderr
    for word in ("mlp", "resnet50", "bert-base", "tiny", "cpu", "cuda"):
        assert word in result.stdout
    cuda_line = next(line for line in result.stdout.splitlines() if line.startswith("cuda"))
    assert " no " in cuda_line or " yes " in cuda_line


@NO_GPU
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
