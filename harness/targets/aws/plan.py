"""What an aws run would launch and what it would cost, resolved before anything is created.

``plan_instances`` is both the dry run (``siliconbench aws plan``) and the first step of a real run:
every name is checked, every AMI resolved and every price looked up here, so a typo or a renamed
SSM parameter fails in one line before a single resource exists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import CloudError, ConfigError
from harness.run.plan import Suite
from harness.targets.aws.ami import (
    DEFAULT_BACKENDS,
    AmiChoice,
    ami_line,
    architecture_guess,
    environment_probe,
    instance_kind,
    parameter_name,
    resolve_ami,
    validate_instance_type,
)
from harness.targets.aws.engine_env import EngineEnvironment, engine_environment, engine_silicon
from harness.targets.aws.model_token import parse_token_source
from harness.targets.aws.prices import LaunchPrice, price_for
from harness.targets.aws.session import ClientFactory, aws_call, error_code
from harness.targets.aws.ship import TORCH_CPU_INDEX

__all__ = [
    "BOOT_S",
    "CELL_OVERHEAD_S",
    "MAX_HOURS_LIMIT",
    "AwsOptions",
    "InstancePlan",
    "estimate_hours",
    "plan_instances",
    "remote_presets",
    "render_plan",
]

#: Launch, boot and install before the first cell, in seconds (rough, for estimates only).
BOOT_S = {"neuron": 600.0, "gpu": 600.0, "cpu": 480.0}
#: Per-cell time beyond sampling: build, reference, compile (Neuron compiles dominate).
CELL_OVERHEAD_S = {"neuron": 240.0, "gpu": 45.0, "cpu": 20.0}
#: An engine run's set-up beyond the boot: installing vLLM (GPU, CPU), fetching the model, and a
#: Neuron engine's compile before it serves (rough, for estimates only).
ENGINE_SETUP_S = {"neuron": 1200.0, "gpu": 600.0, "cpu": 600.0}
#: A run longer than this is almost certainly a mistake in --max-hours.
MAX_HOURS_LIMIT = 48.0


@dataclass(frozen=True)
class AwsOptions:
    """What the user asked of the aws target, validated once."""

    instance_types: tuple[str, ...]
    region: str | None = None
    spot: bool = False
    bucket: str | None = None
    instance_profile: str | None = None
    create_instance_profile: bool = False
    max_hours: float = 2.0
    ami_parameters: Mapping[str, str] = field(default_factory=dict)
    wheel: Path | None = None
    auto_backends: bool = False
    subnet_id: str | None = None
    #: ``ssm:NAME`` or ``secretsmanager:NAME``: where the instance reads a gated model's token.
    model_token_from: str | None = None
    #: The model a started engine serves (``--engine`` with ``--model``), for preflight's egress check.
    engine_model: str | None = None

    def __post_init__(self) -> None:
        if not self.instance_types:
            raise ConfigError("--target aws needs at least one --instance-type, e.g. --instance-type inf2.xlarge")
        seen: set[str] = set()
        for instance_type in self.instance_types:
            validate_instance_type(instance_type)
            if instance_type in seen:
                raise ConfigError(f"--instance-type {instance_type} is given twice; each type runs once per run")
            seen.add(instance_type)
        if not 0 < self.max_hours <= MAX_HOURS_LIMIT:
            raise ConfigError(f"--max-hours must be in (0, {MAX_HOURS_LIMIT:g}], got {self.max_hours:g}")
        if self.instance_profile and self.create_instance_profile:
            raise ConfigError("give --instance-profile NAME or --create-instance-profile, not both")
        if self.subnet_id is not None and not re.fullmatch(r"subnet-[0-9a-f]{8,17}", self.subnet_id):
            raise ConfigError(
                f"--subnet-id {self.subnet_id!r} is not a subnet id; expected e.g. subnet-0123456789abcdef0"
            )
        token = parse_token_source(self.model_token_from)
        if token is not None and self.engine_model is None:
            raise ConfigError("--model-token-from is the token of a started engine's model: give --engine and --model")
        if token is not None and self.engine_model is not None and self.engine_model.startswith(("s3://", "/")):
            raise ConfigError(
                f"--model-token-from reads a Hugging Face token, but --model {self.engine_model} is not a hub id"
            )
        if self.wheel is not None and not (self.wheel.is_file() and self.wheel.suffix == ".whl"):
            raise ConfigError(
                f"--wheel {str(self.wheel)!r} is not a wheel file (build one with: pip wheel --no-deps .)"
            )

    def require_instance_profile(self) -> None:
        if not (self.instance_profile or self.create_instance_profile):
            raise ConfigError(
                "the instances need an instance profile to reach S3: give --instance-profile NAME "
                "(policy: harness/targets/aws/policies/instance-role-policy.json) or --create-instance-profile"
            )


@dataclass(frozen=True)
class InstancePlan:
    """One instance of the run: what it boots, what it measures and what it costs."""

    instance_type: str
    kind: str
    arch: str
    suite: Suite
    line: str
    cells: int
    ami_parameter: str
    ami: AmiChoice | None
    price: LaunchPrice
    estimated_hours: float
    max_hours: float
    #: The engine environment and command, for an engine run (``--engine``).
    engine: EngineEnvironment | None = None

    @property
    def estimated_cost(self) -> float | None:
        return None if self.price.per_hour is None else self.price.per_hour * self.estimated_hours

    @property
    def max_cost(self) -> float | None:
        return None if self.price.per_hour is None else self.price.per_hour * self.max_hours


def remote_presets(suite: Suite, check_backends: bool) -> dict[str, str]:
    """Check workloads, presets and backend names here, without asking whether a backend can run
    here (it runs on the instance, which has the device this machine may lack)."""
    from backends.registry import get_backend
    from harness.run.matrix import resolve_presets, validate_options

    presets = resolve_presets(suite, check_fit=False)
    if check_backends:
        for backend_name in suite.matrix.backends:
            validate_options(get_backend(backend_name), suite)
    return presets


def estimate_hours(kind: str, cells: int, suite: Suite, max_hours: float, engine: bool = False) -> float:
    """Boot (and an engine's set-up) plus, per cell, the sampling budget with its warmup and the
    kind's build/compile time; at least EC2's one-minute minimum, at most the run's limit."""
    setup = BOOT_S[kind] + (ENGINE_SETUP_S[kind] if engine else 0.0)
    seconds = setup + cells * (suite.stopping.max_time * 1.1 + CELL_OVERHEAD_S[kind])
    return min(max(seconds, 60.0) / 3600.0, max_hours)


def _architectures(factory: ClientFactory, instance_types: tuple[str, ...]) -> dict[str, str]:
    """Each type's architecture from EC2, which also proves the type exists in the region."""
    ec2 = factory.client("ec2")
    try:
        response = aws_call(
            "describing instance types", ec2.describe_instance_types, InstanceTypes=list(instance_types)
        )
    except CloudError as exc:
        if error_code(exc.__cause__) == "InvalidInstanceType":
            message = getattr(exc.__cause__, "response", {}).get("Error", {}).get("Message", "")
            raise ConfigError(f"unknown instance type in {factory.region}: {message}") from None
        raise
    found: dict[str, str] = {}
    for info in response["InstanceTypes"]:
        archs = info.get("ProcessorInfo", {}).get("SupportedArchitectures", [])
        found[info["InstanceType"]] = "arm64" if "arm64" in archs and "x86_64" not in archs else "x86_64"
    missing = [t for t in instance_types if t not in found]
    if missing:
        raise ConfigError(f"instance type {missing[0]!r} is not offered in {factory.region}")
    return found


def plan_instances(suite: Suite, options: AwsOptions, factory: ClientFactory | None) -> list[InstancePlan]:
    """Resolve every instance of the run; ``factory=None`` plans offline (no AMI ids, no spot prices)."""
    region = factory.region if factory is not None else (options.region or "us-east-1")
    archs = (
        _architectures(factory, options.instance_types)
        if factory is not None
        else {t: architecture_guess(t) for t in options.instance_types}
    )
    plans: list[InstancePlan] = []
    for instance_type in options.instance_types:
        started_engine = suite.engine.engine is not None
        kind, line = instance_kind(instance_type), ami_line(instance_type, engine=started_engine)
        arch = archs[instance_type]
        if started_engine:
            instance_suite = suite.with_overrides(engine_silicon=engine_silicon(instance_type))
        elif options.auto_backends:
            instance_suite = suite.with_overrides(backends=DEFAULT_BACKENDS[kind])
        else:
            instance_suite = suite
        presets = remote_presets(instance_suite, check_backends=not options.auto_backends and not started_engine)
        cells = len(instance_suite.cells(presets))
        engine = _engine(instance_type, instance_suite, options) if started_engine else None
        parameter = parameter_name(line, arch, options.ami_parameters)
        ami = (
            resolve_ami(factory.client("ssm"), factory.client("ec2"), line, arch, options.ami_parameters, region)
            if factory is not None
            else None
        )
        ec2: Any = factory.client("ec2") if factory is not None else None
        price = price_for(ec2, region, instance_type, options.spot)
        plans.append(
            InstancePlan(
                instance_type=instance_type,
                kind=kind,
                arch=arch,
                suite=instance_suite,
                line=line,
                cells=cells,
                ami_parameter=parameter,
                ami=ami,
                price=price,
                estimated_hours=estimate_hours(kind, cells, instance_suite, options.max_hours, engine is not None),
                max_hours=options.max_hours,
                engine=engine,
            )
        )
    return plans


def _engine(instance_type: str, suite: Suite, options: AwsOptions) -> EngineEnvironment:
    """The engine a started-engine run brings up on ``instance_type``; refuses what cannot travel."""
    engine = suite.engine
    if engine.engine_python:
        raise ConfigError(
            "--engine-python names an interpreter on this machine; on --target aws the bootstrap finds or "
            "builds the engine's environment on each instance (see 'siliconbench aws plan')"
        )
    model = str(engine.model)
    if not model.startswith("s3://") and Path(model).exists():
        raise ConfigError(
            f"--model {model} is a folder on this machine, which the instances cannot see: copy it to S3 "
            f"(aws s3 cp --recursive {model} s3://BUCKET/models/NAME/) and give --model s3://BUCKET/models/NAME/"
        )
    params = suite.engine_params()
    assert params is not None
    return engine_environment(instance_type, params.spec, options.model_token_from)


def _money(value: float | None) -> str:
    return "?" if value is None else f"${value:,.2f}"


def render_plan(plans: list[InstancePlan], options: AwsOptions, region: str, offline_reason: str | None = None) -> str:
    """The dry run as a table, a total, and the sources of the prices."""
    from tabulate import tabulate

    rows = []
    for p in plans:
        rows.append(
            [
                p.instance_type,
                p.kind,
                p.arch,
                ",".join(p.suite.matrix.backends),
                p.cells,
                p.ami.image_id if p.ami else "(not resolved)",
                p.price.purchase_option,
                "?" if p.price.per_hour is None else f"{p.price.per_hour:.4f}",
                f"{p.estimated_hours * 60:.0f} min",
                _money(p.estimated_cost),
                _money(p.max_cost),
            ]
        )
    headers = [
        "instance type",
        "kind",
        "arch",
        "backends",
        "cells",
        "AMI",
        "purchase",
        "$/hour",
        "est. time",
        "est. cost",
        f"cost at --max-hours {options.max_hours:g}",
    ]
    text = tabulate(rows, headers=headers, disable_numparse=True)
    known = [p for p in plans if p.estimated_cost is not None]
    total = sum(p.estimated_cost or 0.0 for p in known)
    worst = sum(p.max_cost or 0.0 for p in known)
    lines = [
        f"siliconbench aws plan: {len(plans)} instance(s) in {region}; nothing has been created.",
        "",
        text,
        "",
        f"estimated total: ${total:,.2f} (at most ${worst:,.2f} if every instance runs to --max-hours)"
        + ("" if len(known) == len(plans) else "; instance types without a price are not counted"),
        "AMIs (SSM parameters):",
    ]
    lines += [
        f"  {p.instance_type}: {p.ami_parameter}" + (f" -> {p.ami.image_id} ({p.ami.name})" if p.ami else "")
        for p in plans
    ]
    lines.append("environment each instance installs into (found by what it contains):")
    probes = {
        "trace": "a Python whose torch_neuronx has trace (Torch NeuronX, NeuronCore-v2)",
        "native": "a Python with TorchNeuron's torch.compile backend 'neuron' (PyTorch-native Neuron)",
        "torch": "the image's PyTorch (/opt/pytorch first)",
    }
    cpu = "a new venv of Python 3.11+ (Amazon Linux 2023 has no PyTorch)"
    lines += [
        f"  {p.instance_type}: {cpu if p.kind == 'cpu' else probes[environment_probe(p.instance_type)]}" for p in plans
    ]
    lines += _engine_lines(plans)
    source = f"--wheel {options.wheel}" if options.wheel else "a wheel of this siliconbench"
    lines.append(
        f"code: {source} and its pure-Python dependencies are uploaded with the run and installed with "
        "pip --no-index (no package index is used"
        + (
            f"; except on {', '.join(p.instance_type for p in plans if p.kind == 'cpu')}: Amazon Linux 2023 "
            f"has no PyTorch, so torch and the compiled packages (numpy, tokenizers, ...) come from "
            f"{TORCH_CPU_INDEX} and PyPI, the one index access)"
            if any(p.kind == "cpu" for p in plans)
            else ")"
        )
    )
    lines.append("prices:")
    lines += [f"  {p.instance_type}: {p.price.source}" for p in plans]
    lines.append(
        "each instance also gets: an encrypted root volume, IMDSv2 required, a security group with "
        "no inbound rules, shutdown behaviour 'terminate', a watchdog at --max-hours, and tags "
        "siliconbench:run-id/owner/expires-at/managed."
    )
    if offline_reason:
        lines.append(f"offline plan ({offline_reason}): AMI ids and spot prices were not read.")
    return "\n".join(lines)


def _engine_lines(plans: list[InstancePlan]) -> list[str]:
    """Per instance of an engine run: the engine's environment, where it and the model come from,
    its command line and the variables it adds."""
    engines = [p for p in plans if p.engine is not None]
    if not engines:
        return []
    lines = ["engine each instance starts (siliconbench and its client run in the engine's environment):"]
    for p in engines:
        e = p.engine
        assert e is not None
        lines += [
            f"  {p.instance_type} ({e.family}):",
            f"    environment: {e.setup}",
            f"    packages from: {e.packages_from}",
            f"    model from: {e.model_from}",
            f"    command: {e.command_line}",
            "    environment variables: "
            + (" ".join(f"{k}={v}" for k, v in e.env) if e.env else "(none beyond the instance's)"),
            "    egress: "
            + (
                "needed (a NAT gateway or an internet gateway; preflight checks the subnet's default route)"
                if e.needs_egress
                else "not needed (the image's venv, and the weights through an S3 gateway endpoint)"
            ),
        ]
    return lines
