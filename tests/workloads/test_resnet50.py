"""ResNet-50 v1.5: the published size and cost, and a tiny preset that runs like the real one."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from harness.errors import UnknownNameError
from workloads.base import Workload
from workloads.resnet50 import RESNET50, Bottleneck

#: torchvision ``resnet50`` (v1.5): 25,557,032 parameters, 4.09 GMACs at 224x224.
PUBLISHED_PARAMS = 25_557_032
#: FlopCounterMode counts 2 FLOPs per multiply-add (convolutions and the classifier only).
PUBLISHED_FLOPS = 8.18e9


def _forward(workload: Workload, batch_size: int) -> torch.Tensor:
    model = workload.build_model()
    with torch.no_grad():
        output = model(*workload.make_inputs(batch_size))
    assert isinstance(output, torch.Tensor)
    return output


def _meta_model_and_input(workload: Workload) -> tuple[torch.nn.Module, torch.Tensor]:
    """Shapes only: the published model's size and cost need no real weights."""
    with torch.device("meta"):
        model = workload.build_model()
    shape = workload.make_inputs(1)[0].shape
    return model, torch.empty(shape, device="meta")


def test_default_preset() -> None:
    workload = RESNET50()
    assert workload.name == "resnet50"
    assert workload.preset == "default"
    assert workload.make_inputs(1)[0].shape == (1, 3, 224, 224)


@pytest.mark.parametrize("batch_size", [1, 2])
def test_tiny_forward_shape_and_finite(batch_size: int) -> None:
    workload = RESNET50("tiny")
    (x,) = workload.make_inputs(batch_size)
    assert x.dtype == torch.float32
    size = workload.metadata["image_size"]
    assert x.shape == (batch_size, 3, size, size)
    output = _forward(workload, batch_size)
    assert output.shape == (batch_size, 1000)
    assert torch.isfinite(output).all()
    assert output.std() > 0


def test_tiny_model_is_in_eval_mode() -> None:
    model = RESNET50("tiny").build_model()
    assert not model.training
    assert all(not m.training for m in model.modules())


def test_tiny_is_deterministic_across_builds() -> None:
    first, second = RESNET50("tiny"), RESNET50("tiny")
    assert torch.equal(first.make_inputs(2)[0], second.make_inputs(2)[0])
    assert torch.equal(_forward(first, 2), _forward(second, 2))


def test_last_batchnorm_gamma_is_not_zeroed() -> None:
    model = RESNET50("tiny").build_model()
    gammas = [m.weight for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert gammas and all(torch.equal(g, torch.ones_like(g)) for g in gammas)


def test_v15_stride_is_on_the_3x3_conv() -> None:
    model, _ = _meta_model_and_input(RESNET50())
    first_block = model.get_submodule("layer2.0")
    assert isinstance(first_block, Bottleneck)
    assert first_block.conv1.stride == (1, 1)
    assert first_block.conv2.stride == (2, 2)


def test_published_parameter_count() -> None:
    model, _ = _meta_model_and_input(RESNET50())
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED_PARAMS


def test_published_flops_at_batch_1() -> None:
    model, x = _meta_model_and_input(RESNET50())
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        output = model(x)
    assert output.shape == (1, 1000)
    assert counter.get_total_flops() == pytest.approx(PUBLISHED_FLOPS, rel=0.01)


def test_unknown_preset_raises() -> None:
    with pytest.raises(UnknownNameError, match="resnet101"):
        RESNET50("resnet101")
