"""The MLP workload: right shapes, seeded determinism, and its analytic size and cost."""

from __future__ import annotations

from itertools import pairwise

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from harness.errors import UnknownNameError
from workloads.base import Workload
from workloads.mlp import MLP


def _forward(workload: Workload, batch_size: int) -> torch.Tensor:
    model = workload.build_model()
    with torch.no_grad():
        output = model(*workload.make_inputs(batch_size))
    assert isinstance(output, torch.Tensor)
    return output


def test_default_preset_is_large() -> None:
    workload = MLP()
    assert workload.name == "mlp"
    assert workload.preset == "large"
    assert set(MLP.presets) == {"tiny", "large"}


@pytest.mark.parametrize("batch_size", [1, 3])
def test_tiny_forward_shape_and_finite(batch_size: int) -> None:
    workload = MLP("tiny")
    widths = workload.metadata["widths"]
    (x,) = workload.make_inputs(batch_size)
    assert x.dtype == torch.float32
    assert x.shape == (batch_size, widths[0])
    output = _forward(workload, batch_size)
    assert output.shape == (batch_size, widths[-1])
    assert torch.isfinite(output).all()
    assert output.std() > 0


def test_tiny_model_is_in_eval_mode() -> None:
    assert not MLP("tiny").build_model().training


def test_tiny_is_deterministic_across_builds() -> None:
    first, second = MLP("tiny"), MLP("tiny")
    assert torch.equal(first.make_inputs(2)[0], second.make_inputs(2)[0])
    assert torch.equal(_forward(first, 2), _forward(second, 2))


def test_build_leaves_global_rng_alone() -> None:
    before = torch.random.get_rng_state()
    MLP("tiny").build_model()
    assert torch.equal(before, torch.random.get_rng_state())


@pytest.mark.parametrize("preset", ["tiny", "large"])
def test_params_and_flops_match_the_layer_widths(preset: str) -> None:
    workload = MLP(preset)
    widths = workload.metadata["widths"]
    pairs = list(pairwise(widths))
    model = workload.build_model()
    assert sum(p.numel() for p in model.parameters()) == sum(a * b + b for a, b in pairs)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*workload.make_inputs(1))
    assert counter.get_total_flops() == 2 * sum(a * b for a, b in pairs)


def test_large_preset_shape() -> None:
    assert MLP("large").metadata["widths"] == (2048, 2048, 2048, 2048, 2048)


def test_unknown_preset_raises() -> None:
    with pytest.raises(UnknownNameError, match="huge"):
        MLP("huge")
