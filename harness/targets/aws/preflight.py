"""Is this account and region ready for the run? Answered in seconds, by reading only.

``siliconbench aws preflight`` prints these checks; ``run --target aws`` does them first and stops
before creating anything when one fails. Each problem is one line that names its fix:

- credentials and region: ``sts:GetCallerIdentity``;
- each instance type exists (``DescribeInstanceTypes``) and is offered in the region's zones
  (``DescribeInstanceTypeOfferings``, location type ``availability-zone``);
- each AMI line's SSM parameter resolves to an image (``ami.resolve_ami``);
- the vCPU quota of each instance family covers the vCPUs the run asks for: new accounts start at 0
  for Inf, Trn, G and P. Quotas are found by *name* in Service Quotas' ``ListServiceQuotas`` for
  service ``ec2``, because the names are what the EC2 documentation publishes ("On-Demand Instance
  quotas" and "Spot Instance quotas" in the EC2 User Guide: "Running On-Demand Inf instances",
  "All Trn Spot Instance Requests", ...). Instances already running count against the same limit;
  that usage is not subtracted here (Service Quotas reports it only through CloudWatch);
- a subnet to launch into: ``--subnet-id``, or the default VPC's default subnets (many accounts have
  none), in a zone where the type is offered;
- an engine run (``--engine``) needs egress unless it is Neuron serving ``s3://`` weights: the
  subnet's route table (or its VPC's main one) must send 0.0.0.0/0 somewhere (``DescribeRouteTables``;
  ``engine_env`` says what each family fetches);
- the bucket (``--bucket``) exists and is reachable (``HeadBucket``);
- the caller's permissions, by IAM policy simulation (``SimulatePrincipalPolicy``) where the caller
  may simulate; where it may not, that check is skipped with a note.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.errors import CloudError, ConfigError, PreflightError
from harness.targets.aws.ami import ami_line, resolve_ami
from harness.targets.aws.iam import caller_policy
from harness.targets.aws.session import ClientFactory, aws_call, error_code

__all__ = ["PreflightReport", "preflight", "quota_names", "require_ready", "simulation_requests"]

_STANDARD = "Standard (A, C, D, H, I, M, R, T, Z)"
#: Instance family prefix -> the quota class in the quotas' names (longest prefixes first).
_QUOTA_CLASSES = (
    ("inf", "Inf"),
    ("trn", "Trn"),
    ("dl", "DL"),
    ("vt", "G and VT"),
    ("g", "G and VT"),
    ("p", "P"),
    ("f", "F"),
    ("x", "X"),
    ("u-", "High Memory"),
)
_DENIED = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess")


def quota_names(instance_type: str, spot: bool) -> tuple[str, ...]:
    """The Service Quotas names that may hold the vCPU limit for this type, most likely first."""
    family = instance_type.split(".", 1)[0]
    quota_class = next((name for prefix, name in _QUOTA_CLASSES if family.startswith(prefix)), _STANDARD)
    if not spot:
        return (f"Running On-Demand {quota_class} instances",)
    names = [f"All {quota_class} Spot Instance Requests"]
    if quota_class == "P":  # older accounts list the P spot limits by generation
        generation = "P5" if family.startswith("p5") else "P4, P3 and P2"
        names.append(f"All {generation} Spot Instance Requests")
    return tuple(names)


@dataclass(frozen=True)
class PreflightReport:
    """What was checked: passed checks, notes (checks that could not be made) and problems."""

    passed: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    #: The zones each instance type is offered in (launches try only those).
    zones: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class _Checks:
    def __init__(self, factory: ClientFactory, options: Any) -> None:
        self.factory, self.options, self.region = factory, options, factory.region
        self.passed: list[str] = []
        self.notes: list[str] = []
        self.problems: list[str] = []
        self.zones: dict[str, tuple[str, ...]] = {}
        self.vcpus: dict[str, int] = {}
        self.archs: dict[str, str] = {}

    def call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        return aws_call(what, fn, **kwargs)

    def pages(self, what: str, client: Any, operation: str, **kwargs: Any) -> list[dict[str, Any]]:
        """Every page of a paginated call, read inside ``aws_call`` (pages are fetched lazily)."""
        paginator = client.get_paginator(operation)
        result: list[dict[str, Any]] = aws_call(what, lambda **k: list(paginator.paginate(**k)), **kwargs)
        return result

    # -- each check -----------------------------------------------------------------------------
    def identity(self) -> str | None:
        try:
            arn = str(self.call("reading the caller identity", self.factory.client("sts").get_caller_identity)["Arn"])
        except ConfigError as exc:
            self.problems.append(str(exc))
            return None
        except CloudError as exc:
            self.problems.append(f"the AWS credentials do not work in {self.region} ({exc}): renew or reconfigure them")
            return None
        self.passed.append(f"credentials: {arn} in {self.region}")
        return arn

    def instance_types(self) -> None:
        types = list(self.options.instance_types)
        ec2 = self.factory.client("ec2")
        try:
            described = self.call("describing instance types", ec2.describe_instance_types, InstanceTypes=types)
        except CloudError as exc:
            if error_code(exc.__cause__) == "InvalidInstanceType":
                self.problems.append(f"{exc}: check --instance-type (is it offered in {self.region}?)")
                return
            raise
        for info in described["InstanceTypes"]:
            name = info["InstanceType"]
            self.vcpus[name] = int(info.get("VCpuInfo", {}).get("DefaultVCpus", 0))
            archs = info.get("ProcessorInfo", {}).get("SupportedArchitectures", [])
            self.archs[name] = "arm64" if "arm64" in archs and "x86_64" not in archs else "x86_64"
        offered: dict[str, list[str]] = {t: [] for t in types}
        pages = self.pages(
            "listing instance type offerings",
            ec2,
            "describe_instance_type_offerings",
            LocationType="availability-zone",
            Filters=[{"Name": "instance-type", "Values": types}],
        )
        for page in pages:
            for offering in page["InstanceTypeOfferings"]:
                offered.setdefault(offering["InstanceType"], []).append(offering["Location"])
        for instance_type in types:
            if instance_type not in self.vcpus:
                self.problems.append(
                    f"instance type {instance_type} does not exist in {self.region}: check --instance-type"
                )
            elif not offered[instance_type]:
                self.problems.append(
                    f"{instance_type} is not offered in any zone of {self.region}: choose a --region that offers it"
                )
            else:
                self.zones[instance_type] = tuple(sorted(offered[instance_type]))
                self.passed.append(f"{instance_type}: offered in {', '.join(self.zones[instance_type])}")

    def amis(self) -> None:
        ssm, ec2 = self.factory.client("ssm"), self.factory.client("ec2")
        done: set[tuple[str, str]] = set()
        for instance_type in self.options.instance_types:
            if instance_type not in self.archs:
                continue
            # A started engine's cells boot the image its engine lives in (``ami.ENGINE_LINES``).
            engine = getattr(self.options, "engine_model", None) is not None
            key = (ami_line(instance_type, engine=engine), self.archs[instance_type])
            if key in done:
                continue
            done.add(key)
            try:
                ami = resolve_ami(ssm, ec2, key[0], key[1], self.options.ami_parameters, self.region)
            except ConfigError as exc:
                self.problems.append(str(exc))
                continue
            self.passed.append(f"AMI for {key[0]} on {key[1]}: {ami.parameter} -> {ami.image_id}")

    def quotas(self) -> None:
        needed: dict[str, int] = {}
        candidates: dict[str, tuple[str, ...]] = {}
        for instance_type, vcpus in self.vcpus.items():
            names = quota_names(instance_type, self.options.spot)
            needed[names[0]] = needed.get(names[0], 0) + vcpus
            candidates[names[0]] = names
        if not needed:
            return
        client = self.factory.client("service-quotas")
        limits: dict[str, tuple[float, str]] = {}
        try:
            pages = self.pages("listing EC2 service quotas", client, "list_service_quotas", ServiceCode="ec2")
            for page in pages:
                for quota in page.get("Quotas", []):
                    limits[str(quota["QuotaName"])] = (float(quota.get("Value", 0.0)), str(quota.get("QuotaCode", "")))
        except CloudError as exc:
            if error_code(exc.__cause__) in _DENIED:
                self.problems.append(
                    "cannot read your EC2 vCPU quotas: allow servicequotas:ListServiceQuotas "
                    "(harness/targets/aws/policies/caller-policy.json)"
                )
            else:
                self.notes.append(f"vCPU quotas not checked: {exc}")
            return
        for name, vcpus in needed.items():
            found = next(((n, *limits[n]) for n in candidates[name] if n in limits), None)
            if found is None:
                self.notes.append(f"no EC2 quota named '{name}' in {self.region}; its vCPU limit was not checked")
                continue
            quota_name, value, code = found
            if value < vcpus:
                self.problems.append(
                    f"request a quota increase for '{quota_name}' ({code}) in {self.region}: the run needs "
                    f"{vcpus} vCPUs, the limit is {value:g} (Service Quotas console, Amazon EC2)"
                )
            else:
                self.passed.append(f"quota '{quota_name}': {value:g} vCPUs covers {vcpus}")

    def subnet(self) -> None:
        ec2 = self.factory.client("ec2")
        if self.options.subnet_id:
            try:
                found = self.call("describing the subnet", ec2.describe_subnets, SubnetIds=[self.options.subnet_id])
            except CloudError as exc:
                if error_code(exc.__cause__) == "InvalidSubnetID.NotFound":
                    found = {"Subnets": []}
                else:
                    raise
            if not found["Subnets"]:
                self.problems.append(
                    f"subnet {self.options.subnet_id} does not exist in {self.region}: check --subnet-id and --region"
                )
                return
            zones = [found["Subnets"][0]["AvailabilityZone"]]
            where = f"subnet {self.options.subnet_id} ({zones[0]})"
            self.egress(ec2, found["Subnets"][0], where)
        else:
            vpcs = self.call(
                "finding the default VPC", ec2.describe_vpcs, Filters=[{"Name": "isDefault", "Values": ["true"]}]
            )["Vpcs"]
            if not vpcs:
                self.problems.append(
                    f"{self.region} has no default VPC: give --subnet-id SUBNET "
                    "(a subnet whose instances reach S3: a NAT gateway or an S3 gateway endpoint)"
                )
                return
            subnets = self.call(
                "finding the default subnets",
                ec2.describe_subnets,
                Filters=[
                    {"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]},
                    {"Name": "default-for-az", "Values": ["true"]},
                ],
            )["Subnets"]
            zones = sorted(s["AvailabilityZone"] for s in subnets)
            where = f"the default VPC {vpcs[0]['VpcId']}"
            if subnets:
                self.egress(ec2, subnets[0], where)
            if not zones:
                self.problems.append(f"{where} has no default subnets: give --subnet-id SUBNET")
                return
        for instance_type, offered in list(self.zones.items()):
            usable = tuple(z for z in offered if z in zones)
            if not usable:
                self.problems.append(
                    f"{instance_type} is not offered in {where}: give --subnet-id with a subnet in "
                    f"{' or '.join(offered)}"
                )
            self.zones[instance_type] = usable
        self.passed.append(f"subnets: {where}")

    def egress(self, ec2: Any, subnet: dict[str, Any], where: str) -> None:
        """An engine run that installs vLLM from PyPI (GPU, CPU) or fetches a hub model needs a
        default route out; only Neuron with ``s3://`` weights runs with an S3 gateway endpoint alone."""
        model = getattr(self.options, "engine_model", None)
        if model is None:
            return
        from harness.targets.aws.engine_env import engine_family, model_from

        _, hub = model_from(model, None)
        needing = [t for t in self.options.instance_types if hub or engine_family(t) in ("gpu", "cpu")]
        if not needing:
            self.passed.append(f"egress: not needed (Neuron images' vLLM, weights from {model})")
            return
        route = default_route(ec2, subnet)
        if route is None:
            why = f"the Hugging Face Hub serves {model}" if hub else "vLLM is installed from PyPI there"
            self.problems.append(
                f"{where} has no route to the internet, and engine runs on {', '.join(needing)} need one ({why}): "
                "give --subnet-id of a subnet with a NAT gateway, or (Neuron only) --model s3://BUCKET/PREFIX/"
            )
        else:
            self.passed.append(f"egress: {where} routes 0.0.0.0/0 to {route}")

    def bucket(self) -> None:
        bucket = self.options.bucket
        if not bucket:
            self.passed.append("bucket: one is created for the run and deleted at its end")
            return
        try:
            self.call(f"checking bucket {bucket}", self.factory.client("s3").head_bucket, Bucket=bucket)
        except CloudError as exc:
            code = error_code(exc.__cause__)
            if code in ("404", "NoSuchBucket", "NotFound"):
                self.problems.append(f"bucket {bucket} does not exist: create it, or leave out --bucket")
            elif code in ("403", *_DENIED):
                self.problems.append(
                    f"no access to bucket {bucket}: allow s3:ListBucket, s3:GetObject and s3:PutObject on it"
                )
            else:
                raise
            return
        self.passed.append(f"bucket: {bucket} is reachable")

    def permissions(self, arn: str) -> None:
        from botocore.parsers import ResponseParserError

        iam = self.factory.client("iam")
        principal = arn
        if ":assumed-role/" in arn:
            role = arn.split(":assumed-role/", 1)[1].split("/", 1)[0]
            try:
                principal = str(self.call("reading your role", iam.get_role, RoleName=role)["Role"]["Arn"])
            except CloudError as exc:
                self.notes.append(f"permissions not simulated: cannot read role {role} ({exc})")
                return
        elif arn.endswith(":root"):
            self.notes.append("permissions not simulated: the account's root user may do everything")
            return
        context = [
            {"ContextKeyName": key, "ContextKeyValues": [value], "ContextKeyType": "string"}
            for key, value in (
                ("aws:RequestTag/siliconbench:managed", "true"),
                ("aws:ResourceTag/siliconbench:managed", "true"),
                ("iam:PassedToService", "ec2.amazonaws.com"),
                ("ec2:CreateAction", "RunInstances"),
            )
        ]
        denied: set[str] = set()
        requests = simulation_requests(self.options)
        try:
            for actions, resources in requests:
                extra = {"ResourceArns": list(resources)} if resources != ("*",) else {}
                pages = self.pages(
                    "simulating your permissions",
                    iam,
                    "simulate_principal_policy",
                    PolicySourceArn=principal,
                    ActionNames=list(actions),
                    ContextEntries=context,
                    **extra,
                )
                for page in pages:
                    for result in page["EvaluationResults"]:
                        if result["EvalDecision"] != "allowed":
                            denied.add(result["EvalActionName"])
        except (CloudError, ResponseParserError) as exc:  # an endpoint without the API answers unparsably
            reason = str(exc).splitlines()[0][:200]
            self.notes.append(f"permissions not simulated ({reason}); they are checked as they are used")
            return
        if denied:
            self.problems.append(
                f"{principal} may not {', '.join(sorted(denied))}: attach "
                "harness/targets/aws/policies/caller-policy.json (or the same permissions)"
            )
        else:
            count = sum(len(actions) for actions, _ in requests)
            self.passed.append(f"permissions: {count} actions allowed for {principal}")


def default_route(ec2: Any, subnet: dict[str, Any]) -> str | None:
    """Where the subnet's route table sends 0.0.0.0/0 (an internet or NAT gateway, ...), or None.

    A subnet without a table of its own uses its VPC's main table (VPC User Guide, "Route tables":
    "Subnets that aren't explicitly associated with any route table are implicitly associated with
    the main route table"); a ``blackhole`` route goes nowhere.
    """
    tables = aws_call(
        "reading the subnet's route table",
        ec2.describe_route_tables,
        Filters=[{"Name": "association.subnet-id", "Values": [subnet["SubnetId"]]}],
    )["RouteTables"]
    if not tables:
        tables = aws_call(
            "reading the VPC's main route table",
            ec2.describe_route_tables,
            Filters=[{"Name": "vpc-id", "Values": [subnet["VpcId"]]}, {"Name": "association.main", "Values": ["true"]}],
        )["RouteTables"]
    for table in tables:
        for route in table.get("Routes", []):
            if route.get("DestinationCidrBlock") != "0.0.0.0/0" or route.get("State") == "blackhole":
                continue
            for key in ("GatewayId", "NatGatewayId", "TransitGatewayId", "NetworkInterfaceId", "InstanceId"):
                target = route.get(key)
                if target and target != "local":
                    return str(target)
    return None


def simulation_requests(options: Any) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """One simulation per statement of the caller policy this run uses: its actions, on its own
    resource patterns. A simulation without resources asks about "*", which a statement scoped to
    ``arn:aws:s3:::siliconbench-*`` does not match, so it would deny what the policy allows."""
    wanted = _actions_needed(options)
    requests = []
    for statement in caller_policy()["Statement"]:
        listed = statement["Action"]
        actions = tuple(a for a in ([listed] if isinstance(listed, str) else listed) if a in wanted)
        if not actions:
            continue
        resources = statement["Resource"]
        requests.append((actions, tuple([resources] if isinstance(resources, str) else resources)))
    return requests


def _actions_needed(options: Any) -> set[str]:
    """The caller policy's actions this run uses: profile creation only when asked for, bucket
    creation only without --bucket, spot prices only with --spot."""
    actions: set[str] = set()
    for statement in caller_policy()["Statement"]:
        sid = statement.get("Sid", "")
        if sid.startswith("Optional") and not options.create_instance_profile:
            continue
        listed = statement["Action"]
        actions.update([listed] if isinstance(listed, str) else listed)
    if options.bucket:
        actions -= {"s3:CreateBucket", "s3:DeleteBucket", "s3:PutBucketPublicAccessBlock", "s3:PutBucketTagging"}
        actions -= {"s3:PutEncryptionConfiguration", "s3:GetBucketTagging", "s3:ListAllMyBuckets"}
    if not options.spot:
        actions.discard("ec2:DescribeSpotPriceHistory")
    actions -= {"iam:SimulatePrincipalPolicy", "iam:GetRole"}  # needed only to simulate, which is optional
    return actions


def preflight(factory: ClientFactory, options: Any) -> PreflightReport:
    """Run every check; problems are collected, not raised (``require_ready`` raises them)."""
    checks = _Checks(factory, options)
    arn = checks.identity()
    if arn is not None:
        for step in (checks.instance_types, checks.amis, checks.quotas, checks.subnet, checks.bucket):
            step()
        checks.permissions(arn)
    return PreflightReport(
        passed=tuple(checks.passed),
        notes=tuple(checks.notes),
        problems=tuple(checks.problems),
        zones=dict(checks.zones),
    )


def require_ready(factory: ClientFactory, options: Any) -> PreflightReport:
    """``preflight``, raising ``PreflightError`` (exit 2, nothing created) when it found problems."""
    report = preflight(factory, options)
    if report.problems:
        raise PreflightError(report.problems)
    return report
