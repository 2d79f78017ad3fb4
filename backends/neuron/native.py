"""The ``compile`` mode of the neuron backend: PyTorch-native Neuron (TorchNeuron) on Trn2/Trn3.

TorchNeuron is "an open-source native PyTorch backend for AWS Trainium that integrates through
PyTorch's standard PrivateUse1 device backend mechanism" and "supports both eager mode execution
and ``torch.compile``"; moving to it means "Change ``.to('cuda')`` to ``.to('neuron')``" and, for
``torch.compile``, "Specify ``backend="neuron"``" (aws-neuron-sdk frameworks/torch/pytorch-native-overview.rst,
date-modified 2026-05-29). So this mode is the cuda backend's ``compile`` path on another device:
cast the model to the cell's dtype, move it and its inputs to ``neuron``, ``torch.compile`` it with
``backend="neuron"``, and run it a few times before timing so that compilation is not timed.

Execution is asynchronous ("Neuron operations are enqueued to the device asynchronously"), so a
timed call must be followed by a synchronize; the page also says the ``torch.accelerator`` API
works unchanged, which gives a device-neutral ``torch.accelerator.synchronize()``.

Unlike ``trace``, this path keeps the module's buffers on the device and in-place updates of them
persist between calls, as on CUDA, so decoders run their ordinary stateful steps here.

Importing ``torch_neuronx`` is not needed: "the torch_neuronx import is only needed when using NKI
kernels"; PyTorch 2.9+ autoloads the backend. Nothing here has been run on Trn2/Trn3 hardware; the
unit tests drive it through a test double (``tests/backends/neuron/double/torchneuron_double.py``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from backends.base import BackendOptions, PreparedModel
from backends.torch_common import compile_module

if TYPE_CHECKING:
    import torch

__all__ = ["COMPILE_BACKEND", "DEVICE_TYPE", "WARMUP_CALLS", "prepare_native", "synchronize"]

#: TorchNeuron's PrivateUse1 device name and its TorchDynamo backend name.
DEVICE_TYPE = "neuron"
COMPILE_BACKEND = "neuron"
#: Calls made while preparing: the first compiles; the second shows a recompile (a guard that
#: fails on the second call, e.g. on a buffer updated in place) before timing starts.
WARMUP_CALLS = 2


def synchronize() -> None:
    """Wait for the queued Neuron work (``torch.accelerator``, which TorchNeuron supports unchanged)."""
    import torch

    torch.accelerator.synchronize()


def prepare_native(
    model: torch.nn.Module, inputs: tuple[torch.Tensor, ...], options: BackendOptions
) -> tuple[PreparedModel, dict[str, Any]]:
    """Cast, place and ``torch.compile(backend="neuron")`` the model; run it ``WARMUP_CALLS`` times.

    Returns the prepared model and the details to record (compile time as ``trace_s`` so that
    the two neuron paths fill the same fields).
    """
    import torch

    started = time.perf_counter()
    prepared = compile_module(
        model,
        inputs,
        BackendOptions(dtype=options.dtype, mode="compile", threads=options.threads, device=options.device),
        torch.device(DEVICE_TYPE),
        synchronize,
        compile_kwargs={"backend": COMPILE_BACKEND},
        warmup_calls=WARMUP_CALLS,
    )
    return prepared, {"trace_s": time.perf_counter() - started}
