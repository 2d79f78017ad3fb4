"""SIGINT at every step of ``run --target aws``'s set-up leaves nothing behind.

The real CLI runs in a subprocess against moto on 127.0.0.1 (``cues.CueingMoto``), which sends the
subprocess a real SIGINT just before, or just after, each call that creates something: the bucket
and each of its settings, the role, its policy, the instance profile, the role's place in it, the
security group, the bundle, the instance. Afterwards every kind of resource is listed in moto and
must be gone (instances: terminated), and the command must have ended as an interrupt does (130).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli import REPO_ROOT, cli_command, cli_env
from tests.harness.targets.aws.conftest import REGION
from tests.harness.targets.aws.cues import Cue, CueingMoto

pytestmark = pytest.mark.slow

#: The call that creates each kind of resource, in the order the set-up makes them: a signal just
#: before and just after each.
CREATES = ("CreateBucket", "CreateRole", "CreateInstanceProfile", "CreateSecurityGroup", "RunInstances")
#: The calls that complete a resource after its create (its settings, its policy, its role, the
#: bundle it holds): a signal as each is sent.
COMPLETES = (
    "PutBucket:publicAccessBlock",
    "PutBucket:encryption",
    "PutBucket:tagging",
    "PutRolePolicy",
    "AddRoleToInstanceProfile",
    "PutObject",
)
STEPS = [(step, when) for step in CREATES for when in ("before", "after")] + [(step, "before") for step in COMPLETES]


@pytest.fixture(scope="module")
def cueing_moto() -> Iterator[CueingMoto]:
    """A moto server of this module's own; moto's state is per process, so the session server's
    fixtures (``public_amis``, ``factory``) seed and read the same backends."""
    server = CueingMoto()
    server.start()
    yield server
    server.stop()


def _leftovers(factory: Any) -> dict[str, list[str]]:
    """What of each kind a run could create still exists (instances: not terminated)."""
    ec2, s3, iam = factory.client("ec2"), factory.client("s3"), factory.client("iam")
    instances = [
        f"{i['InstanceId']} {i['State']['Name']}"
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] not in ("shutting-down", "terminated")
    ]
    groups = [g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"] if g["GroupName"] != "default"]
    return {
        "buckets": [b["Name"] for b in s3.list_buckets().get("Buckets", [])],
        "roles": [r["RoleName"] for r in iam.list_roles()["Roles"]],
        "instance profiles": [p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"]],
        "security groups": groups,
        "instances": instances,
    }


@pytest.mark.parametrize(("step", "when"), STEPS)
def test_sigint_at_a_set_up_step_leaves_no_resource_of_any_kind(
    cueing_moto: CueingMoto,
    factory: Any,
    public_amis: dict[str, str],
    aws_env: dict[str, str],
    tmp_path: Path,
    step: str,
    when: str,
) -> None:
    host, port = cueing_moto.get_host_and_port()
    assert _leftovers(factory) == {k: [] for k in _leftovers(factory)}, "moto starts clean"
    cue = Cue(step, when)
    cueing_moto.cue = cue
    env = cli_env(
        {**aws_env, "AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_EC2_METADATA_DISABLED": "true"},
        drop_prefix="AWS_",
    )
    args = (
        "run", "--target", "aws", "--instance-type", "c7i.xlarge", "--region", REGION,
        "--create-instance-profile", "--backend", "cpu", "--workload", "mlp", "--preset", "tiny",
        "--dtype", "fp32", "--max-time", "0.05", "--output", str(tmp_path / "results"),
    )  # fmt: skip
    runner = subprocess.Popen(
        cli_command(*args), cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    cue.pid = runner.pid
    try:
        stdout, stderr = runner.communicate(timeout=240)
    finally:
        cueing_moto.cue = None
        if runner.poll() is None:
            runner.kill()
    assert cue.fired.is_set(), f"the set-up never called {step}; it called {cue.seen}\n{stderr}"
    assert runner.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr, stderr
    assert _leftovers(factory) == {
        "buckets": [],
        "roles": [],
        "instance profiles": [],
        "security groups": [],
        "instances": [],
    }, stderr
