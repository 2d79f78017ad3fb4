"""Which kind of machine an instance type is, and which AMI it boots, read from SSM public parameters.

AWS publishes the id of the newest image of each AMI line as a public SSM parameter, and renames
those lines now and then (a new Ubuntu, a new PyTorch), so the parameter per AMI line and
architecture is configurable (``--ami-parameter LINE=NAME``). The lines and their defaults, from the
Neuron SDK documentation (github.com/aws-neuron/aws-neuron-sdk) and the DLAMI release notes:

- ``neuron-trace`` (inf2, trn1, trn1n; NeuronCore-v2): ``torch_neuronx.trace`` lives in the PyTorch
  2.9 Torch NeuronX environments, and PyTorch 2.9 is the last PyTorch/XLA release
  (release-notes/components/pytorch.rst, 2.28/2.29: "PyTorch 2.9 is the last version using
  PyTorch/XLA"). From Neuron 2.32 the DLAMIs no longer carry them ("the PyTorch 2.9 single-framework
  DLAMI ... and the PyTorch 2.9 Torch NeuronX/NxD Core and NxD Inference virtual environments are
  no longer published. If you require these DLAMIs, please use a DLAMI associated with a previous
  Neuron SDK release (2.31.0 or earlier)": release-notes/components/dlamis.rst, 2.32.0 callout).
  So these boot the last "Deep Learning AMI Neuron PyTorch 2.9 (Ubuntu 24.04)", whose parameter
  prefix is ``/aws/service/neuron/dlami/pytorch-2.9/ubuntu-24.04`` (deploy/environments/dlami.rst,
  "SSM Parameter Prefix", as of 2.31); a retired line's ``latest`` keeps naming its last image, as
  the 2.30 notes show for ``/aws/service/neuron/dlami/base/ubuntu-22.04/latest/image_id``.
- ``neuron-native`` (trn2, trn2u, trn3): TorchNeuron, the native PyTorch backend (the ``neuron``
  device and ``torch.compile(backend="neuron")``), public beta since Neuron 2.33 in its own image:
  "Starting with Neuron SDK 2.33.0, the Deep Learning AMI Neuron torch-neuronx 2.14.0 DLAMI
  provides TorchNeuron (torch-neuronx) for PyTorch 2.14 on Ubuntu 24.04 and Ubuntu 26.04, in the
  /opt/aws_neuronx_venv_torch_neuronx_2_14_0 virtual environment" (setup/pytorch/update-dlami.rst
  at v2.33.0). Its parameter follows the documented path structure
  ``/aws/service/neuron/dlami/<framework>-<framework-version>/<os>`` (deploy/environments/dlami.rst);
  Neuron 2.34 ends PyTorch/XLA inference on Trn2/Trn3 (announce-no-support-torch-xla-inference-trn),
  so the multi-framework image is no longer the in-process one.
- ``neuron-nxdi-vllm`` (engine cells on inf2, trn1, trn1n): vLLM through NxD Inference, last
  published with Neuron 2.31 as "Deep Learning AMI Neuron PyTorch Inference vLLM 0.16 (Ubuntu
  24.04)" for Inf2/Trn1/Trn1n, venv ``/opt/aws_neuronx_venv_pytorch_inference_vllm_0_16``, prefix
  ``/aws/service/neuron/dlami/pytorch-inference-vllm-0.16/ubuntu-24.04`` (deploy/environments/
  dlami.rst at 9d35260d); retired by 2.32's callout, so its ``latest`` names that last image.
- ``neuron-vllm`` (engine cells on trn2, trn2u, trn3): the vllm-neuron plugin, generally available
  in Neuron 2.34, in the multi-framework DLAMI's vLLM venv (deploy/environments/dlami.rst: "vLLM
  0.24.0, vllm-neuron 0.24.0.1.1.0 ... /opt/aws_neuronx_venv_pytorch_inference_vllm_0_24_0_1_1_0").
  The single-framework vLLM image's parameter carries the plugin's full version and changes every
  release; the multi-framework one does not, and the engine's venv is found by probing
  (``backends.engine.neuron_vllm``).
- ``gpu`` (g*, p*): Deep Learning OSS Nvidia Driver AMI GPU PyTorch, Ubuntu 24.04; PyTorch lives in
  ``/opt/pytorch`` (the DLAMI release notes' ``python_location``).
- ``cpu`` (everything else): Amazon Linux 2023; no PyTorch, the bootstrap installs the CPU wheel.

The bootstrap finds the environment inside the image by what it can do, not by its folder's name
(``userdata.PROBES``), because those names change with every framework version.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.errors import CloudError, ConfigError
from harness.targets.aws.session import aws_call, error_code

__all__ = [
    "AMI_LINES",
    "DEFAULT_BACKENDS",
    "DEFAULT_PARAMETERS",
    "ENGINE_LINES",
    "KINDS",
    "AmiChoice",
    "ami_line",
    "architecture_guess",
    "environment_probe",
    "instance_kind",
    "parse_parameter_overrides",
    "resolve_ami",
    "root_volume_floor",
    "validate_instance_type",
]

KINDS = ("neuron", "gpu", "cpu")
#: The AMI lines: a kind, except that Neuron splits by NeuronCore generation (see the module docstring).
AMI_LINES = ("neuron-trace", "neuron-native", "neuron-nxdi-vllm", "neuron-vllm", "gpu", "cpu")
#: The Neuron line an engine cell needs instead of the in-process one (see the module docstring).
ENGINE_LINES = {"neuron-trace": "neuron-nxdi-vllm", "neuron-native": "neuron-vllm"}

DEFAULT_PARAMETERS: dict[tuple[str, str], str] = {
    ("neuron-trace", "x86_64"): "/aws/service/neuron/dlami/pytorch-2.9/ubuntu-24.04/latest/image_id",
    ("neuron-native", "x86_64"): "/aws/service/neuron/dlami/torch-neuronx-2.14.0/ubuntu-24.04/latest/image_id",
    (
        "neuron-nxdi-vllm",
        "x86_64",
    ): "/aws/service/neuron/dlami/pytorch-inference-vllm-0.16/ubuntu-24.04/latest/image_id",
    ("neuron-vllm", "x86_64"): "/aws/service/neuron/dlami/multi-framework/ubuntu-24.04/latest/image_id",
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

#: NeuronCore-v2 families; later Trainium generations (trn2, trn3, ...) run PyTorch-native Neuron.
_NEURON_TRACE_FAMILIES = frozenset({"inf2", "trn1", "trn1n"})
#: Root volume floor in GiB: "When launching a Trn1/Trn2/Trn3 instance, you must adjust your primary
#: EBS volume size to a minimum of 512GB" (frameworks/torch/torch-neuronx/setup/note-setup-general.rst;
#: setup/multiframework-dlami.rst: "minimum 512 GB for Trn instances"). The guide names no size for
#: Inf2; 150 GiB leaves room for the DLAMI, compiled models and the artifact cache.
_ROOT_FLOOR_GB = {"trn": 512, "inf": 150, "gpu": 100, "cpu": 30}

_TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9-]+$")
#: inf2+, and every Trainium family: trn1, trn1n, trn2, trn2u (UltraServer nodes), trn3.
_NEURON_FAMILIES = re.compile(r"^(inf[2-9]|trn\d+[a-z]*)$")
#: UltraServer names (EC2 User Guide, "Amazon EC2 UltraServers": u-trn2x64 is 4 trn2u.48xlarge,
#: u-p6e-gb200x36/x72 are 9/18 p6e-gb200.36xlarge), which are no instance type.
_ULTRASERVER = re.compile(r"^u-(trn\d+|p\d+[a-z]*-[a-z0-9]+)x\d+$")
_GPU_FAMILIES = re.compile(r"^(g|gr|p)\d")
_UNSUPPORTED = {
    "inf1": "inf1 needs the retired torch-neuron (Inf1) stack; use inf2 or trn1",
    "dl1": "dl1 (Gaudi) has no siliconbench backend",
    "dl2q": "dl2q (Qualcomm) has no siliconbench backend",
    "g4ad": "g4ad has AMD GPUs, which the cuda backend cannot use",
}


def validate_instance_type(instance_type: str) -> str:
    if _ULTRASERVER.match(instance_type):
        raise ConfigError(
            f"{instance_type!r} is an UltraServer (several instances joined by NeuronLink/NVLink, sold as a "
            "Capacity Block), not an instance type; siliconbench measures one instance: give a member type "
            "such as trn2u.48xlarge (inside a Capacity Block) or trn2.48xlarge"
        )
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


def ami_line(instance_type: str, engine: bool = False) -> str:
    """Which AMI line the type boots: ``gpu``, ``cpu``, or a Neuron line by NeuronCore generation,
    the vLLM image's when the run has engine cells (``engine``)."""
    kind = instance_kind(instance_type)
    if kind != "neuron":
        return kind
    line = "neuron-trace" if instance_type.split(".", 1)[0] in _NEURON_TRACE_FAMILIES else "neuron-native"
    return ENGINE_LINES[line] if engine else line


def environment_probe(instance_type: str) -> str:
    """The check that finds the PyTorch environment inside the AMI (``userdata.PROBES``)."""
    line = ami_line(instance_type)
    return {"neuron-trace": "trace", "neuron-native": "native"}.get(line, "torch")


def root_volume_floor(instance_type: str) -> int:
    """The smallest root volume, in GiB, the instance type is launched with."""
    kind = instance_kind(instance_type)
    if kind == "neuron":
        return _ROOT_FLOOR_GB["trn" if instance_type.startswith("trn") else "inf"]
    return _ROOT_FLOOR_GB[kind]


def architecture_guess(instance_type: str) -> str:
    """Graviton families carry a ``g`` after the generation digit (c7g, m7gd, g5g); the rest are x86.

    Used only where EC2 cannot be asked (an offline plan); launches ask DescribeInstanceTypes.
    """
    family = instance_type.split(".", 1)[0]
    match = re.match(r"^[a-z]+\d+([a-z]*)$", family)
    return "arm64" if match and "g" in match.group(1) else "x86_64"


def parse_parameter_overrides(values: list[str] | None) -> dict[str, str]:
    """``LINE=NAME`` or ``LINE/ARCH=NAME`` pairs from the command line; ``neuron`` means both Neuron lines."""
    overrides: dict[str, str] = {}
    allowed = (*AMI_LINES, "neuron")
    for value in values or []:
        key, sep, name = value.partition("=")
        line = key.split("/", 1)[0]
        if not sep or not name.startswith("/") or line not in allowed:
            raise ConfigError(
                f"--ami-parameter {value!r} must look like LINE=/ssm/parameter/name or LINE/ARCH=NAME "
                f"with LINE one of {', '.join(allowed)}"
            )
        overrides[key] = name
    return overrides


def parameter_name(line: str, arch: str, overrides: Mapping[str, str]) -> str:
    kind = line.split("-", 1)[0]
    name = (
        overrides.get(f"{line}/{arch}")
        or overrides.get(line)
        or overrides.get(f"{kind}/{arch}")
        or overrides.get(kind)
        or DEFAULT_PARAMETERS.get((line, arch))
    )
    if not name:
        raise ConfigError(
            f"no default AMI parameter for {line} instances on {arch}; give one with --ami-parameter {line}/{arch}=NAME"
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


def resolve_ami(ssm: Any, ec2: Any, line: str, arch: str, overrides: Mapping[str, str], region: str) -> AmiChoice:
    """Read the AMI id from its SSM parameter and the root device from the image itself."""
    name = parameter_name(line, arch, overrides)
    kind = line
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
