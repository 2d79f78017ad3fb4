"""Workloads that fail the way real ones do, named as package.module:callable in a suite."""

from __future__ import annotations

import os
import signal
import time

from workloads.base import Workload


def killed(preset: str | None = None) -> Workload:
    """The process dies outright, as under the kernel's out-of-memory killer (no traceback, no cleanup)."""
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def sleepy(preset: str | None = None) -> Workload:
    """Takes far longer than any test waits: the run is still busy when the test interrupts it."""
    time.sleep(600)
    raise AssertionError("unreachable")
