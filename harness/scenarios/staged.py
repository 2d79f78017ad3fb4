"""A model whose inputs are buffers refilled in place: how new samples reach a prepared model.

``offline`` and LoadGen hand the system new samples (``harness.scenarios.sut``); the backend
prepares this wrapper once (``harness.scenarios.prepare``), placing and casting its input buffers
like any weights, and each batch is copied into them before the call (static shapes, so compiled
and traced code is reused).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["StagedModel"]


class StagedModel(nn.Module):
    """``forward()`` runs the model on input buffers that ``feed`` refills in place."""

    def __init__(self, model: nn.Module, example: Sequence[torch.Tensor]) -> None:
        super().__init__()
        self.model = model
        self.count = len(example)
        for index, tensor in enumerate(example):
            self.register_buffer(f"input{index}", tensor.clone(), persistent=False)

    def inputs(self) -> list[torch.Tensor]:
        return [getattr(self, f"input{index}") for index in range(self.count)]

    def feed(self, tensors: Sequence[torch.Tensor]) -> None:
        """Copy host tensors into the (possibly device-resident, cast) input buffers."""
        with torch.no_grad():
            for buffer, tensor in zip(self.inputs(), tensors, strict=True):
                buffer.copy_(tensor)

    def forward(self) -> Any:
        return self.model(*self.inputs())
