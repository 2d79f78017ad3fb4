"""The GPU benchmark script, on a machine without a GPU: one line saying why, exit status 2."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO_ROOT, cli_env

SCRIPT = REPO_ROOT / "benchmarks" / "cuda_mlp_tflops.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU; run the benchmark instead")
def test_without_a_gpu_the_benchmark_says_why_in_one_line() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120, env=cli_env())
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("cuda_mlp_tflops: no usable GPU here: ")
