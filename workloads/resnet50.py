"""ResNet-50 v1.5 in plain PyTorch: the reference convolutional workload.

torchvision is not a dependency, so the architecture is written out here, layer for layer as in
He et al., "Deep Residual Learning for Image Recognition" (2015), with the "v1.5" change that
torchvision and NVIDIA's MLPerf reference use: the stride-2 of a down-sampling bottleneck sits on
its 3x3 convolution, not on the first 1x1. The ``default`` preset therefore has the published
25,557,032 parameters and 4.09 GMACs (8.18 GFLOPs at 2 FLOPs per multiply-add) per 224x224 image,
which lets results be compared with published ResNet-50 numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from workloads.base import Workload, WorkloadFamily

__all__ = ["RESNET50", "Bottleneck", "ResNet", "ResNetShape"]

#: Seeds for the weights and the inputs; fixed so every process builds identical arithmetic.
WEIGHT_SEED = 0
INPUT_SEED = 1


@dataclass(frozen=True)
class ResNetShape:
    """The knobs a preset turns; the defaults are the published ResNet-50."""

    blocks: tuple[int, int, int, int] = (3, 4, 6, 3)
    base_width: int = 64
    image_size: int = 224
    num_classes: int = 1000


_SHAPES: dict[str, ResNetShape] = {
    "default": ResNetShape(),
    # Same code path (every stage down-samples, every block is a bottleneck), a few ms per image.
    "tiny": ResNetShape(blocks=(1, 1, 1, 1), base_width=16, image_size=64),
}


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (carries the stride: v1.5) -> 1x1 expand, plus the shortcut."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        result: torch.Tensor = self.relu(out + identity)
        return result


class ResNet(nn.Module):
    """Stem (7x7/2 conv, 3x3/2 max-pool), four bottleneck stages, global pool, linear classifier.

    Module names match torchvision's ``resnet50`` so a state dict could be exchanged if needed.
    """

    def __init__(
        self,
        blocks: Sequence[int] = (3, 4, 6, 3),
        base_width: int = 64,
        num_classes: int = 1000,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, base_width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_channels = base_width
        stages: list[nn.Sequential] = []
        for index, count in enumerate(blocks):
            width = base_width * 2**index
            stride = 1 if index == 0 else 2
            stage: list[nn.Module] = []
            for block in range(count):
                stage.append(Bottleneck(in_channels, width, stride if block == 0 else 1))
                in_channels = width * Bottleneck.expansion
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(in_channels, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """torchvision's init, minus ``zero_init_residual``.

        Zeroing the last BatchNorm gamma of each block would make every block an identity at
        init, so random-weight outputs would barely depend on most of the network and a broken
        backend could still pass a correctness check; gamma stays 1.
        """
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        logits: torch.Tensor = self.fc(torch.flatten(self.avgpool(x), 1))
        return logits


def _build(shape: ResNetShape) -> nn.Module:
    """Seeded construction without disturbing the caller's global RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(WEIGHT_SEED)
        model = ResNet(shape.blocks, shape.base_width, shape.num_classes)
    return model.eval()


def _inputs(shape: ResNetShape, batch_size: int) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(INPUT_SEED)
    size = (batch_size, 3, shape.image_size, shape.image_size)
    return (torch.randn(size, generator=generator, dtype=torch.float32),)


def _preset(preset: str) -> Workload:
    shape = _SHAPES[preset]
    return Workload(
        name="resnet50",
        preset=preset,
        build_model=partial(_build, shape),
        make_inputs=partial(_inputs, shape),
        task="image-classification",
        description=(
            f"ResNet-50 v1.5, blocks {list(shape.blocks)}, base width {shape.base_width}, "
            f"{shape.image_size}x{shape.image_size} RGB, {shape.num_classes} classes, float32"
        ),
        metadata={
            "blocks": shape.blocks,
            "base_width": shape.base_width,
            "image_size": shape.image_size,
            "num_classes": shape.num_classes,
        },
    )


RESNET50 = WorkloadFamily(
    name="resnet50",
    description="ResNet-50 v1.5 image classifier (25.6M params, 4.09 GMACs at 224x224).",
    presets={name: partial(_preset, name) for name in _SHAPES},
    default_preset="default",
)
