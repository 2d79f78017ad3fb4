"""The torch settings a ceiling or peak is measured under, set for the measurement and put back.

A ceiling is taken at the cells' thread count (``torch.set_num_threads``) and, for tf32 on CUDA,
with TF32 matmuls allowed; both are process-wide, so a measurement that left them changed would
change every cell after it. ``measuring`` sets them, yields the device's synchronize (a CUDA
kernel returns before it ends; a timer must wait for it) and restores them whatever happens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["measuring"]


@contextmanager
def measuring(device: str, threads: int | None, dtype: str | None = None) -> Iterator[Callable[[], None]]:
    """Set threads (and TF32 for a tf32 ``dtype`` on CUDA) for the block; yield ``synchronize``."""
    import torch

    cuda = device.startswith("cuda")

    def synchronize() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    previous_threads = torch.get_num_threads()
    previous_tf32 = torch.backends.cuda.matmul.allow_tf32 if cuda else False
    if threads is not None:
        torch.set_num_threads(threads)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = dtype == "tf32"
    try:
        with torch.inference_mode():
            yield synchronize
    finally:
        torch.set_num_threads(previous_threads)
        if cuda:
            torch.backends.cuda.matmul.allow_tf32 = previous_tf32
