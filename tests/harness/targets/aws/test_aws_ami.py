"""Instance kinds and AMIs from SSM public parameters (names configurable, errors in one line)."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.targets.aws.ami import (
    DEFAULT_PARAMETERS,
    architecture_guess,
    instance_kind,
    parse_parameter_overrides,
    resolve_ami,
)
from tests.harness.targets.aws.conftest import REGION


@pytest.mark.parametrize(
    ("instance_type", "kind"),
    [
        ("inf2.xlarge", "neuron"),
        ("inf2.48xlarge", "neuron"),
        ("trn1.2xlarge", "neuron"),
        ("trn1n.32xlarge", "neuron"),
        ("trn2.48xlarge", "neuron"),
        ("g5.xlarge", "gpu"),
        ("g6e.2xlarge", "gpu"),
        ("g4dn.xlarge", "gpu"),
        ("gr6.4xlarge", "gpu"),
        ("g5g.xlarge", "gpu"),
        ("p4d.24xlarge", "gpu"),
        ("p5.48xlarge", "gpu"),
        ("c7i.xlarge", "cpu"),
        ("c7g.xlarge", "cpu"),
        ("m7i.large", "cpu"),
        ("r7iz.large", "cpu"),
        ("t3.micro", "cpu"),
    ],
)
def test_instance_kind(instance_type: str, kind: str) -> None:
    assert instance_kind(instance_type) == kind


@pytest.mark.parametrize(
    ("instance_type", "arch"),
    [
        ("c7g.xlarge", "arm64"),
        ("m7gd.large", "arm64"),
        ("g5g.xlarge", "arm64"),
        ("c8g.large", "arm64"),
        ("c7i.xlarge", "x86_64"),
        ("inf2.xlarge", "x86_64"),
        ("g5.xlarge", "x86_64"),
        ("gr6.4xlarge", "x86_64"),
    ],
)
def test_architecture_guess_for_offline_plans(instance_type: str, arch: str) -> None:
    assert architecture_guess(instance_type) == arch


@pytest.mark.parametrize(
    ("instance_type", "fragment"),
    [
        ("inf1.xlarge", "retired torch-neuron"),
        ("g4ad.xlarge", "AMD"),
        ("inf2", "not an EC2 instance type"),
        ("INF2.XLARGE", "not an EC2 instance type"),
    ],
)
def test_unsupported_or_malformed_types_are_one_line(instance_type: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as caught:
        instance_kind(instance_type)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("kind", "arch"), sorted(DEFAULT_PARAMETERS))
def test_each_kind_resolves_from_its_public_parameter(factory, public_amis, kind: str, arch: str) -> None:  # type: ignore[no-untyped-def]
    ami = resolve_ami(factory.client("ssm"), factory.client("ec2"), kind, arch, {}, REGION)
    assert ami.parameter == DEFAULT_PARAMETERS[(kind, arch)]
    assert ami.image_id == public_amis[f"{kind}/{arch}"]
    image = factory.client("ec2").describe_images(ImageIds=[ami.image_id])["Images"][0]
    assert ami.root_device_name == image["RootDeviceName"]


def test_default_parameters_are_the_documented_public_ones() -> None:
    """deploy/environments/dlami.rst, "SSM Parameter Prefix" (as of 2.31 for the retired lines): the
    PyTorch 2.9 DLAMI and the vLLM 0.16 (NxD Inference) DLAMI, both last published with Neuron 2.31,
    for NeuronCore-v2; for trn2/trn3 the torch-neuronx 2.14.0 DLAMI (setup/pytorch/update-dlami.rst,
    v2.33.0; name by the documented ``<framework>-<version>/<os>`` structure) in process, and the
    multi-framework DLAMI, whose vLLM venv carries vllm-neuron, for engines."""
    assert DEFAULT_PARAMETERS[("neuron-trace", "x86_64")] == (
        "/aws/service/neuron/dlami/pytorch-2.9/ubuntu-24.04/latest/image_id"
    )
    assert DEFAULT_PARAMETERS[("neuron-native", "x86_64")] == (
        "/aws/service/neuron/dlami/torch-neuronx-2.14.0/ubuntu-24.04/latest/image_id"
    )
    assert DEFAULT_PARAMETERS[("neuron-nxdi-vllm", "x86_64")] == (
        "/aws/service/neuron/dlami/pytorch-inference-vllm-0.16/ubuntu-24.04/latest/image_id"
    )
    assert DEFAULT_PARAMETERS[("neuron-vllm", "x86_64")] == (
        "/aws/service/neuron/dlami/multi-framework/ubuntu-24.04/latest/image_id"
    )
    assert DEFAULT_PARAMETERS[("gpu", "x86_64")].startswith(
        "/aws/service/deeplearning/ami/x86_64/oss-nvidia-driver-gpu-pytorch-"
    )
    assert (
        DEFAULT_PARAMETERS[("cpu", "arm64")] == "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
    )


def test_parameter_names_are_configurable(factory, public_amis) -> None:  # type: ignore[no-untyped-def]
    ssm = factory.client("ssm")
    ssm.put_parameter(Name="/my-team/neuron-ami", Value=public_amis["cpu/arm64"], Type="String")
    overrides = parse_parameter_overrides(["neuron=/my-team/neuron-ami"])
    for line in ("neuron-trace", "neuron-native", "neuron-nxdi-vllm", "neuron-vllm"):  # 'neuron' names every one
        ami = resolve_ami(ssm, factory.client("ec2"), line, "x86_64", overrides, REGION)
        assert (ami.parameter, ami.image_id) == ("/my-team/neuron-ami", public_amis["cpu/arm64"])
    only_v2 = parse_parameter_overrides(["neuron-trace=/my-team/inf2-ami"])
    assert (
        resolve_ami(ssm, factory.client("ec2"), "neuron-native", "x86_64", only_v2, REGION).parameter
        == (DEFAULT_PARAMETERS[("neuron-native", "x86_64")])
    )
    arch_specific = parse_parameter_overrides(["gpu/arm64=/my-team/gpu-arm"])
    assert arch_specific == {"gpu/arm64": "/my-team/gpu-arm"}


def test_a_missing_parameter_is_one_line_saying_how_to_fix_it(factory) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as caught:
        resolve_ami(factory.client("ssm"), factory.client("ec2"), "neuron-trace", "x86_64", {}, REGION)
    message = str(caught.value)
    assert DEFAULT_PARAMETERS[("neuron-trace", "x86_64")] in message and "--ami-parameter neuron-trace=NAME" in message
    assert "\n" not in message


@pytest.mark.parametrize("value", ["neuron", "tpu=/x", "neuron=relative/name", "=/x"])
def test_bad_parameter_overrides_are_rejected(value: str) -> None:
    with pytest.raises(ConfigError, match="LINE=/ssm/parameter/name"):
        parse_parameter_overrides([value])


@pytest.mark.parametrize(
    ("instance_type", "line", "probe", "floor_gb"),
    [
        ("inf2.xlarge", "neuron-trace", "trace", 150),
        ("trn1.2xlarge", "neuron-trace", "trace", 512),
        ("trn1n.32xlarge", "neuron-trace", "trace", 512),
        ("trn2.48xlarge", "neuron-native", "native", 512),
        ("trn3.48xlarge", "neuron-native", "native", 512),
        ("trn2.3xlarge", "neuron-native", "native", 512),
        ("trn2u.48xlarge", "neuron-native", "native", 512),
        ("g5.xlarge", "gpu", "torch", 100),
        ("c7i.xlarge", "cpu", "torch", 30),
    ],
)
def test_ami_line_environment_and_root_volume_by_family(
    instance_type: str, line: str, probe: str, floor_gb: int
) -> None:
    """NeuronCore-v2 (inf2, trn1) keeps torch_neuronx.trace; trn2/trn3 run PyTorch-native Neuron.
    Trn volumes: "a minimum of 512GB" (frameworks/torch/torch-neuronx/setup/note-setup-general.rst)."""
    from harness.targets.aws.ami import ami_line, environment_probe, root_volume_floor

    assert (ami_line(instance_type), environment_probe(instance_type)) == (line, probe)
    assert root_volume_floor(instance_type) == floor_gb


@pytest.mark.parametrize(
    ("instance_type", "in_process", "engine"),
    [
        ("inf2.xlarge", "neuron-trace", "neuron-nxdi-vllm"),
        ("trn1.2xlarge", "neuron-trace", "neuron-nxdi-vllm"),
        ("trn2.3xlarge", "neuron-native", "neuron-vllm"),
        ("trn2u.48xlarge", "neuron-native", "neuron-vllm"),
        ("trn3.48xlarge", "neuron-native", "neuron-vllm"),
        ("g6e.xlarge", "gpu", "gpu"),
        ("c7i.xlarge", "cpu", "cpu"),
    ],
)
def test_engine_cells_boot_the_vllm_image_of_their_generation(instance_type: str, in_process: str, engine: str) -> None:
    """Neuron 2.34: NxD Inference stays on inf2/trn1 (maintenance), vllm-neuron serves trn2/trn3."""
    from harness.targets.aws.ami import ami_line

    assert (ami_line(instance_type), ami_line(instance_type, engine=True)) == (in_process, engine)


def test_engine_lines_resolve_from_their_public_parameters(factory, public_amis) -> None:  # type: ignore[no-untyped-def]
    """moto has no /aws/ parameters: ``public_amis`` seeds every default into moto's store."""
    from harness.targets.aws.ami import ami_line

    ssm, ec2 = factory.client("ssm"), factory.client("ec2")
    for instance_type, parameter in (
        ("inf2.xlarge", "pytorch-inference-vllm-0.16"),
        ("trn2.3xlarge", "multi-framework"),
    ):
        ami = resolve_ami(ssm, ec2, ami_line(instance_type, engine=True), "x86_64", {}, REGION)
        assert f"/aws/service/neuron/dlami/{parameter}/ubuntu-24.04/latest/image_id" == ami.parameter


def test_the_old_beliefs_fail() -> None:
    """Before: ``trn\\d+n?`` planned trn2u as a CPU, and trn2/trn3 booted the multi-framework DLAMI in process,
    which since Neuron 2.33 carries no TorchNeuron venv (it moved to the torch-neuronx DLAMI)."""
    import re

    assert not re.match(r"^(inf[2-9]|trn\d+n?)$", "trn2u")
    assert instance_kind("trn2u.48xlarge") == "neuron"
    assert "multi-framework" not in DEFAULT_PARAMETERS[("neuron-native", "x86_64")]


@pytest.mark.parametrize("name", ["u-trn2x64", "u-p6e-gb200x72"])
def test_an_ultraserver_is_not_an_instance_type(name: str) -> None:
    with pytest.raises(ConfigError, match="is an UltraServer") as caught:
        instance_kind(name)
    assert "\n" not in str(caught.value) and "trn2u.48xlarge" in str(caught.value)
