"""The client-overhead benchmark runs as a reader would run it, on a small load.

Its bounds are the benchmark's business (and this machine is shared), so this checks that it runs,
reports both loads with every request accounted for and the error split into shares, and that its
exit status follows its own verdict lines.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, cli_env

SCRIPT = REPO_ROOT / "benchmarks" / "engine_client_overhead.py"


@pytest.mark.slow
def test_benchmark_runs_and_reports_both_loads() -> None:
    args = ["--streams", "40", "--tokens", "5", "--itl-ms", "20", "--ttft-ms", "10", "--single", "2", "--ramp-s", "0.2"]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120, env=cli_env()
    )
    out = result.stdout
    assert "## 1 stream: 2/2 requests ok, 0 failed" in out, result.stderr
    assert "## 40 concurrent streams: 40/40 requests ok, 0 failed" in out
    assert len(re.findall(r"TTFT \|error\| over", out)) == 2 and len(re.findall(r"ITL  \|error\| over", out)) == 2
    assert out.count("client's share") == 2 and out.count("server's share") == 2 and out.count("way in") == 2
    verdict = "PASS" if "# overall: PASS" in out else "FAIL"
    assert ("FAIL" in out) == (verdict == "FAIL")
    assert result.returncode == (0 if verdict == "PASS" else 1)
