"""The IAM policies in the repo: valid JSON, least privilege, and enough for what the code calls."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from harness.targets.aws.iam import (
    POLICY_DIR,
    CreatedProfile,
    caller_policy,
    create_instance_profile,
    delete_instance_profile,
    instance_role_policy,
)

#: Actions AWS cannot scope to a resource: listing and describing. Only these may use Resource "*".
UNSCOPABLE = {
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypeOfferings",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeInstances",
    # EC2's Describe* actions take no resource-level permissions (preflight's egress check reads it).
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSpotPriceHistory",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
    "s3:ListAllMyBuckets",
    # The Service Authorization Reference lists no resource type for ListServiceQuotas.
    "servicequotas:ListServiceQuotas",
}
#: preflight simulates the caller's own permissions; the caller is a user or role of any path.
SELF_SIMULATION = {"iam:GetRole", "iam:SimulatePrincipalPolicy"}


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    assert policy["Version"] == "2012-10-17"
    return list(policy["Statement"])


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


@pytest.mark.parametrize("name", sorted(p.name for p in POLICY_DIR.glob("*.json")))
def test_policy_files_are_valid_json_with_named_statements(name: str) -> None:
    policy = json.loads((POLICY_DIR / name).read_text())
    sids = [s["Sid"] for s in statements(policy)]
    assert len(sids) == len(set(sids)) and all(re.fullmatch(r"[A-Za-z0-9]+", sid) for sid in sids)


@pytest.mark.parametrize("policy", [caller_policy(), instance_role_policy("BUCKET_NAME")], ids=["caller", "instance"])
def test_least_privilege(policy: dict[str, Any]) -> None:
    for statement in statements(policy):
        assert statement["Effect"] == "Allow"
        assert not {"NotAction", "NotResource", "NotPrincipal"} & set(statement), statement["Sid"]
        actions = as_list(statement["Action"])
        for action in actions:
            assert "*" not in action and "?" not in action, f"wildcard action {action} in {statement['Sid']}"
            assert re.fullmatch(r"[a-z0-9]+:[A-Za-z0-9]+", action), action
        resources = as_list(statement["Resource"])
        if resources == ["*"]:
            assert set(actions) <= UNSCOPABLE, f"{statement['Sid']} grants scopable actions on every resource"
            continue
        for arn in resources:
            assert arn.startswith("arn:aws:"), arn
            service, rest = arn.split(":")[2], arn.split(":", 5)[5]
            assert rest not in ("*", ""), f"{arn} is not scoped to a resource type"
            if service == "s3":
                assert rest.startswith(("siliconbench-", "BUCKET_NAME/siliconbench/")), arn
            if service == "iam" and set(actions) <= SELF_SIMULATION:
                assert rest in ("user/*", "role/*"), arn
            elif service == "iam":
                assert "/siliconbench/" in rest, arn
            if service == "ssm":
                assert rest.startswith("parameter/aws/service/"), arn


def test_what_ends_or_launches_instances_is_conditioned_on_the_managed_tag() -> None:
    for statement in statements(caller_policy()):
        actions = set(as_list(statement["Action"]))
        resources = " ".join(as_list(statement["Resource"]))
        if actions & {"ec2:TerminateInstances", "ec2:DeleteSecurityGroup"}:
            assert statement["Condition"]["StringEquals"]["aws:ResourceTag/siliconbench:managed"] == "true"
        if "ec2:RunInstances" in actions and "instance/" in resources:
            assert statement["Condition"]["StringEquals"]["aws:RequestTag/siliconbench:managed"] == "true"
        if "ec2:CreateTags" in actions:
            assert set(statement["Condition"]["StringEquals"]["ec2:CreateAction"]) == {
                "RunInstances",
                "CreateSecurityGroup",
            }
        if "iam:PassRole" in actions:
            assert statement["Condition"]["StringEquals"]["iam:PassedToService"] == "ec2.amazonaws.com"


def test_the_instance_may_only_read_and_write_objects_under_its_prefix() -> None:
    policy = instance_role_policy("my-bucket", "siliconbench/20261124T000000Z-abc123/")
    actions = {a for s in statements(policy) for a in as_list(s["Action"])}
    resources = {r for s in statements(policy) for r in as_list(s["Resource"])}
    assert actions == {"s3:GetObject", "s3:PutObject"}
    assert resources == {"arn:aws:s3:::my-bucket/siliconbench/20261124T000000Z-abc123/*"}


def test_a_created_profile_carries_the_narrowed_policy_and_is_deleted_whole(factory) -> None:  # type: ignore[no-untyped-def]
    iam = factory.client("iam")
    created = create_instance_profile(iam, "r1", "bkt", "siliconbench/r1", {"siliconbench:managed": "true"})
    assert created == CreatedProfile("siliconbench-r1", "siliconbench-r1")
    profile = iam.get_instance_profile(InstanceProfileName=created.name)["InstanceProfile"]
    assert profile["Path"] == "/siliconbench/" and [r["RoleName"] for r in profile["Roles"]] == [created.role_name]
    document = iam.get_role_policy(RoleName=created.role_name, PolicyName="siliconbench-run-prefix")["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    assert document == instance_role_policy("bkt", "siliconbench/r1")
    trust = iam.get_role(RoleName=created.role_name)["Role"]["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    assert iam.list_attached_role_policies(RoleName=created.role_name)["AttachedPolicies"] == []

    assert delete_instance_profile(iam, created) == []
    assert iam.list_instance_profiles(PathPrefix="/siliconbench/")["InstanceProfiles"] == []
    assert iam.list_roles(PathPrefix="/siliconbench/")["Roles"] == []
