"""The workload contract: a model built from code plus a way to make its inputs.

A workload never downloads anything: ``build_model`` constructs the architecture with seeded
random weights, so every backend, process and machine times the same arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

__all__ = ["Workload", "WorkloadFactory", "WorkloadFamily"]


@dataclass(frozen=True)
class Workload:
    """One model at one size, ready to be built and fed.

    ``make_inputs(batch_size)`` returns the positional arguments of one forward call; the model's
    output may be a tensor or any pytree of tensors. ``tokens_per_sample`` is set by workloads whose
    cost is quoted per token (the sequence length of an encoder, say), and is 0 otherwise.
    """

    name: str
    preset: str
    build_model: Callable[[], torch.nn.Module]
    make_inputs: Callable[[int], tuple[torch.Tensor, ...]]
    task: str = "custom"
    description: str = ""
    tokens_per_sample: int = 0
    metadata: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class WorkloadFactory(Protocol):
    """What a plug-in provides: called with a preset name (or None for its default)."""

    def __call__(self, preset: str | None = None) -> Workload: ...


@dataclass(frozen=True)
class WorkloadFamily:
    """A named workload with several sizes: ``tiny`` for CI and the published size as default.

    Built-in workloads are families; a plug-in may be one too, or any ``WorkloadFactory``.
    """

    name: str
    description: str
    presets: Mapping[str, Callable[[], Workload]]
    default_preset: str

    def __call__(self, preset: str | None = None) -> Workload:
        from harness.errors import UnknownNameError

        chosen = preset or self.default_preset
        try:
            make = self.presets[chosen]
        except KeyError:
            raise UnknownNameError(f"preset of workload {self.name!r}", chosen, self.presets) from None
        return make()
