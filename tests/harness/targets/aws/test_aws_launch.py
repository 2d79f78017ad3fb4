"""Launch parameters as EC2 (moto) records them, and launch faults as AWS reports them."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from harness.errors import CloudError
from harness.targets.aws.ami import AmiChoice
from harness.targets.aws.launch import (
    LaunchSpec,
    Subnet,
    create_security_group,
    default_subnets,
    delete_security_group,
    find_run_instances,
    launch_instance,
    terminate_instances,
    wait_terminated,
)
from harness.targets.aws.tags import TAG_EXPIRES, TAG_MANAGED, TAG_OWNER, TAG_RUN_ID, run_tags, tag_dict
from tests.harness.targets.aws.conftest import REGION

CAPACITY_MESSAGE = (
    "We currently do not have sufficient inf2.xlarge capacity in the Availability Zone you requested "
    "(us-east-1a). Our system will be working on provisioning additional capacity. You can currently get "
    "inf2.xlarge capacity by not specifying an Availability Zone in your request or choosing us-east-1b."
)


def _spec(ami: AmiChoice, group: str, profile: str, **changes: Any) -> LaunchSpec:
    from datetime import UTC, datetime

    values: dict[str, Any] = dict(
        run_id="20261124T000000Z-abc123",
        instance_type="inf2.xlarge",
        kind="neuron",
        ami=ami,
        user_data="#!/bin/bash\necho hello\n",
        security_group_id=group,
        instance_profile=profile,
        tags=run_tags(
            "20261124T000000Z-abc123", "arn:aws:iam::123456789012:user/alice", datetime(2030, 1, 1, tzinfo=UTC)
        ),
    )
    values.update(changes)
    return LaunchSpec(**values)


@pytest.fixture
def ami(factory, public_amis) -> AmiChoice:  # type: ignore[no-untyped-def]
    from harness.targets.aws.ami import resolve_ami

    return resolve_ami(factory.client("ssm"), factory.client("ec2"), "neuron-trace", "x86_64", {}, REGION)


def test_instances_launch_hardened_and_tagged(factory, ami, instance_profile) -> None:  # type: ignore[no-untyped-def]
    ec2 = factory.client("ec2")
    vpc_id, subnets = default_subnets(ec2)
    spec = _spec(ami, "", instance_profile)
    group = create_security_group(ec2, vpc_id, spec.run_id, spec.tags)
    spec = _spec(ami, group, instance_profile)

    instance = launch_instance(ec2, spec, subnets)
    instance_id = instance["InstanceId"]
    described = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]

    tags = tag_dict(described["Tags"])
    assert tags[TAG_MANAGED] == "true"
    assert tags[TAG_RUN_ID] == spec.run_id
    assert tags[TAG_OWNER] == "arn:aws:iam::123456789012:user/alice"
    assert tags[TAG_EXPIRES] == "2030-01-01T00:00:00Z"
    assert described["MetadataOptions"]["HttpTokens"] == "required"
    assert described["IamInstanceProfile"]["Arn"].endswith(f"instance-profile/siliconbench/{instance_profile}")
    assert [g["GroupId"] for g in described["SecurityGroups"]] == [group]
    behaviour = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="instanceInitiatedShutdownBehavior")
    assert behaviour["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"
    user_data = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")["UserData"]["Value"]
    assert base64.b64decode(user_data).decode() == spec.user_data

    root = [m for m in described["BlockDeviceMappings"] if m["DeviceName"] == ami.root_device_name]
    assert root, f"no volume on the AMI's root device {ami.root_device_name}"
    volume = ec2.describe_volumes(VolumeIds=[root[0]["Ebs"]["VolumeId"]])["Volumes"][0]
    assert volume["Encrypted"] is True
    assert volume["Size"] == spec.root_volume_gb() >= 150
    assert tag_dict(volume["Tags"])[TAG_RUN_ID] == spec.run_id
    assert root[0]["Ebs"]["DeleteOnTermination"] is True

    sg = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]
    assert sg["IpPermissions"] == [], "the security group must have no inbound rules"
    assert tag_dict(sg["Tags"])[TAG_RUN_ID] == spec.run_id

    assert [i["InstanceId"] for i in find_run_instances(ec2, spec.run_id)] == [instance_id]
    terminate_instances(ec2, [instance_id, "i-0000000000000dead"])  # an unknown id must not stop the rest
    assert wait_terminated(ec2, [instance_id], timeout_s=5, poll_s=0.01) == []
    delete_security_group(ec2, group, timeout_s=1, poll_s=0.01)
    assert not ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": [group]}])["SecurityGroups"]


def test_spot_launch_asks_for_a_one_time_spot_instance(factory, ami, instance_profile) -> None:  # type: ignore[no-untyped-def]
    ec2 = factory.client("ec2")
    vpc_id, subnets = default_subnets(ec2)
    group = create_security_group(ec2, vpc_id, "run-spot", {TAG_MANAGED: "true"})
    instance = launch_instance(ec2, _spec(ami, group, instance_profile, spot=True), subnets)
    described = ec2.describe_instances(InstanceIds=[instance["InstanceId"]])["Reservations"][0]["Instances"][0]
    assert described.get("InstanceLifecycle") == "spot"


# --- faults moto cannot produce: botocore's Stubber answers as AWS documents ---------------------------


def _stubbed_ec2() -> Any:
    import boto3

    return boto3.client("ec2", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")


def _any_spec() -> LaunchSpec:
    ami = AmiChoice("ami-0123456789abcdef0", "/p", "/dev/sda1", 8, "test")
    return _spec(ami, "sg-0123456789abcdef0", "profile")


def test_no_capacity_in_any_zone_is_one_line_naming_the_zones() -> None:
    from botocore.stub import Stubber

    ec2 = _stubbed_ec2()
    subnets = [Subnet("subnet-a", "us-east-1a"), Subnet("subnet-b", "us-east-1b")]
    with Stubber(ec2) as stub:
        for _ in subnets:
            stub.add_client_error(
                "run_instances",
                service_error_code="InsufficientInstanceCapacity",
                service_message=CAPACITY_MESSAGE,
                http_status_code=500,
            )
        with pytest.raises(CloudError) as caught:
            launch_instance(ec2, _any_spec(), subnets, sleep=lambda s: None)
        stub.assert_no_pending_responses()
    message = str(caught.value)
    assert "no capacity for inf2.xlarge in us-east-1a, us-east-1b" in message
    assert "InsufficientInstanceCapacity" in message and "\n" not in message


def test_capacity_in_the_second_zone_is_used() -> None:
    from botocore.stub import Stubber

    ec2 = _stubbed_ec2()
    subnets = [Subnet("subnet-a", "us-east-1a"), Subnet("subnet-b", "us-east-1b")]
    with Stubber(ec2) as stub:
        stub.add_client_error(
            "run_instances",
            service_error_code="InsufficientInstanceCapacity",
            service_message=CAPACITY_MESSAGE,
            http_status_code=500,
        )
        stub.add_response(
            "run_instances",
            {"Instances": [{"InstanceId": "i-0abc", "Placement": {"AvailabilityZone": "us-east-1b"}}]},
            expected_params=None,
        )
        instance = launch_instance(ec2, _any_spec(), subnets, sleep=lambda s: None)
    assert instance["InstanceId"] == "i-0abc"


def test_a_quota_error_is_not_retried_in_other_zones() -> None:
    from botocore.stub import Stubber

    ec2 = _stubbed_ec2()
    with Stubber(ec2) as stub:
        stub.add_client_error(
            "run_instances",
            service_error_code="VcpuLimitExceeded",
            service_message="You have requested more vCPU capacity than your current vCPU "
            "limit of 0 allows for the instance bucket that the specified instance type belongs to.",
            http_status_code=400,
        )
        with pytest.raises(CloudError, match=r"VcpuLimitExceeded.*higher quota"):
            launch_instance(ec2, _any_spec(), [Subnet("subnet-a", "us-east-1a"), Subnet("subnet-b", "us-east-1b")])
        stub.assert_no_pending_responses()


def test_a_new_instance_profile_is_waited_for() -> None:
    from botocore.stub import Stubber

    ec2 = _stubbed_ec2()
    slept: list[float] = []
    with Stubber(ec2) as stub:
        stub.add_client_error(
            "run_instances",
            service_error_code="InvalidParameterValue",
            service_message="Value (siliconbench-x) for parameter iamInstanceProfile.name is "
            "invalid. Invalid IAM Instance Profile name",
            http_status_code=400,
        )
        stub.add_response("run_instances", {"Instances": [{"InstanceId": "i-0def"}]})
        instance = launch_instance(
            ec2, _any_spec(), [Subnet("subnet-a", "us-east-1a")], retry_s=2.0, sleep=slept.append
        )
    assert instance["InstanceId"] == "i-0def"
    assert slept == [2.0]
