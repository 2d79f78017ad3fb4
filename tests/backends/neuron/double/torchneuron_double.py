"""A TEST DOUBLE of TorchNeuron's ``torch.compile`` backend, for machines without Trainium.

Source: "Native PyTorch for AWS Trainium", aws-neuron-sdk frameworks/torch/pytorch-native-overview.rst
(date-modified 2026-05-29). What the double takes from it:

- "Specify ``backend="neuron"`` (Specifically, ``@torch.compile(backend="neuron")``)": the double
  registers a TorchDynamo backend named ``neuron`` that records every graph it is given and runs
  it as it is (the real one lowers it to Neuron IR and compiles it with neuronx-cc).
- "Neuron operations are enqueued to the device asynchronously": ``synchronize`` is counted, so a
  test can see that the backend waits after its preparation.
- "The initial release requires compilation on Trainium2 or Trainium3 (Trn2 or Trn3) instances":
  compiling on a simulated instance that is not a trn2/trn3 (``NEURON_DOUBLE_INSTANCE``) raises.

What it cannot show: the ``neuron`` device itself (PrivateUse1). The tests point the backend's
``native.DEVICE_TYPE`` at the CPU, so placement on the device is not exercised here.

Registered once per test session (TorchDynamo keeps its backend registry for the process).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["STATE", "reset", "synchronize"]


@dataclass
class NativeState:
    """What the double saw: compiled graphs (their node counts) and synchronize calls."""

    graphs: list[int] = field(default_factory=list)
    synchronize_calls: int = 0


STATE = NativeState()


def reset() -> NativeState:
    """A fresh record for the next test (the object stays the same, so references stay valid)."""
    STATE.graphs.clear()
    STATE.synchronize_calls = 0
    torch._dynamo.reset()  # forget graphs compiled by earlier tests
    return STATE


def synchronize() -> None:
    STATE.synchronize_calls += 1


def _neuron_backend(graph: torch.fx.GraphModule, example_inputs: list[Any]) -> Any:
    instance = os.environ.get("NEURON_DOUBLE_INSTANCE", "")
    if not instance.startswith(("trn2", "trn3")):
        raise RuntimeError(f"TorchNeuron compiles on Trn2 or Trn3 instances, not {instance or 'this machine'} (double)")
    STATE.graphs.append(len(graph.graph.nodes))
    return graph.forward


if "neuron" not in torch._dynamo.list_backends(exclude_tags=()):
    torch._dynamo.register_backend(_neuron_backend, name="neuron")
