"""``run --processes N`` end to end: fresh processes, interleaved, merged into one cell each."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.runfile.files import load_run
from tests.conftest import CliRunner


@pytest.mark.slow
def test_run_with_processes_writes_the_between_process_part(run_cli: CliRunner, tmp_path: Path) -> None:
    done = run_cli(
        "run",
        "--workload",
        "mlp",
        "--preset",
        "tiny",
        "--dtype",
        "fp32",
        "--batch-size",
        "1",
        "--batch-size",
        "2",
        "--threads",
        "1",
        "--max-time",
        "0.3",
        "--processes",
        "2",
        "--output",
        str(tmp_path),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    (path,) = tmp_path.glob("run-*.json")
    run = load_run(path)
    assert len(run.cells) == 2
    starts = []
    for cell in run.cells:
        assert cell.measurement is not None and cell.measurement.processes is not None
        part = cell.measurement.processes
        assert len(part.medians_ns) == 2 and part.low_ns is not None
        assert len(cell.measurement.samples_ns) == sum(part.counts)
        starts.append(part.started_utc)
    # ABAB: bs1's first process, bs2's first, bs1's second, bs2's second.
    assert starts[0][0] < starts[1][0] < starts[0][1] < starts[1][1]
    assert "between procs" in done.stdout
    assert any(k.startswith("cpu/-/fp32/t1") for k in run.environment.matmul_peaks)
