"""Check recorded AWS calls against the least-privilege policies shipped in the repo."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: API operations whose IAM action has another name, or that need more than one action.
_ACTIONS: dict[str, tuple[str, ...]] = {
    "s3:HeadBucket": ("s3:ListBucket",),
    "s3:ListObjectsV2": ("s3:ListBucket",),
    "s3:DeleteObjects": ("s3:DeleteObject",),
    "s3:PutBucketEncryption": ("s3:PutEncryptionConfiguration",),
    "s3:PutPublicAccessBlock": ("s3:PutBucketPublicAccessBlock",),
    "s3:ListBuckets": ("s3:ListAllMyBuckets",),
    "sts:GetCallerIdentity": (),  # needs no permission
    "ec2:RunInstances": ("ec2:RunInstances", "ec2:CreateTags", "iam:PassRole"),  # tags and a profile at launch
    "ec2:CreateSecurityGroup": ("ec2:CreateSecurityGroup", "ec2:CreateTags"),
    "iam:CreateRole": ("iam:CreateRole", "iam:TagRole"),
    "iam:CreateInstanceProfile": ("iam:CreateInstanceProfile", "iam:TagInstanceProfile"),
}


def record_calls(factory: Any, services: Iterable[str] = ("ec2", "s3", "ssm", "iam", "sts")) -> list[str]:
    """Every API operation the factory's clients make from now on, as 'service:Operation'."""
    calls: list[str] = []

    def hook(model: Any, **_: Any) -> None:
        calls.append(f"{model.service_model.endpoint_prefix}:{model.name}")

    for service in services:
        # before-parameter-build fires for every call, before any before-call hook can answer it
        factory.client(service).meta.events.register("before-parameter-build", hook)
    return calls


def actions_needed(calls: Iterable[str]) -> set[str]:
    needed: set[str] = set()
    for call in calls:
        needed.update(_ACTIONS.get(call, (call,)))
    return needed


def allowed_actions(policy: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for statement in policy["Statement"]:
        actions = statement["Action"]
        found.update([actions] if isinstance(actions, str) else actions)
    return found


def assert_policy_allows(policy: dict[str, Any], calls: Iterable[str]) -> None:
    calls = list(calls)
    assert calls, "no AWS calls were recorded"
    missing = actions_needed(calls) - allowed_actions(policy)
    assert not missing, f"the policy lacks {sorted(missing)}"
