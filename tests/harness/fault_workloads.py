"""Workloads that fail on purpose, named as ``tests.harness.fault_workloads:NAME`` in tests of
how a failing cell is reported (they run in child processes, so they live in a module)."""

from __future__ import annotations

import os
import signal

import torch
from torch import nn

from workloads.base import Workload

#: PyTorch's CUDA caching allocator message (c10/cuda/CUDACachingAllocator.cpp), one long line.
CUDA_OOM_MESSAGE = (
    "CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of 79.10 GiB of which "
    "3.12 GiB is free. Including non-PyTorch memory, this process has 75.97 GiB memory in use. Of the "
    "allocated memory 74.51 GiB is allocated by PyTorch, and 1.02 GiB is reserved by PyTorch but "
    "unallocated. If reserved but unallocated memory is large try setting "
    "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See documentation for "
    "Memory Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)"
)


class _RaisesCudaOom(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise torch.cuda.OutOfMemoryError(CUDA_OOM_MESSAGE)


class _AllocatesTooMuch(nn.Module):
    """Asks the real host allocator for an exabyte: a genuine allocation failure."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.empty(2**60, dtype=torch.uint8).sum()


class _HogsTheGpu(nn.Module):
    """Fine on the CPU (the reference); on a GPU asks for 32 TiB: a genuine CUDA out-of-memory."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_cuda:
            x = x + torch.empty(2**45, dtype=torch.uint8, device=x.device)[:1].float()
        return x


class _AssertsOnTheGpu(nn.Module):
    """Fine on the CPU; on a GPU indexes out of bounds, a genuine device-side assert."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_cuda:
            index = torch.full((1,), 10**9, dtype=torch.int64, device=x.device)
            x = x + x.flatten()[index].sum()
            torch.cuda.synchronize(x.device)
        return x


def _segfault() -> nn.Module:
    os.kill(os.getpid(), signal.SIGSEGV)
    raise AssertionError("unreachable: the process was sent SIGSEGV")


def _inputs(batch_size: int) -> tuple[torch.Tensor, ...]:
    return (torch.ones(batch_size, 4),)


def cuda_oom(preset: str | None = None) -> Workload:
    """A model whose forward raises the CUDA allocator's out-of-memory error."""
    return Workload("cuda-oom", preset or "default", _RaisesCudaOom, _inputs)


def host_oom(preset: str | None = None) -> Workload:
    """A model whose forward cannot get its memory from the host allocator."""
    return Workload("host-oom", preset or "default", _AllocatesTooMuch, _inputs)


def segfault(preset: str | None = None) -> Workload:
    """A model whose construction kills its process with SIGSEGV, as a crash in native code does."""
    return Workload("segfault", preset or "default", _segfault, _inputs)


def cuda_hog(preset: str | None = None) -> Workload:
    """Runs on the CPU, runs out of memory on any GPU."""
    return Workload("cuda-hog", preset or "default", _HogsTheGpu, _inputs)


def cuda_assert(preset: str | None = None) -> Workload:
    """Runs on the CPU, faults on any GPU."""
    return Workload("cuda-assert", preset or "default", _AssertsOnTheGpu, _inputs)


def _libc_sleep_forever() -> None:
    """Block in a C call (libc ``pause``) as a hung driver or collective does: no Python code
    runs in this thread again, so no in-process alarm or flag could end it."""
    import ctypes

    ctypes.CDLL(None).pause()


class _HangsAfter(nn.Module):
    """Answers ``calls`` forwards, then hangs in C on the next (inside the sampling phase)."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.calls = calls
        self.linear = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls -= 1
        if self.calls < 0:
            _libc_sleep_forever()
        return self.linear(x)


def _hang_in_build() -> nn.Module:
    _libc_sleep_forever()
    raise AssertionError("unreachable: pause() returned")


def hang_in_build(preset: str | None = None) -> Workload:
    """A model whose construction never returns (a compile or engine start that hangs)."""
    return Workload("hang-in-build", preset or "default", _hang_in_build, _inputs)


def hang_in_sampling(preset: str | None = None) -> Workload:
    """A model that passes the reference and correctness check, then hangs while being timed."""
    return Workload("hang-in-sampling", preset or "default", lambda: _HangsAfter(calls=8), _inputs)


def spawns_grandchild(preset: str | None = None) -> Workload:
    """A model whose construction starts a long-lived helper process (as compiler workers and
    engines do), writes its pid to $SILICONBENCH_TEST_PIDFILE, and then hangs."""
    import subprocess
    import sys

    def build() -> nn.Module:
        helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        with open(os.environ["SILICONBENCH_TEST_PIDFILE"], "a") as handle:
            handle.write(f"{os.getpid()} {helper.pid}\n")
        _libc_sleep_forever()
        raise AssertionError("unreachable")

    return Workload("spawns-grandchild", preset or "default", build, _inputs)


def no_preset() -> Workload:
    """Not a workload factory: takes no preset argument."""
    return Workload("no-preset", "default", _segfault, _inputs)


def returns_a_string(preset: str | None = None) -> str:
    """Not a workload factory: returns something else."""
    return "not a workload"


def raises(preset: str | None = None) -> Workload:
    """Not a working factory: raises."""
    raise RuntimeError("the user's factory is broken\nsecond line")


#: Seconds every call of ``three_second_call`` takes (a sleep: it holds no core).
SLOW_CALL_S = 3.0


class _ThreeSecondCall(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import time

        time.sleep(SLOW_CALL_S)
        return x * 2


def three_second_call(preset: str | None = None) -> Workload:
    """A model whose every call takes three seconds: the budget check of a cell far slower than its budget."""
    return Workload("three-second-call", preset or "default", _ThreeSecondCall, _inputs)


class _HangsOnFirstForward(nn.Module):
    """Its first forward blocks in a C call (libc ``pause``), as a hung first kernel launch, a
    deadlocked runtime or a compile that never ends does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _libc_sleep_forever()
        raise AssertionError("unreachable: pause() returned")


def hang_on_first_forward(preset: str | None = None) -> Workload:
    """A model that builds at once and whose first forward never returns."""
    return Workload("hang-on-first-forward", preset or "default", _HangsOnFirstForward, _inputs)
