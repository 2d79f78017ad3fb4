"""A plain multilayer perceptron: the simplest GEMM-bound workload.

Its cost is almost entirely ``addmm``, so it isolates how well a backend runs dense matrix
products, with none of the convolution, attention or memory-layout questions of the other models.
At batch 1 each layer is a matrix-vector product and is bound by memory bandwidth (reading the
weights); larger batches turn it into a compute-bound GEMM.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from itertools import pairwise

import torch
from torch import nn

from workloads.base import Workload, WorkloadFamily

__all__ = ["MLP", "MLPModel"]

#: Seeds for the weights and the inputs; fixed so every process builds identical arithmetic.
WEIGHT_SEED = 0
INPUT_SEED = 1

#: Layer widths per preset: ``widths[0]`` inputs, then one ``nn.Linear`` per following width.
#: ``tiny`` runs well under 1 ms at batch 1 on 2 cores. ``large`` uses width 2048 rather than
#: 4096: at batch 1 four 4096x4096 layers read 268 MB of weights per inference (~15 ms on 2 cores,
#: bandwidth-bound), whereas 2048 keeps one inference at a few ms while staying far beyond cache.
_WIDTHS: dict[str, tuple[int, ...]] = {
    "tiny": (256, 512, 512, 512),
    "large": (2048, 2048, 2048, 2048, 2048),
}


class MLPModel(nn.Module):
    """``Linear -> GELU`` for every hidden layer, then a bare ``Linear`` output layer.

    The last layer has no activation, as in any regression or logits head; it changes nothing
    about the cost but keeps the outputs signed, which makes correctness checks more sensitive.
    """

    def __init__(self, widths: Sequence[int]) -> None:
        super().__init__()
        if len(widths) < 2:
            raise ValueError(f"an MLP needs at least an input and an output width, got {widths!r}")
        layers: list[nn.Module] = []
        pairs = list(pairwise(widths))
        for index, (fan_in, fan_out) in enumerate(pairs):
            layers.append(nn.Linear(fan_in, fan_out))
            if index < len(pairs) - 1:
                layers.append(nn.GELU())
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output: torch.Tensor = self.layers(x)
        return output


def _build(widths: tuple[int, ...]) -> nn.Module:
    """Seeded construction without disturbing the caller's global RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(WEIGHT_SEED)
        model = MLPModel(widths)
    return model.eval()


def _inputs(widths: tuple[int, ...], batch_size: int) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(INPUT_SEED)
    return (torch.randn(batch_size, widths[0], generator=generator, dtype=torch.float32),)


def _preset(preset: str) -> Workload:
    widths = _WIDTHS[preset]
    return Workload(
        name="mlp",
        preset=preset,
        build_model=partial(_build, widths),
        make_inputs=partial(_inputs, widths),
        task="dense",
        description=f"MLP {'-'.join(map(str, widths))}: {len(widths) - 1} Linear layers with GELU, float32",
        metadata={"widths": widths},
    )


MLP = WorkloadFamily(
    name="mlp",
    description="Stack of Linear+GELU layers; measures dense matrix-product (GEMM/GEMV) throughput.",
    presets={name: partial(_preset, name) for name in _WIDTHS},
    default_preset="large",
)
