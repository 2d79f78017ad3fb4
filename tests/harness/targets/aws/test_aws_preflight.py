"""Preflight: each problem provoked gives its one line, and nothing is created.

EC2, S3, SSM and STS are moto on 127.0.0.1. moto 5.2 does not serve three things preflight asks, so
those are answered with botocore's ``Stubber`` (or, for one EC2 operation on a client whose other
calls must still reach moto, the same before-call hook Stubber uses), and every canned answer is
checked against the operation's output shape in botocore's service model, as Stubber checks:

- Service Quotas ``ListServiceQuotas`` (moto serves quotas for VPC only);
- IAM ``SimulatePrincipalPolicy`` (moto has no policy simulation);
- ``DescribeInstanceTypeOfferings``/``DescribeInstanceTypes`` for trn2 and trn3 (not in moto's data).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from harness.errors import PreflightError
from harness.targets.aws.plan import AwsOptions
from harness.targets.aws.preflight import preflight, quota_names, require_ready, simulation_requests
from tests.cli import run_cli
from tests.harness.targets.aws.conftest import REGION

#: Quota names and codes as Service Quotas lists them for service code ec2 (EC2 User Guide,
#: "On-Demand Instance quotas"; the issue quotes L-1216C47A for the standard families).
QUOTAS = {
    "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances": "L-1216C47A",
    "Running On-Demand Inf instances": "L-1945791B",
    "Running On-Demand Trn instances": "L-2C3B7624",
    "Running On-Demand G and VT instances": "L-DB2E81BA",
    "Running On-Demand P instances": "L-417A185B",
    "All Inf Spot Instance Requests": "L-B5D1601B",
}


def quota_page(**limits: float) -> dict[str, Any]:
    """A ListServiceQuotas page; ``limits`` by short name (standard, inf, trn, ...), others at 0."""
    short = {"standard": "Standard", "inf": "Inf", "trn": "Trn", "g": "G and VT", "p": "P"}
    quotas = []
    for name, code in QUOTAS.items():
        key = next((k for k, v in short.items() if f" {v} " in f" {name} " or f"{v} (" in name), None)
        quotas.append(
            {
                "ServiceCode": "ec2",
                "ServiceName": "Amazon Elastic Compute Cloud (Amazon EC2)",
                "QuotaArn": f"arn:aws:servicequotas:{REGION}:123456789012:ec2/{code}",
                "QuotaCode": code,
                "QuotaName": name,
                "Value": float(limits.get(key or "", 0.0)),
                "Unit": "None",
                "Adjustable": True,
                "GlobalQuota": False,
            }
        )
    return {"Quotas": quotas}


@pytest.fixture
def quotas(factory) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """Service Quotas through Stubber (moto lacks it for EC2): add a page with ``quotas.page(...)``."""
    from botocore.stub import Stubber

    stubber = Stubber(factory.client("service-quotas"))

    def page(**limits: float) -> None:
        stubber.add_response("list_service_quotas", quota_page(**limits), {"ServiceCode": "ec2"})

    stubber.page = page  # type: ignore[attr-defined]
    with stubber:
        yield stubber


@pytest.fixture
def simulation(factory) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """IAM policy simulation through Stubber (moto has none): ``simulation.decide(action=decision)``."""
    from botocore.stub import ANY, Stubber

    stubber = Stubber(factory.client("iam"))

    def decide(checked: AwsOptions, **denied: str) -> None:
        """One answer per simulation preflight makes for ``checked``, each asked about the caller
        policy statement's own resources; every action allowed except ``denied``
        (``ec2_RunInstances="implicitDeny"``)."""
        for actions, resources in simulation_requests(checked):
            results = [
                {
                    "EvalActionName": action,
                    "EvalResourceName": resources[0],
                    "EvalDecision": denied.get(action.replace(":", "_"), "allowed"),
                }
                for action in actions
            ]
            expected: dict[str, Any] = {
                "PolicySourceArn": "arn:aws:sts::123456789012:user/moto",
                "ActionNames": list(actions),
                "ContextEntries": ANY,
            }
            if resources != ("*",):
                expected["ResourceArns"] = list(resources)
            stubber.add_response(
                "simulate_principal_policy", {"EvaluationResults": results, "IsTruncated": False}, expected
            )

    stubber.decide = decide  # type: ignore[attr-defined]
    with stubber:
        yield stubber


def answer_from_model(client: Any, operation: str, response: dict[str, Any]) -> None:
    """Answer one operation on a moto-backed client, as Stubber would: the response is validated
    against botocore's output shape, and every other operation still reaches moto."""
    from botocore.awsrequest import AWSResponse
    from botocore.validate import validate_parameters

    shape = client.meta.service_model.operation_model(operation).output_shape
    validate_parameters(response, shape)

    def answer(**_: Any) -> Any:
        return AWSResponse("https://ec2.us-east-1.amazonaws.com/", 200, {}, None), dict(response)

    client.meta.events.register(f"before-call.ec2.{operation}", answer)


def trainium_in_ec2(factory: Any, offered: dict[str, list[str]]) -> None:
    """trn2/trn3 as EC2 describes them (vCPUs from the instance types' pages: 192 each)."""
    ec2 = factory.client("ec2")
    answer_from_model(
        ec2,
        "DescribeInstanceTypes",
        {
            "InstanceTypes": [
                {
                    "InstanceType": t,
                    "VCpuInfo": {"DefaultVCpus": 192},
                    "ProcessorInfo": {"SupportedArchitectures": ["x86_64"]},
                }
                for t in offered
            ]
        },
    )
    answer_from_model(
        ec2,
        "DescribeInstanceTypeOfferings",
        {
            "InstanceTypeOfferings": [
                {"InstanceType": t, "LocationType": "availability-zone", "Location": zone}
                for t, zones in offered.items()
                for zone in zones
            ]
        },
    )


def nothing_created(factory: Any) -> None:
    ec2 = factory.client("ec2")
    assert factory.client("s3").list_buckets()["Buckets"] == []
    assert [r for r in ec2.describe_instances()["Reservations"]] == []
    groups = ec2.describe_security_groups()["SecurityGroups"]
    assert {g["GroupName"] for g in groups} == {"default"}, groups


def options(*types: str, **changes: Any) -> AwsOptions:
    return AwsOptions(**{"instance_types": types, "region": REGION, "create_instance_profile": True, **changes})


def test_quota_names_follow_the_ec2_documentation() -> None:
    assert quota_names("c7i.xlarge", False) == ("Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",)
    assert quota_names("inf2.xlarge", False) == ("Running On-Demand Inf instances",)
    assert quota_names("trn2.48xlarge", False) == ("Running On-Demand Trn instances",)
    assert quota_names("g6e.xlarge", False) == ("Running On-Demand G and VT instances",)
    assert quota_names("p5.48xlarge", True) == ("All P Spot Instance Requests", "All P5 Spot Instance Requests")


def test_a_ready_account_passes_every_check(factory, public_amis, quotas, simulation) -> None:  # type: ignore[no-untyped-def]
    quotas.page(standard=64, inf=8)
    checked = options("inf2.xlarge", "c7i.xlarge")
    simulation.decide(checked)
    report = require_ready(factory, checked)

    assert report.problems == ()
    text = "\n".join(report.passed)
    assert "quota 'Running On-Demand Inf instances': 8 vCPUs covers 4" in text
    assert "quota 'Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances': 64 vCPUs covers 4" in text
    assert "/aws/service/neuron/dlami/pytorch-2.9/ubuntu-24.04/latest/image_id" in text
    assert "permissions:" in text
    assert set(report.zones) == {"inf2.xlarge", "c7i.xlarge"}
    quotas.assert_no_pending_responses()
    simulation.assert_no_pending_responses()
    nothing_created(factory)


def test_a_new_accounts_zero_inf_quota_is_one_line_naming_the_quota(factory, public_amis, quotas, simulation) -> None:  # type: ignore[no-untyped-def]
    """The standard families' limit is generous and Inf's is 0: a single vCPU limit for all would pass."""
    quotas.page(standard=1152, inf=0)
    checked = options("inf2.xlarge", "c7i.xlarge")
    simulation.decide(checked)
    with pytest.raises(PreflightError) as caught:
        require_ready(factory, checked)
    assert caught.value.problems == [
        "request a quota increase for 'Running On-Demand Inf instances' (L-1945791B) in us-east-1: "
        "the run needs 4 vCPUs, the limit is 0 (Service Quotas console, Amazon EC2)"
    ]
    nothing_created(factory)


def test_trainium2_and_3_are_checked_against_the_trn_quota(factory, public_amis, quotas, simulation) -> None:  # type: ignore[no-untyped-def]
    trainium_in_ec2(factory, {"trn2.48xlarge": ["us-east-1d"], "trn3.48xlarge": ["us-east-1a", "us-east-1d"]})
    quotas.page(standard=64, trn=192)
    checked = options("trn2.48xlarge", "trn3.48xlarge")
    simulation.decide(checked)
    report = preflight(factory, checked)
    assert report.problems == (
        "request a quota increase for 'Running On-Demand Trn instances' (L-2C3B7624) in us-east-1: "
        "the run needs 384 vCPUs, the limit is 192 (Service Quotas console, Amazon EC2)",
    )
    assert report.zones == {"trn2.48xlarge": ("us-east-1d",), "trn3.48xlarge": ("us-east-1a", "us-east-1d")}
    assert any("neuron-native" in line and "torch-neuronx-2.14.0" in line for line in report.passed), report.passed


def test_a_type_not_offered_in_the_subnets_zone_names_the_zones_that_offer_it(
    factory, public_amis, quotas, simulation
) -> None:  # type: ignore[no-untyped-def]
    ec2 = factory.client("ec2")
    subnet = next(s for s in ec2.describe_subnets()["Subnets"] if s["AvailabilityZone"] == "us-east-1a")
    trainium_in_ec2(factory, {"trn2.48xlarge": ["us-east-1d"]})
    quotas.page(trn=192)
    checked = options("trn2.48xlarge", subnet_id=subnet["SubnetId"])
    simulation.decide(checked)
    with pytest.raises(PreflightError) as caught:
        require_ready(factory, checked)
    assert caught.value.problems == [
        f"trn2.48xlarge is not offered in subnet {subnet['SubnetId']} (us-east-1a): "
        "give --subnet-id with a subnet in us-east-1d"
    ]


def test_a_type_offered_nowhere_in_the_region(factory, public_amis, quotas, simulation) -> None:  # type: ignore[no-untyped-def]
    trainium_in_ec2(factory, {"trn3.48xlarge": []})
    quotas.page(trn=192)
    checked = options("trn3.48xlarge")
    simulation.decide(checked)
    with pytest.raises(PreflightError) as caught:
        require_ready(factory, checked)
    assert caught.value.problems == [
        "trn3.48xlarge is not offered in any zone of us-east-1: choose a --region that offers it"
    ]


def remove_default_vpc(ec2: Any) -> None:
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    for gateway in ec2.describe_internet_gateways()["InternetGateways"]:
        ec2.detach_internet_gateway(InternetGatewayId=gateway["InternetGatewayId"], VpcId=vpc)
        ec2.delete_internet_gateway(InternetGatewayId=gateway["InternetGatewayId"])
    ec2.delete_vpc(VpcId=vpc)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no default VPC", "us-east-1 has no default VPC: give --subnet-id SUBNET (a subnet whose instances reach S3"),
        (
            "unknown subnet",
            "subnet subnet-0123456789abcdef0 does not exist in us-east-1: check --subnet-id and --region",
        ),
        ("missing bucket", "bucket siliconbench-missing does not exist: create it, or leave out --bucket"),
        (
            "renamed AMI parameter",
            "SSM parameter '/aws/service/neuron/renamed' for neuron-trace instances does not exist",
        ),
        ("denied action", "arn:aws:sts::123456789012:user/moto may not ec2:RunInstances: attach harness/targets/aws/"),
    ],
)
def test_each_problem_is_one_line_naming_its_fix_and_nothing_is_created(
    factory, public_amis, quotas, simulation, case: str, expected: str
) -> None:  # type: ignore[no-untyped-def]
    quotas.page(standard=64, inf=8)
    changes: dict[str, Any] = {}
    if case == "no default VPC":
        remove_default_vpc(factory.client("ec2"))
    elif case == "unknown subnet":
        changes["subnet_id"] = "subnet-0123456789abcdef0"
    elif case == "missing bucket":
        changes.update(bucket="siliconbench-missing", create_instance_profile=False, instance_profile="p")
    elif case == "renamed AMI parameter":
        changes["ami_parameters"] = {"neuron-trace": "/aws/service/neuron/renamed"}
    checked = AwsOptions(
        **{"instance_types": ("inf2.xlarge",), "region": REGION, "create_instance_profile": True, **changes}
    )
    simulation.decide(checked, **({"ec2_RunInstances": "implicitDeny"} if case == "denied action" else {}))
    with pytest.raises(PreflightError) as caught:
        require_ready(factory, checked)
    [problem] = caught.value.problems
    assert problem.startswith(expected) and "\n" not in problem, problem
    assert factory.client("s3").list_buckets()["Buckets"] == []
    assert factory.client("ec2").describe_instances()["Reservations"] == []


def test_no_credentials_is_one_line(aws_env, moto_endpoint, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from harness.targets.aws.session import ClientFactory

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    report = preflight(ClientFactory(REGION, endpoint_url=moto_endpoint, max_attempts=1), options("c7i.xlarge"))
    assert report.problems == (
        "no AWS credentials found; configure them (aws configure, AWS_PROFILE, or an assumed role)",
    )


def test_run_checks_first_and_creates_nothing(factory, public_amis, quotas, simulation, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from harness.run.plan import Suite
    from harness.targets.aws.orchestrator import AwsTarget

    quotas.page(standard=64, inf=0)
    checked = options("inf2.xlarge")
    simulation.decide(checked)
    target = AwsTarget(checked, factory=factory)
    suite = Suite(workloads=("mlp",), preset="tiny", backends=("cpu",), output=str(tmp_path / "results"))
    with pytest.raises(PreflightError, match="Running On-Demand Inf instances"):
        target.run(suite)
    assert target.run_id is None
    nothing_created(factory)


def cli(aws_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env=aws_env, timeout=120)


@pytest.mark.parametrize("command", [["aws", "preflight"], ["run", "--target", "aws", "--workload", "mlp"]])
def test_cli_prints_one_line_per_problem_and_exits_2(factory, public_amis, aws_env, command: list[str]) -> None:  # type: ignore[no-untyped-def]
    result = cli(
        aws_env,
        *command,
        "--instance-type",
        "c7i.xlarge",
        "--region",
        REGION,
        "--create-instance-profile",
        "--subnet-id",
        "subnet-0123456789abcdef0",
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "siliconbench: preflight: subnet subnet-0123456789abcdef0 does not exist in us-east-1: "
        "check --subnet-id and --region",
        "siliconbench: preflight failed; nothing was created",
    ]
    nothing_created(factory)


def test_permissions_are_simulated_on_the_policys_own_resources() -> None:
    """IAM simulates resource "*" when given none, which a statement scoped to siliconbench's
    buckets or tagged instances does not match: each statement is asked about its own resources."""
    requests = dict(simulation_requests(options("inf2.xlarge")))
    by_action = {action: resources for actions, resources in requests.items() for action in actions}
    assert by_action["s3:CreateBucket"] == ("arn:aws:s3:::siliconbench-*",)
    assert by_action["iam:PassRole"] == ("arn:aws:iam::*:role/siliconbench/*",)
    assert by_action["ec2:DescribeInstanceTypeOfferings"] == ("*",)
    with_bucket = {
        a
        for actions in dict(
            simulation_requests(options("c7i.xlarge", bucket="b", create_instance_profile=False, instance_profile="p"))
        )
        for a in actions
    }
    assert "s3:CreateBucket" not in with_bucket and "iam:CreateRole" not in with_bucket
