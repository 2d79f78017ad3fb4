"""The dry run: every instance resolved and priced, nothing created."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.pricing.catalog import load_catalog
from harness.run.plan import Suite
from harness.targets.aws.plan import MAX_HOURS_LIMIT, AwsOptions, estimate_hours, plan_instances, render_plan
from tests.conftest import CliRunner
from tests.harness.targets.aws.conftest import REGION

SUITE = Suite(workloads=("mlp",), preset="tiny", backends=("cpu",), dtypes=("fp32", "bf16"), max_time=2.0)


def nothing_created(factory) -> bool:  # type: ignore[no-untyped-def]
    ec2 = factory.client("ec2")
    instances = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    groups = ec2.describe_security_groups(Filters=[{"Name": "tag-key", "Values": ["siliconbench:run-id"]}])
    return not instances and not groups["SecurityGroups"] and not factory.client("s3").list_buckets()["Buckets"]


def test_plan_resolves_amis_and_prices_and_creates_nothing(factory, public_amis) -> None:  # type: ignore[no-untyped-def]
    options = AwsOptions(instance_types=("inf2.xlarge", "c7g.xlarge"), region=REGION)
    inf2, c7g = plan_instances(SUITE, options, factory)

    assert (inf2.kind, inf2.arch, c7g.kind, c7g.arch) == ("neuron", "x86_64", "cpu", "arm64")
    assert inf2.ami is not None and inf2.ami.image_id == public_amis["neuron-trace/x86_64"]
    assert c7g.ami is not None and c7g.ami.image_id == public_amis["cpu/arm64"]
    assert inf2.cells == c7g.cells == 2
    catalog_price = load_catalog().lookup("inf2.xlarge", REGION, "on-demand")
    assert catalog_price is not None and inf2.price.per_hour == catalog_price.usd_per_hour
    assert inf2.price.as_of == catalog_price.as_of
    assert inf2.estimated_hours == estimate_hours("neuron", 2, SUITE, options.max_hours)
    assert inf2.estimated_cost == pytest.approx(catalog_price.usd_per_hour * inf2.estimated_hours)
    assert inf2.max_cost == pytest.approx(catalog_price.usd_per_hour * options.max_hours)

    text = render_plan([inf2, c7g], options, REGION)
    total = (inf2.estimated_cost or 0) + (c7g.estimated_cost or 0)
    assert "nothing has been created" in text and f"estimated total: ${total:,.2f}" in text
    assert public_amis["neuron-trace/x86_64"] in text and inf2.ami_parameter in text
    assert nothing_created(factory)


def test_auto_backends_follow_the_instance_kind(factory, public_amis) -> None:  # type: ignore[no-untyped-def]
    options = AwsOptions(instance_types=("inf2.xlarge", "g5.xlarge", "c7i.xlarge"), region=REGION, auto_backends=True)
    planned = plan_instances(SUITE, options, factory)
    assert [p.suite.matrix.backends for p in planned] == [("neuron",), ("cuda",), ("cpu",)]


def test_estimate_is_bounded_and_grows_with_cells() -> None:
    one, many = estimate_hours("cpu", 1, SUITE, 2.0), estimate_hours("cpu", 50, SUITE, 2.0)
    assert 60 / 3600 <= one < many <= 2.0
    assert estimate_hours("neuron", 1, SUITE, 2.0) > estimate_hours("cpu", 1, SUITE, 2.0)
    assert estimate_hours("neuron", 10_000, SUITE, 0.5) == 0.5


def test_an_offline_plan_still_prices_and_names_the_parameters() -> None:
    options = AwsOptions(instance_types=("c7g.xlarge",), region=REGION, spot=True)
    [plan] = plan_instances(SUITE, options, None)
    assert plan.ami is None and plan.arch == "arm64"
    assert plan.price.purchase_option == "spot" and plan.price.per_hour is not None
    assert "offline plan" in plan.price.source
    assert "(not resolved)" in render_plan([plan], options, REGION, "no AWS credentials")


def test_an_unknown_instance_type_fails_before_anything_is_created(factory, public_amis) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="unknown instance type in us-east-1") as caught:
        plan_instances(SUITE, AwsOptions(instance_types=("zz9.huge",), region=REGION), factory)
    assert "\n" not in str(caught.value)
    assert nothing_created(factory)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"instance_types": ()}, "needs at least one --instance-type"),
        ({"instance_types": ("c7i.xlarge", "c7i.xlarge")}, "given twice"),
        ({"max_hours": MAX_HOURS_LIMIT + 1}, "--max-hours must be in"),
        ({"instance_profile": "p", "create_instance_profile": True}, "not both"),
        ({"wheel": Path("/nonexistent/siliconbench.whl")}, "is not a wheel file"),
    ],
)
def test_options_are_validated_in_one_line(changes: dict[str, object], fragment: str) -> None:
    values: dict[str, object] = {"instance_types": ("c7i.xlarge",)}
    values.update(changes)
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        AwsOptions(**values)  # type: ignore[arg-type]


def test_no_instance_profile_is_refused_before_launch() -> None:
    with pytest.raises(ConfigError, match=r"--instance-profile NAME .* or --create-instance-profile"):
        AwsOptions(instance_types=("c7i.xlarge",)).require_instance_profile()


def test_plan_command_prints_the_plan_and_creates_nothing(
    run_cli: CliRunner,
    factory,
    public_amis,  # type: ignore[no-untyped-def]
    aws_env: dict[str, str],
) -> None:
    result = run_cli(
        "aws",
        "plan",
        "--instance-type",
        "inf2.xlarge",
        "--instance-type",
        "c7i.xlarge",
        "--workload",
        "mlp",
        "--preset",
        "tiny",
        "--region",
        REGION,
        env=aws_env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "2 instance(s) in us-east-1; nothing has been created" in result.stdout
    assert public_amis["neuron-trace/x86_64"] in result.stdout and "estimated total: $" in result.stdout
    assert nothing_created(factory)
    # It says what the instances install and the one index access that remains (the CPU image's PyTorch).
    code = next(line for line in result.stdout.splitlines() if line.startswith("code: "))
    assert "installed with pip --no-index" in code and "except on c7i.xlarge" in code
    assert "https://download.pytorch.org/whl/cpu" in code
    assert "inf2.xlarge: a Python whose torch_neuronx has trace" in result.stdout


def test_plan_without_a_cpu_instance_uses_no_index(factory, public_amis) -> None:  # type: ignore[no-untyped-def]
    options = AwsOptions(instance_types=("inf2.xlarge", "g5.xlarge"), region=REGION)
    text = render_plan(plan_instances(SUITE, options, factory), options, REGION)
    code = next(line for line in text.splitlines() if line.startswith("code: "))
    assert code.endswith("(no package index is used)"), code
