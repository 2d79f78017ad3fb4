"""Least-privilege IAM: the policies as JSON files in the repo, and an instance profile on request.

``policies/caller-policy.json`` is what the person or CI role running siliconbench needs;
``policies/instance-role-policy.json`` is what the instance needs: read and write objects under
``siliconbench/`` in the run's bucket, nothing else (no EC2, no listing). An engine run may also
read its model's token (one SSM parameter or one Secrets Manager secret, ``--model-token-from``) and
its ``s3://`` weights: those ``Optional*`` statements are kept only when the run names them, and
narrowed to exactly that parameter, secret or prefix. A profile created for a run narrows the S3
statements further to the run's own prefix and is deleted when the run ends.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from harness.targets.aws.model_token import TokenSource
from harness.targets.aws.session import aws_call
from harness.targets.aws.tags import tag_list

__all__ = [
    "IAM_PATH",
    "POLICY_DIR",
    "CreatedProfile",
    "caller_policy",
    "create_instance_profile",
    "delete_instance_profile",
    "instance_role_policy",
    "load_policy",
    "run_profile",
]

POLICY_DIR = Path(__file__).parent / "policies"
IAM_PATH = "/siliconbench/"
_BUCKET_PLACEHOLDER = "arn:aws:s3:::BUCKET_NAME/siliconbench/*"


@cache
def _policy_text(name: str) -> str:
    return (POLICY_DIR / name).read_text()


def load_policy(name: str) -> dict[str, Any]:
    """One of the policy documents shipped in ``policies/`` (a fresh copy)."""
    data: dict[str, Any] = json.loads(_policy_text(name))
    return data


def caller_policy() -> dict[str, Any]:
    return load_policy("caller-policy.json")


def instance_role_policy(
    bucket: str,
    prefix: str = "siliconbench/",
    *,
    token: TokenSource | None = None,
    weights: str | None = None,
    region: str = "*",
    account: str = "*",
) -> dict[str, Any]:
    """The instance policy with its resources narrowed to ``bucket``/``prefix``; the model token's
    statement only with ``token`` (that parameter or secret alone), the weights' only with
    ``weights`` (``s3://BUCKET/PREFIX``: list that prefix, read under it)."""
    prefix = prefix.strip("/") + "/"
    text = _policy_text("instance-role-policy.json").replace(_BUCKET_PLACEHOLDER, f"arn:aws:s3:::{bucket}/{prefix}*")
    text = text.replace("REGION", region).replace("ACCOUNT_ID", account)
    keep = set()
    if token is not None:
        keep.add("OptionalReadTheModelTokenParameter" if token.kind == "ssm" else "OptionalReadTheModelTokenSecret")
        text = text.replace("MODEL_TOKEN_PARAMETER", token.name.lstrip("/")).replace("MODEL_TOKEN_SECRET", token.name)
    if weights is not None:
        weights_bucket, _, weights_prefix = weights.removeprefix("s3://").partition("/")
        keep |= {"OptionalListTheModelWeights", "OptionalReadTheModelWeights"}
        text = text.replace("WEIGHTS_BUCKET", weights_bucket).replace("WEIGHTS_PREFIX", weights_prefix.strip("/"))
    data: dict[str, Any] = json.loads(text)
    data["Statement"] = [
        s for s in data["Statement"] if not str(s.get("Sid", "")).startswith("Optional") or s["Sid"] in keep
    ]
    return data


@dataclass(frozen=True)
class CreatedProfile:
    """An instance profile and role this run created (and must delete)."""

    name: str
    role_name: str


def run_profile(run_id: str) -> CreatedProfile:
    """The names of the instance profile and role a run creates: fixed by its run id, so they can be
    recorded for teardown before the first create call is sent."""
    name = f"siliconbench-{run_id}"[:64]
    return CreatedProfile(name=name, role_name=name)


def create_instance_profile(
    iam: Any,
    run_id: str,
    bucket: str,
    prefix: str,
    tags: dict[str, str],
    *,
    token: TokenSource | None = None,
    weights: str | None = None,
    region: str = "*",
    account: str = "*",
) -> CreatedProfile:
    """A role EC2 can assume with only the run prefix's S3 access (and the engine's model token and
    weights when the run names them), wrapped in an instance profile.

    A failure part-way deletes what it made; an interrupt does not (the caller's teardown deletes
    ``run_profile(run_id)``, which it recorded before calling, whatever step was reached)."""
    created = run_profile(run_id)
    name = created.name
    aws_call(
        f"creating role {name}",
        iam.create_role,
        RoleName=name,
        Path=IAM_PATH,
        AssumeRolePolicyDocument=_policy_text("instance-role-trust.json"),
        Description=f"siliconbench run {run_id}: S3 access to its own prefix only",
        Tags=tag_list(tags),
    )
    try:
        aws_call(
            f"attaching the S3 policy to role {name}",
            iam.put_role_policy,
            RoleName=name,
            PolicyName="siliconbench-run-prefix",
            PolicyDocument=json.dumps(
                instance_role_policy(bucket, prefix, token=token, weights=weights, region=region, account=account)
            ),
        )
        aws_call(
            f"creating instance profile {name}",
            iam.create_instance_profile,
            InstanceProfileName=name,
            Path=IAM_PATH,
            Tags=tag_list(tags),
        )
        aws_call(
            f"adding role {name} to its instance profile",
            iam.add_role_to_instance_profile,
            InstanceProfileName=name,
            RoleName=name,
        )
    except Exception:
        delete_instance_profile(iam, created)
        raise
    return created


def delete_instance_profile(iam: Any, created: CreatedProfile) -> list[str]:
    """Undo ``create_instance_profile`` step by step; returns what could not be deleted."""
    from botocore.exceptions import ClientError

    problems: list[str] = []
    steps: tuple[tuple[str, Callable[[], Any]], ...] = (
        (
            "removing the role from",
            lambda: iam.remove_role_from_instance_profile(InstanceProfileName=created.name, RoleName=created.role_name),
        ),
        ("deleting instance profile", lambda: iam.delete_instance_profile(InstanceProfileName=created.name)),
        (
            "deleting the inline policy of",
            lambda: iam.delete_role_policy(RoleName=created.role_name, PolicyName="siliconbench-run-prefix"),
        ),
        ("deleting role", lambda: iam.delete_role(RoleName=created.role_name)),
    )
    for what, step in steps:
        try:
            step()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code != "NoSuchEntity":
                problems.append(f"{what} {created.name}: {code}")
    return problems
