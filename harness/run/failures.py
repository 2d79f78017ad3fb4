"""Why a cell failed, in one line a user can act on.

Most failures are reported as the exception's first line. Two kinds get a rewrite because their
raw text hides the fix: out-of-memory errors (PyTorch's CUDA message is one very long line of
allocator statistics) say what was asked for, what was free and to lower the batch size; device
faults (illegal address, device-side assert) say that the CUDA context is lost with them, which is
why accelerator cells run in their own process.
"""

from __future__ import annotations

import re

__all__ = ["describe_failure", "describe_signal"]

_ALLOCATE = re.compile(r"[Tt]ried to allocate ([\d.]+ ?[KMGTP]?i?B)")
_CAPACITY = re.compile(r"(GPU \d+ has a total capacity of [\d.]+ ?\w+ of which [\d.]+ ?\w+ is free)")
_CPU_ALLOCATE = re.compile(r"you tried to allocate (\d+) bytes")
_DEVICE_FAULTS = (
    "illegal memory access",
    "device-side assert",
    "unspecified launch failure",
    "misaligned address",
    "illegal instruction",
    "uncorrectable ECC error",
    "GPU is lost",
    "device not ready",
)


def _size(count: int) -> str:
    """A byte count in binary units, as PyTorch's allocator writes them (20.00 GiB)."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024:
            return f"{value:.2f} {unit}"
        value /= 1024
    return f"{value:.2f} EiB"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0]


def _smaller_batch(batch_size: int | None) -> str:
    if batch_size is None:
        return "try a smaller --batch-size"
    return f"try a smaller --batch-size than {batch_size}"


def describe_failure(exc: BaseException, batch_size: int | None = None) -> tuple[str, str]:
    """(error type, one-line message) for ``exc``, rewritten where the raw text hides the fix."""
    kind = type(exc).__name__
    text = str(exc)
    first = _first_line(exc)
    if kind == "OutOfMemoryError" or "CUDA out of memory" in text:
        parts = ["CUDA out of memory"]
        if allocate := _ALLOCATE.search(text):
            parts.append(f"tried to allocate {allocate.group(1)}")
        if capacity := _CAPACITY.search(text):
            parts.append(capacity.group(1))
        return "OutOfMemoryError", "; ".join(parts) + f"; {_smaller_batch(batch_size)}"
    if isinstance(exc, MemoryError) or "DefaultCPUAllocator: can't allocate memory" in text:
        detail = ""
        if asked := _CPU_ALLOCATE.search(text):
            detail = f"; tried to allocate {_size(int(asked.group(1)))}"
        return "OutOfMemoryError", f"host out of memory{detail}; {_smaller_batch(batch_size)}"
    if "CUDA error" in text and any(fault in text for fault in _DEVICE_FAULTS):
        what = first.split("CUDA error:", 1)[-1].strip() or first
        return kind, (
            f"CUDA device fault: {what}; the process's CUDA context is unusable after this, "
            "so cuda cells run in their own process (do not pass --no-isolate)"
        )
    return kind, first


def describe_signal(name: str) -> str:
    """A hint for a child process killed by a signal."""
    if name == "SIGKILL":
        return " (SIGKILL is often the kernel's out-of-memory killer: try a smaller --batch-size)"
    if name in ("SIGSEGV", "SIGBUS", "SIGABRT", "SIGILL"):
        return " (a crash in native code: a driver, compiler or kernel fault)"
    return ""
