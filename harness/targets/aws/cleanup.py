"""Find everything siliconbench tagged and remove what has expired (or everything, with ``--all``).

The tags are the only state: a laptop that crashed mid-run, a CI job that was cancelled, an
instance whose watchdog failed, all leave resources that carry ``siliconbench:managed=true`` and an
``expires-at``, and nothing else is needed to judge them. Instances go first; security groups,
instance profiles and buckets only once nothing live holds them.

Every listing is fetched page by page inside the error handling (``session.paginate``), so no
credentials, an unreachable endpoint or one that never answers ends in one line, not a traceback.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from harness.errors import SiliconbenchError
from harness.targets.aws.iam import IAM_PATH, CreatedProfile, delete_instance_profile
from harness.targets.aws.launch import delete_security_group, find_run_instances, terminate_instances, wait_terminated
from harness.targets.aws.session import ClientFactory, aws_call, aws_errors, error_code, paginate
from harness.targets.aws.storage import delete_bucket
from harness.targets.aws.tags import TAG_EXPIRES, TAG_MANAGED, TAG_OWNER, TAG_RUN_ID, is_expired, tag_dict

__all__ = ["Finding", "cleanup", "find_managed"]


@dataclass(frozen=True)
class Finding:
    """One tagged resource, whether it is due for removal, and what was done about it."""

    kind: str
    resource_id: str
    run_id: str
    owner: str
    expires_at: str
    state: str
    expired: bool
    action: str = "keep"
    detail: str = ""


def _finding(kind: str, resource_id: str, tags: dict[str, str], state: str, now: datetime) -> Finding:
    return Finding(
        kind,
        resource_id,
        tags.get(TAG_RUN_ID, "?"),
        tags.get(TAG_OWNER, "?"),
        tags.get(TAG_EXPIRES, "none"),
        state,
        is_expired(tags, now),
    )


def find_managed(factory: ClientFactory, now: datetime) -> list[Finding]:
    """Every live resource this tool tagged in the factory's region (buckets: in any region)."""
    ec2, s3, iam = factory.client("ec2"), factory.client("s3"), factory.client("iam")
    found: list[Finding] = []
    for instance in find_run_instances(ec2):
        found.append(
            _finding(
                "instance",
                instance["InstanceId"],
                tag_dict(instance.get("Tags")),
                f"{instance['State']['Name']} {instance.get('InstanceType', '')}".strip(),
                now,
            )
        )
    groups = [
        group
        for page in paginate(
            "listing security groups",
            ec2,
            "describe_security_groups",
            Filters=[{"Name": f"tag:{TAG_MANAGED}", "Values": ["true"]}],
        )
        for group in page["SecurityGroups"]
    ]
    for group in groups:
        found.append(_finding("security-group", group["GroupId"], tag_dict(group.get("Tags")), "exists", now))
    profiles = [
        profile
        for page in paginate("listing instance profiles", iam, "list_instance_profiles", PathPrefix=IAM_PATH)
        for profile in page["InstanceProfiles"]
    ]
    for profile in profiles:
        described = aws_call(
            "reading an instance profile", iam.get_instance_profile, InstanceProfileName=profile["InstanceProfileName"]
        )["InstanceProfile"]
        tags = tag_dict(described.get("Tags"))
        if tags.get(TAG_MANAGED) == "true":
            roles = ",".join(r["RoleName"] for r in profile.get("Roles", []))
            found.append(
                _finding("instance-profile", profile["InstanceProfileName"], tags, f"role {roles or '-'}", now)
            )
    for bucket in aws_call("listing buckets", s3.list_buckets).get("Buckets", []):
        name = bucket["Name"]
        if not name.startswith("siliconbench-"):
            continue
        try:
            tag_set = aws_call(f"reading tags of bucket {name}", s3.get_bucket_tagging, Bucket=name)["TagSet"]
        except SiliconbenchError as exc:
            if error_code(exc.__cause__) in ("NoSuchTagSet", "NoSuchBucket"):
                continue
            raise
        tags = tag_dict(tag_set)
        if tags.get(TAG_MANAGED) == "true":
            found.append(_finding("bucket", name, tags, "exists", now))
    return found


def cleanup(
    factory: ClientFactory,
    now: datetime,
    *,
    include_all: bool = False,
    dry_run: bool = False,
    wait_s: float = 300.0,
    poll_s: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Finding]:
    """Terminate expired instances (all with ``include_all``), then delete the expired security
    groups, instance profiles and buckets of runs with no live instance left."""
    findings = find_managed(factory, now)
    due = [f for f in findings if include_all or f.expired]
    ec2 = factory.client("ec2")
    results: dict[tuple[str, str], Finding] = {(f.kind, f.resource_id): f for f in findings}

    def mark(f: Finding, action: str, detail: str = "") -> None:
        results[(f.kind, f.resource_id)] = Finding(**{**f.__dict__, "action": action, "detail": detail})

    instances = [f for f in due if f.kind == "instance"]
    verb = "would " if dry_run else ""
    for f in instances:
        mark(f, f"{verb}terminate")
    still_live: list[str] = []
    if instances and not dry_run:
        ids = [f.resource_id for f in instances]
        with aws_errors(f"terminating {', '.join(ids)}"):
            terminate_instances(ec2, ids)
            still_live = wait_terminated(ec2, ids, wait_s, poll_s, clock, sleep)
    kept_runs = {f.run_id for f in findings if f.kind == "instance" and f not in instances}
    kept_runs |= {f.run_id for f in instances if f.resource_id in still_live}
    for f in due:
        if f.kind == "instance":
            continue
        if f.run_id in kept_runs:
            mark(f, "keep", "the run still has a live instance")
            continue
        if dry_run:
            mark(f, "would delete")
            continue
        try:
            with aws_errors(f"deleting {f.kind} {f.resource_id}"):
                _delete(factory, f, wait_s, poll_s, clock, sleep)
            mark(f, "delete")
        except SiliconbenchError as exc:
            mark(f, "keep", str(exc))
    return sorted(results.values(), key=lambda f: (f.run_id, f.kind, f.resource_id))


def _delete(
    factory: ClientFactory,
    f: Finding,
    wait_s: float,
    poll_s: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> None:
    if f.kind == "security-group":
        delete_security_group(factory.client("ec2"), f.resource_id, wait_s, poll_s, clock, sleep)
    elif f.kind == "instance-profile":
        iam: Any = factory.client("iam")
        roles = aws_call(
            f"reading instance profile {f.resource_id}", iam.get_instance_profile, InstanceProfileName=f.resource_id
        )["InstanceProfile"].get("Roles", [])
        role = roles[0]["RoleName"] if roles else f.resource_id
        problems = delete_instance_profile(iam, CreatedProfile(name=f.resource_id, role_name=role))
        if problems:
            from harness.errors import CloudError

            raise CloudError("; ".join(problems))
    elif f.kind == "bucket":
        delete_bucket(factory.client("s3"), f.resource_id)
