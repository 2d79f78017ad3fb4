"""Run a cell in a fresh child process, so a crash, an out-of-memory kill or a hang fails that
cell alone and leaves the harness (and the measurements already taken) intact.

``spawn`` rather than ``fork``: a forked child inherits the parent's threads, CUDA context and
allocator state, which is exactly what isolation is meant to avoid.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import signal
import time
from typing import Any

from harness.measure.environment import utc_now
from harness.measure.sampler import SamplingPolicy
from harness.run.cell import failed_cell, run_cell
from harness.run.failures import describe_signal
from harness.runfile.records import CellConfig, CellRecord

__all__ = ["run_cell_isolated"]


def _child(config: CellConfig, policy: SamplingPolicy, results: Any) -> None:
    results.put(run_cell(config, policy))


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "did not exit"
    if code < 0:
        try:
            name = signal.Signals(-code).name
            return f"was killed by {name}{describe_signal(name)}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def run_cell_isolated(config: CellConfig, policy: SamplingPolicy, timeout_s: float) -> CellRecord:
    """Measure ``config`` in a child process; a dead or hung child gives a failed cell."""
    started = utc_now()
    context = mp.get_context("spawn")
    results = context.Queue(maxsize=1)
    child = context.Process(target=_child, args=(config, policy, results), daemon=True)
    child.start()
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                # Read before join: a child blocks on exit until its queued result is consumed.
                return results.get(timeout=0.2)  # type: ignore[no-any-return]
            except queue.Empty:
                pass
            if not child.is_alive():
                try:
                    return results.get(timeout=1.0)  # type: ignore[no-any-return]
                except queue.Empty:
                    child.join(5)
                    return failed_cell(
                        config,
                        "child",
                        f"the cell's child process {_describe_exit(child.exitcode)} before reporting",
                        started,
                    )
            if time.monotonic() > deadline:
                return failed_cell(
                    config, "measure", f"cell timed out after {timeout_s:.0f} s in its child process", started
                )
    finally:
        if child.is_alive():
            child.kill()
        child.join(5)
        results.close()
