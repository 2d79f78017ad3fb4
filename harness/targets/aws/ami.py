"""Which kind of machine an instance type is, and which AMI it boots, read from SSM public parameters.

AWS publishes the id of the newest image of each AMI line as a public SSM parameter, and renames
those lines now and then (a new Ubuntu, a new PyTorch), so the parameter per kind and architecture
is configurable (``--ami-parameter KIND=NAME``); the defaults below were checked in November 2026:

- neuron (inf2, trn1, trn2): Deep Learning AMI Neuron, multi-framework, Ubuntu 24.04; PyTorch
  lives in ``/opt/aws_neuronx_venv_pytorch_<major>_<minor>`` (the DLAMI guide's SSM table).
- gpu (g*, p*): Deep Learning OSS Nvidia Driver AMI GPU PyTorch, Ubuntu 24.04; PyTorch lives in
  ``/opt/pytorch`` (the DLAMI release notes' ``python_location``).
- cpu (everything else): Amazon Linux 2023; no PyTorch, the bootstrap installs the CPU wheel.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.errors import CloudError, ConfigError
from harness.targets.aws.session import aws_call, error_code

__all__ = [
    "DEFAULT_BACKENDS",
    "DEFAULT_PARAMETERS",
    "KINDS",
    "AmiChoice",
    "architecture_guess",
    "instance_kind",
    "parse_parameter_overrides",
    "resolve_ami",
    "validate_instance_type",
]

KINDS = ("neuron", "gpu", "cpu")

DEFAULT_PARAMETERS: dict[tuple[str, str], str] = {
    ("neuron", "x86_64"): "/aws/service/neuron/dlami/multi-framework/ubuntu-24.04/latest/image_id",
    (
        "gpu",
        "x86_64",
    ): "/aws/service/deeplearning/ami/x86_64/oss-nvidia-driver-gpu-pytorch-2.12-ubuntu-24.04/latest/ami-id",
    (
        "gpu",
        "arm64",
    ): "/aws/service/deeplearning/ami/arm64/oss-nvidia-driver-gpu-pytorch-2.11-ubuntu-24.04/latest/ami-id",
    ("cpu", "x86_64"): "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
    ("cpu", "arm64"): "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
}

#: The backend a kind runs when the suite names none for the aws target.
DEFAULT_BACKENDS: dict[str, tuple[str, ...]] = {"neuron": ("neuron",), "gpu": ("cuda",), "cpu": ("cpu",)}

_TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9-]+$")
_NEURON_FAMILIES = re.compile(r"^(inf[2-9]|trn\d+n?)$")
_GPU_FAMILIES = re.compile(r"^(g|gr|p)\d")
_UNSUPPORTED = {
    "inf1": "inf1 needs the retired torch-neuron (Inf1) stack; use inf2 or trn1",
    "dl1": "dl1 (Gaudi) has no siliconbench backend",
    "dl2q": "dl2q (Qualcomm) has no siliconbench backend",
    "g4ad": "g4ad has AMD GPUs, which the cuda backend cannot use",
}


def validate_instance_type(instance_type: str) -> str:
    if not _TYPE_PATTERN.match(instance_type):
        raise ConfigError(f"{instance_type!r} is not an EC2 instance type; expected e.g. inf2.xlarge or c7i.2xlarge")
    family = instance_type.split(".", 1)[0]
    if family in _UNSUPPORTED:
        raise ConfigError(f"instance type {instance_type!r} is not supported: {_UNSUPPORTED[family]}")
    return instance_type


def instance_kind(instance_type: str) -> str:
    """``neuron`` for Inferentia/Trainium, ``gpu`` for the g and p families, else ``cpu``."""
    family = validate_instance_type(instance_type).split(".", 1)[0]
    if _NEURON_FAMILIES.match(family):
        return "neuron"
    if _GPU_FAMILIES.match(family):
        return "gpu"
    return "cpu"


def architecture_guess(instance_type: str) -> str:
    """Graviton families carry a ``g`` after the generation digit (c7g, m7gd, g5g); the rest are x86.

    Used only where EC2 cannot be asked (an offline plan); launches ask DescribeInstanceTypes.
    """
    family = instance_type.split(".", 1)[0]
    match = re.match(r"^[a-z]+\d+([a-z]*)$", family)
    return "arm64" if match and "g" in match.group(1) else "x86_64"


def parse_parameter_overrides(values: list[str] | None) -> dict[str, str]:
    """``KIND=NAME`` or ``KIND/ARCH=NAME`` pairs from the command line."""
    overrides: dict[str, str] = {}
    for value in values or []:
        key, sep, name = value.partition("=")
        kind = key.split("/", 1)[0]
        if not sep or not name.startswith("/") or kind not in KINDS:
            raise ConfigError(
                f"--ami-parameter {value!r} must look like KIND=/ssm/parameter/name or KIND/ARCH=NAME "
                f"with KIND one of {', '.join(KINDS)}"
            )
        overrides[key] = name
    return overrides


def parameter_name(kind: str, arch: str, overrides: Mapping[str, str]) -> str:
    name = overrides.get(f"{kind}/{arch}") or overrides.get(kind) or DEFAULT_PARAMETERS.get((kind, arch))
    if not name:
        raise ConfigError(
            f"no default AMI parameter for {kind} instances on {arch}; give one with --ami-parameter {kind}/{arch}=NAME"
        )
    return name


@dataclass(frozen=True)
class AmiChoice:
    """The image an instance boots, and the facts the launch needs about it."""

    image_id: str
    parameter: str
    root_device_name: str
    root_volume_gb: int
    name: str


def resolve_ami(ssm: Any, ec2: Any, kind: str, arch: str, overrides: Mapping[str, str], region: str) -> AmiChoice:
    """Read the AMI id from its SSM parameter and the root device from the image itself."""
    name = parameter_name(kind, arch, overrides)
    try:
        value = aws_call(f"reading SSM parameter {name}", ssm.get_parameter, Name=name)["Parameter"]["Value"]
    except CloudError as exc:
        if error_code(exc.__cause__) == "ParameterNotFound":
            raise ConfigError(
                f"SSM parameter {name!r} for {kind} instances does not exist in {region} (AWS renames these); "
                f"give the current one with --ami-parameter {kind}=NAME"
            ) from None
        raise
    images = aws_call(f"describing image {value} (from {name})", ec2.describe_images, ImageIds=[value])["Images"]
    if not images:
        raise ConfigError(f"SSM parameter {name!r} points at image {value!r}, which does not exist in {region}")
    image = images[0]
    root = image.get("RootDeviceName") or "/dev/xvda"
    size = 8
    for mapping in image.get("BlockDeviceMappings", []):
        if mapping.get("DeviceName") == root and "Ebs" in mapping:
            size = int(mapping["Ebs"].get("VolumeSize", size))
    return AmiChoice(
        image_id=value, parameter=name, root_device_name=root, root_volume_gb=size, name=image.get("Name", "")
    )
