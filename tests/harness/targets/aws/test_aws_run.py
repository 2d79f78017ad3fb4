"""The aws target end to end against moto: the launcher runs for real, the fleet plays the instances
by running their real user data (and so the real agent), and the run files travel through S3.

After every test, faults included: no instance the run created is left running (asked of moto),
and every run file an instance produced is on local disk.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from harness.errors import CloudError
from harness.report.cost import PriceResolver
from harness.run.plan import Suite
from harness.runfile.files import load_run
from harness.targets.aws.iam import caller_policy
from harness.targets.aws.orchestrator import AwsTarget, Event, InterruptedRun, Timing
from harness.targets.aws.plan import AwsOptions
from harness.targets.aws.tags import TAG_RUN_ID
from tests.harness.targets.aws.conftest import REGION
from tests.harness.targets.aws.policy import assert_policy_allows, record_calls

FAST = Timing(
    poll_s=0.2,
    running_timeout_s=10,
    bootstrap_timeout_s=60,
    stale_timeout_s=60,
    heartbeat_s=0.5,
    teardown_timeout_s=20,
    teardown_poll_s=0.05,
    profile_wait_s=1,
    profile_retry_s=0.05,
)

pytestmark = pytest.mark.slow


def tiny_suite(output: Path, *workloads: str) -> Suite:
    return Suite(
        workloads=workloads or ("mlp",),
        preset="tiny",
        backends=("cpu",),
        dtypes=("fp32",),
        max_time=0.05,
        min_samples=3,
        isolate=False,
        output=str(output),
    )


def run_instances_of(ec2: Any, run_id: str) -> list[dict[str, Any]]:
    reservations = ec2.describe_instances(Filters=[{"Name": f"tag:{TAG_RUN_ID}", "Values": [run_id]}])["Reservations"]
    return [i for r in reservations for i in r["Instances"]]


def assert_nothing_left_running(factory: Any, run_id: str | None) -> None:
    assert run_id, "the run never got an id"
    ec2 = factory.client("ec2")
    states = {i["InstanceId"]: i["State"]["Name"] for i in run_instances_of(ec2, run_id)}
    assert all(state in ("shutting-down", "terminated") for state in states.values()), states
    groups = ec2.describe_security_groups(Filters=[{"Name": f"tag:{TAG_RUN_ID}", "Values": [run_id]}])
    assert groups["SecurityGroups"] == [], "the run's security group was left behind"


def test_happy_path_two_instance_types(factory, public_amis, instance_profile, fleet, tmp_path) -> None:  # type: ignore[no-untyped-def]
    events: list[Event] = []
    calls = record_calls(factory)
    options = AwsOptions(
        instance_types=("inf2.xlarge", "c7i.xlarge"), region=REGION, instance_profile=instance_profile, max_hours=1
    )
    target = AwsTarget(options, factory=factory, timing=FAST, progress=events.append)
    outcomes = target.run(tiny_suite(tmp_path / "results"))
    calls = list(calls)  # what the launcher called; the checks below make calls of their own

    assert [o.label for o in outcomes] == ["inf2.xlarge", "c7i.xlarge"]
    assert [o.status for o in outcomes] == ["complete", "complete"], [o.error for o in outcomes]
    assert target.teardown_problems == []
    assert_nothing_left_running(factory, target.run_id)
    for outcome, instance_type in zip(outcomes, ("inf2.xlarge", "c7i.xlarge"), strict=True):
        assert outcome.run_file is not None and outcome.run_file.parent == tmp_path / "results"
        run = load_run(outcome.run_file)
        assert run.status == "complete"
        assert [c.status for c in run.cells] == ["ok"]
        t = run.target
        assert t.kind == "aws" and t.instance_type == instance_type and t.region == REGION
        assert t.purchase_option == "on-demand" and t.price_per_hour > 0
        assert "aws.amazon.com/ec2/pricing/on-demand" in t.price_source and len(t.price_as_of) == 10
        price, note = PriceResolver().for_run(run)  # the reports price the run from what it carries
        assert price is not None and (price.usd_per_hour, price.as_of) == (t.price_per_hour, t.price_as_of)
        assert note == "recorded in the run file's target"
        assert (
            t.instance_id.startswith("i-")
            and t.ami_id == public_amis["neuron-trace/x86_64" if instance_type.startswith("inf") else "cpu/x86_64"]
        )
    states = [e.state for e in events if e.instance_type == "inf2.xlarge"]
    for expected in ("launching", "pending", "running", "complete"):
        assert expected in states, states
    assert any(e.detail.startswith("cells 1/1") for e in events)
    # The instances ran their real bootstrap: the watchdog armed first, then the shipped bundle
    # installed with no index and torch pinned; only the CPU image asked an index, for PyTorch.
    assert len(fleet.played) == 2
    for played in fleet.played.values():
        assert played.shutdown_calls[0].startswith("-h +70 "), played.shutdown_calls
        *first, install = played.pip_calls
        assert "--no-index" in install.split() and "-c" in install.split(), install
        assert install.endswith("/opt/bundle/wheels/siliconbench-0.1.0-py3-none-any.whl[aws,torch]"), install
        if played.instance_type == "c7i.xlarge":
            [torch] = first
            assert "--index-url https://download.pytorch.org/whl/cpu" in torch and " torch " in f"{torch} "
        else:
            assert first == []
        # The bootstrap log comes home on success too, next to the run file.
        log = tmp_path / "results" / f"bootstrap-{target.run_id}-{played.instance_type}.log"
        assert "siliconbench bootstrap starting" in log.read_text()
    # The bucket was made for the run and is gone with it.
    assert not [b for b in factory.client("s3").list_buckets()["Buckets"] if b["Name"].startswith("siliconbench-")]
    assert_policy_allows(caller_policy(), calls)


def test_two_types_where_one_fails_to_bootstrap_spot(factory, public_amis, instance_profile, fleet, tmp_path) -> None:  # type: ignore[no-untyped-def]
    fleet.behave("inf2.xlarge", "boot", FAKE_PIP_RC="1")
    calls = record_calls(factory)
    options = AwsOptions(
        instance_types=("inf2.xlarge", "c7i.xlarge"), region=REGION, instance_profile=instance_profile, spot=True
    )
    target = AwsTarget(options, factory=factory, timing=FAST)
    inf2, c7i = target.run(tiny_suite(tmp_path / "results"))
    calls = list(calls)

    assert inf2.status == "failed" and inf2.run_file is None
    assert "failed in install: pip install --no-index siliconbench-0.1.0-py3-none-any.whl[aws,torch] failed" in (
        inf2.error or ""
    )
    log = tmp_path / "results" / f"bootstrap-{target.run_id}-inf2.xlarge.log"
    assert "siliconbench bootstrap failed in install" in log.read_text()
    assert c7i.status == "complete", c7i.error
    run = load_run(c7i.run_file)
    assert run.target.purchase_option == "spot"
    assert "spot price history" in run.target.price_source
    assert_nothing_left_running(factory, target.run_id)
    assert "ec2:DescribeSpotPriceHistory" in calls
    assert_policy_allows(caller_policy(), calls)


def refuse_capacity(ec2: Any, instance_type: str) -> None:
    """moto always has capacity; answer RunInstances for ``instance_type`` as AWS does when it has none.

    This is the hook botocore's Stubber itself uses (``before-call``), registered so that every other
    call on the client still reaches moto, which a Stubber on the whole client would not allow.
    """
    from botocore.awsrequest import AWSResponse

    def answer(params: dict[str, Any], **_: Any) -> Any:
        if params.get("body", {}).get("InstanceType") != instance_type:
            return None
        zone = "us-east-1a"
        message = (
            f"We currently do not have sufficient {instance_type} capacity in the Availability Zone you "
            f"requested ({zone}). Our system will be working on provisioning additional capacity."
        )
        return (
            AWSResponse("https://ec2.us-east-1.amazonaws.com/", 500, {}, None),
            {
                "Error": {"Code": "InsufficientInstanceCapacity", "Message": message},
                "ResponseMetadata": {"HTTPStatusCode": 500},
            },
        )

    ec2.meta.events.register("before-call.ec2.RunInstances", answer)


def test_capacity_error_at_launch_creates_nothing_that_stays(factory, public_amis, fleet, tmp_path) -> None:  # type: ignore[no-untyped-def]
    calls = record_calls(factory)
    refuse_capacity(factory.client("ec2"), "trn1.2xlarge")
    options = AwsOptions(instance_types=("trn1.2xlarge",), region=REGION, create_instance_profile=True)
    target = AwsTarget(options, factory=factory, timing=FAST)
    [outcome] = target.run(tiny_suite(tmp_path / "results"))
    calls = list(calls)

    assert outcome.status == "failed" and outcome.run_file is None
    # moto offers trn1.2xlarge in us-east-1c and -f only: preflight's offerings keep the launch there.
    assert outcome.error is not None and outcome.error.startswith(
        "no capacity for trn1.2xlarge in us-east-1c, us-east-1f"
    )
    assert "InsufficientInstanceCapacity" in outcome.error
    assert run_instances_of(factory.client("ec2"), target.run_id or "") == []
    assert_nothing_left_running(factory, target.run_id)
    assert factory.client("iam").list_instance_profiles(PathPrefix="/siliconbench/")["InstanceProfiles"] == []
    assert factory.client("iam").list_roles(PathPrefix="/siliconbench/")["Roles"] == []
    assert target.teardown_problems == []
    assert {"iam:CreateRole", "iam:DeleteRole", "ec2:RunInstances"} <= set(calls)
    assert_policy_allows(caller_policy(), calls)


def test_an_instance_that_never_reports_is_terminated(factory, public_amis, instance_profile, fleet, tmp_path) -> None:  # type: ignore[no-untyped-def]
    fleet.behave("inf2.xlarge", "silent")
    s3 = factory.client("s3")
    s3.create_bucket(Bucket="my-bench-bucket")
    options = AwsOptions(
        instance_types=("inf2.xlarge",), region=REGION, instance_profile=instance_profile, bucket="my-bench-bucket"
    )
    target = AwsTarget(options, factory=factory, timing=Timing(**{**FAST.__dict__, "bootstrap_timeout_s": 0.3}))
    [outcome] = target.run(tiny_suite(tmp_path / "results"))

    assert outcome.status == "failed" and outcome.run_file is None
    assert "never reported" in (outcome.error or "")
    assert_nothing_left_running(factory, target.run_id)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="my-bench-bucket")["Contents"]]
    assert keys == [f"siliconbench/{target.run_id}/inf2.xlarge/job.json"], "a given bucket is kept, with the job"
    job = json.loads(s3.get_object(Bucket="my-bench-bucket", Key=keys[0])["Body"].read())
    assert job["suite"]["workloads"] == ["mlp"] and job["run_id"] == f"{target.run_id}-inf2.xlarge"


def test_a_benchmark_that_crashes_keeps_the_cells_it_finished(
    siliconbench_wheel,
    factory,
    public_amis,
    instance_profile,
    fleet,  # type: ignore[no-untyped-def]
    tmp_path,
) -> None:
    wheel = tmp_path / "given" / siliconbench_wheel.name
    wheel.parent.mkdir()
    shutil.copy(siliconbench_wheel, wheel)
    options = AwsOptions(instance_types=("inf2.xlarge",), region=REGION, instance_profile=instance_profile, wheel=wheel)
    target = AwsTarget(options, factory=factory, timing=FAST)
    suite = tiny_suite(tmp_path / "results", "mlp", "tests.harness.targets.aws.crashing:killed")
    [outcome] = target.run(suite)

    assert outcome.status == "failed"
    assert "failed in agent: the siliconbench agent exited with code 137" in (outcome.error or "")
    run = load_run(outcome.run_file)
    assert run.status == "interrupted"
    assert [c.config.workload for c in run.cells] == ["mlp"]
    assert_nothing_left_running(factory, target.run_id)
    [played] = fleet.played.values()
    [install] = played.pip_calls
    assert "--no-index" in install.split() and install.endswith(f"/opt/bundle/wheels/{wheel.name}[aws,torch]"), install


def test_a_hung_instance_is_caught_by_its_silent_heartbeat(
    factory,
    public_amis,
    instance_profile,
    fleet,  # type: ignore[no-untyped-def]
    tmp_path,
) -> None:
    frozen = threading.Event()

    def freeze_when_second_cell_starts(event: Event) -> None:
        if "measuring tests.harness" in event.detail and not frozen.is_set():
            for played in fleet.played.values():
                os.killpg(played.process.pid, signal.SIGSTOP)
            frozen.set()

    def clock() -> float:
        """Real time until the instance freezes; then ten minutes pass at once (no real waiting)."""
        return time.monotonic() + (FAST.stale_timeout_s + 1 if frozen.is_set() else 0)

    options = AwsOptions(instance_types=("inf2.xlarge",), region=REGION, instance_profile=instance_profile)
    target = AwsTarget(options, factory=factory, timing=FAST, progress=freeze_when_second_cell_starts, clock=clock)
    [outcome] = target.run(tiny_suite(tmp_path / "results", "mlp", "tests.harness.targets.aws.crashing:sleepy"))

    assert outcome.status == "failed"
    assert f"stopped reporting: no heartbeat for {FAST.stale_timeout_s:.0f} s" in (outcome.error or ""), outcome
    run = load_run(outcome.run_file)
    assert run.status == "interrupted" and [c.status for c in run.cells] == ["ok"]
    assert_nothing_left_running(factory, target.run_id)


def test_ctrl_c_while_waiting_terminates_and_keeps_the_partial_run(
    factory,
    public_amis,
    instance_profile,
    fleet,  # type: ignore[no-untyped-def]
    tmp_path,
) -> None:
    seen: list[Event] = []

    def interrupt_when_second_cell_starts(event: Event) -> None:
        seen.append(event)
        if "measuring tests.harness" in event.detail:
            os.kill(os.getpid(), signal.SIGINT)

    options = AwsOptions(instance_types=("inf2.xlarge",), region=REGION, instance_profile=instance_profile)
    target = AwsTarget(options, factory=factory, timing=FAST, progress=interrupt_when_second_cell_starts)
    with pytest.raises(InterruptedRun) as caught:
        target.run(tiny_suite(tmp_path / "results", "mlp", "tests.harness.targets.aws.crashing:sleepy"))

    [outcome] = caught.value.outcomes
    assert outcome.status == "interrupted" and outcome.run_file, (outcome, target.teardown_problems, seen)
    run = load_run(outcome.run_file)
    assert run.status == "interrupted" and [c.status for c in run.cells] == ["ok"]
    assert_nothing_left_running(factory, target.run_id)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "the handlers are restored"


def test_sigterm_while_launching_terminates_everything(
    factory,
    public_amis,
    instance_profile,
    fleet,  # type: ignore[no-untyped-def]
    tmp_path,
) -> None:
    fleet.behave("inf2.xlarge", "silent")
    fleet.behave("c7i.xlarge", "silent")
    before = signal.getsignal(signal.SIGTERM)

    def terminate_when_pending(event: Event) -> None:
        if event.state == "pending":
            os.kill(os.getpid(), signal.SIGTERM)

    options = AwsOptions(instance_types=("inf2.xlarge", "c7i.xlarge"), region=REGION, instance_profile=instance_profile)
    target = AwsTarget(options, factory=factory, timing=FAST, progress=terminate_when_pending)
    with pytest.raises(InterruptedRun) as caught:
        target.run(tiny_suite(tmp_path / "results"))

    assert {o.status for o in caught.value.outcomes} == {"interrupted"}
    assert run_instances_of(factory.client("ec2"), target.run_id or ""), "the instances were launched"
    assert_nothing_left_running(factory, target.run_id)
    assert signal.getsignal(signal.SIGTERM) is before
    assert not list((tmp_path / "results").glob("run-*.json")), "no instance produced a run file"


@pytest.mark.parametrize(("service", "operation"), [("s3", "PutBucketEncryption"), ("ec2", "CreateSecurityGroup")])
def test_a_failure_while_setting_up_removes_what_was_created(
    factory,
    public_amis,
    tmp_path,
    service: str,  # type: ignore[no-untyped-def]
    operation: str,
) -> None:
    from botocore.awsrequest import AWSResponse

    def refuse(**_: Any) -> Any:
        return (
            AWSResponse("https://aws.example/", 403, {}, None),
            {
                "Error": {"Code": "AccessDenied", "Message": f"not allowed to {operation}"},
                "ResponseMetadata": {"HTTPStatusCode": 403},
            },
        )

    factory.client(service).meta.events.register(f"before-call.{service}.{operation}", refuse)
    options = AwsOptions(instance_types=("c7i.xlarge",), region=REGION, create_instance_profile=True)
    target = AwsTarget(options, factory=factory, timing=FAST)
    with pytest.raises(CloudError, match=f"AccessDenied: not allowed to {operation}"):
        target.run(tiny_suite(tmp_path / "results"))

    assert factory.client("s3").list_buckets()["Buckets"] == []
    assert factory.client("iam").list_instance_profiles(PathPrefix="/siliconbench/")["InstanceProfiles"] == []
    assert_nothing_left_running(factory, target.run_id)
    assert target.teardown_problems == []
