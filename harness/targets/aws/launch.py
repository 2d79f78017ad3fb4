"""Launch and end instances: the only module that calls RunInstances or TerminateInstances.

Every instance is launched hardened the same way: IMDSv2 required (no token-less metadata reads),
an encrypted root volume deleted with the instance, a security group with no inbound rules (nothing
listens; the instance only reaches out to S3, and on the CPU image to PyTorch's index), power-off
meaning terminate, an instance profile for its S3 folder, and the run's tags on the instance, its
volume and the group.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.errors import CloudError
from harness.targets.aws.ami import AmiChoice, root_volume_floor
from harness.targets.aws.session import aws_call, error_code, paginate
from harness.targets.aws.tags import TAG_MANAGED, TAG_RUN_ID, tag_list

__all__ = [
    "ACCOUNT_LIMIT_CODES",
    "CAPACITY_CODES",
    "LaunchSpec",
    "Subnet",
    "create_security_group",
    "default_subnets",
    "delete_security_group",
    "describe_instance",
    "find_run_instances",
    "find_run_security_groups",
    "given_subnet",
    "launch_instance",
    "terminate_instances",
    "wait_terminated",
]

#: Errors that mean "not here, maybe in another zone": try the next default subnet.
CAPACITY_CODES = frozenset({"InsufficientInstanceCapacity", "Unsupported", "InsufficientCapacity"})
#: Errors that no other zone will fix: a quota to raise.
ACCOUNT_LIMIT_CODES = frozenset({"InstanceLimitExceeded", "VcpuLimitExceeded", "MaxSpotInstanceCountExceeded"})
LIVE_STATES = ["pending", "running", "stopping", "stopped", "shutting-down"]


@dataclass(frozen=True)
class Subnet:
    subnet_id: str
    availability_zone: str


@dataclass(frozen=True)
class LaunchSpec:
    """One instance to launch."""

    run_id: str
    instance_type: str
    kind: str
    ami: AmiChoice
    user_data: str
    security_group_id: str
    instance_profile: str
    tags: dict[str, str]
    spot: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def root_volume_gb(self) -> int:
        return max(self.ami.root_volume_gb, root_volume_floor(self.instance_type))


def default_subnets(ec2: Any) -> tuple[str, list[Subnet]]:
    """The default VPC and its default subnet in each zone (launches need outbound internet)."""
    vpcs = aws_call("finding the default VPC", ec2.describe_vpcs, Filters=[{"Name": "isDefault", "Values": ["true"]}])[
        "Vpcs"
    ]
    if not vpcs:
        raise CloudError(
            "this region has no default VPC: give --subnet-id SUBNET (a subnet whose instances reach S3, "
            "through a NAT gateway or an S3 gateway endpoint)"
        )
    vpc_id = vpcs[0]["VpcId"]
    subnets = aws_call(
        "finding the default subnets",
        ec2.describe_subnets,
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "default-for-az", "Values": ["true"]}],
    )["Subnets"]
    if not subnets:
        raise CloudError(f"default VPC {vpc_id} has no default subnets to launch into: give --subnet-id SUBNET")
    found = sorted((Subnet(s["SubnetId"], s["AvailabilityZone"]) for s in subnets), key=lambda s: s.availability_zone)
    return vpc_id, found


def given_subnet(ec2: Any, subnet_id: str) -> tuple[str, list[Subnet]]:
    """The VPC and zone of the subnet the user named with --subnet-id."""
    from botocore.exceptions import ClientError

    try:
        found = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
    except ClientError as exc:
        if error_code(exc) == "InvalidSubnetID.NotFound":
            found = []
        else:
            raise CloudError(f"describing subnet {subnet_id} failed: {error_code(exc)}") from exc
    if not found:
        raise CloudError(f"subnet {subnet_id} does not exist in this region: check --subnet-id and --region")
    subnet = found[0]
    return subnet["VpcId"], [Subnet(subnet["SubnetId"], subnet["AvailabilityZone"])]


def create_security_group(ec2: Any, vpc_id: str, run_id: str, tags: dict[str, str]) -> str:
    """A group with no inbound rules (the default outbound rule stays: pip and S3 need it)."""
    response = aws_call(
        "creating the security group",
        ec2.create_security_group,
        GroupName=f"siliconbench-{run_id}",
        VpcId=vpc_id,
        Description=f"siliconbench run {run_id}: no inbound rules",
        TagSpecifications=[{"ResourceType": "security-group", "Tags": tag_list(tags)}],
    )
    group_id: str = response["GroupId"]
    return group_id


def _client_token(spec: LaunchSpec, subnet: Subnet) -> str:
    """Idempotency token: botocore's retries of one attempt can never launch a second instance."""
    return hashlib.sha256(f"{spec.run_id}/{spec.instance_type}/{subnet.subnet_id}".encode()).hexdigest()[:48]


def _run_instances_args(spec: LaunchSpec, subnet: Subnet) -> dict[str, Any]:
    tags = tag_list(spec.tags)
    args: dict[str, Any] = {
        "ImageId": spec.ami.image_id,
        "InstanceType": spec.instance_type,
        "MinCount": 1,
        "MaxCount": 1,
        "SubnetId": subnet.subnet_id,
        "SecurityGroupIds": [spec.security_group_id],
        "IamInstanceProfile": {"Name": spec.instance_profile},
        "UserData": spec.user_data,
        "InstanceInitiatedShutdownBehavior": "terminate",
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 1},
        "BlockDeviceMappings": [
            {
                "DeviceName": spec.ami.root_device_name,
                "Ebs": {
                    "VolumeSize": spec.root_volume_gb(),
                    "VolumeType": "gp3",
                    "Encrypted": True,
                    "DeleteOnTermination": True,
                },
            }
        ],
        "TagSpecifications": [{"ResourceType": "instance", "Tags": tags}, {"ResourceType": "volume", "Tags": tags}],
        "ClientToken": _client_token(spec, subnet),
    }
    if spec.spot:
        args["InstanceMarketOptions"] = {
            "MarketType": "spot",
            "SpotOptions": {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"},
        }
    args.update(spec.extra)
    return args


def launch_instance(
    ec2: Any,
    spec: LaunchSpec,
    subnets: Sequence[Subnet],
    *,
    profile_wait_s: float = 90.0,
    retry_s: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Launch one instance, trying each zone in turn while EC2 reports no capacity there.

    A freshly created instance profile takes a few seconds to become usable by EC2; that one error
    is retried for up to ``profile_wait_s``. Anything else is a one-line CloudError.
    """
    from botocore.exceptions import ClientError

    tried: list[str] = []
    last = ""
    for subnet in subnets:
        waited = 0.0
        while True:
            try:
                response = ec2.run_instances(**_run_instances_args(spec, subnet))
                instance: dict[str, Any] = response["Instances"][0]
                return instance
            except ClientError as exc:
                code = error_code(exc)
                message = str(exc.response.get("Error", {}).get("Message", "")).strip()
                if (
                    code == "InvalidParameterValue"
                    and "iaminstanceprofile" in message.lower().replace(" ", "")
                    and waited < profile_wait_s
                ):
                    sleep(retry_s)
                    waited += retry_s
                    continue
                if code in CAPACITY_CODES:
                    tried.append(subnet.availability_zone)
                    last = f"{code}: {message}"
                    break
                if code in ACCOUNT_LIMIT_CODES:
                    raise CloudError(
                        f"launching {spec.instance_type} failed: {code}: {message} (ask AWS for a higher quota)"
                    ) from exc
                raise CloudError(f"launching {spec.instance_type} failed: {code}: {message}") from exc
    raise CloudError(f"no capacity for {spec.instance_type} in {', '.join(tried) or 'any zone'}; last error {last}")


def describe_instance(ec2: Any, instance_id: str) -> dict[str, Any] | None:
    """The instance as EC2 describes it, or None if EC2 no longer knows it."""
    from botocore.exceptions import ClientError

    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ClientError as exc:
        if error_code(exc) == "InvalidInstanceID.NotFound":
            return None
        raise CloudError(f"describing {instance_id} failed: {error_code(exc)}") from exc
    for reservation in reservations:
        for instance in reservation["Instances"]:
            found: dict[str, Any] = instance
            return found
    return None


def find_run_instances(
    ec2: Any, run_id: str | None = None, states: Sequence[str] = LIVE_STATES
) -> list[dict[str, Any]]:
    """Every instance this tool tagged (for one run, or all) in the given states."""
    filters = [
        {"Name": f"tag:{TAG_MANAGED}", "Values": ["true"]},
        {"Name": "instance-state-name", "Values": list(states)},
    ]
    if run_id:
        filters.append({"Name": f"tag:{TAG_RUN_ID}", "Values": [run_id]})
    found: list[dict[str, Any]] = []
    for page in paginate("listing siliconbench instances", ec2, "describe_instances", Filters=filters):
        for reservation in page["Reservations"]:
            found.extend(reservation["Instances"])
    return found


def find_run_security_groups(ec2: Any, run_id: str) -> list[str]:
    """The ids of the security groups tagged with ``run_id`` (tagged as they are created, so a
    group whose create call was interrupted is found here)."""
    filters = [{"Name": f"tag:{TAG_MANAGED}", "Values": ["true"]}, {"Name": f"tag:{TAG_RUN_ID}", "Values": [run_id]}]
    pages = paginate("listing the run's security groups", ec2, "describe_security_groups", Filters=filters)
    return [group["GroupId"] for page in pages for group in page["SecurityGroups"]]


def terminate_instances(ec2: Any, instance_ids: Sequence[str]) -> None:
    """Terminate; instances EC2 no longer knows count as gone."""
    from botocore.exceptions import ClientError

    ids = [i for i in instance_ids if i]
    if not ids:
        return
    try:
        ec2.terminate_instances(InstanceIds=ids)
    except ClientError as exc:
        if error_code(exc) != "InvalidInstanceID.NotFound":
            raise CloudError(f"terminating {', '.join(ids)} failed: {error_code(exc)}") from exc
        for one in ids:  # one unknown id fails the batch: retry the rest one by one
            try:
                ec2.terminate_instances(InstanceIds=[one])
            except ClientError as inner:
                if error_code(inner) != "InvalidInstanceID.NotFound":
                    raise CloudError(f"terminating {one} failed: {error_code(inner)}") from inner


def wait_terminated(
    ec2: Any,
    instance_ids: Sequence[str],
    timeout_s: float,
    poll_s: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Wait until every instance is terminated; returns the ids that were not in time."""
    pending = [i for i in instance_ids if i]
    deadline = clock() + timeout_s
    while pending:
        still = []
        for instance_id in pending:
            described = describe_instance(ec2, instance_id)
            if described is not None and described["State"]["Name"] != "terminated":
                still.append(instance_id)
        pending = still
        if not pending or clock() >= deadline:
            break
        sleep(poll_s)
    return pending


def delete_security_group(
    ec2: Any,
    group_id: str,
    timeout_s: float,
    poll_s: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Delete the group, retrying while terminating instances still hold it."""
    from botocore.exceptions import ClientError

    deadline = clock() + timeout_s
    while True:
        try:
            ec2.delete_security_group(GroupId=group_id)
            return
        except ClientError as exc:
            code = error_code(exc)
            if code == "InvalidGroup.NotFound":
                return
            if code != "DependencyViolation" or clock() >= deadline:
                raise CloudError(f"deleting security group {group_id} failed: {code}") from exc
        sleep(poll_s)
