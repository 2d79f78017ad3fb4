"""Run a cell in a fresh child process, so a crash, an out-of-memory kill or a hang fails that
cell alone and leaves the harness (and the measurements already taken) intact.

``spawn`` rather than ``fork``: a forked child inherits the parent's threads, CUDA context and
allocator state, which is exactly what isolation is meant to avoid.

Nothing of a cell outlives the run, however the run ends:

- the child leads its own process group, so killing the group also kills whatever it started
  (compiler workers, an engine); the parent kills the group when the cell is over its time limit
  and whenever it leaves the cell (a signal, an error);
- on Linux the child asks the kernel for SIGKILL when its parent dies (``PR_SET_PDEATHSIG``), so
  it dies even when the parent is SIGKILLed, which runs no clean-up code at all;
- a small watcher process in the child's group waits on a pipe only the child holds open; when
  the child dies, however it dies, the watcher kills the rest of the group (its grandchildren,
  which ``PR_SET_PDEATHSIG`` does not reach) and then itself;
- multiprocessing's resource tracker reads a pipe held open by the parent and its spawned
  children; with them gone it sees end-of-file and exits.

The child reports each phase as it starts, so the parent enforces the preparation limit and the
sampling limit of ``harness.run.limits`` from outside: a hung C call ignores in-process alarms.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import sys
import time
from typing import Any

from harness.measure.sampler import SamplingPolicy
from harness.run.cell import failed_cell, run_cell
from harness.run.failures import describe_signal
from harness.run.limits import PREPARE_PHASES, CellLimits
from harness.runfile.records import CellConfig, CellRecord, utc_now

__all__ = ["run_cell_isolated"]

#: prctl(2) option: the signal the kernel sends this process when its parent thread exits.
PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """Ask for SIGKILL when the parent dies (Linux); exit now if it already has."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


def _start_group_watcher() -> None:
    """Fork a watcher that kills this process group once this process has died."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the watcher: no Python clean-up of the parent's state may run here
        try:
            os.close(write_end)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            while os.read(read_end, 1):
                pass
        finally:
            os.killpg(0, signal.SIGKILL)
            os._exit(0)
    os.close(read_end)
    # write_end stays open, unread, for this process's lifetime: its closing is the watcher's cue.


def _child(config: CellConfig, policy: SamplingPolicy, conn: Any, parent_pid: int) -> None:
    os.setpgid(0, 0)
    _die_with_parent(parent_pid)
    _start_group_watcher()
    # Stop signals are the parent's to handle: it kills this group when it leaves the cell.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    record = run_cell(config, policy, on_phase=lambda phase: conn.send(("phase", phase)))
    conn.send(("result", record))
    conn.close()


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


def _kill_group(child: Any) -> None:
    """SIGKILL the child's process group (the child, the watcher and anything they started)."""
    if child.pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(child.pid, signal.SIGKILL)  # in case it died before leading its group


def run_cell_isolated(
    config: CellConfig,
    policy: SamplingPolicy,
    limits: CellLimits | None = None,
    clock: Any = time.monotonic,
) -> CellRecord:
    """Measure ``config`` in a child process; a dead or over-limit child gives a failed cell."""
    limits = (limits or CellLimits()).for_cell(config.backend, config.mode)
    started = utc_now()
    context = mp.get_context("spawn")
    reader, writer = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(config, policy, writer, os.getpid()), daemon=True)
    child.start()
    writer.close()  # the child holds the only write end: end-of-file means it is gone
    phase = "setup"
    deadline = clock() + limits.prepare_limit_s
    sampling = False
    try:
        while True:
            now = clock()
            if now > deadline:
                _kill_group(child)
                message = limits.describe(phase, policy, config.scenario, config.params.loadgen)
                return failed_cell(
                    config, phase, f"the cell {message}; its process was killed", started, kind="TimeoutError"
                )
            gone = False
            if reader.poll(min(0.2, max(0.0, deadline - now))):
                try:
                    kind, value = reader.recv()
                except (EOFError, OSError):
                    gone = True  # the child closed its end: it has exited or is exiting
                else:
                    if kind == "result":
                        return value  # type: ignore[no-any-return]
                    phase = str(value)
                    if phase not in PREPARE_PHASES and not sampling:
                        sampling = True
                        deadline = clock() + limits.sampling_s(policy, config.scenario, config.params.loadgen)
                    continue
            if gone or not child.is_alive():
                child.join(5)
                return failed_cell(
                    config,
                    "child",
                    f"the cell's child process {_describe_exit(child.exitcode)} before reporting",
                    started,
                )
    finally:
        _kill_group(child)
        child.join(5)
        reader.close()
