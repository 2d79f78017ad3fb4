"""Cleanup judges resources by their tags alone: expired ones go, live runs stay, --all takes all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from harness.targets.aws.ami import resolve_ami
from harness.targets.aws.cleanup import cleanup
from harness.targets.aws.iam import caller_policy, create_instance_profile
from harness.targets.aws.launch import LaunchSpec, create_security_group, default_subnets, launch_instance
from harness.targets.aws.storage import create_bucket, run_bucket_name, run_prefix
from harness.targets.aws.tags import TAG_EXPIRES, run_tags
from tests.conftest import CliRunner
from tests.harness.targets.aws.conftest import REGION
from tests.harness.targets.aws.policy import assert_policy_allows, record_calls

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def make_run(factory: Any, run_id: str, expires: datetime, profile: str, drop_expiry: bool = False) -> dict[str, str]:
    """What a run leaves when its launcher dies: an instance, its group, bucket and profile."""
    tags = run_tags(run_id, "arn:aws:iam::123456789012:user/alice", expires)
    if drop_expiry:
        tags.pop(TAG_EXPIRES)
    ec2, s3 = factory.client("ec2"), factory.client("s3")
    vpc_id, subnets = default_subnets(ec2)
    group = create_security_group(ec2, vpc_id, run_id, tags)
    ami = resolve_ami(factory.client("ssm"), ec2, "cpu", "x86_64", {}, REGION)
    instance = launch_instance(
        ec2, LaunchSpec(run_id, "c7i.xlarge", "cpu", ami, "#!/bin/bash\n", group, profile, tags), subnets
    )
    bucket = run_bucket_name(run_id)
    create_bucket(s3, bucket, REGION, tags)
    s3.put_object(Bucket=bucket, Key=f"{run_prefix(run_id)}/c7i.xlarge/run.json", Body=b"{}")
    created = create_instance_profile(factory.client("iam"), run_id, bucket, run_prefix(run_id), tags)
    return {
        "instance": instance["InstanceId"],
        "security-group": group,
        "bucket": bucket,
        "instance-profile": created.name,
    }


def state(factory: Any, ids: dict[str, str]) -> dict[str, str]:
    ec2 = factory.client("ec2")
    instance = ec2.describe_instances(InstanceIds=[ids["instance"]])["Reservations"][0]["Instances"][0]
    groups = ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": [ids["security-group"]]}])
    buckets = [b["Name"] for b in factory.client("s3").list_buckets()["Buckets"]]
    profiles = [
        p["InstanceProfileName"]
        for p in factory.client("iam").list_instance_profiles(PathPrefix="/siliconbench/")["InstanceProfiles"]
    ]
    return {
        "instance": instance["State"]["Name"],
        "security-group": "exists" if groups["SecurityGroups"] else "gone",
        "bucket": "exists" if ids["bucket"] in buckets else "gone",
        "instance-profile": "exists" if ids["instance-profile"] in profiles else "gone",
    }


GONE = {"instance": "terminated", "security-group": "gone", "bucket": "gone", "instance-profile": "gone"}
KEPT = {"instance": "running", "security-group": "exists", "bucket": "exists", "instance-profile": "exists"}


@pytest.fixture
def runs(factory, public_amis, instance_profile) -> dict[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    return {
        "expired": make_run(factory, "20261120T000000Z-aaaaaa", NOW - timedelta(hours=1), instance_profile),
        "live": make_run(factory, "20261124T110000Z-bbbbbb", NOW + timedelta(hours=2), instance_profile),
        "no-expiry": make_run(factory, "20261124T100000Z-cccccc", NOW, instance_profile, drop_expiry=True),
    }


def fast(factory: Any, **kwargs: Any) -> Any:
    return cleanup(factory, NOW, wait_s=5, poll_s=0.01, **kwargs)


def test_dry_run_changes_nothing(factory, runs) -> None:  # type: ignore[no-untyped-def]
    findings = fast(factory, dry_run=True)
    actions = {(f.run_id, f.kind): f.action for f in findings}
    assert actions[("20261120T000000Z-aaaaaa", "instance")] == "would terminate"
    assert actions[("20261120T000000Z-aaaaaa", "bucket")] == "would delete"
    assert actions[("20261124T110000Z-bbbbbb", "instance")] == "keep"
    assert "bench-profile" not in {f.resource_id for f in findings}, "untagged resources are not ours to judge"
    for ids in runs.values():
        assert state(factory, ids) == KEPT


def test_expired_runs_are_removed_and_live_ones_kept(factory, runs) -> None:  # type: ignore[no-untyped-def]
    calls = record_calls(factory)
    findings = fast(factory)
    calls = list(calls)

    assert state(factory, runs["expired"]) == GONE
    assert state(factory, runs["no-expiry"]) == GONE, "a managed resource without an expiry counts as expired"
    assert state(factory, runs["live"]) == KEPT
    live = [f for f in findings if f.run_id == "20261124T110000Z-bbbbbb"]
    assert {f.action for f in live} == {"keep"} and not any(f.expired for f in live)
    assert_policy_allows(caller_policy(), calls)


def test_all_removes_live_runs_too(factory, runs) -> None:  # type: ignore[no-untyped-def]
    fast(factory, include_all=True)
    for ids in runs.values():
        assert state(factory, ids) == GONE


def test_cleanup_command(run_cli: CliRunner, factory, runs, aws_env: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("aws", "cleanup", "--dry-run", "--region", REGION, env=aws_env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "would terminate" in result.stdout and "20261120T000000Z-aaaaaa" in result.stdout
    assert state(factory, runs["expired"]) == KEPT
