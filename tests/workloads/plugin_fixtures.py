"""Workloads given as package.module:callable, for the plug-in contract's tests."""

from __future__ import annotations

import torch

from workloads.base import Workload


class _Scale(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.full((8,), 2.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight


def scale(preset: str | None = None) -> Workload:
    """A plain factory: elementwise scaling, 8 parameters."""
    return Workload(
        name="scale",
        preset=preset or "default",
        build_model=_Scale,
        make_inputs=lambda batch: (torch.ones(batch, 8),),
        task="test",
    )


class _Broken(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("deliberately broken model")


def broken(preset: str | None = None) -> Workload:
    return Workload(
        name="broken",
        preset=preset or "default",
        build_model=_Broken,
        make_inputs=lambda batch: (torch.ones(batch, 2),),
    )


class _Random(torch.nn.Module):
    """Returns fresh noise each call: a stand-in for a miscompiled model (outputs disagree)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.randn_like(x)


def nondeterministic(preset: str | None = None) -> Workload:
    return Workload(
        name="random",
        preset=preset or "default",
        build_model=_Random,
        make_inputs=lambda batch: (torch.ones(batch, 16),),
    )


def not_a_workload(preset: str | None = None) -> int:
    return 42


NOT_CALLABLE = 3
