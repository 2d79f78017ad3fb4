"""The batching benchmark runs as a reader would run it, attached to the session's vLLM CPU engine.

Whether four users beat one is the benchmark's business (this machine is shared), so this checks
that it runs, prints one row per sweep with both rates, and that its exit status follows its
verdict line. Marked ``engine``: CI's engine stage runs it.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from backends.engine.serving import ServingEngine
from tests.conftest import REPO_ROOT, cli_env
from tests.vllm_cpu import VllmCpu

SCRIPT = REPO_ROOT / "benchmarks" / "engine_batching.py"

pytestmark = [pytest.mark.engine, pytest.mark.slow]


def test_benchmark_runs_and_its_exit_status_follows_its_verdict(vllm_server: ServingEngine, vllm_cpu: VllmCpu) -> None:
    args = ["--endpoint", vllm_server.record().url, "--model", vllm_cpu.model, "--repeats", "1"]
    args += ["--requests", "8", "--max-time", "4"]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=900, env=cli_env()
    )
    rows = re.findall(r"^\| 1 \| ([0-9.]+) \| ([0-9.]+) \| ([0-9.]+) \|$", result.stdout, re.M)
    assert len(rows) == 1, result.stdout + result.stderr
    one, four, ratio = (float(x) for x in rows[0])
    assert one > 0 and four > 0 and ratio == pytest.approx(four / one, abs=0.01)
    verdict = re.search(r"^# four users faster than one in (\d) of 1 sweeps: (PASS|FAIL)$", result.stdout, re.M)
    assert verdict, result.stdout
    assert verdict.group(2) == ("PASS" if four > one else "FAIL")
    assert result.returncode == (0 if verdict.group(2) == "PASS" else 1)
