"""Command-line glue for the aws target: options on ``run``, ``siliconbench aws plan|preflight|cleanup`` and the
hidden on-instance ``siliconbench agent``. Like ``harness.cli.main``, this is the only aws module that
prints; everything it calls raises typed errors instead.

Importing this module imports neither boto3 nor torch, so ``siliconbench --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.cli.argtypes import positive_float
from harness.cli.exits import EXIT_CELL_FAILED, EXIT_OK, EXIT_USAGE
from harness.errors import ConfigError, PreflightError

__all__ = [
    "AWS_ONLY_FLAGS",
    "add_commands",
    "add_run_options",
    "aws_target",
    "cmd_agent",
    "cmd_aws",
    "print_plan",
    "print_preflight_problems",
]


#: Options of ``run`` that only mean something with ``--target aws``.
AWS_ONLY_FLAGS = (
    "instance_type",
    "region",
    "bucket",
    "instance_profile",
    "ami_parameter",
    "wheel",
    "subnet_id",
    "model_token_from",
    "spot",
    "create_instance_profile",
    "dry_run",
)


def add_run_options(run: argparse.ArgumentParser) -> None:
    """The ``--target`` options of ``siliconbench run``."""
    group = run.add_argument_group(
        "where to run",
        "--target aws launches one EC2 instance per --instance-type, at once, and writes one run file per instance",
    )
    group.add_argument("--target", choices=("local", "aws"), default="local", help="where to measure (default local)")
    group.add_argument(
        "--instance-type",
        action="append",
        metavar="TYPE",
        help="EC2 instance type for --target aws, e.g. inf2.xlarge (repeatable)",
    )
    group.add_argument("--region", metavar="REGION", help="AWS region (default: your AWS configuration's)")
    group.add_argument("--spot", action="store_true", help="launch spot instances instead of on-demand")
    group.add_argument(
        "--bucket", metavar="NAME", help="S3 bucket for the handover (default: a bucket per run, deleted at the end)"
    )
    group.add_argument("--instance-profile", metavar="NAME", help="instance profile the instances run as")
    group.add_argument(
        "--create-instance-profile",
        action="store_true",
        help="create a least-privilege instance profile for this run, deleted at the end",
    )
    group.add_argument(
        "--max-hours",
        type=positive_float,
        default=2.0,
        metavar="H",
        help="hard limit per instance; its watchdog powers it off soon after (default 2)",
    )
    group.add_argument(
        "--ami-parameter",
        action="append",
        metavar="LINE=NAME",
        help="SSM parameter naming the AMI for neuron-trace (inf2, trn1), neuron-native (trn2, trn3), "
        "neuron (both), gpu or cpu instances (AWS renames them)",
    )
    group.add_argument(
        "--wheel",
        metavar="FILE.whl",
        help="ship this siliconbench wheel instead of one built from the running siliconbench",
    )
    group.add_argument(
        "--subnet-id",
        metavar="SUBNET",
        help="launch into this subnet (default: the default VPC's); it must reach S3 (NAT or gateway endpoint)",
    )
    group.add_argument(
        "--model-token-from",
        metavar="ssm:NAME|secretsmanager:NAME",
        help="with --engine: the instance reads a gated model's Hugging Face token from this SSM parameter "
        "or Secrets Manager secret (never put in user data); the instance role gets that one read",
    )
    group.add_argument(
        "--dry-run", action="store_true", help="with --target aws: print the plan and its cost, create nothing"
    )


def add_commands(sub: Any, run_parser: argparse.ArgumentParser) -> None:
    """``siliconbench aws plan|preflight|cleanup`` and the hidden ``siliconbench agent``."""
    aws = sub.add_parser(
        "aws",
        help="plan AWS runs and clean up what they left behind",
        description="Plan runs on AWS, and find and remove what siliconbench tagged there.",
    )
    aws_sub = aws.add_subparsers(dest="aws_command", required=True, parser_class=type(aws), metavar="ACTION")
    aws_sub.add_parser(
        "plan",
        parents=[run_parser],
        conflict_handler="resolve",
        help="print what 'run --target aws' would launch and its estimated cost",
        description="A dry run of 'siliconbench run --target aws' with the same options: "
        "instances, AMIs, cells and estimated cost. Creates nothing.",
    )
    aws_sub.add_parser(
        "preflight",
        parents=[run_parser],
        conflict_handler="resolve",
        help="check in seconds that 'run --target aws' with these options can launch",
        description="Check credentials and region, AMI parameters, instance type offerings, vCPU quotas, "
        "the subnet, the bucket and your permissions, as 'run --target aws' does first. Creates nothing; "
        "each problem is one line naming its fix, and the exit status is 2 if there is any.",
    )
    # No set_defaults here: the actions are shared with 'run', and set_defaults would change its defaults.
    clean = aws_sub.add_parser(
        "cleanup",
        help="terminate expired siliconbench instances and delete their resources",
        description="Find every instance, security group, instance profile and bucket "
        "tagged siliconbench:managed=true and remove the expired ones.",
    )
    clean.add_argument("--all", action="store_true", help="remove every tagged resource, expired or not")
    clean.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")
    clean.add_argument("--region", metavar="REGION", help="AWS region (default: your AWS configuration's)")
    agent = sub.add_parser("agent", description="On-instance entry point: runs the job in S3 (used by the bootstrap).")
    agent.add_argument("--bucket", required=True)
    agent.add_argument("--prefix", required=True)
    agent.add_argument("--region")
    agent.add_argument("--workdir", default="results", help="where the run file is written on the instance")
    agent.add_argument("--heartbeat-s", type=positive_float, default=None, help="seconds between heartbeats")
    agent.add_argument("--bootstrap-log", help="upload this log before reporting the end")
    agent.add_argument("--upload", metavar="NAME=FILE", help="only upload FILE as NAME into the prefix, then exit")


def _suite_names_backends(path: str | None) -> bool:
    if not path:
        return False
    with Path(path).open("rb") as handle:
        data = tomllib.load(handle)
    nested = data.get("suite")
    return "backends" in data or (isinstance(nested, dict) and "backends" in nested)


def options_from_args(args: argparse.Namespace, suite: Any = None) -> Any:
    from harness.targets.aws.ami import parse_parameter_overrides
    from harness.targets.aws.plan import AwsOptions

    return AwsOptions(
        instance_types=tuple(args.instance_type or ()),
        region=args.region,
        spot=bool(args.spot),
        bucket=args.bucket,
        instance_profile=args.instance_profile,
        create_instance_profile=bool(args.create_instance_profile),
        max_hours=float(args.max_hours),
        ami_parameters=parse_parameter_overrides(args.ami_parameter),
        wheel=Path(args.wheel) if args.wheel else None,
        subnet_id=args.subnet_id or None,  # an unset CI variable gives ""
        model_token_from=getattr(args, "model_token_from", None) or None,
        engine_model=_engine_model(args, suite),
        auto_backends=args.backend is None and not _suite_names_backends(args.suite),
    )


def _engine_model(args: argparse.Namespace, suite: Any) -> str | None:
    """The model of a started engine, from the suite (file and flags) or the flags alone."""
    if suite is not None:
        return str(suite.engine.model) if suite.engine.engine and suite.engine.model else None
    return getattr(args, "model", None) if getattr(args, "engine", None) else None


def print_plan(suite: Any, options: Any) -> None:
    from harness.targets.aws.plan import plan_instances, render_plan
    from harness.targets.aws.session import ClientFactory

    factory = None
    offline = None
    try:
        factory = ClientFactory(options.region)
        if not factory.has_credentials():
            factory, offline = None, "no AWS credentials"
    except ConfigError as exc:
        offline = str(exc)
    plans = plan_instances(suite, options, factory)
    region = factory.region if factory is not None else (options.region or "us-east-1")
    print(render_plan(plans, options, region, offline))


def aws_target(args: argparse.Namespace, suite: Any) -> Any:
    """The ``AwsTarget`` of ``run --target aws``, or None after printing the plan for ``--dry-run``."""
    from harness.targets.aws.orchestrator import AwsTarget

    if getattr(args, "price_per_hour", None) is not None:
        raise ConfigError(
            "--price-per-hour is for local runs; aws runs are priced from the price catalog "
            "(or EC2's spot prices with --spot)"
        )
    options = options_from_args(args, suite)
    if args.dry_run:
        print_plan(suite, options)
        return None
    return AwsTarget(options, progress=_printer(args.quiet))


def _printer(quiet: bool) -> Any:
    seen: dict[str, tuple[str, str]] = {}

    def show(event: Any) -> None:
        key = (event.state, event.detail)
        if quiet or seen.get(event.instance_type) == key:
            return
        seen[event.instance_type] = key
        where = f" {event.instance_id}" if event.instance_id else ""
        detail = f": {event.detail}" if event.detail else ""
        print(f"[{event.instance_type}{where}] {event.state}{detail}", file=sys.stderr, flush=True)

    return show


def cmd_aws(args: argparse.Namespace) -> int:
    """``siliconbench aws plan|preflight|cleanup``."""
    if args.aws_command == "plan":
        from harness.cli.suite import suite_from_args

        suite = suite_from_args(args)
        print_plan(suite, options_from_args(args, suite))
        return EXIT_OK
    if args.aws_command == "preflight":
        return _preflight(args)
    from tabulate import tabulate

    from harness.targets.aws.cleanup import cleanup
    from harness.targets.aws.session import ClientFactory

    findings = cleanup(ClientFactory(args.region), datetime.now(UTC), include_all=args.all, dry_run=args.dry_run)
    if not findings:
        print("no siliconbench resources found")
        return EXIT_OK
    rows = [
        [f.kind, f.resource_id, f.run_id, f.state, f.expires_at, "yes" if f.expired else "no", f.action, f.detail]
        for f in findings
    ]
    print(tabulate(rows, headers=["kind", "id", "run id", "state", "expires", "expired", "action", "detail"]))
    stuck = [
        f
        for f in findings
        if (args.all or f.expired) and f.action == "keep" and f.detail and "live instance" not in f.detail
    ]
    return EXIT_CELL_FAILED if stuck else EXIT_OK


def print_preflight_problems(exc: PreflightError) -> int:
    for problem in exc.problems:
        print(f"siliconbench: preflight: {problem}", file=sys.stderr)
    print("siliconbench: preflight failed; nothing was created", file=sys.stderr)
    return EXIT_USAGE


def _preflight(args: argparse.Namespace) -> int:
    """``siliconbench aws preflight``: the checks ``run --target aws`` does first, and nothing else."""
    from harness.targets.aws.preflight import require_ready
    from harness.targets.aws.session import ClientFactory

    args.target = "aws"
    options = options_from_args(args)
    options.require_instance_profile()
    try:
        report = require_ready(ClientFactory(options.region), options)
    except PreflightError as exc:
        return print_preflight_problems(exc)
    for line in report.passed:
        print(f"ok: {line}")
    for line in report.notes:
        print(f"note: {line}")
    return EXIT_OK


def cmd_agent(args: argparse.Namespace) -> int:
    """``siliconbench agent``: run the job in S3 on this machine (the instance side)."""
    from harness.run.progress import progress_printer
    from harness.targets.aws.agent import run_agent
    from harness.targets.aws.session import ClientFactory
    from harness.targets.aws.storage import RunStore

    factory = ClientFactory(args.region)
    store = RunStore(factory.client("s3"), args.bucket, args.prefix)
    if args.upload:
        name, sep, path = args.upload.partition("=")
        if not sep or not name or "/" in name:
            raise ConfigError(f"--upload {args.upload!r} must look like NAME=FILE")
        store.put_file(name, Path(path))
        return EXIT_OK
    log = Path(args.bootstrap_log) if args.bootstrap_log else None
    return run_agent(
        store,
        Path(args.workdir),
        heartbeat_s=args.heartbeat_s,
        progress=progress_printer(False),
        bootstrap_log=log,
        factory=factory,
    )
