"""The contention window sees other work on our CPUs that the load average has not yet shown."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.measure.contention import FOREIGN_CORES_BUSY, Contention, watch_contention

linux_only = pytest.mark.skipif(not Path("/proc/stat").exists(), reason="/proc/stat is Linux's")


def _spinner() -> subprocess.Popen[bytes]:
    import os

    cpus = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
    return subprocess.Popen(
        ["taskset", "-c", cpus, sys.executable, "-c", "while True: pass"]
        if Path("/usr/bin/taskset").exists()
        else [sys.executable, "-c", "while True: pass"]
    )


@linux_only
def test_a_process_spinning_during_the_window_makes_it_busy() -> None:
    spinner = _spinner()
    try:
        time.sleep(0.2)  # the spinner is running before the window opens, as a competing job would be
        with watch_contention() as window:
            time.sleep(0.8)  # the measurement leaves its cores idle: all busy time in it is foreign
    finally:
        spinner.kill()
        spinner.wait()
    assert window.foreign_cores is not None and window.foreign_cores > 0.6, window.describe()
    assert window.busy


@linux_only
def test_our_own_threads_are_not_counted_as_other_work() -> None:
    with watch_contention() as window:
        end = time.perf_counter() + 0.5
        while time.perf_counter() < end:
            pass
    assert window.own_cpu_s > 0.3
    # Our 0.5 s of spinning is ours; whatever else the machine ran is far less than that.
    assert window.foreign_cpu_s is not None and window.foreign_cpu_s < window.own_cpu_s, window.describe()


def test_no_counter_means_no_verdict_not_a_quiet_machine() -> None:
    window = Contention(wall_s=1.0, own_cpu_s=1.0, foreign_cpu_s=None, cpus=(0,))
    assert window.foreign_cores is None and not window.busy
    assert "not visible" in window.describe()
    assert Contention(wall_s=2.0, foreign_cpu_s=2 * FOREIGN_CORES_BUSY + 0.1, cpus=(0, 1)).busy
