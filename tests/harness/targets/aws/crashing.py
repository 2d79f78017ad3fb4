"""Workloads that fail the way real ones do, named as package.module:callable in a suite.

The factories themselves are well behaved (planning calls them, before any cell runs); the
failure comes when the cell builds the model, as a real crash or hang would.
"""

from __future__ import annotations

import os
import signal
import time

import torch
from torch import nn

from workloads.base import Workload


def _inputs(batch_size: int) -> tuple[torch.Tensor, ...]:
    return (torch.ones(batch_size, 4),)


def _killed() -> nn.Module:
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def _sleepy() -> nn.Module:
    time.sleep(600)
    raise AssertionError("unreachable")


def killed(preset: str | None = None) -> Workload:
    """The process dies outright, as under the kernel's out-of-memory killer (no traceback, no cleanup)."""
    return Workload("killed", preset or "default", _killed, _inputs)


def sleepy(preset: str | None = None) -> Workload:
    """Takes far longer than any test waits: the run is still busy when the test interrupts it."""
    return Workload("sleepy", preset or "default", _sleepy, _inputs)
