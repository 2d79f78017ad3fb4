"""Following one instance, on a scripted clock: the test plays the instance by writing its heartbeat
to moto's S3 and changing its state in moto's EC2, and no real time passes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from harness.errors import CloudError
from harness.targets.aws.ami import resolve_ami
from harness.targets.aws.launch import LaunchSpec, create_security_group, default_subnets, launch_instance
from harness.targets.aws.storage import HEARTBEAT, RunStore
from harness.targets.aws.tags import run_tags
from harness.targets.aws.watch import InstanceWatch, Timing, describe_heartbeat
from tests.harness.targets.aws.conftest import REGION

TIMING = Timing(poll_s=10, running_timeout_s=600, bootstrap_timeout_s=1800, stale_timeout_s=600)


class Script:
    """A clock that moves only when the watch sleeps, running the test's step for the instance."""

    def __init__(self, step: Callable[[int], None]) -> None:
        self.now, self.sleeps, self.step = 0.0, 0, step

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        assert self.sleeps < 100, "the watch never gave up"
        self.now += seconds
        self.step(self.sleeps)


@pytest.fixture
def instance(factory, public_amis, instance_profile) -> tuple[Any, RunStore, str]:  # type: ignore[no-untyped-def]
    ec2, s3 = factory.client("ec2"), factory.client("s3")
    tags = run_tags("r1", "owner", datetime(2030, 1, 1, tzinfo=UTC))
    vpc_id, subnets = default_subnets(ec2)
    group = create_security_group(ec2, vpc_id, "r1", tags)
    ami = resolve_ami(factory.client("ssm"), ec2, "cpu", "x86_64", {}, REGION)
    spec = LaunchSpec("r1", "c7i.xlarge", "cpu", ami, "#!/bin/bash\n", group, instance_profile, tags)
    instance_id = launch_instance(ec2, spec, subnets)["InstanceId"]
    s3.create_bucket(Bucket="bkt")
    return ec2, RunStore(s3, "bkt", "siliconbench/r1/c7i.xlarge"), instance_id


def watch(
    instance: tuple[Any, RunStore, str], script: Script, max_hours: float = 2.0, timing: Timing = TIMING
) -> InstanceWatch:
    ec2, store, instance_id = instance
    return InstanceWatch(
        ec2,
        store,
        "c7i.xlarge",
        instance_id,
        timing,
        max_hours,
        check_cancel=lambda: None,
        emit=lambda *event: None,
        clock=script.clock,
        sleep=script.sleep,
    )


def agent_heartbeat(store: RunStore, seq: int, state: str = "running", done: int = 0) -> None:
    store.put_json(HEARTBEAT, {"state": state, "phase": "agent", "cells_done": done, "cells_total": 3, "seq": seq})


def test_completes_when_the_heartbeat_says_so(instance) -> None:  # type: ignore[no-untyped-def]
    _, store, _ = instance
    script = Script(lambda n: agent_heartbeat(store, n, "complete" if n == 3 else "running", done=n))
    assert watch(instance, script).follow()["cells_done"] == 3
    assert script.now == 3 * TIMING.poll_s


def test_a_finished_instance_that_powered_off_counts_as_complete(instance) -> None:  # type: ignore[no-untyped-def]
    ec2, store, instance_id = instance

    def finish_and_power_off(n: int) -> None:
        agent_heartbeat(store, n, "complete", done=3)
        ec2.terminate_instances(InstanceIds=[instance_id])

    script = Script(lambda n: finish_and_power_off(n) if n == 1 else None)
    agent_heartbeat(store, 0)
    assert watch(instance, script).follow()["state"] == "complete"


def test_an_instance_ended_underneath_the_run_is_reported(instance) -> None:  # type: ignore[no-untyped-def]
    ec2, store, instance_id = instance
    agent_heartbeat(store, 0)
    script = Script(
        lambda n: ec2.terminate_instances(InstanceIds=[instance_id]) if n == 2 else agent_heartbeat(store, n)
    )
    with pytest.raises(CloudError, match=r"went (shutting-down|terminated) before finishing"):
        watch(instance, script).follow()


def test_a_bootstrap_that_never_finishes_times_out(instance) -> None:  # type: ignore[no-untyped-def]
    _, store, _ = instance
    store.put_json(HEARTBEAT, {"state": "bootstrapping", "phase": "bootstrap", "message": "installing siliconbench"})
    script = Script(lambda n: None)
    with pytest.raises(
        CloudError, match=r"did not finish bootstrapping within 1800 s \(last: installing siliconbench\)"
    ):
        watch(instance, script, timing=Timing(poll_s=120, bootstrap_timeout_s=1800)).follow()
    assert script.now > 1800


def test_the_run_limit_ends_a_run_that_keeps_reporting(instance) -> None:  # type: ignore[no-untyped-def]
    _, store, _ = instance
    script = Script(lambda n: agent_heartbeat(store, n))
    with pytest.raises(CloudError, match=r"ran past --max-hours 0.05"):
        watch(instance, script, max_hours=0.05).follow()
    assert 0.05 * 3600 < script.now <= 0.05 * 3600 + TIMING.poll_s


def test_progress_lines() -> None:
    assert describe_heartbeat({"phase": "bootstrap", "message": "installing"}) == "installing"
    assert (
        describe_heartbeat(
            {"phase": "agent", "cells_done": 1, "cells_total": 4, "failed_cells": 1, "current_cell": "mlp/tiny"}
        )
        == "cells 1/4 (1 failed), measuring mlp/tiny"
    )
    assert describe_heartbeat({"phase": "agent", "state": "starting"}) == "cells 0/?"
